"""MNIST on disk: where the paper's files are, how they are read, and raw IDX files to them.

The paper's preprocessed files are not shipped with the package (they come with the reference
implementation, which carries no licence). A task finds them in the folder it is given
(``folder=``), else in ``$QRNN_MNIST_DIR``; the ``qrnn`` command line's ``--data-dir`` sets that
variable for one command. There is no other default: an installed package has no data folder
of its own, and a missing one is a :class:`~pennylane_qrnn.errors.DataNotFoundError` that names
the files expected, the folder searched and where to get them.

- ``mnist-simple-D-{train,validate,test}.csv.gz``: one 10x10 image a row, 100 values 0..7, each
  packing three binary scanlines (see :func:`scanline_words`). :func:`write_preprocessed` makes
  them from MNIST's raw IDX files (:func:`read_idx`, then
  :func:`~pennylane_qrnn.tasks.images.preprocess_images`).
- ``mnist-umap-K-D-{train,validate,test}.csv.gz``: ``K`` UMAP coordinates 0..255 a row; only the
  reference implementation's copies exist.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import struct
from pathlib import Path

import numpy as np

from ..errors import DataNotFoundError, QRNNValueError
from ..validation import check_choice, check_int
from .images import preprocess_images

__all__ = [
    "DATA_DIR_ENV",
    "SIMPLE_PATTERN",
    "UMAP_PATTERN",
    "data_folder",
    "using_data_dir",
    "read_table",
    "scanline_words",
    "read_idx",
    "preprocess_idx",
    "write_preprocessed",
]

#: the environment variable naming the folder of the paper's files
DATA_DIR_ENV = "QRNN_MNIST_DIR"
SIMPLE_PATTERN = "mnist-simple-D-SPLIT.csv.gz"
UMAP_PATTERN = "mnist-umap-K-D-SPLIT.csv.gz"

_REFERENCE = "the QRNN reference implementation, https://github.com/CLEconomides/RVQE"
#: pattern -> what the files are and where to get them, for the error that says they are missing
_WHERE_TO_GET = {
    SIMPLE_PATTERN: (
        "These are the QRNN paper's preprocessed MNIST digits (10x10, binarised, gzip'd CSV), not "
        f"shipped with pennylane-qrnn: copy them from {_REFERENCE} (folder RVQE/datasets/res), or "
        "make them from MNIST's raw IDX files (train-images-idx3-ubyte.gz, "
        "train-labels-idx1-ubyte.gz, t10k-...) with "
        "pennylane_qrnn.tasks.digits.write_preprocessed(folder, images, labels, split='train' or "
        "'test')."
    ),
    UMAP_PATTERN: (
        "These are the QRNN paper's UMAP coordinates of MNIST (gzip'd CSV), not shipped with "
        f"pennylane-qrnn and not made by it: copy them from {_REFERENCE} (under RVQE/datasets)."
    ),
}
_HOW_TO_POINT = f"The command line's --data-dir DIR sets {DATA_DIR_ENV} for one command."
_CSV_CACHE: dict[tuple, np.ndarray] = {}


def data_folder(names, pattern: str, folder=None) -> Path:
    """The folder that holds the files ``names`` of ``pattern``: ``folder``, else
    ``$QRNN_MNIST_DIR``.

    Args:
        names (list[str]): the files needed now (one split's)
        pattern (str): :data:`SIMPLE_PATTERN` or :data:`UMAP_PATTERN`, for the messages
        folder (str or Path): the folder a task was given, or ``None``

    Raises:
        DataNotFoundError: when no folder is given, the one given is not a folder, or it lacks
            some of ``names``; the message lists them and says where to get them
    """
    head = f"MNIST folder must hold {pattern} files (set {DATA_DIR_ENV} or pass folder=); got "
    tail = f" {_WHERE_TO_GET[pattern]} {_HOW_TO_POINT}"
    if folder is not None:
        path, origin = Path(folder), f"folder={str(folder)!r}"
    elif os.environ.get(DATA_DIR_ENV):
        path, origin = (
            Path(os.environ[DATA_DIR_ENV]),
            f"{DATA_DIR_ENV}={os.environ[DATA_DIR_ENV]!r}",
        )
    else:
        raise DataNotFoundError(
            head + f"no folder ({DATA_DIR_ENV} is unset and no folder= was given).{tail}"
        )
    if not path.is_dir():
        raise DataNotFoundError(head + f"{origin}, which is not a folder.{tail}")
    missing = [name for name in names if not (path / name).is_file()]
    if missing:
        shown = ", ".join(missing[:4]) + (
            f" and {len(missing) - 4} more" if len(missing) > 4 else ""
        )
        raise DataNotFoundError(head + f"{str(path)!r} ({origin}) without {shown}.{tail}")
    return path


@contextlib.contextmanager
def using_data_dir(folder):
    """Within the block, tasks without ``folder=`` read from ``folder`` (``$QRNN_MNIST_DIR`` is set
    to its absolute path and restored afterwards); ``None`` changes nothing.

    >>> with using_data_dir("."):
    ...     os.environ[DATA_DIR_ENV] == os.path.abspath(".")
    True
    """
    if folder is None:
        yield
        return
    previous = os.environ.get(DATA_DIR_ENV)
    os.environ[DATA_DIR_ENV] = str(Path(folder).expanduser().resolve())
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(DATA_DIR_ENV, None)
        else:
            os.environ[DATA_DIR_ENV] = previous


def read_table(path: Path, columns: int, maximum: int) -> np.ndarray:
    """One gzip'd CSV file as a read-only ``(N, columns)`` int array; parsed once per process.

    Raises:
        ValueError: unless every row holds ``columns`` ints ``0..maximum``
    """
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _CSV_CACHE:
        with gzip.open(path, "rt") as handle:
            rows = np.loadtxt(handle, delimiter=",", dtype=np.int64, ndmin=2)
        if rows.shape[0] == 0 or rows.shape[1] != columns or rows.min() < 0 or rows.max() > maximum:
            raise QRNNValueError(
                f"{path.name} must hold rows of {columns} ints 0..{maximum}; got shape {rows.shape}"
                + (f", values {rows.min()}..{rows.max()}" if rows.size else "")
            )
        rows.setflags(write=False)
        _CSV_CACHE[key] = rows
    return _CSV_CACHE[key]


def scanline_words(values: np.ndarray, scanlines: tuple) -> np.ndarray:
    """Pack the chosen scanline bits of 0..7 pixel values into big-endian words.

    Scanline ``k`` is bit ``2 - k`` of a value (0: rows, 1: columns, 2: the rotated image).

    >>> scanline_words(np.array([6, 5, 3]), (0, 1)).tolist()
    [3, 2, 1]
    """
    words = np.zeros_like(values)
    for k in scanlines:
        words = (words << 1) | ((values >> (2 - k)) & 1)
    return words


# --- raw MNIST: IDX files to the paper's files ------------------------------------------------

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """An IDX file (MNIST's format; gzip'd or not) as a numpy array.

    The format: two zero bytes, a type byte (``0x08`` ubyte, ``0x09`` byte, ``0x0B`` short,
    ``0x0C`` int, ``0x0D`` float, ``0x0E`` double), the number of dimensions, one big-endian
    uint32 a dimension, then the data, big-endian, row-major.

    Raises:
        ValueError: for a header or a length that is not IDX
    """
    with open(path, "rb") as handle:
        raw = handle.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise QRNNValueError(f"IDX file must start with two zero bytes; got {raw[:4]!r} in {path}")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise QRNNValueError(
            f"IDX type code must be one of {', '.join(hex(c) for c in _IDX_TYPES)}; got {hex(code)}"
        )
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_TYPES[code])
    expected = dtype.itemsize * math.prod(shape)
    data = raw[4 + 4 * ndim :]
    if len(data) != expected:
        raise QRNNValueError(
            f"IDX data must have {expected} bytes for shape {shape}; got {len(data)} in {path}"
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def preprocess_idx(images_path, labels_path) -> tuple[np.ndarray, np.ndarray]:
    """Values ``(N, 100)`` (see :func:`~pennylane_qrnn.tasks.images.preprocess_images`) and
    labels ``(N,)`` of raw IDX files."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if labels.ndim != 1 or len(labels) != len(images):
        raise QRNNValueError(f"labels must have shape ({len(images)},); got {labels.shape}")
    return preprocess_images(images), labels.astype(np.int64)


def write_preprocessed(
    folder, images_path, labels_path, split="train", validate_size=500
) -> list[Path]:
    """Write ``mnist-simple-D-SPLIT.csv.gz`` files from raw IDX files, as the paper's are laid out.

    ``split="train"`` (MNIST's training files) writes, per digit, the first ``validate_size``
    images as ``validate`` and the rest as ``train``; ``split="test"`` writes ``test``. Then
    ``MNISTPixels(folder=folder)`` reads them. Returns the paths written.
    """
    check_choice("split", split, ("train", "test"))
    check_int("validate_size", validate_size, minimum=0)
    values, labels = preprocess_idx(images_path, labels_path)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for digit in sorted(set(labels.tolist())):
        rows = values[labels == digit]
        parts = (
            {"test": rows}
            if split == "test"
            else {"validate": rows[:validate_size], "train": rows[validate_size:]}
        )
        for name, part in parts.items():
            path = folder / f"mnist-simple-{digit}-{name}.csv.gz"
            with gzip.open(path, "wt") as handle:
                handle.writelines(",".join(map(str, row)) + "\n" for row in part.tolist())
            written.append(path)
    return written
