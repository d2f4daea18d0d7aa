# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # From the simulator to hardware
#
# The same weights run on the exact engine (training), on a noisy model of an IBM QPU (a fake
# backend with real calibration data, run by Aer on this machine) and on Braket's local
# simulator, each through the `Shots` executor, which runs whole sequences as circuits and filters
# the shots as a QPU run must. Before anything is sent: a resource and price report, and a
# spending limit that refuses a run it cannot afford. No account is needed for any of it.
#
#     python tutorials/simulator_to_hardware.py          # pictures go to tutorial-output/
#
# `QRNN_TUTORIAL_FAST=1` uses fewer shots (the tests do); `QRNN_TUTORIAL_OUT` sets the folder.

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pennylane as qml  # noqa: E402
import torch  # noqa: E402
from qiskit_ibm_runtime.fake_provider import FakeManilaV2  # noqa: E402

from pennylane_qrnn import QRNN, Shots  # noqa: E402
from pennylane_qrnn.devices.resources import BudgetExceededError, resource_report  # noqa: E402

FAST = os.environ.get("QRNN_TUTORIAL_FAST") == "1"
OUT = Path(os.environ.get("QRNN_TUTORIAL_OUT", "tutorial-output"))
OUT.mkdir(parents=True, exist_ok=True)
SHOTS = 1000 if FAST else 4000

# %% [markdown]
# ## A small model, trained exactly
#
# One i/o qubit, two workspace qubits, amplified neurons (no ancillas, nothing to postselect
# inside the neurons): three qubits, which fit a 5-qubit IBM device. It learns to continue the
# sequence 1, 0, 1, 0, ... (teacher forcing on the exact engine).

# %%
torch.manual_seed(0)
model = QRNN(1, 2, stages=1, degree=2, order=1, mode="amplified", dtype=torch.float64)
tokens, targets = torch.tensor([1, 0, 1]), torch.tensor([0, 1, 0])
optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
for _ in range(60):
    log_probs, _ = model(tokens, targets)
    loss = model.loss(log_probs, targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
exact = model(tokens, targets).log_probs.exp().detach()
print("exact next-token probabilities per step:\n", exact.numpy().round(3))

# %% [markdown]
# ## Before sending: resources and price
#
# Transpiled for the fake backend's native gates; the price is IBM's pay-as-you-go rate for the
# estimated QPU time (`pennylane_qrnn.devices.resources`).

# %%
backend = FakeManilaV2()
report = resource_report(
    model,
    tokens=tokens.tolist(),
    targets=targets.tolist(),
    device=backend,
    device_name="ibm_manila",
    measurements="dynamic",
    precision=0.05,
)
print(report)

# %% [markdown]
# ## The noisy IBM model and Braket's local simulator
#
# `Shots(device, shots=...)` runs each sequence as one circuit. On Qiskit backends the i/o
# lanes are measured and reset mid-circuit (a dynamic circuit); on Braket every measurement is
# deferred onto a fresh qubit. Under teacher forcing, only shots whose i/o outcomes equal the
# targets carry on: each estimate rests on the surviving shots (`output.shot_estimates`).

# %%
ibm = QRNN(
    1,
    2,
    1,
    2,
    1,
    mode="amplified",
    dtype=torch.float64,
    executor=Shots(qml.device("qiskit.remote", wires=5, backend=backend), shots=SHOTS, seed=1),
)
braket = QRNN(
    1,
    2,
    1,
    2,
    1,
    mode="amplified",
    dtype=torch.float64,
    executor=Shots("braket.local.qubit", shots=SHOTS),
)
results = {"exact": exact}
for name, twin in (("FakeManila (noisy)", ibm), ("Braket local", braket)):
    twin.load_state_dict(model.state_dict())
    output = twin(tokens, targets)
    results[name] = output.log_probs.exp()
    survivors = output.shot_estimates[0].survivors.tolist()
    worst = (results[name] - exact).abs().max().item()
    print(f"{name}: survivors per step {survivors}, largest difference from exact {worst:.3f}")

figure, axis = plt.subplots(figsize=(5, 3))
for offset, (name, probs) in enumerate(results.items()):
    axis.bar(torch.arange(3) + 0.27 * (offset - 1), probs[:, 1], width=0.27, label=name)
axis.set_xticks(range(3))
axis.set_xlabel("step")
axis.set_ylabel("P(next token = 1)")
axis.legend(fontsize=7)
figure.tight_layout()
figure.savefig(OUT / "hardware-comparison.png", dpi=120)

# %% [markdown]
# ## The spending limit
#
# On a billed device, `Shots(..., budget=USD)` prices each run before anything is sent and
# refuses it if it would take the model's spending past the limit. Here an IQM Garnet ARN with a
# one-cent budget: refused before the device is even created (so no AWS account is needed to see
# it).

# %%
garnet = "arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet"
billed = QRNN(
    1,
    2,
    1,
    2,
    1,
    mode="amplified",
    dtype=torch.float64,
    executor=Shots(
        "braket.aws.qubit", shots=1000, budget=0.01, device_options={"device_arn": garnet}
    ),
)
billed.load_state_dict(model.state_dict())
try:
    billed(tokens, targets)
except BudgetExceededError as error:
    print("refused:", error)
print(f"spent so far: {billed.spending.spent:.2f} USD")

# %% [markdown]
# ## On a real account
#
# Only the device changes: `qml.device("qiskit.remote", wires=5,
# backend=QiskitRuntimeService().least_busy(operational=True))` with an account saved by
# qiskit-ibm-runtime, or `Shots("braket.aws.qubit", device_options={"device_arn": ...,
# "s3_destination_folder": (bucket, prefix)})` with AWS credentials in the environment or a
# profile. See `docs/devices.md`.
print(f"pictures in {OUT}/")
