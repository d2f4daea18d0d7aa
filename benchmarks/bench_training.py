"""Seconds per training step and peak memory of the QRNN, exact engine vs the circuit path.

One training step = a batch through the model with teacher forcing (postselected neurons, every
step postselected on its target, as the reference implementation trains), the NLL, backward,
gradient clipping and an Adam step. Each configuration runs in its own process so its peak RSS
is its own.

    python benchmarks/bench_training.py                  # all configurations
    python benchmarks/bench_training.py --quick          # fewer repetitions
    python benchmarks/bench_training.py --reference-json ref.json

``--reference-code DIR`` measures the reference implementation in the same run: ``DIR`` is a
checkout of the paper's code (``git clone https://github.com/CLEconomides/RVQE`` at commit
400a5eb; not shipped with this project, and nothing of it is copied here). Each configuration runs
the reference in its own process, single-threaded (its fastest), right after ours, on random
bit-word sequences of the same shape: its forward pass with every step postselected on its target
(``postselect_measurement=True``, as it trains), its cross-entropy loss, backward, gradient
clipping at 0.5 and AdamW, timed per step. One change is made to it at run time, not on disk: its
``UnitaryLayer`` hands its rotation gates views of its parameter made once at construction, which
torch >= 1.5 refuses to use after the optimiser updated the parameter in place; the run
re-slices the parameter at every forward pass instead (the same angles and the same cost).
``--reference-json`` takes ``{"dna100": seconds_per_step, ...}`` measured elsewhere; with neither,
the figures of ``shared/reference/baseline.md`` (same machine type, measured 2026-11-27) are
shown, marked so.

    python benchmarks/bench_training.py --configs dna100,mnist01 --reference-code ../RVQE

The circuit path (the templates as QNodes on default.qubit, O(L^2) cells per sequence) is timed
on a small workload (batch 1, L = 2); the engine is timed on the same workload in the same process
for the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

CONFIGS = {
    # name: (io_bits, workspace, stages, degree, order, batch, length)
    "dna10": (3, 5, 1, 3, 2, 128, 10),
    "dna100": (3, 5, 1, 3, 2, 128, 100),
    "dna1000": (3, 5, 1, 3, 2, 128, 1000),
    "mnist01": (2, 8, 2, 2, 2, 100, 100),
    # issue 10's wide models (its table: io 2, S1 d2 order 2, batch 8, L 20); the engine picks
    # the statevector executor for these by itself
    "h12": (2, 12, 1, 2, 2, 8, 20),
    "h16": (2, 16, 1, 2, 2, 8, 20),
}
# shared/reference/baseline.md: the reference implementation, single thread, same machine type
BASELINE_MD = {"dna10": 1.24, "dna100": 15.3, "mnist01": 14.6}


def _time_steps(model, tokens, targets, repeats):
    import torch

    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        log_probs, _ = model(tokens, targets)
        loss = model.loss(log_probs, targets)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])  # the first step warms up


def child(name, repeats, circuit, threads=None):
    import torch

    from pennylane_qrnn import QRNN

    if threads:
        torch.set_num_threads(threads)

    io, ws, stages, degree, order, batch, length = CONFIGS[name]
    torch.manual_seed(0)
    tokens = torch.randint(0, 2**io, (length, batch))
    targets = torch.randint(0, 2**io, (length, batch))
    model = QRNN(io, ws, stages, degree, order)
    result = {
        "name": name,
        "executor": model.execution_plan(batch, length)["chosen"],
        "engine": _time_steps(model, tokens, targets, repeats),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
    }
    if circuit:
        small_tokens, small_targets = tokens[:2, :1], targets[:2, :1]
        engine_small = QRNN(io, ws, stages, degree, order, dtype=torch.float64)
        circuit_model = QRNN(
            io, ws, stages, degree, order, dtype=torch.float64, backend="default.qubit"
        )
        circuit_model.load_state_dict(engine_small.state_dict())
        result["small_engine"] = _time_steps(
            engine_small, small_tokens, small_targets, max(3, repeats)
        )
        result["small_circuit"] = _time_steps(circuit_model, small_tokens, small_targets, 2)
    print(json.dumps(result))


def reference_child(name: str, code: str, repeats: int) -> None:
    """Time the reference implementation's training step (one thread) on configuration ``name``
    and print ``{"name", "reference", "reference_peak_rss_mb"}`` as JSON."""
    import importlib
    import math
    import types

    import torch

    torch.set_num_threads(1)
    # import its model without its package __init__ (which pulls in its datasets and their
    # dependencies: colorful, pandas); nothing of it is modified on disk
    package = types.ModuleType("RVQE")
    package.__path__ = [os.path.join(code, "RVQE")]
    sys.modules["RVQE"] = package
    model_module = importlib.import_module("RVQE.model")
    layers = importlib.import_module("RVQE.compound_layers")
    data = importlib.import_module("RVQE.data")

    def forward(self, kob):  # UnitaryLayer: fresh views of the parameter at every pass
        for gate, angle in zip(self.gates, self.θs, strict=True):
            gate.θ = angle
        return self.gates.forward(kob)

    layers.UnitaryLayer.forward = forward
    io, ws, stages, degree, order, batch, length = CONFIGS[name]
    torch.manual_seed(0)
    model = model_module.RVQE(
        workspace_size=ws,
        input_size=io,
        stages=stages,
        order=order,
        degree=degree,
        bias=math.pi / 2,
    )
    sentences = torch.randint(0, 2, (batch, length + 1, io))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    criterion = torch.nn.CrossEntropyLoss()
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        optimizer.zero_grad()
        probs, _, _ = model(sentences, sentences, postselect_measurement=True)
        loss = criterion(probs, data.targets_for_loss(data.skip_first(sentences)))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimizer.step()
        times.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "name": name,
                "reference": statistics.median(times[1:]),
                "reference_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-circuit", action="store_true", help="skip the circuit path")
    parser.add_argument("--reference-json", help="same-session reference timings {config: s/step}")
    parser.add_argument(
        "--reference-code",
        help="a checkout of github.com/CLEconomides/RVQE @400a5eb: time it in this run",
    )
    parser.add_argument(
        "--reference-repeats", type=int, default=3, help="timed reference steps (after one)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads for this project's engine (default: torch's own, here the cores)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--reference-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    if args.reference_child:
        reference_child(args.reference_child, args.reference_code, args.reference_repeats)
        return
    if args.child:
        child(
            args.child,
            repeats,
            circuit=not args.no_circuit and args.child in ("dna10", "mnist01"),
            threads=args.threads,
        )
        return
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be an int >= 1; got {args.threads}")
    if args.reference_json and args.reference_code:
        parser.error("--reference-json and --reference-code exclude each other; got both")
    if args.reference_code and not os.path.isfile(
        os.path.join(args.reference_code, "RVQE", "model.py")
    ):
        parser.error(
            "--reference-code must be a checkout of github.com/CLEconomides/RVQE (with "
            f"RVQE/model.py); got {args.reference_code!r}"
        )
    reference, source = BASELINE_MD, "baseline.md"
    if args.reference_code:
        reference, source = {}, "measured in this run, one thread"
    if args.reference_json:
        with open(args.reference_json) as stream:
            reference, source = json.load(stream), "measured in this session"
    rows = []
    for name in args.configs.split(","):
        if name not in CONFIGS:
            parser.error(
                f"--configs must name configurations from {', '.join(CONFIGS)}; got {name!r}"
            )
        command = (
            [sys.executable, __file__, "--child", name]
            + (["--quick"] if args.quick else [])
            + (["--no-circuit"] if args.no_circuit else [])
            + (["--threads", str(args.threads)] if args.threads else [])
        )
        output = subprocess.run(
            command, check=True, capture_output=True, text=True, env=os.environ
        ).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
        if args.reference_code:
            command = [
                sys.executable,
                __file__,
                "--reference-child",
                name,
                "--reference-code",
                args.reference_code,
                "--reference-repeats",
                str(args.reference_repeats),
            ]
            environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
            output = subprocess.run(
                command, check=True, capture_output=True, text=True, env=environment
            ).stdout
            measured = json.loads(output.strip().splitlines()[-1])
            reference[name] = measured["reference"]
            rows[-1]["reference_peak_rss_mb"] = measured["reference_peak_rss_mb"]
    print(
        "\nQRNN training step (forward + backward + clip + Adam), torch threads = "
        f"{rows[0]['threads']}"
    )
    print(
        f"{'config':<9} {'batch':>5} {'L':>5} {'executor':>13} {'engine s/step':>14} "
        f"{'peak RSS':>9} {'reference s/step':>17} {'ref peak':>9} {'speed-up':>9}"
    )
    for row in rows:
        io, ws, stages, degree, order, batch, length = CONFIGS[row["name"]]
        ref = reference.get(row["name"])
        ref_text = f"{ref:.3g}" if ref else "-"
        speed = f"{ref / row['engine']:.0f}x" if ref else "-"
        ref_peak = row.get("reference_peak_rss_mb")
        ref_peak_text = f"{ref_peak:.0f}MB" if ref_peak else "-"
        print(
            f"{row['name']:<9} {batch:>5} {length:>5} {row['executor']:>13} "
            f"{row['engine']:>14.4f} {row['peak_rss_mb']:>7.0f}MB {ref_text:>17} "
            f"{ref_peak_text:>9} {speed:>9}"
        )
    print(f"(reference = the paper's implementation, {source})")
    small = [r for r in rows if "small_circuit" in r]
    if small:
        print("\nsame workload (batch 1, L = 2, float64) on both paths:")
        print(
            f"{'config':<9} {'engine s/step':>14} {'default.qubit circuits s/step':>30} "
            f"{'ratio':>8}"
        )
        for row in small:
            print(
                f"{row['name']:<9} {row['small_engine']:>14.5f} {row['small_circuit']:>30.3f} "
                f"{row['small_circuit'] / row['small_engine']:>7.0f}x"
            )
    lengths = {r["name"]: r["engine"] for r in rows}
    if all(k in lengths for k in ("dna10", "dna100", "dna1000")):
        print(
            f"\nlinearity in L (DNA): t(100)/t(10) = {lengths['dna100'] / lengths['dna10']:.1f}, "
            f"t(1000)/t(100) = {lengths['dna1000'] / lengths['dna100']:.1f}"
        )


if __name__ == "__main__":
    main()
