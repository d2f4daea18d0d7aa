"""Handwritten digits: the paper's MNIST tasks and an offline stand-in.

Every classification task here reads an image as a sequence of pixel words and asks for the class
in the last step(s), as the reference implementation does: step ``t`` writes pixel ``t`` and is
postselected on / scored against ``targets[t]``; the targets are word 0 at every step but the last
``LL``, which hold the label. The label is the class's *position* in ``digits`` (not the digit),
written big-endian with ``ceil(log2(len(digits)))`` bits (at least 1), left-padded with zeros to a
multiple of ``io_bits`` and cut into ``io_bits``-wide words (lane 0 the most significant bit).

The paper's preprocessed files (``mnist-simple-D-{train,validate,test}.csv.gz``, one image of 100
values 0..7 a row) are read from the folder a task is given (``folder=``), else from
``$QRNN_MNIST_DIR``; nothing else is searched, and a missing file is a
:class:`~pennylane_qrnn.errors.DataNotFoundError` that says where to get it. They are not shipped
with the package; :func:`write_preprocessed` makes them from raw MNIST IDX files. Files are read
on first use (so ``qrnn tasks`` works without them) and once per process.

The file formats live in :mod:`~pennylane_qrnn.tasks.mnist_files`, the image preprocessing in
:mod:`~pennylane_qrnn.tasks.images`, the display in :mod:`~pennylane_qrnn.tasks.render`; their
public functions are importable from here as well.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from ..errors import QRNNTypeError, QRNNValueError
from ..validation import check_choice, check_int
from .base import SPLITS, Batch, SequenceTask, TaskDefaults, check_split
from .images import preprocess_images
from .mnist_files import (
    SIMPLE_PATTERN,
    UMAP_PATTERN,
    data_folder,
    preprocess_idx,
    read_idx,
    read_table,
    scanline_words,
    write_preprocessed,
)
from .render import render_digit, to_ascii

__all__ = [
    "MNISTPixels",
    "SklearnDigits",
    "MNISTUMAP",
    "GenerativeDigits",
    "SPLITS",
    "label_words",
    "read_idx",
    "preprocess_images",
    "preprocess_idx",
    "write_preprocessed",
    "render_digit",
    "to_ascii",
]


def label_words(positions, classes: int, io_bits: int) -> torch.Tensor:
    """The label words ``(LL, N)`` of class positions ``(N,)``, big-endian, left-padded with zeros.

    >>> label_words(torch.tensor([9, 5]), classes=10, io_bits=2).T.tolist()
    [[2, 1], [1, 1]]
    """
    positions = torch.as_tensor(positions, dtype=torch.long)
    bits = max(1, math.ceil(math.log2(classes)))
    count = -(-bits // io_bits)
    shifts = io_bits * torch.arange(count - 1, -1, -1).unsqueeze(1)
    return (positions.unsqueeze(0) >> shifts) & (2**io_bits - 1)


def _check_digits(digits):
    digits = tuple(digits) if isinstance(digits, (list, tuple, range)) else digits
    if (
        not isinstance(digits, tuple)
        or len(digits) < 2
        or len(set(digits)) != len(digits)
        or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 9 for d in digits)
    ):
        raise QRNNValueError(f"digits must be at least two distinct ints 0..9; got {digits!r}")
    return digits


def _digits_name(prefix, digits):
    return f"{prefix}-all" if digits == tuple(range(10)) else prefix + "".join(map(str, digits))


def _check_folder(folder):
    if folder is not None and not isinstance(folder, (str, os.PathLike)):
        raise QRNNTypeError(f"folder must be a str, a path or None; got {type(folder).__name__}")
    return folder


def _check_length(length, fixed):
    if length is not None and length != fixed:
        raise QRNNValueError(f"length is fixed at {fixed} for this task; got {length!r}")


class _DigitTask(SequenceTask):
    """Classes ``digits``; a batch alternates them (item ``n`` has class ``n % len(digits)``)."""

    digits: tuple

    def _rows(self, split: str) -> list[np.ndarray]:
        """Per class, the split's rows (one image a row), in file order."""
        if split not in self._cache:
            self._cache[split] = self._load(split)
        return self._cache[split]

    def _load(self, split: str) -> list[np.ndarray]:
        raise NotImplementedError

    def check_data(self, splits=SPLITS) -> None:
        for split in splits:
            self._rows(check_split(split))

    def _encode(self, rows: np.ndarray, positions: torch.Tensor) -> Batch:
        """The batch of ``(N, ...)`` rows of classes at ``positions``."""
        raise NotImplementedError

    def batch(self, size, generator=None, split="train"):
        """``size`` images, classes alternating, each drawn uniformly with replacement."""
        check_int("size", size, minimum=1)
        rows = self._rows(check_split(split))
        positions = torch.arange(size) % len(self.digits)
        # one draw per item in batch order, as the reference does
        picks = [
            rows[c][torch.randint(0, len(rows[c]), (1,), generator=generator).item()]
            for c in positions.tolist()
        ]
        return self._encode(np.stack(picks), positions)

    def dataset(self, split: str = "test") -> Batch:
        """Every image of ``split``: digits in the order given, each digit's rows in file order."""
        rows = self._rows(check_split(split))
        positions = torch.cat(
            [torch.full((len(r),), c, dtype=torch.long) for c, r in enumerate(rows)]
        )
        return self._encode(np.concatenate(rows), positions)

    def _label_words(self, positions):
        return label_words(positions, len(self.digits), self.io_bits)

    @property
    def label_length(self) -> int:
        """``LL``: how many steps the label takes."""
        return self._label_words(torch.zeros(1, dtype=torch.long)).shape[0]


