"""The digit tasks: encodings recomputed by hand from the files, the raw-MNIST pipeline on synthetic IDX files."""

import csv
import gzip
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pennylane_qrnn.tasks import TASKS, GenerativeDigits, MNISTPixels, MNISTUMAP, SklearnDigits, get_task
from pennylane_qrnn.tasks import digits as digits_module
from pennylane_qrnn.tasks.digits import (
    label_words,
    preprocess_idx,
    preprocess_images,
    read_idx,
    render_digit,
    to_ascii,
    write_preprocessed,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def mnist():
    if not (SHARED / "mnist-simple-0-test.csv.gz").is_file():
        pytest.skip(f"needs the paper's preprocessed MNIST files in {SHARED}")
    return SHARED


def _csv(folder, name):
    with gzip.open(Path(folder) / name, "rt", newline="") as handle:
        return [[int(v) for v in row] for row in csv.reader(handle)]


def _bit(value, scanline):
    return (value >> (2 - scanline)) & 1


def _words(row, scanlines=(0, 1)):
    """Scanline words of one CSV row, big-endian, by hand."""
    out = []
    for value in row:
        word = 0
        for k in scanlines:
            word = 2 * word + _bit(value, k)
        out.append(word)
    return out


# --- registry and labels --------------------------------------------------------------------------


def test_registry_builds_without_files(monkeypatch, tmp_path):
    monkeypatch.setenv("QRNN_MNIST_DIR", str(tmp_path / "absent"))
    expected = {"mnist01": 99, "mnist36": 99, "mnist-all": 99, "mnist-umap": 4, "mnist-gen": 99, "digits01": 63}
    for name, length in expected.items():
        assert name in TASKS
        task = get_task(name)
        assert task.length == length and task.describe()["length"] == length
    assert "99.2" in get_task("mnist01").paper_result and "89.7" in get_task("mnist36").paper_result
    assert get_task("mnist-all").label_length == 2 and get_task("mnist-all").digits == tuple(range(10))
    assert repr(get_task("mnist36")) == "MNISTPixels(digits=(3, 6))"
    d = get_task("mnist01").defaults
    assert (d.workspace, d.stages, d.degree, d.order, d.batch_size, d.lr, d.loss) == (8, 2, 2, 2, 100, 0.001, "reference")
    with pytest.raises(FileNotFoundError, match="which is not a folder"):
        get_task("mnist01").batch(2)


@pytest.mark.parametrize(
    "classes, io_bits, position, words",
    [
        (2, 2, 0, [0]),
        (2, 2, 1, [1]),
        (2, 1, 1, [1]),
        (3, 1, 2, [1, 0]),  # 2 bits: "10"
        (10, 2, 9, [2, 1]),  # "1001" -> "10", "01"
        (10, 2, 5, [1, 1]),  # "0101"
        (10, 3, 9, [1, 1]),  # "001001" -> "001", "001"
        (10, 3, 6, [0, 6]),  # "000110"
        (10, 4, 7, [7]),
    ],
)
def test_label_words(classes, io_bits, position, words):
    assert label_words(torch.tensor([position]), classes, io_bits)[:, 0].tolist() == words


# --- MNIST pixel by pixel -------------------------------------------------------------------------


def test_mnist01_batch(mnist):
    task = MNISTPixels((0, 1), folder=mnist)
    rows = {d: {tuple(_words(r[:99])) for r in _csv(mnist, f"mnist-simple-{d}-test.csv.gz")} for d in (0, 1)}
    a, b = task.batch(9, _gen(1), split="test"), task.batch(9, _gen(1), split="test")
    c = task.batch(9, _gen(2), split="test")
    assert a.tokens.shape == a.targets.shape == a.scored.shape == a.forced.shape == (99, 9)
    assert a.tokens.dtype == torch.long and a.tokens.min() >= 0 and a.tokens.max() < 4
    assert torch.equal(a.tokens, b.tokens) and not torch.equal(a.tokens, c.tokens)
    for n in range(9):
        assert tuple(a.tokens[:, n].tolist()) in rows[n % 2]
    assert a.labels.tolist() == [n % 2 for n in range(9)]
    assert a.targets[:-1].eq(0).all() and a.targets[-1].tolist() == a.labels.tolist()
    assert a.scored[-1].all() and not a.scored[:-1].any() and torch.equal(a.forced, ~a.scored)


def test_mnist36_dataset_in_file_order(mnist):
    rows3, rows6 = _csv(mnist, "mnist-simple-3-test.csv.gz"), _csv(mnist, "mnist-simple-6-test.csv.gz")
    data = MNISTPixels((3, 6), folder=mnist).dataset("test")
    assert data.tokens.shape == (99, len(rows3) + len(rows6))
    assert data.tokens[:, 0].tolist() == _words(rows3[0][:99])
    assert data.tokens[:, len(rows3)].tolist() == _words(rows6[0][:99])
    assert data.tokens[:, -1].tolist() == _words(rows6[-1][:99])
    assert data.labels.tolist() == [0] * len(rows3) + [1] * len(rows6)
    assert data.targets[-1].tolist() == data.labels.tolist() and data.scored.sum() == data.size


def test_mnist01_test_set_size(mnist):
    data = get_task("mnist01", folder=mnist).dataset("test")
    assert data.size == 2115 and data.labels.bincount().tolist() == [980, 1135]


def test_mnist_all_label_words(mnist):
    task = get_task("mnist-all", folder=mnist)
    batch = task.batch(10, _gen(3), split="test")
    assert task.label_length == 2 and batch.labels.tolist() == list(range(10))
    for n in range(10):
        assert batch.targets[-2:, n].tolist() == [n >> 2, n & 3]  # 4 bits, big-endian
    assert batch.scored[-2:].all() and not batch.scored[:-2].any()
    assert batch.targets[:-2].eq(0).all()


@pytest.mark.parametrize("scanlines", [(2, 0, 1), (1,), (0, 2)])
def test_mnist_scanline_choice(mnist, scanlines):
    task = MNISTPixels((0, 1), folder=mnist, scanlines=scanlines)
    row = _csv(mnist, "mnist-simple-1-validate.csv.gz")[4]
    data = task.dataset("validate")
    assert task.io_bits == len(scanlines) and task.label_length == 1
    assert data.tokens[:, 500 + 4].tolist() == _words(row[:99], scanlines)
    assert data.tokens.max() < 2 ** len(scanlines)


def test_default_folder(mnist, monkeypatch, tmp_path):
    monkeypatch.delenv("QRNN_MNIST_DIR", raising=False)
    assert MNISTPixels().batch(2, _gen(), split="test").size == 2  # the shared copy
    monkeypatch.setenv("QRNN_MNIST_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"set QRNN_MNIST_DIR or pass folder=\); got .* without mnist-simple-0-test"):
        MNISTPixels().batch(2, split="test")


def test_no_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("QRNN_MNIST_DIR", raising=False)
    monkeypatch.setattr(digits_module, "_SHARED_MNIST", tmp_path / "nowhere")
    message = r"MNIST folder must hold mnist-simple-D-SPLIT.csv.gz files \(set QRNN_MNIST_DIR or pass folder=\); got no folder"
    with pytest.raises(FileNotFoundError, match=message):
        MNISTPixels().dataset("test")
    with pytest.raises(FileNotFoundError, match="mnist-umap-K-D-SPLIT.csv.gz"):
        MNISTUMAP().batch(1)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: MNISTPixels(digits=(1,)), r"digits must be at least two distinct ints 0..9; got \(1,\)"),
        (lambda: MNISTPixels(digits=(0, 0)), "digits must be at least two distinct"),
        (lambda: MNISTPixels(digits=(0, 10)), "digits must be at least two distinct"),
        (lambda: MNISTPixels(scanlines=(0, 3)), r"scanlines must be distinct values among 0, 1, 2; got \(0, 3\)"),
        (lambda: MNISTPixels(scanlines=()), "scanlines must be distinct values"),
        (lambda: MNISTPixels(length=50), "length is fixed at 99 for this task; got 50"),
        (lambda: MNISTPixels().batch(0), "size must be an int >= 1; got 0"),
        (lambda: MNISTPixels().batch(2, split="dev"), "split must be one of 'train', 'validate', 'test'; got 'dev'"),
        (lambda: GenerativeDigits(digits=(0, 1, 2, 3, 4)), "labels that fit one 2-bit word; got 5 digits"),
        (lambda: MNISTUMAP(dims=5), "dims must be 2, 3 or 4; got 5"),
        (lambda: MNISTUMAP(resolution=1), "resolution must be an int >= 2; got 1"),
        (lambda: MNISTUMAP(resolution=9), "resolution must be at most 8; got 9"),
        (lambda: SklearnDigits(length=64), "length is fixed at 63 for this task; got 64"),
    ],
)
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- generative -------------------------------------------------------------------------------------


