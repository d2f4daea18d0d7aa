# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # Real-valued inputs: forecasting a noisy sine
#
# Tokens are bit patterns written onto the i/o lanes by `X` gates. A time series of real numbers
# needs another encoding: here each step's value goes through a small classical layer
# (`AngleEncoder`: `torch.nn.Linear` + `pi/2 * sigmoid`) into **one angle per i/o lane**, which
# the cell writes with `RY(2 angle)` and unwrites with `RY(-2 angle)`, postselecting the i/o
# lanes on `|0...0>` afterwards (`pennylane_qrnn.encoding`). The workspace then moves by the
# convex combination `sum_x a_x**2 W[x]` of the token blocks, so angles 0 and `pi/2` are exactly
# the bits 0 and 1, and everything in between is differentiable: the loss trains the classical
# layer through the QRNN.
#
# The task: from the values seen so far, predict whether the next value goes **up or down**
# (one i/o lane, target token 1 = up). Training postselects each step's i/o lanes on the true
# direction (teacher forcing), which is also what a forecaster knows at the next step.
#
#     python tutorials/real_valued_series.py      # pictures go to tutorial-output/
#
# `QRNN_TUTORIAL_FAST=1` trains fewer steps (the tests do); `QRNN_TUTORIAL_OUT` sets the folder.

# %%
import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from pennylane_qrnn import QRNN  # noqa: E402
from pennylane_qrnn.encoding import token_weights  # noqa: E402
from pennylane_qrnn.executors import Circuits  # noqa: E402
from pennylane_qrnn.nn import AngleEncoder  # noqa: E402

FAST = os.environ.get("QRNN_TUTORIAL_FAST") == "1"
OUT = Path(os.environ.get("QRNN_TUTORIAL_OUT", "tutorial-output"))
OUT.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)

# %% [markdown]
# ## The series
#
# Sines with a random period (12 to 24 steps) and phase, plus Gaussian noise; 30 steps each.
# The input of step `t` is the value `x_t`, its target whether `x_{t+1} > x_t`.


# %%
def noisy_sines(count, length, generator, noise=0.05):
    steps = torch.arange(length + 1, dtype=torch.float32)
    period = 12 + 12 * torch.rand(count, 1, generator=generator)
    phase = 2 * math.pi * torch.rand(count, 1, generator=generator)
    values = torch.sin(2 * math.pi * steps / period + phase)
    values = values + noise * torch.randn(count, length + 1, generator=generator)
    return values.t()  # (L + 1, N), time-major like the QRNN


def inputs_and_targets(values):
    """``(L, N, 1)`` features and ``(L, N)`` directions (1 = up)."""
    return values[:-1].unsqueeze(-1), (values[1:] > values[:-1]).long()


data = torch.Generator().manual_seed(0)
train, test = noisy_sines(32, 30, data), noisy_sines(256, 30, data)
train_x, train_y = inputs_and_targets(train)
test_x, test_y = inputs_and_targets(test)
print(f"train {tuple(train_x.shape)}, test {tuple(test_x.shape)}")

# %% [markdown]
# ## The model
#
# `AngleEncoder(1, io_bits=1)` maps each value to an angle in `(0, pi/2)`; `QRNN(io_bits=1,
# workspace=3)` takes the float tensor `(L, N, 1)` of angles where it would take integer tokens.
# The angle decides how much of each token's block the step applies:

# %%
encoder = AngleEncoder(1, io_bits=1)
model = QRNN(io_bits=1, workspace=3, stages=1, degree=2, order=2)
print(model)
for angle in (0.0, math.pi / 8, math.pi / 4, math.pi / 2):
    weights = token_weights(torch.tensor([angle]))
    print(f"angle {angle:.3f}: token weights {[round(w, 3) for w in weights.tolist()]}")

# %% [markdown]
# ## Training
#
# Adam on the encoder and the QRNN together, the NLL of every step's direction.

# %%
parameters = list(encoder.parameters()) + list(model.parameters())
optimizer = torch.optim.Adam(parameters, lr=0.02)
steps = 60 if FAST else 300
losses = []
for step in range(steps):
    optimizer.zero_grad()
    log_probs, _ = model(encoder(train_x), train_y)
    loss = model.loss(log_probs, train_y)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
    if step % (10 if FAST else 50) == 0:
        print(f"step {step:3d}: NLL {loss.item():.4f}")
print(f"encoder weight gradient in the last step: {encoder.linear.weight.grad.abs().max():.2e}")

# %% [markdown]
# ## Accuracy against trivial baselines
#
# On the held-out series, step `t` predicts the direction of `x_{t+1}` knowing the values up to
# `x_t` (and so the directions before: the postselections). Two baselines that need no model:
# the majority direction, and *persistence* (the next move repeats the last one), which is hard
# to beat on a smooth series. The first step has no last move and is left out of all three.

# %%
with torch.no_grad():
    output = model(encoder(test_x), test_y)
predicted = output.log_probs.argmax(-1)
qrnn = (predicted == test_y)[1:].float().mean().item()
persistence = (test_y[1:] == test_y[:-1]).float().mean().item()
up = test_y[1:].float().mean().item()
majority = max(up, 1 - up)
print(
    f"test accuracy: {100 * qrnn:.1f} % (QRNN), {100 * persistence:.1f} % (persistence), "
    f"{100 * majority:.1f} % (majority)"
)
unwrite = output.postselection.unwrite
print(
    f"the unwrite's postselection succeeds with probability {unwrite.median():.3f} (median "
    f"over steps), {unwrite.min():.3f} at worst: a QPU pays it at every step"
)

# %% [markdown]
# ## The same model as circuits
#
# The `Circuits` executor runs the `QRNNCell` template with its angle write (`RY`), unwrite and
# postselection on `default.qubit`; in float64 it agrees with the engine.

# %%
exact = QRNN(io_bits=1, workspace=3, stages=1, degree=2, order=2, dtype=torch.float64)
exact.load_state_dict(model.state_dict())
circuits = QRNN(io_bits=1, workspace=3, dtype=torch.float64, executor=Circuits("default.qubit"))
circuits.load_state_dict(model.state_dict())
with torch.no_grad():
    angles = encoder(test_x[:3, :2]).double()
    difference = (exact(angles, test_y[:3, :2])[0] - circuits(angles, test_y[:3, :2])[0]).abs()
print(f"engine vs circuits: largest difference of the log-probabilities: {difference.max():.1e}")

# %% [markdown]
# ## Pictures

# %%
figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
left.plot(losses)
left.set(xlabel="training step", ylabel="NLL", title="training")
series = 0
up_probability = output.log_probs[:, series, 1].exp()
steps_axis = torch.arange(test.shape[0])
right.plot(steps_axis, test[:, series], "k.-", label="series")
right.bar(
    steps_axis[:-1] + 0.5,
    up_probability - 0.5,
    width=0.4,
    color=["tab:green" if p > 0.5 else "tab:red" for p in up_probability],
    alpha=0.5,
    label="P(up) - 1/2",
)
right.set(xlabel="step", title="a test series and the predicted direction")
right.legend(loc="lower left", fontsize=8)
figure.tight_layout()
figure.savefig(OUT / "real-valued-series.png", dpi=120)
print(f"pictures in {OUT}/")
