"""Seconds per training step and peak memory of the exact executor's two methods, against the
workspace H, the sequence length L and the batch, with the crossover ``Exact(method="auto")`` uses.

One training step = forward with teacher forcing (every step postselected on its target), the NLL
and backward. Each point runs in its own process, so its peak RSS is its own ("peak" is the
process's ru_maxrss, "growth" what the step added to it after the model was built).

    python benchmarks/bench_executors.py                     # H 2..10, L and batch sweeps
    python benchmarks/bench_executors.py --max-h 12 --plot scaling.png
    python benchmarks/bench_executors.py --only goals        # H=12 and H=16, batch 8, L=20
    python benchmarks/bench_executors.py --only length --keep-all   # what the checkpoints trade

Defaults: io 2, one stage, degree 2, order 2, batch 8, L 20 (the issue's table), one thread
(``--threads``; at most 2 here). A method is skipped at a point where its estimate
(:func:`pennylane_qrnn.memory.exact_estimates`) exceeds ``--max-seconds`` or the memory limit.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

METHODS = ("transfer-matrix", "statevector")


def child(point: dict) -> None:
    import torch

    torch.set_num_threads(point["threads"])
    from pennylane_qrnn import QRNN, memory
    from pennylane_qrnn.executors import Exact

    if point.get("keep_all"):
        # the transfer matrices' backward pass without checkpoints (every step's kept)
        memory.TRANSFER_KEEP_ALL_BYTES = sys.maxsize

    io, ws, batch, length = point["io"], point["workspace"], point["batch"], point["length"]
    torch.manual_seed(0)
    model = QRNN(io, ws, 1, 2, 2, executor=Exact(point["method"]))
    tokens = torch.randint(0, 2**io, (length, batch))
    targets = torch.randint(0, 2**io, (length, batch))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    budget = time.perf_counter() + point["max_seconds"]
    for _ in range(point["repeats"] + 1):
        start = time.perf_counter()
        log_probs, _ = model(tokens, targets)
        model.loss(log_probs, targets).backward()
        model.zero_grad()
        times.append(time.perf_counter() - start)
        if time.perf_counter() > budget:
            break
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = statistics.median(times[1:]) if len(times) > 1 else times[0]
    print(
        json.dumps(
            {
                **point,
                "seconds": seconds,
                "peak_mb": peak / 1024,
                "growth_mb": (peak - before) / 1024,
                "steps": len(times),
            }
        )
    )


def measure(point: dict) -> dict | None:
    from pennylane_qrnn import memory

    estimate = memory.exact_estimates(
        point["io"], point["workspace"], 1, 2, point["length"], point["batch"]
    )[point["method"]]
    limit = memory.memory_limit()
    if estimate["seconds"] > point["max_seconds"] or (limit and estimate["bytes"] > limit):
        return {**point, "seconds": None, "skipped": "estimate", "estimate": estimate}
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(point)],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        return {**point, "seconds": None, "skipped": out.stderr.strip().splitlines()[-1]}
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "estimate": estimate}


def row(result: dict) -> str:
    method = "tm, every step" if result.get("keep_all") else result["method"]
    head = (
        f"{method:>15}  H={result['workspace']:>2}  io={result['io']}  "
        f"N={result['batch']:>4}  L={result['length']:>4}"
    )
    if result["seconds"] is None:
        return f"{head}  skipped ({result['skipped']})"
    return (
        f"{head}  {result['seconds']:9.4f} s/step  peak {result['peak_mb']:8.1f} MB  "
        f"growth {result['growth_mb']:8.1f} MB  "
        f"(estimate {result['estimate']['seconds']:.3g} s, "
        f"{result['estimate']['bytes'] / 2**20:.1f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-h", type=int, default=10, help="largest workspace of the H sweep")
    parser.add_argument("--io", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=20)
    parser.add_argument("--lengths", default="10,100,1000", help="the L sweep (at H=--sweep-h)")
    parser.add_argument("--batches", default="1,8,64,512", help="the batch sweep (at H=--sweep-h)")
    parser.add_argument("--sweep-h", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1, choices=(1, 2))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help="skip a point whose estimated step takes longer",
    )
    parser.add_argument("--only", choices=("h", "length", "batch", "goals"), action="append")
    parser.add_argument("--plot", help="write a plot of the sweeps to this file")
    parser.add_argument(
        "--keep-all",
        action="store_true",
        help="length sweep: also the transfer matrices with every step's intermediates kept "
        "(no checkpoints), the time and memory the checkpoints trade",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    base = {
        "io": args.io,
        "threads": args.threads,
        "repeats": args.repeats,
        "max_seconds": args.max_seconds,
    }
    sweeps = {
        "h": [
            dict(workspace=h, batch=args.batch, length=args.length)
            for h in range(2, args.max_h + 1)
        ],
        "length": [
            dict(workspace=args.sweep_h, batch=args.batch, length=int(n))
            for n in args.lengths.split(",")
        ],
        "batch": [
            dict(workspace=args.sweep_h, batch=int(n), length=args.length)
            for n in args.batches.split(",")
        ],
        "goals": [dict(workspace=12, batch=8, length=20), dict(workspace=16, batch=8, length=20)],
    }
    chosen = args.only or ["h", "length", "batch"]
    results: dict[str, list[dict]] = {}
    for name in chosen:
        print(f"# sweep over {name} ({args.threads} thread(s))", flush=True)
        results[name] = []
        for settings in sweeps[name]:
            for method in METHODS:
                if name == "goals" and method == "transfer-matrix" and settings["workspace"] > 12:
                    continue
                result = measure({**base, **settings, "method": method})
                results[name].append(result)
                print(row(result), flush=True)
            if name == "length" and args.keep_all:
                result = measure({**base, **settings, "method": "transfer-matrix", "keep_all": 1})
                results[name].append(result)
                print(row(result), flush=True)
    if "h" in results:
        _crossover(results["h"], args)
    if args.plot:
        _plot(results, args.plot)


def _crossover(results: list[dict], args: argparse.Namespace) -> None:
    from pennylane_qrnn import memory

    times: dict[int, dict[str, float]] = {}
    for r in results:
        if r["seconds"] is not None:
            times.setdefault(r["workspace"], {})[r["method"]] = r["seconds"]
    measured = [
        h
        for h, t in sorted(times.items())
        if len(t) == 2 and t["statevector"] < t["transfer-matrix"]
    ]
    predicted = [
        h
        for h in range(1, 25)
        if (e := memory.exact_estimates(args.io, h, 1, 2, args.length, args.batch))["statevector"][
            "seconds"
        ]
        < e["transfer-matrix"]["seconds"]
    ]
    print(
        f"# crossover (io {args.io}, S1 d2, batch {args.batch}, L {args.length}): statevector "
        f"faster from H={measured[0] if measured else 'none measured'} (measured), "
        f"H={predicted[0] if predicted else 'none'} (the estimates 'auto' uses)"
    )


def _plot(results: dict[str, list[dict]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = {"h": "workspace", "length": "length", "batch": "batch", "goals": "workspace"}
    fig, axes = plt.subplots(2, len(results), figsize=(4.5 * len(results), 7), squeeze=False)
    for column, (name, rows) in enumerate(results.items()):
        for method in METHODS:
            points = [
                r
                for r in rows
                if r["method"] == method and r["seconds"] is not None and not r.get("keep_all")
            ]
            xs = [r[keys[name]] for r in points]
            axes[0][column].plot(xs, [r["seconds"] for r in points], "o-", label=method)
            axes[1][column].plot(xs, [r["peak_mb"] for r in points], "o-", label=method)
        for ax, label in zip(axes[:, column], ("s/step", "peak RSS (MB)"), strict=True):
            ax.set_yscale("log")
            ax.set_xlabel(keys[name])
            ax.set_ylabel(label)
            if name in ("length", "batch"):
                ax.set_xscale("log")
            ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    print(f"# plot written to {path}")


if __name__ == "__main__":
    main()
