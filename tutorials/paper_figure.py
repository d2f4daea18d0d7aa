# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # Reproducing a figure of the paper: long memory on the DNA task
#
# The paper's vanishing-gradient experiment (Bausch 2020, the DNA task) plots, against the
# sequence length L, how many training steps a model needs to learn the task: the QRNN's count is
# roughly flat in L, a classical LSTM's grows and a plain RNN fails from L = 20 on. This tutorial
# trains our QRNN the same way, and plots our steps-to-convergence beside the paper's raw data.
#
#     python tutorials/paper_figure.py [PAPER_DATA_FOLDER]   # pictures go to tutorial-output/
#
# The paper's data (`experiment-5-dna-pool.csv`, `long-lstm.csv`, `long-rnn.csv`, from the
# author's published results) is not part of this package: the tutorial reads it at run time
# from the folder given as its argument, else from `$QRNN_PAPER_DATA`. Without it, it says so
# and plots our runs alone. `QRNN_TUTORIAL_FAST=1` trains two short lengths with one seed (the
# tests do); `QRNN_TUTORIAL_OUT` sets the folder for the pictures.

# %%
import csv
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from pennylane_qrnn import QRNN  # noqa: E402
from pennylane_qrnn.tasks import get_task  # noqa: E402
from pennylane_qrnn.training import rvqe_loss  # noqa: E402

FAST = os.environ.get("QRNN_TUTORIAL_FAST") == "1"
OUT = Path(os.environ.get("QRNN_TUTORIAL_OUT", "tutorial-output"))
OUT.mkdir(parents=True, exist_ok=True)
# a folder named on the command line (not a notebook kernel's "-f FILE"), else the variable
if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
    PAPER_DATA = Path(sys.argv[1])
else:
    PAPER_DATA = Path(os.environ["QRNN_PAPER_DATA"]) if "QRNN_PAPER_DATA" in os.environ else None

# %% [markdown]
# ## The task and the recipe
#
# DNA in the reference implementation's form (`dna-rvqe`): a random sequence of bases G, A, T, C
# (tokens 0-3, 3-bit words) in which one position in the first half is replaced by its base + 4,
# a marker that carries the base; the model must name that base at the last step, the only
# scored step. Training postselects every step on its target (teacher forcing), and the targets
# after the marker are the base itself; this is the variant the paper's numbers come from (the
# reproduction notes in `docs/reproduction.md` discuss what that means for the long-memory
# claim).
#
# The recipe: QRNN H5 S1 d3, order 2 (837 parameters), batch 128, Adam with the task's default
# learning rate 0.01, gradient norm clipped at 0.5, trained on the NLL of the scored step (this
# package's default loss). Every 10 steps the loss the paper reports is measured on 256 fixed
# validation sequences: the reference implementation's loss (`rvqe_loss`: cross entropy with the
# probabilities as logits, minus its minimum). A run has learned the task once that validation
# loss is below 5e-4: every finished QRNN run in the paper's CSV stopped with its best validation
# loss below 5e-4, the unfinished ones at its cap of 1000 steps. Our cap is lower (see below).

# %%
LENGTHS = (5, 10) if FAST else (5, 10, 20, 50, 100)
SEEDS = (0,) if FAST else (0, 1, 2)
CAP = 100 if FAST else 300
THRESHOLD = 5e-4