class _PixelClassification(_DigitTask):
    """Pixel words in, class out: inputs pixels ``0..P-2``, label in the last ``LL`` targets."""

    def _encode(self, rows, positions):
        pixels = torch.as_tensor(np.ascontiguousarray(rows.T), dtype=torch.long)  # (P, N)
        tokens = pixels[:-1]
        targets = torch.zeros_like(tokens)
        words = self._label_words(positions)
        targets[-len(words) :] = words
        scored = torch.zeros_like(tokens, dtype=torch.bool)
        scored[-len(words) :] = True
        return Batch(tokens, targets, scored, forced=~scored, labels=positions)


class MNISTPixels(_PixelClassification):
    """The paper's handwritten digits, pixel by pixel (10x10 binary images, 100 steps).

    Each step writes one pixel as the word of the chosen ``scanlines`` bits (``(0, 1)``: the image
    read row by row and column by column, token ``2 * bit0 + bit1``; ink is 0, background 1).
    As in the reference implementation, pixels 0..98 are the 99 inputs (the 100th is never
    written); the targets are word 0 but in the last ``LL`` steps, which hold the label words
    (see the module docstring). Scored: the last ``LL`` steps; forced: all others, so
    evaluations postselect them on ``0``.

    Args:
        digits (tuple[int]): the classes, in label order (``(3, 6)``: 3 is label 0)
        folder (str or Path): holds ``mnist-simple-D-{train,validate,test}.csv.gz``; default
            ``$QRNN_MNIST_DIR`` (see :mod:`~pennylane_qrnn.tasks.mnist_files`)
        scanlines (tuple[int]): which of the three scanlines (0 rows, 1 columns, 2 rotated rows)
            make up a word, most significant first; ``io_bits = len(scanlines)``
        length (int): only ``None`` or 99 (the length is fixed)

    Raises:
        ValueError: for digits, scanlines or length out of range
        DataNotFoundError: on first use, when no folder is given or it lacks the files (a
            ``FileNotFoundError``; the message says where to get them)

    >>> task = MNISTPixels((0, 1))
    >>> batch = task.batch(4, torch.Generator().manual_seed(0), split="test")
    >>> batch.tokens.shape, batch.targets[-1].tolist(), batch.labels.tolist()
    (torch.Size([99, 4]), [0, 1, 0, 1], [0, 1, 0, 1])
    """

    name = "mnist"
    defaults = TaskDefaults(
        workspace=8,
        stages=2,
        degree=2,
        order=2,
        steps=1000,
        batch_size=100,
        lr=0.001,
        optimizer="adam",
        loss="rvqe",
        extra={"rvqe_lr": "adam 0.3..0.01, 50 images per digit"},
    )
    PAPER = {
        (0, 1): "99.2 +- 0.2 % test (H8 S2 d2, 1212 params)",
        (3, 6): "89.7 +- 0.8 % test (H8 S2 d2)",
    }
    PIXELS = 100
    PATTERN = SIMPLE_PATTERN

    def __init__(self, digits=(0, 1), folder=None, scanlines=(0, 1), length=None):
        self.digits = _check_digits(digits)
        scanlines = tuple(scanlines) if isinstance(scanlines, (list, tuple)) else scanlines
        if (
            not isinstance(scanlines, tuple)
            or not scanlines
            or len(set(scanlines)) != len(scanlines)
            or not all(s in (0, 1, 2) and not isinstance(s, bool) for s in scanlines)
        ):
            raise QRNNValueError(
                f"scanlines must be distinct values among 0, 1, 2; got {scanlines!r}"
            )
        self.scanlines = scanlines
        self.io_bits = len(scanlines)
        self.length = self.PIXELS - 1
        _check_length(length, self.length)
        self.folder = _check_folder(folder)
        self.name = _digits_name("mnist", self.digits)
        self.paper_result = self.PAPER.get(
            self.digits, "not in the paper pixel by pixel (its full MNIST row: mnist-umap)"
        )
        self._cache = {}

    def _load(self, split):
        names = [f"mnist-simple-{d}-{split}.csv.gz" for d in self.digits]
        folder = data_folder(names, self.PATTERN, self.folder)
        return [
            scanline_words(read_table(folder / name, self.PIXELS, 7), self.scanlines)
            for name in names
        ]

    def __repr__(self):
        args = [f"digits={self.digits!r}"]
        if self.scanlines != (0, 1):
            args.append(f"scanlines={self.scanlines!r}")
        if self.folder is not None:
            args.append(f"folder={str(self.folder)!r}")
        return f"{type(self).__name__}({', '.join(args)})"


