"""The MNIST file formats: IDX files, the paper's CSV files, and raw IDX files written as those."""

import gzip

import numpy as np
import pytest
import torch

from pennylane_qrnn.tasks import MNISTPixels, mnist_files
from pennylane_qrnn.tasks import digits as digits_module
from pennylane_qrnn.tasks.digits import preprocess_idx, read_idx, write_preprocessed

from .mnist_helpers import block, read_csv, write_idx


def test_public_names_stay_importable_from_digits():
    """The split kept every name of the old tasks/digits.py importable from there."""
    for name in ("read_idx", "preprocess_idx", "write_preprocessed"):
        assert getattr(digits_module, name) is getattr(mnist_files, name)
    assert set(digits_module.__all__) >= {
        "read_idx",
        "preprocess_images",
        "preprocess_idx",
        "write_preprocessed",
        "render_digit",
        "to_ascii",
        "label_words",
        "MNISTPixels",
        "MNISTUMAP",
        "GenerativeDigits",
        "SklearnDigits",
    }


def test_read_idx(tmp_path):
    images = np.arange(2 * 3 * 4).reshape(2, 3, 4).astype(np.uint8)
    assert np.array_equal(read_idx(write_idx(tmp_path / "a-ubyte", images)), images)
    assert np.array_equal(read_idx(write_idx(tmp_path / "a.gz", images, compress=True)), images)
    ints = np.array([[-70000, 1, 2], [3, 65536, -1]])
    assert (
        read_idx(write_idx(tmp_path / "b", ints, code=0x0C, dtype=">i4")).tolist() == ints.tolist()
    )
    (tmp_path / "bad").write_bytes(b"\x01\x00\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="IDX file must start with two zero bytes"):
        read_idx(tmp_path / "bad")
    (tmp_path / "type").write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="IDX type code must be one of .*; got 0x7"):
        read_idx(tmp_path / "type")
    (tmp_path / "short").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x03\x00")
    with pytest.raises(ValueError, match=r"IDX data must have 3 bytes for shape \(3,\); got 1"):
        read_idx(tmp_path / "short")


def test_write_preprocessed_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    images = np.zeros((6, 28, 28), dtype=np.uint8)
    for n in range(6):
        for r, c in rng.integers(0, 10, size=(12, 2)):
            block(images[n], r, c, 255)
    labels = np.array([0, 1, 0, 1, 0, 1])
    gz = write_idx(tmp_path / "train-images.gz", images, compress=True)
    write_idx(tmp_path / "train-labels", labels)
    write_idx(tmp_path / "test-images", images[:2])
    write_idx(tmp_path / "test-labels", labels[:2])
    folder = tmp_path / "mnist"
    written = write_preprocessed(folder, gz, tmp_path / "train-labels", validate_size=1)
    written += write_preprocessed(
        folder, tmp_path / "test-images", tmp_path / "test-labels", split="test"
    )
    assert sorted(p.name for p in written) == sorted(
        f"mnist-simple-{d}-{s}.csv.gz" for d in (0, 1) for s in ("train", "validate", "test")
    )
    values, read_labels = preprocess_idx(gz, tmp_path / "train-labels")
    assert read_labels.tolist() == labels.tolist()
    assert read_csv(folder, "mnist-simple-1-validate.csv.gz") == [values[1].tolist()]
    assert read_csv(folder, "mnist-simple-0-train.csv.gz") == [
        values[2].tolist(),
        values[4].tolist(),
    ]
    task = MNISTPixels((0, 1), folder=folder)
    train = task.dataset("train")
    assert train.tokens[:, 0].tolist() == [
        v >> 1 for v in values[2][:99].tolist()
    ]  # scanlines 0 and 1
    assert train.labels.tolist() == [0, 0, 1, 1]
    assert task.batch(4, torch.Generator().manual_seed(0), split="validate").tokens[
        :, 1
    ].tolist() == [v >> 1 for v in values[1][:99].tolist()]
    with pytest.raises(ValueError, match=r"labels must have shape \(6,\); got \(2,\)"):
        preprocess_idx(gz, tmp_path / "test-labels")
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'test'\); got 'valid"):
        write_preprocessed(folder, gz, tmp_path / "train-labels", split="validate")


def test_badread_csv(tmp_path):
    for split in ("train", "validate", "test"):
        for d in (0, 1):
            with gzip.open(tmp_path / f"mnist-simple-{d}-{split}.csv.gz", "wt") as handle:
                handle.write(",".join(["8"] * 100) + "\n")
    with pytest.raises(
        ValueError,
        match=r"mnist-simple-0-test.csv.gz must hold rows of 100 ints 0..7; got shape \(1, 100\), "
        r"values 8..8",
    ):
        MNISTPixels(folder=tmp_path).dataset("test")


def test_scanline_words():
    values = np.array([0, 1, 2, 3, 4, 5, 6, 7])
    for scanlines in [(0, 1), (2, 0, 1), (1,), (0, 2)]:
        expected = [
            sum(((v >> (2 - k)) & 1) << (len(scanlines) - 1 - i) for i, k in enumerate(scanlines))
            for v in values
        ]
        assert mnist_files.scanline_words(values, scanlines).tolist() == expected
