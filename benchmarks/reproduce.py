"""Reproduce the paper's results table (see docs/reproduction.md), one row at a time.

    python benchmarks/reproduce.py memorise
    python benchmarks/reproduce.py elman-xor
    python benchmarks/reproduce.py elman-letters
    python benchmarks/reproduce.py dna --lengths 10,100,1000 --variants paper,rvqe \\
        --models qrnn,lstm,rnn
    python benchmarks/reproduce.py mnist-reference  # the author's trained weights, all test images
    python benchmarks/reproduce.py mnist-umap-reference
    python benchmarks/reproduce.py mnist-train --digits 01 --protocol teacher-forced --loss rvqe
    python benchmarks/reproduce.py report              # markdown tables of everything measured

Each row writes ``OUT/<name>.json`` (default ``runs/reproduction/<row>.json``; ``--name`` sets the
name): the configuration, every seed's result, its wall time and the numerical environment.
Training runs go to a new folder under ``--work`` each time (never over an earlier run). MNIST
rows read the paper's preprocessed files and the reference checkpoints from ``../shared/data``
(or ``QRNN_MNIST_DIR`` / ``--checkpoints``).

Seed for seed: training in float32 is chaotic, so the steps to converge change with the last bit
of any product. Which bits those are depends on the instruction set the math libraries pick on
the machine at hand (MKL's GEMM kernels, ATen's vectorised loops): the same code gave 120, 100 or
130 steps for elman-xor seed 0 on one machine by that choice alone. So this script pins them
before torch is imported: ``MKL_CBWR=COMPATIBLE`` (MKL's conditional numerical reproducibility,
one code path on every x86 processor) and ``ATEN_CPU_CAPABILITY=default`` (ATen's unvectorised
kernels), one torch thread by default, and deterministic algorithms. On one machine the runs
are then the same seed for seed whatever vector units MKL and ATen may use (checked on an
AVX-512 machine with MKL restricted to its AVX-512, AVX2 or SSE4.2 kernels and with 1 or 2
threads, and on an AVX2 AMD EPYC with every ``MKL_CBWR`` code path: elman-xor gave the same
losses bit for bit). Across machines they need not be: the same code, torch build and seed gave
elman-xor losses that part in the last bit at the third step on those two machines (4.3558030
against 4.3558040), so something below torch that the pinning does not reach (the C library's
maths, say) differs. Each JSON therefore records the processor and the C library beside the
torch build, and ``tests/test_reproduction.py`` demands bit-for-bit equality only on the same
ones. elman-xor ran no slower so; ATen's unvectorised kernels may cost more on the larger MNIST
models.
``--native-numerics`` skips the pinning (numbers then depend on the machine).
A code change that moves any rounding still moves the numbers: ``tests/test_reproduction.py``
pins one row so that such a change is noticed and the tables are regenerated.
"""

from __future__ import annotations

import os
import sys