class GenerativeDigits(MNISTPixels):
    """Generate digits pixel by pixel, conditioned on the class (the reference's ``mnist01-gen``).

    A sequence is an image's 100 scanline words with the *first* word replaced by the label word
    (the class position: token 0 for the first digit, 1 for the second); every step predicts the
    next pixel and is scored, none is forced. Batches alternate the classes. The reference trained
    on deskewed images; this reads the non-deskewed files of :class:`MNISTPixels`. Show sampled
    sequences with :func:`render_digit` and :func:`to_ascii`.

    Args:
        digits (tuple[int]): the two classes to generate
        folder (str, Path or None): as for :class:`MNISTPixels`
        scanlines (tuple[int]): as for :class:`MNISTPixels`
        length (int or None): accepted for the command line's ``--length``; the length is fixed

    **Example**

    >>> from pennylane_qrnn.tasks import GenerativeDigits
    >>> task = GenerativeDigits(digits=(0, 1))  # the files are read at the first batch
    >>> task.io_bits, task.length
    (2, 99)
    """

    name = "mnist-gen"
    paper_result = "qualitative (sampled images), 1212 params"

    def __init__(self, digits=(0, 1), folder=None, scanlines=(0, 1), length=None):
        super().__init__(digits, folder, scanlines, length)
        self.name = _digits_name("mnist", self.digits) + "-gen"
        self.paper_result = type(self).paper_result
        if self.label_length != 1:
            raise QRNNValueError(
                f"digits must have labels that fit one {self.io_bits}-bit word; got "
                f"{len(self.digits)} digits"
            )

    def _encode(self, rows, positions):
        sequence = torch.as_tensor(
            np.ascontiguousarray(rows.T), dtype=torch.long
        ).clone()  # (100, N)
        sequence[0] = positions
        tokens, targets = sequence[:-1], sequence[1:]
        scored = torch.ones_like(tokens, dtype=torch.bool)
        return Batch(tokens, targets, scored, forced=torch.zeros_like(scored), labels=positions)


class SklearnDigits(_PixelClassification):
    """An offline digit task: scikit-learn's bundled 8x8 digits, pixel by pixel (not in the paper).

    Pixels with value >= 8 (of 16) are ink (bit 0), the rest background (bit 1), as in the MNIST
    files; each of the 64 steps writes ``2 * row_bit + column_bit``, the image read row by row
    and column by column. Inputs are pixels 0..62 (63 steps), the label words fill the last
    targets, as in :class:`MNISTPixels`. Splits by dataset index: ``test`` every 5th image
    (index % 5 == 0), ``validate`` index % 5 == 1, ``train`` the rest. Needs scikit-learn.

    Args:
        digits (tuple[int]): the classes, at least two of ``0..9``
        length (int or None): accepted for the command line's ``--length``; the length is fixed

    **Example**

    >>> import torch
    >>> from pennylane_qrnn.tasks import SklearnDigits
    >>> task = SklearnDigits(digits=(0, 1))
    >>> batch = task.batch(2, generator=torch.Generator().manual_seed(0))
    >>> tuple(batch.tokens.shape), batch.labels.tolist()
    ((63, 2), [0, 1])
    """

    name = "digits"
    io_bits = 2
    defaults = TaskDefaults(
        workspace=6, stages=1, degree=2, order=2, steps=300, batch_size=32, lr=0.05
    )
    paper_result = "not in the paper: offline stand-in for MNIST (sklearn 8x8 digits)"
    SIDE = 8

    def __init__(self, digits=(0, 1), length=None):
        self.digits = _check_digits(digits)
        self.name = _digits_name("digits", self.digits)
        self.length = self.SIDE**2 - 1
        _check_length(length, self.length)
        self._cache = {}

    def _load(self, split):
        try:
            from sklearn.datasets import load_digits
        except ImportError as error:
            raise ImportError(
                "SklearnDigits needs scikit-learn: pip install 'pennylane-qrnn[tasks]' (or "
                "scikit-learn)"
            ) from error
        data = load_digits()
        background = (data.images < 8).astype(np.int64)  # (N, 8, 8)
        rows_bits = background.reshape(len(background), -1)
        column_bits = background.transpose(0, 2, 1).reshape(len(background), -1)
        words = 2 * rows_bits + column_bits
        index = np.arange(len(words)) % 5
        keep = {"test": index == 0, "validate": index == 1, "train": index >= 2}[split]
        return [words[keep & (data.target == d)] for d in self.digits]

    def __repr__(self):
        return f"{type(self).__name__}(digits={self.digits!r})"


