"""Raw MNIST images to the paper's pixel values: crop, downscale, binarise, rotate.

The paper's preprocessing, as its text describes it (the author's Mathematica pipeline is not
public): the central 20x20 crop of a 28x28 image, downscaled to 10x10 and binarised, read as
three scanlines. :func:`preprocess_images` is the whole pipeline; the file formats around it
(IDX in, the paper's CSV files out) are in :mod:`pennylane_qrnn.tasks.mnist_files`.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import QRNNValueError

__all__ = ["preprocess_images", "rotate", "binarised_blocks"]


def rotate(images: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate ``(N, n, n)`` images counter-clockwise (as displayed) about their centre, bilinear,
    zero (background intensity) outside."""
    n = images.shape[-1]
    centre = (n - 1) / 2
    angle = math.radians(degrees)
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    x, y = j - centre, centre - i  # y up, as displayed
    # each output pixel samples the input at its position rotated back
    xs = math.cos(angle) * x + math.sin(angle) * y
    ys = -math.sin(angle) * x + math.cos(angle) * y
    si, sj = centre - ys, centre + xs
    i0, j0 = np.floor(si).astype(int), np.floor(sj).astype(int)
    fi, fj = si - i0, sj - j0
    out = np.zeros(images.shape, dtype=np.float64)
    for di, wi in ((0, 1 - fi), (1, fi)):
        for dj, wj in ((0, 1 - fj), (1, fj)):
            ii, jj = i0 + di, j0 + dj
            inside = (ii >= 0) & (ii < n) & (jj >= 0) & (jj < n)
            out += (
                np.where(inside, wi * wj, 0.0)
                * images[:, np.clip(ii, 0, n - 1), np.clip(jj, 0, n - 1)]
            )
    return out


def binarised_blocks(images: np.ndarray) -> np.ndarray:
    """2x2 block means of ``(N, 20, 20)`` intensities, binarised: 1 (background) where < 128."""
    n = images.shape[0]
    means = images.reshape(n, 10, 2, 10, 2).mean(axis=(2, 4))
    return (means < 128).astype(np.int64)


def preprocess_images(images) -> np.ndarray:
    """Raw 28x28 MNIST images ``(N, 28, 28)`` (0..255, ink high) to the paper's ``(N, 100)``
    values 0..7.

    Our implementation of the paper's description: crop to the central 20x20 (drop 4 pixels on
    each side), downscale to 10x10 by 2x2 block means, binarise (block mean < 128: background 1,
    else ink 0). Scanline 0 reads that image row by row, scanline 1 column by column; scanline 2
    reads row by row the 20x20 crop rotated by 135 degrees counter-clockwise (as displayed) about
    its centre, bilinear, background outside, then downscaled and binarised the same way. The
    value of a step is ``4 * s0 + 2 * s1 + s2``.

    The paper's files were made by the author's Mathematica pipeline, of which only this
    description is public; scanlines 0 and 1 of the shared files are exactly a 10x10 image and its
    transpose, and their scanline 2 agrees best with a 135-degree counter-clockwise rotation, but
    pixels near edges (the threshold, the resampling) may differ from ours.

    Raises:
        ValueError: if ``images`` is not ``(N, 28, 28)``
    """
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise QRNNValueError(f"images must have shape (N, 28, 28); got {images.shape}")
    crop = images[:, 4:24, 4:24].astype(np.float64)
    n = len(crop)
    s0 = binarised_blocks(crop)
    s1 = s0.transpose(0, 2, 1)
    s2 = binarised_blocks(rotate(crop, 135.0))
    return (4 * s0 + 2 * s1 + s2).reshape(n, 100)
