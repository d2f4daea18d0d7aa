"""Digits for people to look at: pixel sequences as images, in the terminal or a PNG.

``qrnn sample`` on a digit task shows its samples with :func:`render_samples`,
:func:`ascii_samples` and :func:`write_png`; :func:`render_digit` shows any sequence of pixel
words (a file's row, a task's tokens or targets, a model's output).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import QRNNValueError
from ..validation import check_int

__all__ = ["render_digit", "render_samples", "to_ascii", "ascii_samples", "write_png"]


def render_digit(tokens, scanline=0, scanlines=(0, 1), first=0, side=None) -> np.ndarray:
    """A sequence's pixels of one scanline as a square image, ink 1 (for display).

    Args:
        tokens: the words of pixels ``first, first + 1, ...`` of a square image (a CSV row of
            values 0..7 with ``scanlines=(0, 1, 2)``, or a task's tokens with its scanlines);
            pixels not given are shown as background. A task's inputs are pixels 0..98
            (``first=0``); its targets and a model's predictions are pixels 1..99 (``first=1``),
            as is a generated sequence after its label word
        scanline: which scanline to show: 0 (rows), 1 (columns, transposed back) or 2 (the
            rotated image, as stored)
        scanlines: the scanlines the words hold, most significant first
        first: the pixel index of ``tokens[0]``
        side: the image's side; default the smallest square that holds ``first + len(tokens)``
            pixels and leaves at most one out (a task's 99 inputs are a 10x10 image)

    Raises:
        ValueError: if the pixels do not fit the square, or ``scanline`` is not in ``scanlines``

    >>> print(to_ascii(render_digit([3, 1, 1, 3, 3, 0, 0, 3, 3])))
    .##
    ..#
    #..
    """
    tokens = np.asarray(
        tokens.tolist() if isinstance(tokens, torch.Tensor) else tokens, dtype=np.int64
    ).ravel()
    if side is None:
        side = math.isqrt(len(tokens) + first + 1)
    else:
        side = check_int("side", side, minimum=2)
    if side * side < len(tokens) + first or side < 2:
        raise QRNNValueError(
            f"tokens must hold at most side**2 - first words of a square image; got {len(tokens)}"
        )
    if scanline not in scanlines:
        raise QRNNValueError(
            f"scanline must be one of scanlines {tuple(scanlines)!r}; got {scanline!r}"
        )
    words = np.full(
        side * side, 2 ** len(scanlines) - 1, dtype=np.int64
    )  # background in every lane
    words[first : first + len(tokens)] = tokens
    lane = len(scanlines) - 1 - list(scanlines).index(scanline)
    ink = (1 - ((words >> lane) & 1)).reshape(side, side).astype(np.uint8)
    return ink.T.copy() if scanline == 1 else ink


def render_samples(generated, task) -> list[np.ndarray]:
    """The images of sequences ``(L, N)`` that a model generated on a pixel-by-pixel digit task.

    Token 0 of a column is the prefix it was given (the label word of a generative task, else
    pixel 0) and is not shown; tokens ``1 .. side**2 - 1`` are pixels ``1 ..``, of an image of
    ``side = sqrt(task.length + 1)`` (the task's inputs are every pixel but the last); pixels not
    generated are background. Words hold the task's ``scanlines`` (default ``(0, 1)``); the
    image shows scanline 0.
    """
    side = math.isqrt(task.length + 1)
    if side * side != task.length + 1:
        raise QRNNValueError(
            "task must read a square image pixel by pixel (length side**2 - 1); got length "
            f"{task.length}"
        )
    columns = (
        generated.T.tolist()
        if isinstance(generated, torch.Tensor)
        else np.asarray(generated).T.tolist()
    )
    scanlines = getattr(task, "scanlines", (0, 1))
    return [
        render_digit(column[1 : side * side], scanlines=scanlines, first=1, side=side)
        for column in columns
    ]


def to_ascii(image) -> str:
    """A terminal rendering: ``#`` ink, ``.`` background, one line a row."""
    return "\n".join("".join("#" if value else "." for value in row) for row in np.asarray(image))


def ascii_samples(images) -> str:
    """:func:`to_ascii` of each image, one after another, each headed ``sample N:``."""
    return "\n".join(f"sample {index}:\n{to_ascii(image)}" for index, image in enumerate(images))


def write_png(images, path, title: str = "") -> None:
    """The ``images`` side by side in one PNG at ``path`` (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(images), figsize=(1.6 * len(images), 1.9), squeeze=False)
    try:
        for axis, image in zip(axes[0], images, strict=True):
            axis.imshow(image, cmap="gray_r", vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
        if title:
            figure.suptitle(title)
        figure.savefig(path, dpi=120, bbox_inches="tight")
    finally:
        plt.close(figure)