#: the environment that makes float32 runs the same on every x86 machine (see the module docstring)
PINNED_NUMERICS = {"MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "default"}
#: whether this process pinned them (it can only if torch was not imported yet)
PINNED = False
if __name__ == "__main__" and "--native-numerics" not in sys.argv:
    if "torch" in sys.modules:  # pragma: no cover - a script's first import
        raise SystemExit("reproduce.py: torch was imported before the numerics could be pinned")
    os.environ.update(PINNED_NUMERICS)
    PINNED = True

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pennylane_qrnn.evaluation import evaluate  # noqa: E402
from pennylane_qrnn.rvqe import import_rvqe_checkpoint, rvqe_task  # noqa: E402
from pennylane_qrnn.tasks import get_task  # noqa: E402
from pennylane_qrnn.training import (  # noqa: E402
    DEPRECATED_NAMES,
    LOSSES,
    LR_SCHEDULES,
    TRAIN_PROTOCOLS,
    TrainConfig,
    Trainer,
)

SHARED = ROOT.parent / "shared" / "data"
#: the evaluation protocols the MNIST rows report, by their key in the JSON (the keys keep the
#: names the stored results were written with: "reference" is the forced-steps protocol there)
EVALUATION_KEYS = {"reference": "forced-steps", "measured": "measured", "qpu": "qpu"}
#: how the mnist-train JSON files spell the protocol and the loss (the names they were written
#: with, so that a rerun of a documented command updates its file in docs/results)
FILE_SPELLING = {
    "teacher-forced": "reference",
    "measured": "measured",
    "qpu": "qpu",
    "rvqe": "reference",
    "nll": "nll",
}
# the package has no default data folder: point the MNIST tasks at the shared copy unless told
# otherwise
os.environ.setdefault("QRNN_MNIST_DIR", str(SHARED / "mnist"))


def numerics_host() -> dict:
    """The processor and the C library this process runs on: besides the torch build, what the
    pinned numerics still depend on (see the module docstring)."""
    cpu = platform.processor()
    try:
        first = Path("/proc/cpuinfo").read_text().split("\n\n")[0]  # the first core's record
    except OSError:
        first = ""
    fields = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in first.splitlines())
    )
    if "model name" in fields:
        flags = hashlib.sha256(fields.get("flags", "").encode()).hexdigest()[:8]
        cpu = (
            f"{fields['model name']} (family {fields.get('cpu family', '?')}, "
            f"model {fields.get('model', '?')}, flags {flags})"
        )
    return {"cpu": cpu or None, "libc": " ".join(platform.libc_ver()).strip() or None}


def environment() -> dict:
    """What decides the numbers besides the code and the seed, for the JSON."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = None, None
    return {
        "pinned_numerics": PINNED,
        "MKL_CBWR": os.environ.get("MKL_CBWR"),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        **numerics_host(),
        "commit": commit,
        "uncommitted_changes": dirty,
    }


def _train(
    config: TrainConfig, out: Path, stop_after: int | None = None, curves: bool = False
) -> dict:
    """Train one seed and return its summary.

    ``curves``: add every step's training loss and every validation loss (``train_loss``,
    ``val_loss_curve``), which ``tests/test_reproduction.py`` compares with a rerun.
    ``stop_after``: train only that many steps (a prefix; ``finished`` is then false)."""
    start = time.perf_counter()
    trainer = Trainer(config, out)
    summary = trainer.run(progress=False, stop_after=stop_after)
    if not summary.get("finished", True) or "steps" not in summary:
        summary.update(steps=trainer.step, converged=False, finished=False)
    summary["wall_seconds"] = time.perf_counter() - start
    summary["seed"] = config.seed
    if curves:
        summary["train_loss"] = [h["loss"] for h in trainer.history]
        summary["val_loss_curve"] = [
            [h["step"], h["val_loss"]] for h in trainer.history if "val_loss" in h
        ]
    return summary


def _save(args, row: str, payload: dict) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.name or row}.json"
    payload = {**payload, "environment": args.environment}
    path.write_text(json.dumps(payload, indent=2, default=str))
    print(f"wrote {path}")


def _work(args, row: str) -> Path:
    """A new folder for this invocation's training runs."""
    args.work.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{row}-{time.strftime('%Y%m%d-%H%M%S')}-", dir=args.work))


def _seeds(args):
    return list(range(args.first_seed, args.first_seed + args.seeds))


def _protocol_suffix(args) -> str:
    """The JSON name's suffix for a protocol or neuron mode other than the paper's."""
    suffix = "" if args.protocol == "teacher-forced" else f"-{args.protocol}"
    suffix += "" if args.mode == "postselect" else f"-{args.mode}"
    return suffix + ("" if args.lr_schedule == "constant" else f"-{args.lr_schedule}")


def _bias_suffix(args) -> str:
    """The JSON name's suffix for a QRNN initial bias other than the paper's."""
    return "" if args.init_bias is None else f"-bias{args.init_bias:g}"