class MNISTUMAP(_DigitTask):
    """Full MNIST through its UMAP coordinates (the paper's last MNIST row).

    Reads ``mnist-umap-K-D-{split}.csv.gz`` (``K = dims`` ints 0..255 a row). Input step ``t``
    (``t < resolution``) writes the word made of bit ``t`` (most significant first) of each
    coordinate, coordinate 0 in the most significant lane; ``io_bits = dims``. As in the
    reference: the input sequence is the ``R = resolution`` data words then ``LL - 1`` zero words,
    the target sequence ``R - 1`` zero words then the ``LL`` label words, and step ``i`` writes
    input ``i`` and predicts target ``i + 1``: ``R + LL - 2`` steps, the last ``LL`` scored, the
    rest forced. So with ``LL = 2`` the first label word is predicted before the last data word
    is read, a quirk kept to compare with the reference.

    The default ``dims=3`` (with H7 S2 d3: 13 qubits, 3134 parameters) is the paper's count;
    the paper does not state the resolution, 4 bits is our choice.

    Args:
        dims (int): 2, 3 or 4 UMAP coordinates
        resolution (int): bits of each coordinate written, 2..8
        digits (tuple[int]): the classes (default all ten)
        folder (str, Path or None): as for :class:`MNISTPixels`
        length (int or None): accepted for the command line's ``--length``; the length follows
            from ``resolution``

    **Example**

    >>> from pennylane_qrnn.tasks import MNISTUMAP
    >>> task = MNISTUMAP(dims=3, resolution=4)  # the files are read at the first batch
    >>> task, task.io_bits, task.length
    (MNISTUMAP(dims=3, resolution=4), 3, 4)
    """

    name = "mnist-umap"
    defaults = TaskDefaults(
        workspace=7, stages=2, degree=3, order=2, steps=500, batch_size=64, lr=0.03
    )
    paper_result = "96.7 +- 0.2 % (13 qubits, 3134 params)"
    PATTERN = UMAP_PATTERN

    def __init__(self, dims=3, resolution=4, digits=tuple(range(10)), folder=None, length=None):
        check_choice("dims", dims, (2, 3, 4))
        check_int("resolution", resolution, minimum=2, maximum=8)
        self.dims, self.resolution, self.io_bits = dims, resolution, dims
        self.digits = _check_digits(digits)
        self.folder = _check_folder(folder)
        self.length = resolution + self.label_length - 2
        _check_length(length, self.length)
        self._cache = {}

    def _load(self, split):
        names = [f"mnist-umap-{self.dims}-{d}-{split}.csv.gz" for d in self.digits]
        folder = data_folder(names, self.PATTERN, self.folder)
        return [read_table(folder / name, self.dims, 255) for name in names]

    def _encode(self, rows, positions):
        coordinates = torch.as_tensor(rows, dtype=torch.long)  # (N, dims)
        size, ll = len(coordinates), self.label_length
        data = torch.zeros(self.resolution, size, dtype=torch.long)
        for lane in range(self.dims):
            for t in range(self.resolution):
                data[t] |= ((coordinates[:, lane] >> (7 - t)) & 1) << (self.dims - 1 - lane)
        inputs = torch.cat([data, torch.zeros(ll - 1, size, dtype=torch.long)])
        target_words = torch.cat(
            [torch.zeros(self.resolution - 1, size, dtype=torch.long), self._label_words(positions)]
        )
        tokens, targets = inputs[:-1], target_words[1:]
        scored = torch.zeros_like(tokens, dtype=torch.bool)
        scored[-ll:] = True
        return Batch(tokens, targets, scored, forced=~scored, labels=positions)

    def __repr__(self):
        return f"{type(self).__name__}(dims={self.dims}, resolution={self.resolution})"
