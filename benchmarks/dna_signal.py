"""How much of the remembered base reaches the scored step, at initialisation, against the length
(DNA in the paper's variant, under the ``qpu`` protocol; issue 12's DNA account).

For each model (the QRNN with the paper's biases pi/4 and with workspace biases 0.3, the matched
LSTM and RNN) and length ``L``: draw test sequences, set the base after the marker to each of
the four bases in turn (everything else unchanged), and take the largest total-variation
distance between the scored step's four output distributions; the mean over the sequences and
over ``--seeds`` freshly initialised models is printed. Where it is ~0 no gradient can teach the
model to read the base: the gradient of the scored step's loss with respect to anything that
acts before the base is as small as this dependence.

    python benchmarks/dna_signal.py                       # L = 10, 20, 50, 100, 200; 3 seeds
    python benchmarks/dna_signal.py --lengths 10,100 --seeds 1 --sequences 16
"""

from __future__ import annotations

import argparse

import torch

MODELS = {
    "qrnn, biases pi/4": {},
    "qrnn, biases 0.3": {"init_bias": 0.3},
    "lstm": {"model": "lstm"},
    "rnn": {"model": "rnn"},
}


def base_dependence(model, length: int, sequences: int, seed: int) -> float:
    """The mean over ``sequences`` DNA sequences of the largest total-variation distance between
    the scored step's distributions for the four remembered bases, under ``qpu``."""
    from pennylane_qrnn.protocols import QPU
    from pennylane_qrnn.tasks import DNA

    batch = DNA(length=length).batch(sequences, generator=torch.Generator().manual_seed(seed))
    tokens = batch.tokens
    after_marker = (tokens == DNA.MARKER).float().argmax(0) + 1
    masks = QPU.forward_masks(batch.forced, batch.scored)
    items = torch.arange(sequences)
    distributions = []
    for base in range(4):
        changed = tokens.clone()
        changed[after_marker, items] = base
        with torch.no_grad():
            out = model(changed, None, **masks, generator=torch.Generator().manual_seed(seed))
        distributions.append(out.log_probs[-1].double().exp())
    distances = torch.stack(
        [
            0.5 * (distributions[a] - distributions[b]).abs().sum(-1)
            for a in range(4)
            for b in range(a + 1, 4)
        ]
    )
    return float(distances.amax(0).mean())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lengths", default="10,20,50,100,200")
    parser.add_argument("--seeds", type=int, default=3, help="freshly initialised models each")
    parser.add_argument("--sequences", type=int, default=64)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from pennylane_qrnn.training import TrainConfig, build_model

    lengths = [int(v) for v in args.lengths.split(",")]
    print("| model | " + " | ".join(f"L = {n}" for n in lengths) + " |")
    print("|---|" + "---|" * len(lengths))
    for name, extra in MODELS.items():
        cells = []
        for length in lengths:
            values = []
            for seed in range(args.seeds):
                config = TrainConfig(
                    task="dna", length=length, seed=seed, protocol="qpu", mode="amplified", **extra
                ).resolved()
                torch.manual_seed(seed)
                model = build_model(config, config.make_task()).eval()
                values.append(base_dependence(model, length, args.sequences, seed))
            cells.append(f"{sum(values) / len(values):.1e}")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