def row_synthetic(args, task, **overrides):
    row = task + _protocol_suffix(args)
    results, work = [], _work(args, row)
    for seed in _seeds(args):
        config = TrainConfig(
            task=task,
            seed=seed,
            eval_every=args.eval_every,
            protocol=args.protocol,
            mode=args.mode,
            lr_schedule=args.lr_schedule,
            **overrides,
        )
        results.append(_train(config, work / f"{task}-s{seed}", args.stop_after, curves=True))
        last = results[-1]
        val = last["val_loss_curve"][-1][1] if last["val_loss_curve"] else float("nan")
        print(
            f"{task} seed {seed}: {last['steps']} steps, converged {last['converged']}, "
            f"val loss {val:.3g}, {last['wall_seconds']:.1f} s",
            flush=True,
        )
    _save(args, row, {"row": task, "results": results, "command": " ".join(sys.argv)})


def _dna_config(args, task, model, length, seed, init_from=None) -> TrainConfig:
    """A DNA row's training config: the model's step cap, the row's protocol, mode and schedule;
    the QRNN's workspace biases (``--init-bias``) unless it starts from ``init_from``."""
    return TrainConfig(
        task=task,
        model=model,
        length=length,
        seed=seed,
        steps=args.max_steps if model == "qrnn" else args.max_steps_classical,
        eval_every=10,
        eval_batches=2,
        checkpoint_every=50,
        protocol=args.protocol,
        mode=args.mode,
        lr_schedule=args.lr_schedule,
        # the classical models have no workspace biases
        init_bias=args.init_bias if model == "qrnn" and init_from is None else None,
        init_from=init_from,
    )


def row_dna_curriculum(args, task: str, variant: str, work: Path, rows: list, row: str) -> None:
    """``--curriculum 10,20,50,100``: per model and seed, train at the first length, then each
    next length starting from the previous stage's best weights (``init_from``); every stage is
    a row (``stage``, ``curriculum``)."""
    lengths = [int(v) for v in args.curriculum.split(",")]
    for model in args.models.split(","):
        for seed in _seeds(args):
            previous = None
            for stage, length in enumerate(lengths):
                # the first stage starts from the initial biases, later ones from the weights
                config = _dna_config(args, task, model, length, seed, init_from=previous)
                out = work / f"{task}-curriculum-{length}-{model}-s{seed}"
                result = _train(config, out)
                result.update(
                    variant=variant,
                    length=length,
                    stage=stage,
                    curriculum=lengths,
                    commit=args.environment["commit"],
                    pinned_numerics=args.environment["pinned_numerics"],
                )
                rows.append(result)
                best = out / "best.pt"
                previous = str(best if best.is_file() else out / "model.pt")
                print(
                    f"dna {variant} curriculum stage {stage} L={length} {model} seed {seed}: "
                    f"val loss {result['val_loss']:.3g}, accuracy "
                    f"{result['val_accuracy_argmax']:.3f} after {result['steps']} steps, "
                    f"{result['wall_seconds']:.0f} s",
                    flush=True,
                )
                _save(args, row, {"row": "dna", "results": rows, "command": " ".join(sys.argv)})


