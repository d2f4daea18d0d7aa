"""The curves of a training run (loss, accuracy, minimum postselection probability) as a PNG."""

from __future__ import annotations

__all__ = ["plot_curves"]


def plot_curves(history, path, title=""):
    """Loss, accuracy and minimum postselection probability against the step, as a PNG.

    Args:
        history (list[dict]): one dict a step, with ``step``, ``loss``, ``accuracy`` and
            ``min_postselection``, and at validation steps ``val_loss`` and
            ``val_accuracy_sampled`` (the rows of a run's ``metrics.csv``)
        path (str or Path): the PNG to write
        title (str): the figure's title

    **Example**

    >>> import tempfile
    >>> from pathlib import Path
    >>> from pennylane_qrnn.training import plot_curves
    >>> history = [
    ...     {"step": 1, "loss": 0.9, "accuracy": 0.5, "min_postselection": 0.2},
    ...     {"step": 2, "loss": 0.6, "accuracy": 0.7, "min_postselection": 0.3,
    ...      "val_loss": 0.7, "val_accuracy_sampled": 0.6},
    ... ]
    >>> folder = tempfile.TemporaryDirectory()
    >>> plot_curves(history, Path(folder.name) / "curves.png", title="elman-xor")
    >>> (Path(folder.name) / "curves.png").read_bytes()[:4]
    b'\x89PNG'
    >>> folder.cleanup()
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in history]
    val = [h for h in history if "val_loss" in h]
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].semilogy(steps, [max(h["loss"], 1e-12) for h in history], label="train", alpha=0.7)
    axes[0].semilogy(
        [h["step"] for h in val], [max(h["val_loss"], 1e-12) for h in val], "o-", label="validation"
    )
    axes[0].set(xlabel="step", ylabel="NLL per scored step", title="loss")
    axes[0].legend()
    axes[1].plot(steps, [h["accuracy"] for h in history], label="train (argmax)", alpha=0.7)
    axes[1].plot(
        [h["step"] for h in val],
        [h["val_accuracy_sampled"] for h in val],
        "o-",
        label="validation (sampled)",
    )
    axes[1].set(
        xlabel="step", ylabel="accuracy", title="accuracy on scored steps", ylim=(-0.02, 1.02)
    )
    axes[1].legend()
    axes[2].semilogy(steps, [max(h["min_postselection"], 1e-300) for h in history])
    axes[2].set(xlabel="step", ylabel="probability", title="min step postselection probability")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
