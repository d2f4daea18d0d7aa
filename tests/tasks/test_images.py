"""The paper's image preprocessing, on synthetic raw images: crop, downscale, binarise, rotate."""

import numpy as np
import pytest

from pennylane_qrnn.tasks.digits import preprocess_images
from pennylane_qrnn.tasks.images import rotate

from .mnist_helpers import block


def _scanline01(ink):
    """Bits 2 and 1 of the values, by hand, for a set of ink pixels (r, c) of the 10x10 image."""
    return [
        4 * int((p // 10, p % 10) not in ink) + 2 * int((p % 10, p // 10) not in ink)
        for p in range(100)
    ]


def test_preprocess_scanlines_0_and_1():
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    block(images[1], 1, 3, 200)
    images[1, :4, :] = 255  # outside the crop: dropped
    images[1, :, 24:] = 255
    block(images[2], 5, 7, 255)
    images[2, 4 + 2 * 5, 4 + 2 * 7] = 1  # mean (255 + 255 + 255 + 1) / 4 >= 128: ink
    images[2, 4 + 2 * 2 : 6 + 2 * 2, 4 + 2 * 6] = 255  # mean 127.5 < 128: background
    values = preprocess_images(images)
    assert values.shape == (3, 100) and values.min() >= 0 and values.max() <= 7
    assert values[0].tolist() == [7] * 100
    assert (values[1] & 6).tolist() == _scanline01({(1, 3)})
    assert (values[2] & 6).tolist() == _scanline01({(5, 7)})
    with pytest.raises(
        ValueError, match=r"images must have shape \(N, 28, 28\); got \(2, 20, 20\)"
    ):
        preprocess_images(np.zeros((2, 20, 20)))


def test_preprocess_scanline_2_is_rotated():
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    images[0, 4:24, 4:24] = 255  # the whole crop is ink
    images[1, 4 + 2 : 4 + 7, 4 + 13 : 4 + 18] = 255  # a blob top right
    i, j = np.mgrid[:20, :20]
    images[2, 4:24, 4:24] = 255 * ((i - 9.5) ** 2 + (j - 9.5) ** 2 < 7**2)  # a centred disc
    s0, s2 = (
        ((preprocess_images(images) >> 2) & 1).reshape(3, 10, 10),
        (preprocess_images(images) & 1).reshape(3, 10, 10),
    )
    # a square turned by 135 degrees: centre ink, corners background
    assert s2[0, 4:6, 4:6].tolist() == [[0, 0], [0, 0]] and s2[
        0, [0, 0, 9, 9], [0, 9, 0, 9]
    ].tolist() == [1, 1, 1, 1]
    # counter-clockwise by 135 degrees takes the top right (45 degrees) to the left (180 degrees)
    rows, cols = np.nonzero(s2[1] == 0)
    assert len(rows) and cols.max() <= 3 and 3 <= rows.min() and rows.max() <= 6
    # a disc does not change
    assert (s2[2] == s0[2]).mean() >= 0.9 and s0[2, 5, 5] == 0


def test_rotate_quarter_turn():
    """A quarter turn counter-clockwise (as displayed) moves the top right pixel to the top left,
    exactly (no interpolation at 90 degrees); outside the image is background (0)."""
    picture = np.zeros((1, 4, 4))
    picture[0, 0, 3] = 1.0
    turned = rotate(picture, 90.0)
    expected = np.zeros((1, 4, 4))
    expected[0, 0, 0] = 1.0
    assert np.allclose(turned, expected)
    assert np.allclose(rotate(picture, 360.0), picture)
