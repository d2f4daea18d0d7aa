"""Hand-written readers and writers of the MNIST formats, shared by the tests of tests/tasks."""

import csv
import gzip
import struct
from pathlib import Path

import numpy as np


def read_csv(folder, name):
    with gzip.open(Path(folder) / name, "rt", newline="") as handle:
        return [[int(v) for v in row] for row in csv.reader(handle)]


def bit(value, scanline):
    return (value >> (2 - scanline)) & 1


def words(row, scanlines=(0, 1)):
    """Scanline words of one CSV row, big-endian, by hand."""
    out = []
    for value in row:
        word = 0
        for k in scanlines:
            word = 2 * word + bit(value, k)
        out.append(word)
    return out


def write_idx(path, array, code=0x08, dtype=">u1", compress=False):
    array = np.asarray(array)
    raw = (
        bytes([0, 0, code, array.ndim])
        + struct.pack(f">{array.ndim}I", *array.shape)
        + array.astype(dtype).tobytes()
    )
    Path(path).write_bytes(gzip.compress(raw) if compress else raw)
    return path


def block(image, r, c, value):
    """Fill the raw pixels of 10x10 pixel (r, c): crop offset 4, 2x2 blocks."""
    image[4 + 2 * r : 6 + 2 * r, 4 + 2 * c : 6 + 2 * c] = value


def write_simple_files(
    folder, digits=(0, 1), splits=("train", "validate", "test"), row=None, count=1
):
    """Small mnist-simple-D-SPLIT.csv.gz files: ``count`` copies of ``row`` each (default one row,
    all background)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    row = [7] * 100 if row is None else row
    for split in splits:
        for d in digits:
            with gzip.open(folder / f"mnist-simple-{d}-{split}.csv.gz", "wt") as handle:
                handle.write((",".join(map(str, row)) + "\n") * count)
    return folder
