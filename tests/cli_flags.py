"""The smallest training run the command-line and trainer tests use: a one-qubit workspace on
Elman XOR, as ``qrnn train`` flags and as :class:`~pennylane_qrnn.training.TrainConfig` fields."""

TINY_TRAIN_FLAGS = [
    "--task",
    "elman-xor",
    "--length",
    "5",
    "--workspace",
    "1",
    "--stages",
    "1",
    "--degree",
    "1",
    "--order",
    "1",
    "--batch-size",
    "2",
    "--eval-every",
    "2",
    "--quiet",
]

TINY_TRAIN_CONFIG = dict(
    task="elman-xor",
    length=5,
    workspace=1,
    stages=1,
    degree=1,
    order=1,
    batch_size=2,
    steps=2,
    eval_every=2,
    eval_batches=1,
)