def steps_to_learn(length, seed):
    """Train one QRNN; return the step at which validation fell below THRESHOLD (None: never),
    the last validation loss and the accuracy on the validation set."""
    torch.manual_seed(seed)
    task = get_task("dna-rvqe", length=length)
    model = QRNN(task.io_bits, 5, stages=1, degree=3, order=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    data = torch.Generator().manual_seed(seed)
    check = task.batch(256, torch.Generator().manual_seed(10_000 + seed), split="validate")
    for step in range(1, CAP + 1):
        batch = task.batch(128, data)
        log_probs, _ = model(batch.tokens, batch.targets)
        loss = model.loss(log_probs, batch.targets, batch.scored)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimizer.step()
        if step % 10 == 0:
            with torch.no_grad():
                log_probs, _ = model(check.tokens, check.targets)
                val = rvqe_loss(log_probs, check.targets, check.scored).item()
                right = (log_probs[-1].argmax(-1) == check.targets[-1]).float().mean().item()
            if val < THRESHOLD:
                return step, val, right
    return None, val, right


ours = defaultdict(list)  # length -> steps (None: not within the cap)
start, cpu = time.perf_counter(), time.process_time()
for length in LENGTHS:
    for seed in SEEDS:
        tic = time.perf_counter()
        steps, val, right = steps_to_learn(length, seed)
        ours[length].append(steps)
        reached = f"learned after {steps} steps" if steps else f"not learned in {CAP} steps"
        print(
            f"ours L={length} seed {seed}: {reached} (validation loss {val:.2e}, "
            f"accuracy {100 * right:.0f} %), {time.perf_counter() - tic:.1f} s"
        )
print(
    f"training took {time.perf_counter() - start:.0f} s in all "
    f"({time.process_time() - cpu:.0f} s of CPU time)"
)

# %% [markdown]
# ## The paper's raw data
#
# Each CSV row is one training run: its sequence length and the epoch (training step) where it
# stopped. The QRNN runs stop at validation loss 5e-4 or at epoch 999 (the cap); the LSTM and RNN
# runs record 15999 where they never learned the task. We plot medians over runs, counting a
# capped run at its cap (so a median at the cap means most runs failed).


# %%
def paper_runs(name):
    """length -> list of the epochs where the paper's runs stopped, from one CSV."""
    runs = defaultdict(list)
    with open(PAPER_DATA / name, newline="") as handle:
        for row in csv.DictReader(handle):
            runs[int(float(row["sentence_length"]))].append(float(row["hparams/epoch"]))
    return runs


PAPER_FILES = {
    "QRNN (paper)": "experiment-5-dna-pool.csv",
    "LSTM (paper)": "long-lstm.csv",
    "RNN (paper)": "long-rnn.csv",
}
paper = {}
if PAPER_DATA is None:
    print(
        "paper data: no folder given (pass it as the argument or set QRNN_PAPER_DATA); "
        "plotting our runs only"
    )
elif not all((PAPER_DATA / name).is_file() for name in PAPER_FILES.values()):
    print(
        f"paper data: {PAPER_DATA} does not hold {', '.join(PAPER_FILES.values())}; "
        "plotting our runs only"
    )
else:
    paper = {label: paper_runs(name) for label, name in PAPER_FILES.items()}
    for label, runs in paper.items():
        medians = ", ".join(f"L={k}: {statistics.median(v):g}" for k, v in sorted(runs.items()))
        print(f"paper {label}: median epochs {medians}")

# %% [markdown]
# ## The figure
#
# Our runs as dots (one per seed, a triangle at the cap for a run that did not learn) and their
# median; the paper's medians as lines.

# %%
figure, axis = plt.subplots(figsize=(6, 3.8))
for label, runs in paper.items():
    lengths = sorted(runs)
    axis.plot(lengths, [statistics.median(runs[k]) for k in lengths], "--", marker="s", label=label)
for length, counts in ours.items():
    for count in counts:
        axis.plot(length, count or CAP, "^" if count is None else "o", color="k", alpha=0.4)
medians = [statistics.median(c or CAP for c in ours[k]) for k in LENGTHS]
axis.plot(LENGTHS, medians, "-", color="k", marker="o", label="QRNN (ours, median)")
axis.set_xscale("log")
axis.set_yscale("log")
axis.set_xlabel("sequence length L")
axis.set_ylabel("training steps to learn")
axis.set_title("DNA (reference variant): training steps to learn the task")
axis.legend(fontsize=7)
figure.tight_layout()
figure.savefig(OUT / "paper-figure-dna.png", dpi=120)
for length, median in zip(LENGTHS, medians, strict=True):
    print(f"ours L={length}: median steps {median:g}")
print(f"pictures in {OUT}/")

# %% [markdown]
# ## Where ours and the paper's agree, and where they differ
#
# Measured with `OMP_NUM_THREADS=1 python tutorials/paper_figure.py ../shared/reference/paper-data`
# (full mode: L = 5, 10, 20, 50, 100, seeds 0-2) on a 2-core machine shared with other jobs:
# 128 s of CPU time for the training (859 s of wall time beside the other jobs). Every one of our
# 15 runs learned the task within the cap; the medians over seeds, steps to validation loss
# 5e-4, against the paper's medians over its runs:
#
# | L | ours (seeds 0, 1, 2) | ours, median | paper QRNN, median | paper LSTM | paper RNN |
# |---|---|---|---|---|---|
# | 5 | 30, 220, 60 | 60 | 80 | 41 | 47 |
# | 10 | 140, 110, 70 | 110 | 180 | 193 | 350 |
# | 20 | 30, 90, 30 | 30 | 230 | 361 | never (15999) |
# | 50 | 180, 70, 60 | 70 | 255 | 499.5 | never |
# | 100 | 90, 60, 120 | 90 | 370 | 880.5 | never |
#
# Fast mode (L = 5 and 10, seed 0, cap 100) learned L = 5 after 30 steps and did not learn
# L = 10 within its 100 steps (seed 0 needs 140), which the figure shows as a triangle at the cap.
#
# **Agree**: the QRNN's steps to learn the task do not grow with L over 5..100 (ours 30-110 steps,
# the paper's 80-370 and flat from L = 100 to 500), while the paper's LSTM needs more the longer the
# sequence, and its RNN never learns L = 20 to 100. The shape of the figure is reproduced.
#
# **Differ**: ours learns 1.3 to 8 times faster than the paper's runs at every length, with a spread
# of 30-220 steps between seeds. Part of it is the recipe: we train on the NLL where the reference
# trained on its own bounded loss, and the learning rate and initialisation of the paper's runs are
# not recorded in its CSV; our validation uses 256 sequences, a seed's own. We ran 3 seeds where the
# paper ran about 30 per length, and stopped at L = 100 (the paper goes to 500; a training step's
# cost grows linearly in L, so longer lengths only take patience). We did not train the LSTM and
# RNN: their curves are the paper's, and its CSV for them records a best validation loss of 0 for
# every run, so their stopping rule is not the QRNN's and the comparison between models is the
# paper's, not ours. Finally, this variant's teacher forcing postselects the answer at every step
# after the marker, so the state holds the answer long before the end: `docs/reproduction.md` shows
# that on the paper's text (nothing reveals the base until the last step) no model here learns the
# task at L = 100.
