"""Seconds per training step and peak memory on a GPU (or, without one, the CPU): the exact
executor's methods against the same model on ``lightning.gpu`` through the circuit path.

    python benchmarks/gpu_scan.py --out docs/results/gpu-scan.md          # the full grid
    python benchmarks/gpu_scan.py --quick                                  # a few small points

Rows (one training step = teacher-forced forward, NLL, backward, Adam step):

* ``dna``: the paper's DNA model (io 3, H5 S1 d3 order 2), batch 128, L = 100;
* ``mnist01``: the paper's MNIST 0/1 model (io 2, H8 S2 d2 order 2), batch 100, L = 100;
* ``H=h``: io 2, S1 d2 order 2, L = 20, for h in ``--widths`` (default 8..24 on CUDA, 4..10 on
  the CPU) at every batch in ``--batches`` (default 8..1024 on CUDA, 8 and 64 on the CPU).

Each point runs in a fresh child process (its peak memory is its own: ``torch.cuda``'s peak
allocation on a GPU, the peak RSS on the CPU) with a time limit; a point that runs out of memory,
is refused by the size guard or exceeds the limit is reported as such, never guessed. The
executor methods are the ones ``pennylane_qrnn.executors.Exact`` offers (``method=``); the
circuit path runs where ``lightning.gpu`` is installed (``pip install pennylane-lightning-gpu``,
extra ``gpu``) and only on the small rows (it runs O(L^2) cells per sequence), with batch 1 and
L = 2 beside the exact executor on the same workload for the ratio.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: name: (io_bits, workspace, stages, degree, order, batch, length)
PAPER_ROWS = {"dna": (3, 5, 1, 3, 2, 128, 100), "mnist01": (2, 8, 2, 2, 2, 100, 100)}


def methods() -> list[str]:
    """The exact executor's methods in this version (``["default"]`` if it has no choice)."""
    sys.path.insert(0, str(ROOT))
    from pennylane_qrnn.executors import Exact

    if "method" not in inspect.signature(Exact).parameters:
        return ["default"]
    return ["transfer-matrix", "statevector"]


def _measure(spec: dict) -> dict:
    """Run in the child: build the model, time ``spec["repeats"]`` steps, report peak memory."""
    import torch

    sys.path.insert(0, str(ROOT))
    from pennylane_qrnn import QRNN
    from pennylane_qrnn.executors import Circuits, Exact

    torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    io, h, s, d, o, batch, length = spec["config"]
    if spec["executor"] == "circuits":
        executor = Circuits("lightning.gpu")
    elif spec["executor"] == "default":
        executor = Exact()
    else:
        executor = Exact(method=spec["executor"])
    model = QRNN(io, h, s, d, o, executor=executor, device=device, dtype=torch.float32)
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 2**io, (length + 1, batch), generator=generator).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(spec["repeats"] + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        log_probs, _ = model(tokens[:-1], tokens[1:])
        loss = model.loss(log_probs, tokens[1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds_per_step": statistics.median(times[1:]), "peak_bytes": int(peak)}


def run_point(spec: dict, timeout: float) -> dict:
    """One point in a child process; its outcome (``status`` ok / refused / oom / timeout)."""
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"status": f"over {timeout:.0f} s"}
    if done.returncode == 0:
        return {"status": "ok", **json.loads(done.stdout.strip().splitlines()[-1])}
    last = (done.stderr.strip().splitlines() or ["?"])[-1]
    if "ModelSizeError" in last or "must be at most" in last:
        return {"status": "refused (size guard)"}
    if "out of memory" in last.lower() or "MemoryError" in last:
        return {"status": "out of memory"}
    return {"status": "failed: " + last[:120]}


def grid(args) -> list[tuple[str, tuple]]:
    rows = [(name, config) for name, config in PAPER_ROWS.items()]
    for h in args.widths:
        for batch in args.batches:
            rows.append((f"H={h} B={batch}", (2, h, 1, 2, 2, batch, 20)))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda if present)")
    parser.add_argument("--widths", default=None, help="comma-separated H values")
    parser.add_argument("--batches", default=None, help="comma-separated batch sizes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per point")
    parser.add_argument("--quick", action="store_true", help="a few small points only")
    parser.add_argument("--out", type=Path, default=None, help="write the table (markdown)")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_measure(json.loads(args.child))))
        return 0
    import torch

    cuda = torch.cuda.is_available()
    device = args.device or ("cuda" if cuda else "cpu")
    if device == "cuda" and not cuda:
        parser.error("--device cuda needs a CUDA GPU; none is visible")
    default_widths = "8,10,12,14,16,18,20,22,24" if device == "cuda" else "4,6,8,10"
    default_batches = "8,64,256,1024" if device == "cuda" else "8,64"
    if args.quick:
        default_widths, default_batches = "4,6", "8"
        args.repeats = 1
    args.widths = [int(v) for v in (args.widths or default_widths).split(",")]
    args.batches = [int(v) for v in (args.batches or default_batches).split(",")]
    rows = grid(args)
    if args.quick:
        rows = rows[len(PAPER_ROWS) :]
    executors = methods()
    try:
        import pennylane as qml

        qml.device("lightning.gpu", wires=2)
        circuit = device == "cuda"
    except Exception:  # not installed, or no GPU for it
        circuit = False
    lines = [
        f"device: {device}"
        + (
            f" ({torch.cuda.get_device_name(0)})"
            if device == "cuda"
            else f", {args.threads} threads"
        ),
        f"torch {torch.__version__}; lightning.gpu circuit path: "
        + ("yes" if circuit else "not available"),
        "",
        "| row | executor | s/step | peak memory |",
        "|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for name, config in rows:
        for executor in executors:
            spec = {
                "config": config,
                "executor": executor,
                "device": device,
                "threads": args.threads,
                "repeats": args.repeats,
            }
            result = run_point(spec, args.timeout)
            if result["status"] == "ok":
                cells = (
                    f"{result['seconds_per_step']:.4g} | {result['peak_bytes'] / 2**20:,.0f} MiB"
                )
            else:
                cells = f"{result['status']} | -"
            line = f"| {name} | {executor} | {cells} |"
            lines.append(line)
            print(line, flush=True)
    if circuit:
        for name, config in rows[:2]:
            small = config[:5] + (1, 2)
            for executor in ["circuits", executors[0]]:
                spec = {
                    "config": small,
                    "executor": executor,
                    "device": device,
                    "threads": args.threads,
                    "repeats": args.repeats,
                }
                result = run_point(spec, args.timeout)
                status = (
                    f"{result['seconds_per_step']:.4g} | {result['peak_bytes'] / 2**20:,.0f} MiB"
                    if result["status"] == "ok"
                    else f"{result['status']} | -"
                )
                line = f"| {name} (B=1, L=2) | {executor} | {status} |"
                lines.append(line)
                print(line, flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    raise SystemExit(main())
