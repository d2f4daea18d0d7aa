"""The curves of a training run (loss, accuracy, minimum postselection probability) as a PNG."""

from __future__ import annotations

__all__ = ["plot_curves"]


def plot_curves(history, path, title=""):
    """Loss, accuracy and minimum postselection probability against the step, as a PNG."""
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
