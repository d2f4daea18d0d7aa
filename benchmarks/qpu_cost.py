"""Hardware cost of trained QRNNs under the ``qpu`` protocol (issue 12, item 4).

    python benchmarks/qpu_cost.py RUN_DIR [RUN_DIR ...] [--sequences 64]
        [--noise-sequences 8 [TASK=N ...]] [--noise-shots 64 [TASK=N ...]]
        [--out docs/results/qpu-cost.json]

``RUN_DIR`` is a training run's seed folder (``model.pt``, ``config.json``, ``summary.json``, as
``benchmarks/reproduce.py ... --protocol qpu --mode amplified`` writes them) or a folder of such
seed folders. For every model, on ``--sequences`` test sequences and under
:data:`~pennylane_qrnn.protocols.QPU` (amplified neurons, output stage only at scored steps,
nothing postselected):

* **success per sequence**: the exact engine's postselection success (``exp(log_total)``; 1 by
  construction with amplified neurons: measured here, not assumed) and, on the noisy runs, the
  fraction of shots the shot pipeline keeps;
* **exact accuracy**: each scored step's exact marginal over the earlier measured outcomes (the
  engine's density-matrix mode where a scored step follows a measured one); ``argmax`` is the
  many-shot limit of a majority vote, ``single shot`` the mean probability of the target;
* **shots needed**: the smallest ``n`` whose plurality vote over ``n`` shots is right, on
  average over the scored steps, within ``--tolerance`` of the argmax accuracy. The ``n``
  outcomes of one step are independent draws from its exact marginal ``p`` (each shot runs the
  whole sequence afresh), so the vote is right with probability
  ``sum_c P(X_t = c) E[1{X_j <= c for all j} / (1 + #{j: X_j = c})]`` (ties broken uniformly),
  ``X`` multinomial(``n``, ``p``); computed exactly by :func:`vote_accuracy`;
* **gates**: the sequence transpiled for FakeBrisbane (``qiskit_ibm_runtime.fake_provider``,
  ``optimization_level=1``, ``seed_transpiler=0``, as the shot path transpiles; ECR gates,
  dynamic circuits) and decomposed for IonQ Forte on Braket (``{rx, ry, rz, rxx}``, all-to-all,
  measurements deferred onto fresh qubits since Braket's IonQ devices have no mid-circuit
  measurement; ``rxx`` stands for IonQ's MS gate up to one-qubit rotations). The Braket SDK has
  no offline compiler for its QPUs (its ``LocalEmulator`` validates programs, it does not
  compile them), so the decomposition is Qiskit's transpiler on that basis. Per step: the whole
  sequence's count (or depth) over its length;
* **price** at the shots needed: IBM pay-as-you-go on the FakeBrisbane circuit's calibrated
  duration (``devices.pricing.price_run``), IonQ Forte from ``BRAKET_PRICES`` (one task per
  sequence); per test set = the sequences evaluated here (a dataset task's whole test split);
* **FakeBrisbane accuracy** (the smallest converged model of each task, or ``--noise every``
  model given; ``--noise-max-steps``):
  the sequences run as dynamic circuits on Aer with FakeBrisbane's noise model
  (:func:`~pennylane_qrnn.devices.execution.run_program`, method ``dynamic``), every shot kept;
  single-shot accuracy over (shot, scored step) pairs with its binomial standard error, and the
  plurality vote over all shots, beside the exact numbers on the same sequences.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pennylane_qrnn import QRNN  # noqa: E402
from pennylane_qrnn.devices.execution import analyse_shots, run_program, to_qiskit  # noqa: E402
from pennylane_qrnn.devices.pricing import BRAKET_PRICES, native_basis, price_run  # noqa: E402
from pennylane_qrnn.devices.program import SequenceProgram  # noqa: E402
from pennylane_qrnn.protocols import QPU  # noqa: E402
from pennylane_qrnn.training import load_trained_model  # noqa: E402

BRAKET_DEVICE = "ionq/forte"
#: IonQ Forte's qubits (all-to-all): a deferred-measurement program must fit in them
BRAKET_QUBITS = 36
IBM_DEVICE = "fake_brisbane"
OPTIMIZATION_LEVEL = 1
#: the shots above which the general (more than two tokens) vote is not computed
MAX_GENERAL_SHOTS = 150


@dataclass
class Readout:
    """The exact marginals of one batch's scored steps under the protocol.

    Attributes:
        probs: ``(S, V)`` the exact distribution of each scored step's readout
        targets: ``(S,)`` each scored step's target
        sequence: ``(S,)`` the sequence each scored step belongs to
        success: ``(N,)`` each sequence's postselection success probability
    """

    probs: np.ndarray
    targets: np.ndarray
    sequence: np.ndarray
    success: np.ndarray

    @property
    def argmax_accuracy(self) -> float:
        return float((self.probs.argmax(1) == self.targets).mean())

    @property
    def single_shot_accuracy(self) -> float:
        return float(self.probs[np.arange(len(self.targets)), self.targets].mean())

    def subset(self, sequences: int) -> Readout:
        keep = self.sequence < sequences
        return Readout(
            self.probs[keep], self.targets[keep], self.sequence[keep], self.success[:sequences]
        )


def model_files(paths, checkpoint: str = "model.pt") -> list[Path]:
    """The ``checkpoint`` files of ``paths`` (seed folders, or folders of seed folders)."""
    files = []
    for path in map(Path, paths):
        found = [path / checkpoint] if (path / checkpoint).is_file() else []
        found = found or sorted(path.glob(f"*/{checkpoint}"))
        if not found:
            raise SystemExit(f"RUN_DIR must hold {checkpoint} or seed folders with one; got {path}")
        files.extend(found)
    return files


def in_float64(model: QRNN) -> QRNN:
    """A float64 copy of ``model`` on the exact engine (the marginals to double precision)."""
    copy = QRNN(
        model.io_bits,
        model.workspace,
        model.stages,
        model.degree,
        model.order,
        model.mode,
        dtype=torch.float64,
    )
    copy.load_state_dict({k: v.detach().double().cpu() for k, v in model.named_parameters()})
    return copy


def eval_batch(task, config, sequences: int):
    """``sequences`` test sequences: the first of a dataset task's test split, else drawn with
    the seed ``qrnn eval`` uses (``config.seed + 2_000_029``)."""
    if hasattr(task, "dataset"):
        whole = task.dataset("test")
        return whole.columns(0, min(sequences, whole.size)), whole.size
    batch = task.batch(sequences, torch.Generator().manual_seed(config.seed + 2_000_029), "test")
    return batch, sequences


@torch.no_grad()
def exact_readout(model, batch, chunk: int = 16) -> Readout:
    """The exact marginals of every scored step of ``batch`` under :data:`QPU` (the mixed-state
    engine where a scored step follows a measured one, the pure engine otherwise)."""
    probs, targets, sequence, success = [], [], [], []
    for start in range(0, batch.size, chunk):
        part = batch.columns(start, min(start + chunk, batch.size))
        masks = QPU.training_masks(part.forced, part.scored, mixed_ok=True)
        output = model(
            part.tokens, part.targets, generator=torch.Generator().manual_seed(0), **masks
        )
        scored = part.scored.bool()
        step_probs = output.log_probs.double().exp()
        probs.append(step_probs[scored].numpy())
        targets.append(part.targets[scored].numpy())
        columns = torch.arange(start, start + part.size).expand_as(scored)
        sequence.append(columns[scored].numpy())
        success.append(output.postselection.log_total.double().exp().numpy())
    return Readout(*(np.concatenate(x) for x in (probs, targets, sequence, success)))


def vote_accuracy(probs, targets, shots: int) -> np.ndarray:
    """The probability that the plurality of ``shots`` independent draws from each row of
    ``probs`` is that row's target, ties broken uniformly at random.

    Two tokens: the binomial sum ``P(X > n/2) + P(X = n/2) / 2``. More: conditioned on the target
    drawn ``c`` times, the others are multinomial(``n - c``, ``q``), ``q`` their renormalised
    probabilities, and ``E[1{all <= c} / (1 + ties)] = m! int_0^1 [x^m] prod_j (sum_{k<c}
    (q_j x)^k / k! + y (q_j x)^c / c!) dy`` with ``m = n - c``: the integrand is a polynomial of
    degree ``V - 1`` in ``y``, integrated exactly by Gauss-Legendre nodes.
    """
    from scipy.special import gammaln
    from scipy.stats import binom

    probs = np.asarray(probs, dtype=float)
    targets = np.asarray(targets, dtype=int)
    n, rows = int(shots), np.arange(len(targets))
    if n < 1:
        raise ValueError(f"shots must be >= 1; got {shots!r}")
    p_target = np.clip(probs[rows, targets], 0.0, 1.0)
    if probs.shape[1] == 2:
        wins = binom.sf(n // 2, n, p_target)  # P(X > n/2), X the target's count
        return wins + (0.5 * binom.pmf(n // 2, n, p_target) if n % 2 == 0 else 0.0)
    if n > MAX_GENERAL_SHOTS:
        raise ValueError(f"shots must be <= {MAX_GENERAL_SHOTS} for more than two tokens; got {n}")
    others = np.delete(probs, 0, axis=1).copy()
    for row, target in enumerate(targets):
        others[row] = np.delete(probs[row], target)
    rest = np.clip(1.0 - p_target, 0.0, 1.0)
    q = np.divide(others, rest[:, None], out=np.zeros_like(others), where=rest[:, None] > 0)
    nodes, weights = np.polynomial.legendre.leggauss(max(1, math.ceil(probs.shape[1] / 2)))
    nodes, weights = (nodes + 1) / 2, weights / 2
    total = np.zeros(len(targets))
    for c in range(1, n + 1):
        m = n - c
        log_w = gammaln(n + 1) - gammaln(c + 1) - gammaln(m + 1)
        with np.errstate(divide="ignore", invalid="ignore"):  # rows with p = 1: replaced below
            weight = np.exp(log_w + c * np.log(p_target) + m * np.log(rest))
        # poly[s, g, d]: coefficients of x^d for row s and node g
        poly = np.zeros((len(targets), len(nodes), m + 1))
        poly[:, :, 0] = 1.0
        k_max = min(c, m)
        powers = q[:, :, None] ** np.arange(k_max + 1) / np.exp(gammaln(np.arange(k_max + 1) + 1))
        for j in range(q.shape[1]):
            new = np.zeros_like(poly)
            for k in range(k_max + 1):
                factor = powers[:, j, k][:, None] * (nodes[None, :] if k == c else 1.0)
                new[:, :, k:] += poly[:, :, : m + 1 - k] * factor[:, :, None]
            poly = new
        inside = math.factorial(m) * poly[:, :, m] @ weights
        total += weight * inside
    return np.where(rest > 0, total, 1.0)


def shots_needed(readout: Readout, tolerance: float, max_shots: int) -> int | None:
    """The smallest ``n`` whose vote accuracy (mean of :func:`vote_accuracy` over the scored
    steps) is within ``tolerance`` of the argmax accuracy; ``None`` if no ``n <= max_shots``."""
    goal = readout.argmax_accuracy - tolerance
    cap = max_shots if readout.probs.shape[1] == 2 else min(max_shots, MAX_GENERAL_SHOTS)
    for n in range(1, cap + 1):
        if vote_accuracy(readout.probs, readout.targets, n).mean() >= goal - 1e-12:
            return n
    return None


def qpu_program(model, batch, item: int = 0, steps: int | None = None) -> SequenceProgram:
    """The circuit program of sequence ``item`` of ``batch`` under :data:`QPU`; with ``steps``,
    of its first ``steps`` steps only (a prefix, for sequences too long to transpile whole)."""
    stop = batch.length if steps is None else min(steps, batch.length)
    skip = QPU.skips_output(batch.forced, batch.scored)[:stop, item].tolist()
    return SequenceProgram.build(
        model.weights(), batch.tokens[:stop, item].tolist(), model.layout, skip
    )


def _two_qubit(circuit) -> int:
    return sum(1 for instruction in circuit.data if instruction.operation.num_qubits == 2)


def gate_counts(program: SequenceProgram, backend=None) -> dict:
    """Two-qubit gates and depth of ``program``: transpiled for the Qiskit ``backend`` (dynamic
    circuit), or with ``backend=None`` decomposed for IonQ (deferred measurements, all-to-all)."""
    from qiskit import transpile

    options = {"optimization_level": OPTIMIZATION_LEVEL, "seed_transpiler": 0}
    if backend is not None:
        circuit = transpile(to_qiskit(program), backend=backend, **options)
        qubits = program.n_wires
    else:
        basis = native_basis(BRAKET_DEVICE) + ["measure"]
        circuit = transpile(to_qiskit(program, deferred=True), basis_gates=basis, **options)
        qubits = program.deferred_wires
    gates, depth = _two_qubit(circuit), circuit.depth()
    return {
        "qubits": qubits,
        "two_qubit_gates": gates,
        "depth": depth,
        "two_qubit_gates_per_step": gates / program.length,
        "depth_per_step": depth / program.length,
        "circuit": circuit,
    }


def prices(ibm_circuit, backend, shots: int) -> dict:
    """USD per sequence of ``shots`` shots: IBM from the circuit's calibrated duration, IonQ
    Forte from the Braket table."""
    ibm, seconds, _ = price_run(IBM_DEVICE, 1, shots, ibm_circuit, backend)
    braket, _, _ = price_run(BRAKET_DEVICE, 1, shots)
    return {"ibm_usd": ibm, "ibm_qpu_seconds": seconds, "braket_usd": braket}


def noisy_accuracy(model, batch, backend, shots: int, seed: int = 1) -> dict:
    """Run each sequence of ``batch`` under :data:`QPU` as a dynamic circuit on ``backend`` (Aer
    with its noise) with ``shots`` shots; score every (shot, scored step) and the plurality."""
    right, pairs, vote, steps, kept = 0, 0, 0.0, 0, []
    for item in range(batch.size):
        program = qpu_program(model, batch, item)
        bits = run_program(program, backend, "dynamic", shots, seed=seed + item)
        estimate = analyse_shots(program, bits)
        kept.append(float(estimate.alive.mean()))
        for step in np.flatnonzero(batch.scored[:, item].numpy()):
            outcomes, target = estimate.outcomes[:, step], int(batch.targets[step, item])
            right += int((outcomes == target).sum())
            pairs += shots
            counts = np.bincount(outcomes, minlength=model.layout.vocabulary_size)
            top = np.flatnonzero(counts == counts.max())
            vote += (target in top) / len(top)
            steps += 1
    accuracy = right / pairs
    return {
        "accuracy": accuracy,
        "standard_error": math.sqrt(accuracy * (1 - accuracy) / pairs),
        "vote_accuracy": vote / steps,
        "shots": shots,
        "sequences": batch.size,
        "scored_pairs": pairs,
        "kept_fraction_min": min(kept),
    }


def measure(path: Path, args, backend, noise: bool) -> dict:
    """Every number of one trained model (see the module docstring)."""
    from qiskit_aer import AerSimulator

    start = time.perf_counter()
    trained, task, config = load_trained_model(path)
    model = in_float64(trained)
    batch, test_size = eval_batch(task, config, args.sequences)
    readout = exact_readout(model, batch)
    needed = {f"{t:g}": shots_needed(readout, t, args.max_shots) for t in args.tolerances}
    program = qpu_program(model, batch, steps=args.gate_steps)
    ibm, braket = gate_counts(program, backend), gate_counts(program)
    summary = _summary(path)
    n = needed[f"{args.tolerances[0]:g}"]
    whole = program.length == batch.length
    # a prefix's duration is not the sequence's: no price from it
    circuit = ibm.pop("circuit")
    price = prices(circuit, backend, n) if n and whole else {}
    braket.pop("circuit")
    if not whole:
        for counts in (ibm, braket):
            counts["steps_transpiled"] = program.length
    row = {
        "run": str(path),
        "task": task.name,
        "seed": config.seed,
        "parameters": model.layout.n_parameters,
        "converged": summary.get("converged"),
        "protocol": QPU.name,
        "mode": model.mode,
        "sequences": batch.size,
        "length": batch.length,
        "scored_steps": len(readout.targets),
        "success_min": float(readout.success.min()),
        "exact_accuracy_argmax": readout.argmax_accuracy,
        "exact_accuracy_single_shot": readout.single_shot_accuracy,
        "shots_needed": needed,
        "ibm": {"device": IBM_DEVICE, "optimization_level": OPTIMIZATION_LEVEL, **ibm},
        "braket": {"device": BRAKET_DEVICE, "fits": braket["qubits"] <= BRAKET_QUBITS, **braket},
        "price_per_sequence": price,
        "test_set_sequences": test_size,
        "price_per_test_set": {k: v * test_size for k, v in price.items() if k.endswith("usd")},
    }
    if noise:
        if batch.length > args.noise_max_steps:
            row["noise"] = {"skipped": f"{batch.length} steps > --noise-max-steps"}
        else:
            count = args.noise_sequences.get(task.name, args.noise_sequences[None])
            shots = args.noise_shots.get(task.name, args.noise_shots[None])
            subset = batch.columns(0, min(count, batch.size))
            exact = readout.subset(subset.size)
            row["noise"] = noisy_accuracy(model, subset, backend, shots)
            # the same circuits on a noiseless simulator: what the shots give without noise
            ideal = noisy_accuracy(model, subset, AerSimulator(), shots)
            row["noise"]["ideal_accuracy"] = ideal["accuracy"]
            row["noise"]["ideal_standard_error"] = ideal["standard_error"]
            row["noise"]["exact_single_shot"] = exact.single_shot_accuracy
            general = exact.probs.shape[1] > 2 and shots > MAX_GENERAL_SHOTS
            row["noise"]["exact_vote"] = (
                None if general else float(vote_accuracy(exact.probs, exact.targets, shots).mean())
            )
    row["wall_seconds"] = time.perf_counter() - start
    return row


def table(rows) -> str:
    """The markdown table of ``rows`` (:func:`measure`)."""
    within = " / ".join(f"{100 * float(t):g} pp" for t in rows[0]["shots_needed"])
    lines = [
        "| task (seed, params) | protocol | success per sequence | exact accuracy (argmax / "
        f"single shot) | shots needed (within {within}) | 2-qubit gates per step (IBM ECR / "
        "IonQ MS) | depth per step (IBM / IonQ) | USD per sequence (IBM / IonQ Forte) | "
        "FakeBrisbane accuracy (single shot / vote) | same sequences: exact (single shot / "
        "vote), ideal Aer |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        noise = r.get("noise")
        if noise is None or "skipped" in noise:
            noisy = "not run" if noise is None else f"skipped ({noise['skipped']})"
            same = "-"
        else:
            noisy = (
                f"{_pct(noise['accuracy'])} +- {_pct(noise['standard_error'])} / "
                f"{_pct(noise['vote_accuracy'])} ({noise['sequences']} seq x {noise['shots']} "
                "shots)"
            )
            same = (
                f"{_pct(noise['exact_single_shot'])} / {_pct(noise['exact_vote'])}, "
                f"{_pct(noise['ideal_accuracy'])} +- {_pct(noise['ideal_standard_error'])}"
            )
        shots = " / ".join("> max" if v is None else str(v) for v in r["shots_needed"].values())
        price = r["price_per_sequence"]
        fits = "" if r["braket"]["fits"] else f" ({r['braket']['qubits']} qubits: too many)"
        lines.append(
            f"| {r['task']} ({r['seed']}, {r['parameters']}) | {r['protocol']}, {r['mode']} | "
            f"{r['success_min']:.6g} | {_pct(r['exact_accuracy_argmax'])} / "
            f"{_pct(r['exact_accuracy_single_shot'])} | {shots} | "
            f"{r['ibm']['two_qubit_gates_per_step']:.0f} / "
            f"{r['braket']['two_qubit_gates_per_step']:.0f} | {r['ibm']['depth_per_step']:.0f} / "
            f"{r['braket']['depth_per_step']:.0f} | "
            f"{_usd(price.get('ibm_usd'))} / {_usd(price.get('braket_usd'))}{fits} | {noisy} | "
            f"{same} |"
        )
    return "\n".join(lines)


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _usd(value) -> str:
    return "-" if value is None else f"{value:.3g}"


def _summary(path: Path) -> dict:
    """The run's ``summary.json`` (empty while it is still training)."""
    file = path.parent / "summary.json"
    return json.loads(file.read_text()) if file.is_file() else {}


