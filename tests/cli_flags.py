"""The smallest training run the command-line tests use: a one-qubit workspace on Elman XOR."""

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