def test_generative_digits(mnist):
    task = GenerativeDigits((0, 1), folder=mnist)
    rows = {d: {tuple(_words(r[1:])) for r in _csv(mnist, f"mnist-simple-{d}-test.csv.gz")} for d in (0, 1)}
    batch = task.batch(6, _gen(4), split="test")
    assert batch.tokens.shape == (99, 6) and task.name == "mnist01-gen"
    assert batch.tokens[0].tolist() == [0, 1, 0, 1, 0, 1] == batch.labels.tolist()
    assert torch.equal(batch.tokens[1:], batch.targets[:-1])  # next-pixel prediction
    for n in range(6):
        assert tuple(batch.targets[:, n].tolist()) in rows[n % 2]
    assert batch.scored.all() and not batch.forced.any()
    assert torch.equal(batch.tokens, task.batch(6, _gen(4), split="test").tokens)


def test_render_digit(mnist):
    row = _csv(mnist, "mnist-simple-0-test.csv.gz")[0]
    image = render_digit(row, scanlines=(0, 1, 2))
    assert image.shape == (10, 10) and image.tolist() == [[1 - _bit(row[10 * i + j], 0) for j in range(10)] for i in range(10)]
    # the shared files' column scanline is the transposed image
    assert render_digit(row, scanline=1, scanlines=(0, 1, 2)).tolist() == image.tolist()
    tokens = MNISTPixels(folder=mnist).dataset("test").tokens[:, 0]  # pixels 0..98
    shown = render_digit(tokens)
    assert shown[:9].tolist() == image[:9].tolist() and shown[9, :9].tolist() == image[9, :9].tolist()
    targets = GenerativeDigits(folder=mnist).dataset("test").targets[:, 0]  # pixels 1..99
    assert render_digit(targets, first=1)[1:].tolist() == image[1:].tolist()
    text = to_ascii(image)
    assert text.splitlines()[0] == "".join("#" if v else "." for v in image[0]) and len(text.splitlines()) == 10
    with pytest.raises(ValueError, match="scanline must be one of scanlines"):
        render_digit(row, scanline=2)