def per_task(values) -> dict:
    """``["8", "elman-letters=2"]`` -> ``{None: 8, "elman-letters": 2}`` (``None``: any task)."""
    out = {}
    for value in values:
        task, _, number = value.rpartition("=")
        if not number.isdigit() or int(number) < 1:
            raise ValueError(f"must be N or TASK=N with N >= 1; got {value!r}")
        out[task or None] = int(number)
    if None not in out:
        raise ValueError(f"must include a plain N for the other tasks; got {values!r}")
    return out


def smallest_converged(files) -> set:
    """Per task, the converged model with the fewest parameters (lowest seed on a tie)."""
    best = {}
    for path in files:
        config = json.loads((path.parent / "config.json").read_text())
        if not _summary(path).get("converged"):
            continue
        key = (_summary(path).get("parameters", 0), config.get("seed", 0))
        if config["task"] not in best or key < best[config["task"]][0]:
            best[config["task"]] = (key, path)
    return {path for _, path in best.values()}


def noisy_models(files, choice: str) -> set:
    """The models of ``files`` that run on FakeBrisbane's noise, by ``--noise`` ``choice``."""
    if choice == "smallest":
        return smallest_converged(files)
    return set(files) if choice == "every" else set()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR")
    parser.add_argument("--checkpoint", default="model.pt")
    parser.add_argument("--sequences", type=int, default=64, help="test sequences per model")
    parser.add_argument("--tolerances", type=float, nargs="+", default=[0.01, 0.001])
    parser.add_argument("--max-shots", type=int, default=10_000)
    parser.add_argument(
        "--noise",
        choices=("smallest", "every", "none"),
        default="smallest",
        help="which models run on FakeBrisbane's noise: the smallest converged one per task, "
        "every model given (for tasks learned without reaching the convergence target), or none",
    )
    parser.add_argument(
        "--noise-sequences",
        nargs="+",
        default=["8"],
        help="sequences per noisy run: N, or TASK=N for one task (e.g. elman-letters=2)",
    )
    parser.add_argument(
        "--noise-shots", nargs="+", default=["64"], help="shots per noisy sequence: N or TASK=N"
    )
    parser.add_argument("--noise-max-steps", type=int, default=64)
    parser.add_argument(
        "--gate-steps",
        type=int,
        default=None,
        help="transpile only the first K steps of the sequence (gates per step from that prefix, "
        "no price): for sequences too long to transpile whole, e.g. MNIST's 100 steps",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "qpu-cost.json")
    args = parser.parse_args(argv)
    if args.gate_steps is not None and args.gate_steps < 1:
        parser.error(f"--gate-steps must be >= 1; got {args.gate_steps}")
    for name in ("sequences", "max_shots"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1; got {getattr(args, name)}")
    for name in ("noise_sequences", "noise_shots"):
        try:
            setattr(args, name, per_task(getattr(args, name)))
        except ValueError as error:
            parser.error(f"--{name.replace('_', '-')} {error}")
    from qiskit_ibm_runtime.fake_provider import FakeBrisbane

    backend = FakeBrisbane()
    files = model_files(args.runs, args.checkpoint)
    noisy = noisy_models(files, args.noise)
    rows = []
    for path in files:
        rows.append(measure(path, args, backend, path in noisy))
        print(json.dumps(rows[-1]), flush=True)
    print(table(rows))
    payload = {
        "row": "qpu-cost",
        "command": " ".join(["python", "benchmarks/qpu_cost.py", *(argv or sys.argv[1:])]),
        "braket_prices": {BRAKET_DEVICE: BRAKET_PRICES[BRAKET_DEVICE]},
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