def row_dna(args):
    work = _work(args, "dna")
    rows = []
    row = "dna" + _protocol_suffix(args) + _bias_suffix(args)
    if args.curriculum:
        variant = args.variants.split(",")[0]
        variant = "rvqe" if variant == "reference" else variant
        if variant not in ("paper", "rvqe") or "," in args.variants:
            raise SystemExit(
                "reproduce.py: --curriculum takes one variant (paper or rvqe); "
                f"got {args.variants!r}"
            )
        if args.resume:
            raise SystemExit("reproduce.py: --resume does not apply to --curriculum (rerun it)")
        task = "dna" if variant == "paper" else "dna-rvqe"
        row_dna_curriculum(args, task, variant, work, rows, row + "-curriculum")
        return
    previous = args.out / f"{args.name or row}.json"
    if args.resume and previous.exists():
        # keep the runs an interrupted invocation finished; each carries its own commit
        rows = json.loads(previous.read_text())["results"]
        print(f"resuming {previous}: {len(rows)} run(s) kept", flush=True)
    done = {(r["variant"], r["length"], r["model"], r["seed"]) for r in rows}
    for variant in args.variants.split(","):
        if variant not in ("paper", "rvqe", "reference"):  # "reference": the former name of rvqe
            raise SystemExit(f"reproduce.py: --variants must name paper or rvqe; got {variant!r}")
        variant = "rvqe" if variant == "reference" else variant
        task = "dna" if variant == "paper" else "dna-rvqe"
        for length in [int(v) for v in args.lengths.split(",")]:
            for model in args.models.split(","):
                for seed in _seeds(args):
                    if (variant, length, model, seed) in done:
                        continue
                    config = _dna_config(args, task, model, length, seed)
                    result = _train(config, work / f"{task}-{length}-{model}-s{seed}")
                    result.update(
                        variant=variant,
                        length=length,
                        commit=args.environment["commit"],
                        pinned_numerics=args.environment["pinned_numerics"],
                    )
                    rows.append(result)
                    print(
                        f"dna {variant} L={length} {model} seed {seed}: "
                        f"{'reached' if result['converged'] else 'NOT reached'} val loss 1e-3 "
                        f"after {result['steps']} steps (val loss {result['val_loss']:.3g}, "
                        f"accuracy {result['val_accuracy_argmax']:.3f}), "
                        f"{result['wall_seconds']:.0f} s",
                        flush=True,
                    )
                    _save(args, row, {"row": "dna", "results": rows, "command": " ".join(sys.argv)})


def _full(task, split):
    return task.dataset(split)