# --- scikit-learn's digits ----------------------------------------------------------------------------


def test_sklearn_digits():
    datasets = pytest.importorskip("sklearn.datasets")
    raw = datasets.load_digits()
    task = get_task("digits01")
    data = task.dataset("test")
    tests = [i for i in range(len(raw.target)) if i % 5 == 0 and raw.target[i] in (0, 1)]
    assert data.size == len(tests) and data.tokens.shape == (63, len(tests))
    first_one = next(i for i in tests if raw.target[i] == 1)
    for column, index in [(0, tests[0]), (sum(raw.target[i] == 0 for i in tests), first_one)]:
        image = raw.images[index]
        expected = [2 * int(image[p // 8, p % 8] < 8) + int(image[p % 8, p // 8] < 8) for p in range(63)]
        assert data.tokens[:, column].tolist() == expected
    sizes = [task.dataset(s).size for s in ("train", "validate", "test")]
    assert sum(sizes) == sum(raw.target < 2) and sizes[1] == sum(1 for i in range(len(raw.target)) if i % 5 == 1 and raw.target[i] < 2)
    batch = task.batch(5, _gen(5))
    assert batch.tokens.shape == (63, 5) and batch.targets[-1].tolist() == [0, 1, 0, 1, 0]
    assert torch.equal(batch.tokens, task.batch(5, _gen(5)).tokens) and torch.equal(batch.forced, ~batch.scored)


def test_sklearn_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="pip install 'pennylane-qrnn\\[tasks\\]' \\(or scikit-learn\\)"):
        SklearnDigits().batch(1)


# --- UMAP ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dims, resolution", [(2, 4), (3, 5), (4, 3)])
def test_mnist_umap(mnist, dims, resolution):
    task = MNISTUMAP(dims=dims, resolution=resolution, folder=mnist)
    ll = 1 if dims == 4 else 2  # 4 label bits in dims-bit words
    assert task.io_bits == dims and task.label_length == ll and task.length == resolution + ll - 2

    def encode(row):  # by hand: word t holds bit t of each coordinate, coordinate 0 first
        data = [sum(((x >> (7 - t)) & 1) << (dims - 1 - k) for k, x in enumerate(row)) for t in range(resolution)]
        return (data + [0] * (ll - 1))[:-1]

    data = task.dataset("validate")
    rows = [_csv(mnist, f"mnist-umap-{dims}-{d}-validate.csv.gz") for d in range(10)]
    assert data.size == sum(map(len, rows))
    for digit in (0, 9):
        start = sum(len(r) for r in rows[:digit])
        assert data.tokens[:, start].tolist() == encode(rows[digit][0])
        words = label_words(torch.tensor([digit]), 10, dims)[:, 0].tolist()
        assert data.targets[:, start].tolist() == ([0] * (resolution - 1) + words)[1:]
    assert data.scored[-ll:].all() and not data.scored[:-ll].any() and torch.equal(data.forced, ~data.scored)
    batch = task.batch(10, _gen(6), split="validate")
    assert batch.labels.tolist() == list(range(10)) and batch.tokens.max() < 2**dims
    assert torch.equal(batch.tokens, task.batch(10, _gen(6), split="validate").tokens)
    for n in range(10):
        assert batch.tokens[:, n].tolist() in [encode(r) for r in rows[n]]


# --- raw MNIST: IDX files ---------------------------------------------------------------------------


def _write_idx(path, array, code=0x08, dtype=">u1", compress=False):
    array = np.asarray(array)
    raw = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(dtype).tobytes()
    Path(path).write_bytes(gzip.compress(raw) if compress else raw)
    return path


def test_read_idx(tmp_path):
    images = np.arange(2 * 3 * 4).reshape(2, 3, 4).astype(np.uint8)
    assert np.array_equal(read_idx(_write_idx(tmp_path / "a-ubyte", images)), images)
    assert np.array_equal(read_idx(_write_idx(tmp_path / "a.gz", images, compress=True)), images)
    ints = np.array([[-70000, 1, 2], [3, 65536, -1]])
    assert read_idx(_write_idx(tmp_path / "b", ints, code=0x0C, dtype=">i4")).tolist() == ints.tolist()
    (tmp_path / "bad").write_bytes(b"\x01\x00\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="IDX file must start with two zero bytes"):
        read_idx(tmp_path / "bad")
    (tmp_path / "type").write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="IDX type code must be one of .*; got 0x7"):
        read_idx(tmp_path / "type")
    (tmp_path / "short").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x03\x00")
    with pytest.raises(ValueError, match=r"IDX data must have 3 bytes for shape \(3,\); got 1"):
        read_idx(tmp_path / "short")


def _block(image, r, c, value):
    """Fill the raw pixels of 10x10 pixel (r, c): crop offset 4, 2x2 blocks."""
    image[4 + 2 * r : 6 + 2 * r, 4 + 2 * c : 6 + 2 * c] = value


def _scanline01(ink):
    """Bits 2 and 1 of the values, by hand, for a set of ink pixels (r, c) of the 10x10 image."""
    return [4 * int((p // 10, p % 10) not in ink) + 2 * int((p % 10, p // 10) not in ink) for p in range(100)]


def test_preprocess_scanlines_0_and_1():
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    _block(images[1], 1, 3, 200)
    images[1, :4, :] = 255  # outside the crop: dropped
    images[1, :, 24:] = 255
    _block(images[2], 5, 7, 255)
    images[2, 4 + 2 * 5, 4 + 2 * 7] = 1  # mean (255 + 255 + 255 + 1) / 4 >= 128: ink
    images[2, 4 + 2 * 2 : 6 + 2 * 2, 4 + 2 * 6] = 255  # mean 127.5 < 128: background
    values = preprocess_images(images)
    assert values.shape == (3, 100) and values.min() >= 0 and values.max() <= 7
    assert values[0].tolist() == [7] * 100
    assert (values[1] & 6).tolist() == _scanline01({(1, 3)})
    assert (values[2] & 6).tolist() == _scanline01({(5, 7)})
    with pytest.raises(ValueError, match=r"images must have shape \(N, 28, 28\); got \(2, 20, 20\)"):
        preprocess_images(np.zeros((2, 20, 20)))


def test_preprocess_scanline_2_is_rotated():
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    images[0, 4:24, 4:24] = 255  # the whole crop is ink
    images[1, 4 + 2 : 4 + 7, 4 + 13 : 4 + 18] = 255  # a blob top right
    i, j = np.mgrid[:20, :20]
    images[2, 4:24, 4:24] = 255 * ((i - 9.5) ** 2 + (j - 9.5) ** 2 < 7**2)  # a centred disc
    s0, s2 = ((preprocess_images(images) >> 2) & 1).reshape(3, 10, 10), (preprocess_images(images) & 1).reshape(3, 10, 10)
    # a square turned by 135 degrees: centre ink, corners background
    assert s2[0, 4:6, 4:6].tolist() == [[0, 0], [0, 0]] and s2[0, [0, 0, 9, 9], [0, 9, 0, 9]].tolist() == [1, 1, 1, 1]
    # counter-clockwise by 135 degrees takes the top right (45 degrees) to the left (180 degrees)
    rows, cols = np.nonzero(s2[1] == 0)
    assert len(rows) and cols.max() <= 3 and 3 <= rows.min() and rows.max() <= 6
    # a disc does not change
    assert (s2[2] == s0[2]).mean() >= 0.9 and s0[2, 5, 5] == 0


def test_write_preprocessed_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    images = np.zeros((6, 28, 28), dtype=np.uint8)
    for n in range(6):
        for r, c in rng.integers(0, 10, size=(12, 2)):
            _block(images[n], r, c, 255)
    labels = np.array([0, 1, 0, 1, 0, 1])
    gz = _write_idx(tmp_path / "train-images.gz", images, compress=True)
    _write_idx(tmp_path / "train-labels", labels)
    _write_idx(tmp_path / "test-images", images[:2])
    _write_idx(tmp_path / "test-labels", labels[:2])
    folder = tmp_path / "mnist"
    written = write_preprocessed(folder, gz, tmp_path / "train-labels", validate_size=1)
    written += write_preprocessed(folder, tmp_path / "test-images", tmp_path / "test-labels", split="test")
    assert sorted(p.name for p in written) == sorted(f"mnist-simple-{d}-{s}.csv.gz" for d in (0, 1) for s in ("train", "validate", "test"))
    values, read_labels = preprocess_idx(gz, tmp_path / "train-labels")
    assert read_labels.tolist() == labels.tolist()
    assert _csv(folder, "mnist-simple-1-validate.csv.gz") == [values[1].tolist()]
    assert _csv(folder, "mnist-simple-0-train.csv.gz") == [values[2].tolist(), values[4].tolist()]
    task = MNISTPixels((0, 1), folder=folder)
    train = task.dataset("train")
    assert train.tokens[:, 0].tolist() == [v >> 1 for v in values[2][:99].tolist()]  # scanlines 0 and 1
    assert train.labels.tolist() == [0, 0, 1, 1]
    assert task.batch(4, _gen(), split="validate").tokens[:, 1].tolist() == [v >> 1 for v in values[1][:99].tolist()]
    with pytest.raises(ValueError, match=r"labels must have shape \(6,\); got \(2,\)"):
        preprocess_idx(gz, tmp_path / "test-labels")
    with pytest.raises(ValueError, match="split must be 'train' or 'test'; got 'validate'"):
        write_preprocessed(folder, gz, tmp_path / "train-labels", split="validate")


def test_bad_csv(tmp_path):
    for split in ("train", "validate", "test"):
        for d in (0, 1):
            with gzip.open(tmp_path / f"mnist-simple-{d}-{split}.csv.gz", "wt") as handle:
                handle.write(",".join(["8"] * 100) + "\n")
    with pytest.raises(ValueError, match=r"mnist-simple-0-test.csv.gz must hold rows of 100 ints 0..7; got shape \(1, 100\), values 8..8"):
        MNISTPixels(folder=tmp_path).dataset("test")
