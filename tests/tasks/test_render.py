"""Digits for display: pixel sequences as images, in the terminal and as a PNG."""

import numpy as np
import pytest
import torch

from pennylane_qrnn.tasks import GenerativeDigits, MNISTPixels, SklearnDigits, render
from pennylane_qrnn.tasks import digits as digits_module
from pennylane_qrnn.tasks.digits import render_digit, to_ascii

from .mnist_helpers import bit, read_csv


def test_public_names_stay_importable_from_digits():
    assert (
        digits_module.render_digit is render.render_digit
        and digits_module.to_ascii is render.to_ascii
    )


def test_render_digit(mnist):
    row = read_csv(mnist, "mnist-simple-0-test.csv.gz")[0]
    image = render_digit(row, scanlines=(0, 1, 2))
    assert image.shape == (10, 10) and image.tolist() == [
        [1 - bit(row[10 * i + j], 0) for j in range(10)] for i in range(10)
    ]
    # the shared files' column scanline is the transposed image
    assert render_digit(row, scanline=1, scanlines=(0, 1, 2)).tolist() == image.tolist()
    tokens = MNISTPixels(folder=mnist).dataset("test").tokens[:, 0]  # pixels 0..98
    shown = render_digit(tokens)
    assert (
        shown[:9].tolist() == image[:9].tolist() and shown[9, :9].tolist() == image[9, :9].tolist()
    )
    targets = GenerativeDigits(folder=mnist).dataset("test").targets[:, 0]  # pixels 1..99
    assert render_digit(targets, first=1)[1:].tolist() == image[1:].tolist()
    text = to_ascii(image)
    assert (
        text.splitlines()[0] == "".join("#" if v else "." for v in image[0])
        and len(text.splitlines()) == 10
    )
    with pytest.raises(ValueError, match="scanline must be one of scanlines"):
        render_digit(row, scanline=2)


def test_render_digit_side():
    """An explicit side shows a short sequence in the full image (pixels not given: background);
    inferred, the side would be too small for the same pixels."""
    image = render_digit([0, 0], first=1, side=3)  # pixels 1 and 2 ink in both lanes
    assert image.tolist() == [[0, 1, 1], [0, 0, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="tokens must hold at most side"):
        render_digit([0] * 9, first=1, side=3)
    with pytest.raises(ValueError, match="side must be an int >= 2; got 1"):
        render_digit([0], side=1)


@pytest.mark.parametrize(
    "task, side",
    [(MNISTPixels((0, 1)), 10), (GenerativeDigits((0, 1)), 10), (SklearnDigits((0, 1)), 8)],
)
def test_render_samples(task, side):
    """Sampled columns (prefix, then pixels 1..) of any length show as side x side images."""
    for steps in (side * side - 1, 5):
        generated = torch.randint(
            0, 4, (1 + steps, 3), generator=torch.Generator().manual_seed(steps)
        )
        images = render.render_samples(generated, task)
        assert len(images) == 3 and all(image.shape == (side, side) for image in images)
        for n, image in enumerate(images):
            expected = render_digit(generated[1:, n], first=1, side=side)
            assert np.array_equal(image, expected)
            pixels = generated[1:, n].tolist()
            assert image.reshape(-1)[1 : 1 + steps].tolist() == [
                1 - (w >> 1) for w in pixels
            ]  # row scanline
            assert (
                not image.reshape(-1)[1 + steps :].any() and not image[0, 0]
            )  # background where not sampled


def test_write_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "digits.png"
    render.write_png(
        [np.eye(4, dtype=np.uint8), np.ones((4, 4), dtype=np.uint8)], path, title="two"
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