def row_mnist_reference(args):
    folder = args.checkpoints / "mnist01"
    results = []
    for path in sorted(folder.glob("*.tar")):
        model, info = import_rvqe_checkpoint(path)
        name, options = rvqe_task(info["dataset"])
        task = get_task(name, **options)
        data = _full(task, "test")
        entry = {"checkpoint": path.name, "epoch": info["epoch"]}
        for key, protocol in EVALUATION_KEYS.items():
            runs = [
                evaluate(model, [data], protocol, generator=torch.Generator().manual_seed(s))
                for s in range(args.seeds)
            ]
            entry[key] = {
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
    _save(
        args,
        "mnist-reference",
        {"row": "mnist-reference", "results": results, "command": " ".join(sys.argv)},
    )


def row_umap_reference(args):
    results = []
    for path in sorted((args.checkpoints / "mnist-umap").glob("*.tar")):
        model, info = import_rvqe_checkpoint(path)
        name, options = rvqe_task(info["dataset"])
        task = get_task(name, **options)
        data = _full(task, "test")
        run = evaluate(model, [data], "forced-steps", generator=torch.Generator().manual_seed(0))
        entry = {
            "checkpoint": path.name,
            "dataset": info["dataset"],
            "workspace": info["workspace"],
            "degree": info["degree"],
            "parameters": sum(p.numel() for p in model.parameters()),
            "accuracy_argmax": run.accuracy_argmax,
            "accuracy_expected": run.accuracy_expected,
            "accuracy_sampled": run.accuracy_sampled,
            "sequences": run.sequences,
        }
        results.append(entry)
        print(json.dumps(entry), flush=True)
    _save(
        args,
        "mnist-umap-reference",
        {"row": "mnist-umap-reference", "results": results, "command": " ".join(sys.argv)},
    )


def row_mnist_train(args):
    task = {"01": "mnist01", "36": "mnist36"}[args.digits]
    # the JSON is named with the spellings of the runs it holds (docs/results keeps them)
    spelled = f"{FILE_SPELLING[args.protocol]}-{FILE_SPELLING[args.loss]}"
    row = f"mnist-train-{args.digits}-{spelled}" + (
        "" if args.mode == "postselect" else f"-{args.mode}"
    )
    row += "" if args.lr_schedule == "constant" else f"-{args.lr_schedule}"
    row += "" if args.order is None else f"-order{args.order}"
    row += _bias_suffix(args)
    previous = args.out / f"{args.name or row}.json"
    # seeds run earlier (with --first-seed) are kept, this run's replace their namesakes
    results = json.loads(previous.read_text())["results"] if previous.exists() else []
    results = [r for r in results if r["seed"] not in _seeds(args)]
    work = _work(args, row)
    for seed in _seeds(args):
        config = TrainConfig(
            task=task,
            seed=seed,
            steps=args.steps,
            lr=args.lr,
            batch_size=args.batch_size,
            protocol=args.protocol,
            loss=args.loss,
            mode=args.mode,
            lr_schedule=args.lr_schedule,
            order=args.order,
            init_bias=args.init_bias,
            eval_every=25,
            eval_batches=2,
            checkpoint_every=50,
        )
        out = work / f"{task}-{spelled}-s{seed}"
        result = _train(config, out)
        # evaluate the weights with the best validation loss, as the reference kept them
        trainer_model = Trainer(
            TrainConfig(**json.loads((out / "config.json").read_text())), out, resume=True
        ).model
        best = torch.load(out / "best.pt", weights_only=True)
        trainer_model.load_state_dict(best["model"])
        result["best_step"] = best["step"]
        data = get_task(task).dataset("test")
        for key, protocol in EVALUATION_KEYS.items():
            run = evaluate(
                trainer_model, [data], protocol, generator=torch.Generator().manual_seed(seed)
            )
            result[f"test_{key}"] = {
                "accuracy_argmax": run.accuracy_argmax,
                "accuracy_expected": run.accuracy_expected,
                "accuracy_sampled": run.accuracy_sampled,
                "log_io_success_median": run.log_io_success_median,
            }
        results.append(result)
        print(
            json.dumps(
                {
                    k: result[k]
                    for k in (
                        "seed",
                        "steps",
                        "best_step",
                        "wall_seconds",
                        "test_reference",
                        "test_measured",
                        "test_qpu",
                    )
                }
            ),
            flush=True,
        )
        _save(
            args,
            row,
            {
                "row": "mnist-train",
                "results": sorted(results, key=lambda r: r["seed"]),
                "command": " ".join(sys.argv),
            },
        )


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
            print(
                "| variant | L | model | params | reached 1e-3 | steps (median, min-max) | "
                "accuracy (median) | wall s (median) |"
            )
            print("|---|---|---|---|---|---|---|---|")
            for key in keys:
                group = [r for r in results if (r["variant"], r["length"], r["model"]) == key]
                steps = _median_spread([r["steps"] for r in group])
                acc = statistics.median(r["val_accuracy_argmax"] for r in group)
                wall = statistics.median(r["wall_seconds"] for r in group)
                reached = sum(r["converged"] for r in group)
                print(
                    f"| {key[0]} | {key[1]} | {key[2]} | {group[0]['parameters']} | "
                    f"{reached}/{len(group)} | "
                    f"{steps[0]:.0f} ({steps[1]}-{steps[2]}) | {acc:.3f} | {wall:.0f} |"
                )
        elif "steps" in results[0]:
            steps = _median_spread([r["steps"] for r in results])
            print(
                f"seeds {len(results)}; converged {sum(r['converged'] for r in results)}; steps "
                f"median {steps[0]} ({steps[1]}-{steps[2]}); val loss median "
                f"{statistics.median(r['val_loss'] for r in results):.3g}; sampled accuracy median "
                f"{statistics.median(r['val_accuracy_sampled'] for r in results):.3f}; wall median "
                f"{statistics.median(r['wall_seconds'] for r in results):.1f} s"
            )
            for r in results:
                extra = {k: v for k, v in r.items() if k.startswith("test_")}
                if extra:
                    print(f"  seed {r['seed']}: {json.dumps(extra)}")
        else:
            for r in results:
                print(f"  {json.dumps(r)}")


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "row",
        choices=[
            "memorise",
            "elman-xor",
            "elman-letters",
            "dna",
            "mnist-reference",
            "mnist-umap-reference",
            "mnist-train",
            "report",
        ],
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "runs" / "reproduction", help="folder of the JSON"
    )
    parser.add_argument(
        "--name", default=None, help="the JSON's name without .json (default: the row's)"
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="where training runs go, a new folder each time (default runs/reproduction/runs)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    parser.add_argument(
        "--stop-after",
        type=int,
        default=None,
        help="memorise/elman rows: train each seed only this many steps (a prefix, for tests)",
    )
    parser.add_argument(
        "--native-numerics",
        action="store_true",
        help="do not pin MKL and ATen to one code path (the numbers then depend on the machine)",
    )
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument(
        "--resume",
        action="store_true",
        help="dna: keep the runs the JSON already holds (same variant, L, model and seed) and run "
        "only the missing ones",
    )
    parser.add_argument("--lengths", default="10,100,1000")
    parser.add_argument(
        "--curriculum",
        help="dna: lengths trained in turn, each stage starting from the previous stage's best "
        "weights (e.g. 10,20,50,100; replaces --lengths; '-curriculum' added to the JSON's name)",
    )
    parser.add_argument("--variants", default="paper,rvqe")
    parser.add_argument("--models", default="qrnn,lstm,rnn")
    parser.add_argument("--max-steps", type=int, default=400)
    parser.add_argument("--max-steps-classical", type=int, default=1500)
    parser.add_argument("--checkpoints", type=Path, default=SHARED / "reference-checkpoints")
    parser.add_argument("--digits", choices=["01", "36"], default="01")
    parser.add_argument(
        "--protocol",
        choices=[*TRAIN_PROTOCOLS, *DEPRECATED_NAMES["protocol"]],
        default="teacher-forced",
        help="the training protocol of every training row (reference: the former name of "
        "teacher-forced); a protocol other than teacher-forced is added to the JSON's name",
    )
    parser.add_argument(
        "--mode",
        choices=["postselect", "amplified"],
        default="postselect",
        help="the QRNN's neuron mode in every training row (amplified: added to the JSON's name)",
    )
    parser.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        default="constant",
        help="every training row's learning-rate schedule (other than constant: added to the "
        "JSON's name)",
    )
    parser.add_argument(
        "--loss",
        choices=[*LOSSES, *DEPRECATED_NAMES["loss"]],
        default="rvqe",
        help="mnist-train: the training loss (reference: the former name of rvqe)",
    )
    parser.add_argument(
        "--order",
        type=int,
        default=None,
        help="mnist-train: the neurons' order (default: the task's, 2; other: added to the name)",
    )
    parser.add_argument(
        "--init-bias",
        type=float,
        default=None,
        help="mnist-train and dna: the QRNN's workspace neurons' initial bias mean (default "
        "pi/4; other: named)",
    )
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    for flag in ("protocol", "loss"):
        old = getattr(args, flag)
        if old in DEPRECATED_NAMES[flag]:
            new = DEPRECATED_NAMES[flag][old]
            print(f"reproduce.py: --{flag} {old} is deprecated: it is {new}", file=sys.stderr)
            setattr(args, flag, new)
    if args.stop_after is not None and args.stop_after < 1:
        parser.error(f"--stop-after must be >= 1; got {args.stop_after}")
    if args.threads < 0:
        parser.error(f"--threads must be >= 0; got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    if PINNED:
        torch.use_deterministic_algorithms(True, warn_only=True)
    args.work = args.work or ROOT / "runs" / "reproduction" / "runs"
    args.environment = environment()
    if args.row == "report":
        return report(args)
    if args.row in ("memorise", "elman-xor", "elman-letters"):
        return row_synthetic(args, args.row)
    return {
        "dna": row_dna,
        "mnist-reference": row_mnist_reference,
        "mnist-umap-reference": row_umap_reference,
        "mnist-train": row_mnist_train,
    }[args.row](args)


if __name__ == "__main__":
    main()
