"""Handwritten digits: the paper's MNIST tasks, an offline stand-in, and the raw-MNIST pipeline.

Every classification task here reads an image as a sequence of pixel words and asks for the class
in the last step(s), as the reference implementation does: step ``t`` writes pixel ``t`` and is
postselected on / scored against ``targets[t]``; the targets are word 0 at every step but the last
``LL``, which hold the label. The label is the class's *position* in ``digits`` (not the digit),
written big-endian with ``ceil(log2(len(digits)))`` bits (at least 1), left-padded with zeros to a
multiple of ``io_bits`` and cut into ``io_bits``-wide words (lane 0 the most significant bit).

The paper's preprocessed files (``mnist-simple-D-{train,validate,test}.csv.gz``, one image of 100
values 0..7 a row, see ``shared/data/mnist/README.md``) are read from a folder: ``folder=``, else
the environment variable ``QRNN_MNIST_DIR``, else ``<repo root>/../shared/data/mnist``. They are
not shipped with the package; :func:`write_preprocessed` makes them from raw MNIST IDX files.
Files are read on first use (so ``qrnn tasks`` works without them) and once per process.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
from pathlib import Path

import numpy as np
import torch

from .base import Batch, SequenceTask, TaskDefaults, check_positive_int
from ..errors import QRNNValueError

__all__ = [
    "MNISTPixels",
    "SklearnDigits",
    "MNISTUMAP",
    "GenerativeDigits",
    "label_words",
    "read_idx",
    "preprocess_images",
    "preprocess_idx",
    "write_preprocessed",
    "render_digit",
    "to_ascii",
]

SPLITS = ("train", "validate", "test")
#: where the shared copy of the paper's files lives next to a checkout: ``<repo root>/../shared/data/mnist``
_SHARED_MNIST = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"
_CSV_CACHE: dict[tuple, np.ndarray] = {}


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


def _check_split(split):
    if split not in SPLITS:
        raise QRNNValueError(f"split must be one of {', '.join(map(repr, SPLITS))}; got {split!r}")
    return split


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


def _check_length(length, fixed):
    if length is not None and length != fixed:
        raise QRNNValueError(f"length is fixed at {fixed} for this task; got {length!r}")


def _mnist_folder(folder, pattern: str) -> Path:
    """The folder holding the paper's files: ``folder``, ``$QRNN_MNIST_DIR`` or the shared copy."""
    message = f"MNIST folder must hold {pattern} files (set QRNN_MNIST_DIR or pass folder=); got "
    if folder is not None:
        path, origin = Path(folder), f"folder={str(folder)!r}"
    elif os.environ.get("QRNN_MNIST_DIR"):
        path, origin = Path(os.environ["QRNN_MNIST_DIR"]), f"QRNN_MNIST_DIR={os.environ['QRNN_MNIST_DIR']!r}"
    elif _SHARED_MNIST.is_dir():
        return _SHARED_MNIST
    else:
        raise FileNotFoundError(message + f"no folder (QRNN_MNIST_DIR is unset and {_SHARED_MNIST} does not exist)")
    if not path.is_dir():
        raise FileNotFoundError(message + f"{origin}, which is not a folder")
    return path


