"""Eager vs ``torch.compile`` training steps of the exact engines, measured in one run.

One training step = a batch through the model with teacher forcing, the NLL and its backward pass
(gradients of every weight). For each model and each exact executor (``transfer-matrix`` and
``statevector``) the script times, in the same process:

* eager: the first step, then the median of ``--steps`` more;
* compiled (``torch.compile(step)``, default backend inductor): the first call, which compiles
  (reported separately), then the median of ``--steps`` more;

and prints the steady-state ratio eager / compiled (above 1: compiled is faster).

    python benchmarks/bench_compile.py                    # DNA and MNIST 0/1, both executors
    python benchmarks/bench_compile.py --quick            # 2 steady steps each
    python benchmarks/bench_compile.py --configs dna100 --methods transfer-matrix

What compilation covers (:mod:`pennylane_qrnn.engine.transforms`): the weights' maps and transfer
matrices (or neuron tables) and the loss; the recurrences run as the same eager code, so the
ratio is bounded by the share of a step outside them.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from pennylane_qrnn import QRNN
from pennylane_qrnn.executors import Exact

CONFIGS = {
    # name: (io_bits, workspace, stages, degree, order, batch, length), as bench_training.py
    "dna100": (3, 5, 1, 3, 2, 128, 100),
    "mnist01": (2, 8, 2, 2, 2, 100, 100),
}
METHODS = ("transfer-matrix", "statevector")


def _timed(model, function, tokens, steps):
    """(first call, median of ``steps`` more) in seconds."""
    times = []
    for _ in range(steps + 1):
        model.zero_grad(set_to_none=True)  # outside the step: the same guards every call
        start = time.perf_counter()
        function(tokens)
        times.append(time.perf_counter() - start)
    return times[0], statistics.median(times[1:])


def measure(name, method, steps):
    io, ws, stages, degree, order, batch, length = CONFIGS[name]
    torch.manual_seed(0)
    tokens = torch.randint(0, 2**io, (length + 1, batch))
    model = QRNN(io, ws, stages, degree, order, executor=Exact(method))

    def step(tokens):
        log_probs, _ = model(tokens[:-1], tokens[1:])
        loss = model.loss(log_probs, tokens[1:])
        loss.backward()
        return loss

    torch._dynamo.reset()
    eager_first, eager = _timed(model, step, tokens, steps)
    compile_first, compiled = _timed(model, torch.compile(step), tokens, steps)
    return {
        "config": name,
        "method": method,
        "eager_first": eager_first,
        "eager": eager,
        "compile_first": compile_first,
        "compiled": compiled,
        "ratio": eager / compiled,
    }


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--steps", type=int, default=5, help="steady steps timed per mode")
    parser.add_argument("--quick", action="store_true", help="2 steady steps per mode")
    args = parser.parse_args()
    steps = 2 if args.quick else args.steps
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {steps} steady steps")
    print(
        "| model | executor | eager first step (s) | eager step (s) | compile + first step (s) "
        "| compiled step (s) | eager / compiled |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in args.configs.split(","):
        for method in args.methods.split(","):
            r = measure(name, method, steps)
            print(
                f"| {r['config']} | {r['method']} | {r['eager_first']:.3f} | {r['eager']:.3f} | "
                f"{r['compile_first']:.1f} | {r['compiled']:.3f} | {r['ratio']:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
