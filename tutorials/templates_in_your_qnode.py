# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # The templates in your own QNode
#
# `QuantumNeuron` and `QRNNCell` are PennyLane templates: put them in any QNode, draw them,
# count their gates with `qml.specs`, and train them inside a `torch.nn` model through
# `qml.qnn.TorchLayer`. This tutorial
#
# 1. checks the neuron's activation against its closed form `f(eta) = arctan(tan(eta)**(2**order))`
#    and plots it for orders 1 to 3;
# 2. draws a neuron and a QRNN cell;
# 3. counts their resources;
# 4. trains one QRNN step wrapped in `qml.qnn.TorchLayer`.
#
#     python tutorials/templates_in_your_qnode.py          # pictures go to tutorial-output/
#
# `QRNN_TUTORIAL_FAST=1` runs fewer points and steps (the tests do); `QRNN_TUTORIAL_OUT` sets the
# folder for the pictures.

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pennylane as qml  # noqa: E402
import torch  # noqa: E402

from pennylane_qrnn import QRNNCell, QuantumNeuron, neuron  # noqa: E402

FAST = os.environ.get("QRNN_TUTORIAL_FAST") == "1"
OUT = Path(os.environ.get("QRNN_TUTORIAL_OUT", "tutorial-output"))
OUT.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## 1. The activation, measured and in closed form
#
# A neuron with one control in `|0>` has pre-activation `eta = theta_0` (its bias). In
# `"postselect"` mode its repeat-until-success circuit rotates the target by `f(eta)`; the
# simulator postselects the ancillas on 0 (`mcm_method="tree-traversal"`), so `P(target = 1)`
# is `sin(f(eta))**2`.

# %%
device = qml.device("default.qubit")


def measured_activation(eta, order):
    @qml.qnode(device, mcm_method="tree-traversal")
    def circuit():
        QuantumNeuron(
            np.array([eta, 0.0]),
            control_wires=[0],
            target_wire=1,
            ancilla_wires=list(range(2, 2 + order)),
            degree=1,
            order=order,
        )
        return qml.probs(wires=1)

    return float(np.arcsin(np.sqrt(circuit()[1])))


etas = np.linspace(0.05, np.pi / 2 - 0.05, 7 if FAST else 41)
worst = 0.0
figure, axis = plt.subplots(figsize=(5, 3.5))
for order in (1, 2, 3):
    closed = np.asarray(neuron.activation(etas, order))
    measured = np.array([measured_activation(eta, order) for eta in etas])
    worst = max(worst, float(np.abs(measured - closed).max()))
    axis.plot(etas, closed, label=f"order {order}")
    axis.plot(etas, measured, "k.", markersize=3)
axis.plot(etas, etas, ":", color="grey", label="identity")
axis.set_xlabel("eta")
axis.set_ylabel("f(eta)")
axis.legend()
figure.tight_layout()
figure.savefig(OUT / "activation.png", dpi=120)
print(f"largest difference between circuit and closed form: {worst:.2e}")

# %% [markdown]
# ## 2. Drawing
#
# With `mcm_method="tree-traversal"` the template stays one box at the top level and expands
# on the device; `level="device"` shows the gates and mid-circuit measurements inside.

# %%
shapes = QRNNCell.shape(io_bits=1, workspace=2, stages=1, degree=2)
rng = np.random.default_rng(0)
weights = {name: rng.normal(0.3, 0.2, size=shape) for name, shape in shapes.items()}


@qml.qnode(device, mcm_method="tree-traversal")
def cell_step(input_weights, rotation_weights, stage_weights, output_weights, token=1):
    QRNNCell(
        input_weights,
        rotation_weights,
        stage_weights,
        output_weights,
        token=token,
        io_wires=[0],
        workspace_wires=[1, 2],
        ancilla_wires=[3, 4],
        degree=2,
        order=2,
    )
    return qml.probs(wires=0)


print(qml.draw(cell_step, level="top")(**weights))
figure, _ = qml.draw_mpl(cell_step, level="top")(**weights)
figure.savefig(OUT / "cell.png", dpi=120)

# %% [markdown]
# ## 3. Counting
#
# The templates register their resources with PennyLane, so `qml.specs` sees the gates inside.

# %%
specs = qml.specs(cell_step)(**weights)
print("gate types of one cell:", dict(specs.resources.gate_types))

# %% [markdown]
# ## 4. One QRNN step in a torch model
#
# `qml.qnn.TorchLayer` turns the QNode into a `torch.nn.Module` whose parameters are the cell's
# four weight tensors. Amplified neurons (no ancillas) keep the circuit unitary; backprop on
# `default.qubit` gives exact gradients. We fit the next-token distribution of token 1 to
# `[0.9, 0.1]`, minimising the Kullback-Leibler divergence.

# %%


@qml.qnode(device, interface="torch", diff_method="backprop")
def amplified_step(inputs, input_weights, rotation_weights, stage_weights, output_weights):
    QRNNCell(
        input_weights,
        rotation_weights,
        stage_weights,
        output_weights,
        token=1,
        io_wires=[0],
        workspace_wires=[1, 2],
        degree=2,
        order=2,
        mode="amplified",
    )
    return qml.probs(wires=0)


torch.manual_seed(0)
layer = qml.qnn.TorchLayer(amplified_step, weight_shapes=shapes)
target = torch.tensor([0.9, 0.1], dtype=torch.float64)
optimizer = torch.optim.Adam(layer.parameters(), lr=0.05)
steps = 15 if FAST else 60
losses = []
for _ in range(steps):
    probs = layer(torch.zeros(1, dtype=torch.float64)).reshape(-1).double()
    loss = (target * (target.log() - probs.clamp_min(1e-12).log())).sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
figure, axis = plt.subplots(figsize=(5, 3))
axis.plot(losses)
axis.set_xlabel("step")
axis.set_ylabel("KL divergence")
figure.tight_layout()
figure.savefig(OUT / "torchlayer-training.png", dpi=120)
print(f"KL divergence: {losses[0]:.4f} at the start, {losses[-1]:.4f} after {steps} steps")
print(f"pictures in {OUT}/")