def _read_table(folder: Path, name: str, pattern: str, columns: int, maximum: int) -> np.ndarray:
    """One gzip'd CSV file as an ``(N, columns)`` int array; parsed once per process."""
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(
            f"MNIST folder must hold {pattern} files (set QRNN_MNIST_DIR or pass folder=); "
            f"got {str(folder)!r} without {name}"
        )
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _CSV_CACHE:
        with gzip.open(path, "rt") as handle:
            rows = np.loadtxt(handle, delimiter=",", dtype=np.int64, ndmin=2)
        if rows.shape[0] == 0 or rows.shape[1] != columns or rows.min() < 0 or rows.max() > maximum:
            raise QRNNValueError(
                f"{name} must hold rows of {columns} ints 0..{maximum}; got shape {rows.shape}"
                + (f", values {rows.min()}..{rows.max()}" if rows.size else "")
            )
        rows.setflags(write=False)
        _CSV_CACHE[key] = rows
    return _CSV_CACHE[key]


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

    def _encode(self, rows: np.ndarray, positions: torch.Tensor) -> Batch:
        """The batch of ``(N, ...)`` rows of classes at ``positions``."""
        raise NotImplementedError

    def batch(self, size, generator=None, split="train"):
        """``size`` images, classes alternating, each drawn uniformly with replacement."""
        check_positive_int("size", size)
        rows = self._rows(_check_split(split))
        positions = torch.arange(size) % len(self.digits)
        # one draw per item in batch order, as the reference does
        picks = [
            rows[c][torch.randint(0, len(rows[c]), (1,), generator=generator).item()] for c in positions.tolist()
        ]
        return self._encode(np.stack(picks), positions)

    def dataset(self, split: str = "test") -> Batch:
        """Every image of ``split``: digits in the order given, each digit's rows in file order."""
        rows = self._rows(_check_split(split))
        positions = torch.cat([torch.full((len(r),), c, dtype=torch.long) for c, r in enumerate(rows)])
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
        targets[-len(words):] = words
        scored = torch.zeros_like(tokens, dtype=torch.bool)
        scored[-len(words):] = True
        return Batch(tokens, targets, scored, forced=~scored, labels=positions)


