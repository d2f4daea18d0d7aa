# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # A QRNN inside a hybrid torch model
#
# A `QRNN` is a `torch.nn.Module`: it composes with classical layers like `nn.LSTM` does. Here a
# classical **encoder** prepares the QRNN's initial workspace state (`state=`: real amplitudes,
# normalised) from a per-sequence context vector, the QRNN reads the token sequence, and a
# classical **head** maps each step's QRNN log-probabilities to the prediction. Everything trains
# end to end with one optimiser on Elman's XOR task (the paper's first task): every third bit is
# the XOR of the two before it, and only those bits are scored.
#
#     python tutorials/hybrid_model.py           # pictures go to tutorial-output/
#
# `QRNN_TUTORIAL_OUT` sets the folder. (It trains 300 steps, about 6 s on 2 cores, also under
# `QRNN_TUTORIAL_FAST=1`, which the tests set for every tutorial: 60 steps did not learn reliably.)

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from pennylane_qrnn import QRNN  # noqa: E402
from pennylane_qrnn.tasks import get_task  # noqa: E402

OUT = Path(os.environ.get("QRNN_TUTORIAL_OUT", "tutorial-output"))
OUT.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)

# %% [markdown]
# ## The model
#
# The encoder's output is squared-normalised into amplitudes: any real vector with a nonzero
# entry is a valid workspace state. The head sees the QRNN's log-probabilities of the next token
# (`(L, N, 4)` for 2-bit tokens) and returns logits.


# %%
class Hybrid(nn.Module):
    def __init__(self, context=3, workspace=4):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(context, 16), nn.Tanh(), nn.Linear(16, 2**workspace))
        self.qrnn = QRNN(io_bits=2, workspace=workspace, stages=1, degree=3, order=2)
        self.head = nn.Linear(4, 4)

    def forward(self, context, tokens, targets):
        amplitudes = self.encoder(context) + 1e-3  # never the zero vector
        state = amplitudes / amplitudes.norm(dim=-1, keepdim=True)
        output = self.qrnn(tokens, targets, state=state)
        return torch.log_softmax(self.head(output.log_probs), dim=-1), output


model = Hybrid()
print(model)
print(
    "parameters:",
    {name: sum(p.numel() for p in m.parameters()) for name, m in model.named_children()},
)

# %% [markdown]
# ## Training
#
# The context is noise here (the task does not need it): it shows that gradients reach the
# encoder through the QRNN's initial state. The loss is the NLL of the scored (XOR) bits.
#
# From a random start the XOR is not always found: with these settings, seeds 0-3 (of `data` and
# of torch) reached 98.6-100 % in 300 steps and seed 4 stayed at chance; a larger batch (16) did
# no better (4 of 5). Seed 0 is used here.

# %%
task = get_task("elman-xor", length=24)
optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
data = torch.Generator().manual_seed(0)
steps = 300
history = []
for step in range(1, steps + 1):
    batch = task.batch(8, data)
    context = torch.randn(batch.tokens.shape[1], 3, generator=data)
    log_probs, _ = model(context, batch.tokens, batch.targets)
    picked = log_probs.gather(-1, batch.targets.unsqueeze(-1)).squeeze(-1)
    loss = -(picked * batch.scored).sum() / batch.scored.sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    history.append(loss.item())
    if step % 50 == 0:
        print(f"step {step:3d}: NLL of the XOR bits {loss.item():.4f}")
encoder_grad = model.encoder[0].weight.grad.abs().max().item()
print(f"largest encoder gradient in the last step: {encoder_grad:.2e}")

# %% [markdown]
# ## Result
#
# Accuracy of the scored bits on fresh sequences (argmax of the head), and the training curve.

# %%
with torch.no_grad():
    batch = task.batch(64, torch.Generator().manual_seed(1))
    context = torch.randn(64, 3, generator=torch.Generator().manual_seed(2))
    log_probs, output = model(context, batch.tokens, batch.targets)
    right = (log_probs.argmax(-1) == batch.targets) & batch.scored
    accuracy = right.sum().item() / batch.scored.sum().item()
print(f"XOR bits right: {100 * accuracy:.1f} %")
print(f"a QPU would pay, per sequence, log success {output.postselection.log_total.median():.1f}")

figure, axis = plt.subplots(figsize=(5, 3))
axis.plot(history)
axis.set_yscale("log")
axis.set_xlabel("step")
axis.set_ylabel("NLL of the XOR bits")
figure.tight_layout()
figure.savefig(OUT / "hybrid-training.png", dpi=120)
print(f"pictures in {OUT}/")
