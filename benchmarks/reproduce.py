"""Reproduce the paper's results table (see docs/reproduction.md), one row at a time.

    python benchmarks/reproduce.py memorise
    python benchmarks/reproduce.py elman-xor
    python benchmarks/reproduce.py elman-letters
    python benchmarks/reproduce.py dna --lengths 10,100,1000 --variants paper,reference --models qrnn,lstm,rnn
    python benchmarks/reproduce.py mnist-reference     # the author's trained weights, all test images
    python benchmarks/reproduce.py mnist-umap-reference
    python benchmarks/reproduce.py mnist-train --digits 01 --protocol reference
    python benchmarks/reproduce.py report              # markdown tables of everything measured

Each row writes ``OUT/<row>.json`` (default ``runs/reproduction``): the configuration, every
seed's result and its wall time. MNIST rows read the paper's preprocessed files and the reference
checkpoints from ``../shared/data`` (or ``QRNN_MNIST_DIR`` / ``--checkpoints``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pennylane_qrnn.evaluation import evaluate  # noqa: E402
from pennylane_qrnn.reference import import_reference, reference_task  # noqa: E402
from pennylane_qrnn.tasks import get_task  # noqa: E402
from pennylane_qrnn.training import TrainConfig, Trainer  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


def _train(config: TrainConfig, out: Path) -> dict:
    start = time.perf_counter()
    trainer = Trainer(config, out)
    summary = trainer.run(progress=False)
    summary["wall_seconds"] = time.perf_counter() - start
    summary["seed"] = config.seed
    return summary


def _save(out: Path, row: str, payload: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{row}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    print(f"wrote {path}")


def _seeds(args):
    return list(range(args.first_seed, args.first_seed + args.seeds))


def row_synthetic(args, task, **overrides):
    results = []
    for seed in _seeds(args):
        config = TrainConfig(task=task, seed=seed, eval_every=args.eval_every, **overrides)
        results.append(_train(config, args.out / "runs" / f"{task}-s{seed}"))
        print(f"{task} seed {seed}: {results[-1]['steps']} steps, converged {results[-1]['converged']}, "
              f"val loss {results[-1]['val_loss']:.3g}, accuracy {results[-1]['val_accuracy_sampled']:.3f}, "
              f"{results[-1]['wall_seconds']:.1f} s", flush=True)
    _save(args.out, task, {"row": task, "results": results, "command": " ".join(sys.argv)})


def row_dna(args):
    rows = []
    for variant in args.variants.split(","):
        task = "dna" if variant == "paper" else "dna-reference"
        for length in [int(v) for v in args.lengths.split(",")]:
            for model in args.models.split(","):
                cap = args.max_steps if model == "qrnn" else args.max_steps_classical
                for seed in _seeds(args):
                    config = TrainConfig(task=task, model=model, length=length, seed=seed, steps=cap,
                                         eval_every=10, eval_batches=2, checkpoint_every=50)
                    result = _train(config, args.out / "runs" / f"{task}-{length}-{model}-s{seed}")
                    result.update(variant=variant, length=length)
                    rows.append(result)
                    print(f"dna {variant} L={length} {model} seed {seed}: {'reached' if result['converged'] else 'NOT reached'} "
                          f"val loss 1e-3 after {result['steps']} steps (val loss {result['val_loss']:.3g}, "
                          f"accuracy {result['val_accuracy_argmax']:.3f}), {result['wall_seconds']:.0f} s", flush=True)
                    _save(args.out, "dna", {"row": "dna", "results": rows, "command": " ".join(sys.argv)})


def _full(task, split):
    return task.dataset(split)


def row_mnist_reference(args):
    folder = args.checkpoints / "mnist01"
    results = []
    for path in sorted(folder.glob("*.tar")):
        model, info = import_reference(path)
        name, options = reference_task(info["dataset"])
        task = get_task(name, **options)
        data = _full(task, "test")
        entry = {"checkpoint": path.name, "epoch": info["epoch"]}
        for protocol in ("reference", "measured"):
            runs = [evaluate(model, [data], protocol, generator=torch.Generator().manual_seed(s)) for s in range(args.seeds)]
            entry[protocol] = {
                "accuracy_argmax": runs[0].accuracy_argmax,
                "accuracy_expected": runs[0].accuracy_expected,
                "accuracy_sampled": [r.accuracy_sampled for r in runs],
                "log_io_success_median": runs[0].log_io_success_median,
                "log_io_success_min": runs[0].log_io_success_min,
                "log_neuron_success_median": runs[0].log_neuron_success_median,
                "sequences": runs[0].sequences,
            }
        results.append(entry)
        print(json.dumps(entry), flush=True)
    _save(args.out, "mnist-reference", {"row": "mnist-reference", "results": results, "command": " ".join(sys.argv)})


def row_umap_reference(args):
    results = []
    for path in sorted((args.checkpoints / "mnist-umap").glob("*.tar")):
        model, info = import_reference(path)
        name, options = reference_task(info["dataset"])
        task = get_task(name, **options)
        data = _full(task, "test")
        run = evaluate(model, [data], "reference", generator=torch.Generator().manual_seed(0))
        entry = {"checkpoint": path.name, "dataset": info["dataset"], "workspace": info["workspace"],
                 "degree": info["degree"], "parameters": sum(p.numel() for p in model.parameters()),
                 "accuracy_argmax": run.accuracy_argmax, "accuracy_expected": run.accuracy_expected,
                 "accuracy_sampled": run.accuracy_sampled, "sequences": run.sequences}
        results.append(entry)
        print(json.dumps(entry), flush=True)
    _save(args.out, "mnist-umap-reference", {"row": "mnist-umap-reference", "results": results, "command": " ".join(sys.argv)})


def row_mnist_train(args):
    task = {"01": "mnist01", "36": "mnist36"}[args.digits]
    row = f"mnist-train-{args.digits}-{args.protocol}-{args.loss}"
    previous = args.out / f"{row}.json"
    # seeds run earlier (with --first-seed) are kept, this run's replace their namesakes
    results = json.loads(previous.read_text())["results"] if previous.exists() else []
    results = [r for r in results if r["seed"] not in _seeds(args)]
    for seed in _seeds(args):
        config = TrainConfig(task=task, seed=seed, steps=args.steps, lr=args.lr, batch_size=args.batch_size,
                             protocol=args.protocol, loss=args.loss, eval_every=25, eval_batches=2,
                             checkpoint_every=50)
        out = args.out / "runs" / f"{task}-{args.protocol}-{args.loss}-s{seed}"
        result = _train(config, out)
        # evaluate the weights with the best validation loss, as the reference kept them
        trainer_model = Trainer(TrainConfig(**json.loads((out / "config.json").read_text())), out, resume=True).model
        best = torch.load(out / "best.pt", weights_only=True)
        trainer_model.load_state_dict(best["model"])
        result["best_step"] = best["step"]
        data = get_task(task).dataset("test")
        for protocol in ("reference", "measured"):
            run = evaluate(trainer_model, [data], protocol, generator=torch.Generator().manual_seed(seed))
            result[f"test_{protocol}"] = {"accuracy_argmax": run.accuracy_argmax, "accuracy_expected": run.accuracy_expected,
                                          "accuracy_sampled": run.accuracy_sampled,
                                          "log_io_success_median": run.log_io_success_median}
        results.append(result)
        print(json.dumps({k: result[k] for k in ("seed", "steps", "best_step", "wall_seconds", "test_reference", "test_measured")}), flush=True)
        _save(args.out, row, {"row": "mnist-train", "results": sorted(results, key=lambda r: r["seed"]),
                              "command": " ".join(sys.argv)})


def _median_spread(values):
    values = sorted(values)
    return statistics.median(values), values[0], values[-1]


def report(args):
    for path in sorted(args.out.glob("*.json")):
        payload = json.loads(path.read_text())
        print(f"\n## {payload['row']}  (`{payload.get('command', '')}`)")
        results = payload["results"]
        if payload["row"] == "dna":
            keys = sorted({(r["variant"], r["length"], r["model"]) for r in results})
            print("| variant | L | model | params | reached 1e-3 | steps (median, min-max) | accuracy (median) | wall s (median) |")
            print("|---|---|---|---|---|---|---|---|")
            for key in keys:
                group = [r for r in results if (r["variant"], r["length"], r["model"]) == key]
                steps = _median_spread([r["steps"] for r in group])
                acc = statistics.median(r["val_accuracy_argmax"] for r in group)
                wall = statistics.median(r["wall_seconds"] for r in group)
                reached = sum(r["converged"] for r in group)
                print(f"| {key[0]} | {key[1]} | {key[2]} | {group[0]['parameters']} | {reached}/{len(group)} | "
                      f"{steps[0]:.0f} ({steps[1]}-{steps[2]}) | {acc:.3f} | {wall:.0f} |")
        elif "steps" in results[0]:
            steps = _median_spread([r["steps"] for r in results])
            print(f"seeds {len(results)}; converged {sum(r['converged'] for r in results)}; steps median {steps[0]} "
                  f"({steps[1]}-{steps[2]}); val loss median {statistics.median(r['val_loss'] for r in results):.3g}; "
                  f"sampled accuracy median {statistics.median(r['val_accuracy_sampled'] for r in results):.3f}; "
                  f"wall median {statistics.median(r['wall_seconds'] for r in results):.1f} s")
            for r in results:
                extra = {k: v for k, v in r.items() if k.startswith("test_")}
                if extra:
                    print(f"  seed {r['seed']}: {json.dumps(extra)}")
        else:
            for r in results:
                print(f"  {json.dumps(r)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("row", choices=["memorise", "elman-xor", "elman-letters", "dna", "mnist-reference",
                                        "mnist-umap-reference", "mnist-train", "report"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "reproduction")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--lengths", default="10,100,1000")
    parser.add_argument("--variants", default="paper,reference")
    parser.add_argument("--models", default="qrnn,lstm,rnn")
    parser.add_argument("--max-steps", type=int, default=400)
    parser.add_argument("--max-steps-classical", type=int, default=1500)
    parser.add_argument("--checkpoints", type=Path, default=SHARED / "reference-checkpoints")
    parser.add_argument("--digits", choices=["01", "36"], default="01")
    parser.add_argument("--protocol", choices=["reference", "measured"], default="reference")
    parser.add_argument("--loss", choices=["nll", "reference"], default="reference")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.row == "report":
        return report(args)
    if args.row in ("memorise", "elman-xor", "elman-letters"):
        return row_synthetic(args, args.row)
    return {"dna": row_dna, "mnist-reference": row_mnist_reference, "mnist-umap-reference": row_umap_reference,
            "mnist-train": row_mnist_train}[args.row](args)


if __name__ == "__main__":
    main()