def _scanline_words(values: np.ndarray, scanlines: tuple) -> np.ndarray:
    """Pack the chosen scanline bits of 0..7 pixel values into big-endian words."""
    words = np.zeros_like(values)
    for k in scanlines:
        words = (words << 1) | ((values >> (2 - k)) & 1)
    return words


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
            ``$QRNN_MNIST_DIR``, else ``<repo root>/../shared/data/mnist``
        scanlines (tuple[int]): which of the three scanlines (0 rows, 1 columns, 2 rotated rows)
            make up a word, most significant first; ``io_bits = len(scanlines)``
        length (int): only ``None`` or 99 (the length is fixed)

    Raises:
        ValueError: for digits, scanlines or length out of range
        FileNotFoundError: on first use, when no folder holds the files

    >>> task = MNISTPixels((0, 1))
    >>> batch = task.batch(4, torch.Generator().manual_seed(0), split="test")
    >>> batch.tokens.shape, batch.targets[-1].tolist(), batch.labels.tolist()
    (torch.Size([99, 4]), [0, 1, 0, 1], [0, 1, 0, 1])
    """

    name = "mnist"
    defaults = TaskDefaults(workspace=8, stages=2, degree=2, order=2, steps=1000, batch_size=100, lr=0.001,
                            optimizer="adam", loss="reference", extra={"reference_lr": "adam 0.3..0.01, 50 images per digit"})
    PAPER = {(0, 1): "99.2 +- 0.2 % test (H8 S2 d2, 1212 params)", (3, 6): "89.7 +- 0.8 % test (H8 S2 d2)"}
    PIXELS = 100
    PATTERN = "mnist-simple-D-SPLIT.csv.gz"

    def __init__(self, digits=(0, 1), folder=None, scanlines=(0, 1), length=None):
        self.digits = _check_digits(digits)
        scanlines = tuple(scanlines) if isinstance(scanlines, (list, tuple)) else scanlines
        if (
            not isinstance(scanlines, tuple)
            or not scanlines
            or len(set(scanlines)) != len(scanlines)
            or not all(s in (0, 1, 2) and not isinstance(s, bool) for s in scanlines)
        ):
            raise QRNNValueError(f"scanlines must be distinct values among 0, 1, 2; got {scanlines!r}")
        self.scanlines = scanlines
        self.io_bits = len(scanlines)
        self.length = self.PIXELS - 1
        _check_length(length, self.length)
        self.folder = folder
        self.name = _digits_name("mnist", self.digits)
        self.paper_result = self.PAPER.get(self.digits, "not in the paper pixel by pixel (its full MNIST row: mnist-umap)")
        self._cache = {}

    def _load(self, split):
        folder = _mnist_folder(self.folder, self.PATTERN)
        return [
            _scanline_words(_read_table(folder, f"mnist-simple-{d}-{split}.csv.gz", self.PATTERN, self.PIXELS, 7),
                            self.scanlines)
            for d in self.digits
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
    """

    name = "mnist-gen"
    paper_result = "qualitative (sampled images), 1212 params"

    def __init__(self, digits=(0, 1), folder=None, scanlines=(0, 1), length=None):
        super().__init__(digits, folder, scanlines, length)
        self.name = _digits_name("mnist", self.digits) + "-gen"
        self.paper_result = type(self).paper_result
        if self.label_length != 1:
            raise QRNNValueError(
                f"digits must have labels that fit one {self.io_bits}-bit word; got {len(self.digits)} digits"
            )

    def _encode(self, rows, positions):
        sequence = torch.as_tensor(np.ascontiguousarray(rows.T), dtype=torch.long).clone()  # (100, N)
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
    """

    name = "digits"
    io_bits = 2
    defaults = TaskDefaults(workspace=6, stages=1, degree=2, order=2, steps=300, batch_size=32, lr=0.05)
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
            from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel
        except ImportError as error:
            raise ImportError(
                "SklearnDigits needs scikit-learn: pip install 'pennylane-qrnn[tasks]' (or scikit-learn)"
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
        folder: as for :class:`MNISTPixels`
    """

    name = "mnist-umap"
    defaults = TaskDefaults(workspace=7, stages=2, degree=3, order=2, steps=500, batch_size=64, lr=0.03)
    paper_result = "96.7 +- 0.2 % (13 qubits, 3134 params)"
    PATTERN = "mnist-umap-K-D-SPLIT.csv.gz"

    def __init__(self, dims=3, resolution=4, digits=tuple(range(10)), folder=None, length=None):
        if dims not in (2, 3, 4) or isinstance(dims, bool):
            raise QRNNValueError(f"dims must be 2, 3 or 4; got {dims!r}")
        check_positive_int("resolution", resolution, 2)
        if resolution > 8:
            raise QRNNValueError(f"resolution must be at most 8; got {resolution}")
        self.dims, self.resolution, self.io_bits = dims, resolution, dims
        self.digits = _check_digits(digits)
        self.folder = folder
        self.length = resolution + self.label_length - 2
        _check_length(length, self.length)
        self._cache = {}

    def _load(self, split):
        folder = _mnist_folder(self.folder, self.PATTERN)
        return [
            _read_table(folder, f"mnist-umap-{self.dims}-{d}-{split}.csv.gz", self.PATTERN, self.dims, 255)
            for d in self.digits
        ]

    def _encode(self, rows, positions):
        coordinates = torch.as_tensor(rows, dtype=torch.long)  # (N, dims)
        size, ll = len(coordinates), self.label_length
        data = torch.zeros(self.resolution, size, dtype=torch.long)
        for lane in range(self.dims):
            for t in range(self.resolution):
                data[t] |= ((coordinates[:, lane] >> (7 - t)) & 1) << (self.dims - 1 - lane)
        inputs = torch.cat([data, torch.zeros(ll - 1, size, dtype=torch.long)])
        target_words = torch.cat([torch.zeros(self.resolution - 1, size, dtype=torch.long),
                                  self._label_words(positions)])
        tokens, targets = inputs[:-1], target_words[1:]
        scored = torch.zeros_like(tokens, dtype=torch.bool)
        scored[-ll:] = True
        return Batch(tokens, targets, scored, forced=~scored, labels=positions)

    def __repr__(self):
        return f"{type(self).__name__}(dims={self.dims}, resolution={self.resolution})"


# --- raw MNIST: IDX files to the paper's encoding -------------------------------------------------

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """An IDX file (MNIST's format; gzip'd or not) as a numpy array.

    The format: two zero bytes, a type byte (``0x08`` ubyte, ``0x09`` byte, ``0x0B`` short,
    ``0x0C`` int, ``0x0D`` float, ``0x0E`` double), the number of dimensions, one big-endian
    uint32 a dimension, then the data, big-endian, row-major.
    """
    with open(path, "rb") as handle:
        raw = handle.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise QRNNValueError(f"IDX file must start with two zero bytes; got {raw[:4]!r} in {path}")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise QRNNValueError(f"IDX type code must be one of {', '.join(hex(c) for c in _IDX_TYPES)}; got {hex(code)}")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_TYPES[code])
    expected = dtype.itemsize * math.prod(shape)
    data = raw[4 + 4 * ndim :]
    if len(data) != expected:
        raise QRNNValueError(f"IDX data must have {expected} bytes for shape {shape}; got {len(data)} in {path}")
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _rotate(images: np.ndarray, degrees: float) -> np.ndarray:
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
            out += np.where(inside, wi * wj, 0.0) * images[:, np.clip(ii, 0, n - 1), np.clip(jj, 0, n - 1)]
    return out


def _background(images: np.ndarray) -> np.ndarray:
    """2x2 block means of ``(N, 20, 20)`` intensities, binarised: 1 (background) where < 128."""
    n = images.shape[0]
    means = images.reshape(n, 10, 2, 10, 2).mean(axis=(2, 4))
    return (means < 128).astype(np.int64)


def preprocess_images(images) -> np.ndarray:
    """Raw 28x28 MNIST images ``(N, 28, 28)`` (0..255, ink high) to the paper's ``(N, 100)`` values 0..7.

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
    """
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise QRNNValueError(f"images must have shape (N, 28, 28); got {images.shape}")
    crop = images[:, 4:24, 4:24].astype(np.float64)
    n = len(crop)
    s0 = _background(crop)
    s1 = s0.transpose(0, 2, 1)
    s2 = _background(_rotate(crop, 135.0))
    return (4 * s0 + 2 * s1 + s2).reshape(n, 100)


def preprocess_idx(images_path, labels_path) -> tuple[np.ndarray, np.ndarray]:
    """Values ``(N, 100)`` (see :func:`preprocess_images`) and labels ``(N,)`` of raw IDX files."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if labels.ndim != 1 or len(labels) != len(images):
        raise QRNNValueError(f"labels must have shape ({len(images)},); got {labels.shape}")
    return preprocess_images(images), labels.astype(np.int64)


def write_preprocessed(folder, images_path, labels_path, split="train", validate_size=500) -> list[Path]:
    """Write ``mnist-simple-D-SPLIT.csv.gz`` files from raw IDX files, as the shared ones are laid out.

    ``split="train"`` (MNIST's training files) writes, per digit, the first ``validate_size``
    images as ``validate`` and the rest as ``train``; ``split="test"`` writes ``test``. Then
    ``MNISTPixels(folder=folder)`` reads them. Returns the paths written.
    """
    if split not in ("train", "test"):
        raise QRNNValueError(f"split must be 'train' or 'test'; got {split!r}")
    check_positive_int("validate_size", validate_size, 0)
    values, labels = preprocess_idx(images_path, labels_path)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for digit in sorted(set(labels.tolist())):
        rows = values[labels == digit]
        parts = {"test": rows} if split == "test" else {"validate": rows[:validate_size], "train": rows[validate_size:]}
        for name, part in parts.items():
            path = folder / f"mnist-simple-{digit}-{name}.csv.gz"
            with gzip.open(path, "wt") as handle:
                handle.writelines(",".join(map(str, row)) + "\n" for row in part.tolist())
            written.append(path)
    return written


# --- display -----------------------------------------------------------------------------------


def render_digit(tokens, scanline=0, scanlines=(0, 1), first=0) -> np.ndarray:
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

    >>> print(to_ascii(render_digit([3, 1, 1, 3, 3, 0, 0, 3, 3])))
    .##
    ..#
    #..
    """
    tokens = np.asarray(tokens.tolist() if isinstance(tokens, torch.Tensor) else tokens, dtype=np.int64).ravel()
    side = math.isqrt(len(tokens) + first + 1)
    if side * side < len(tokens) + first or side < 2:
        raise QRNNValueError(f"tokens must hold at most side**2 - first words of a square image; got {len(tokens)}")
    if scanline not in scanlines:
        raise QRNNValueError(f"scanline must be one of scanlines {tuple(scanlines)!r}; got {scanline!r}")
    words = np.full(side * side, 2 ** len(scanlines) - 1, dtype=np.int64)  # background in every lane
    words[first : first + len(tokens)] = tokens
    lane = len(scanlines) - 1 - list(scanlines).index(scanline)
    ink = (1 - ((words >> lane) & 1)).reshape(side, side).astype(np.uint8)
    return ink.T.copy() if scanline == 1 else ink


def to_ascii(image) -> str:
    """A terminal rendering: ``#`` ink, ``.`` background, one line a row."""
    return "\n".join("".join("#" if value else "." for value in row) for row in np.asarray(image))
