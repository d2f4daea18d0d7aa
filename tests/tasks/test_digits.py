"""The digit tasks: encodings recomputed by hand from the files, and where the files are found.

The file formats (IDX, the paper's CSV files) are tested in test_mnist_files.py, the image
preprocessing in test_images.py, the display in test_render.py.
"""

import re
import sys

import pytest
import torch

from pennylane_qrnn.errors import DataNotFoundError, QRNNError
from pennylane_qrnn.tasks import (
    MNISTUMAP,
    TASKS,
    GenerativeDigits,
    MNISTPixels,
    SklearnDigits,
    get_task,
)
from pennylane_qrnn.tasks.digits import label_words

from .mnist_helpers import read_csv as _csv
from .mnist_helpers import words as _words
from .mnist_helpers import write_simple_files


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --- registry and labels --------------------------------------------------------------------------


def test_registry_builds_without_files(monkeypatch, tmp_path):
    monkeypatch.setenv("QRNN_MNIST_DIR", str(tmp_path / "absent"))
    expected = {
        "mnist01": 99,
        "mnist36": 99,
        "mnist-all": 99,
        "mnist-umap": 4,
        "mnist-gen": 99,
        "digits01": 63,
    }
    for name, length in expected.items():
        assert name in TASKS
        task = get_task(name)
        assert task.length == length and task.describe()["length"] == length
    assert "99.2" in get_task("mnist01").paper_result and "89.7" in get_task("mnist36").paper_result
    assert get_task("mnist-all").label_length == 2 and get_task("mnist-all").digits == tuple(
        range(10)
    )
    assert repr(get_task("mnist36")) == "MNISTPixels(digits=(3, 6))"
    d = get_task("mnist01").defaults
    assert (d.workspace, d.stages, d.degree, d.order, d.batch_size, d.lr, d.loss) == (
        8,
        2,
        2,
        2,
        100,
        0.001,
        "rvqe",
    )
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
    rows = {
        d: {tuple(_words(r[:99])) for r in _csv(mnist, f"mnist-simple-{d}-test.csv.gz")}
        for d in (0, 1)
    }
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
    rows3, rows6 = (
        _csv(mnist, "mnist-simple-3-test.csv.gz"),
        _csv(mnist, "mnist-simple-6-test.csv.gz"),
    )
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


def test_env_folder(mnist, monkeypatch, tmp_path):
    monkeypatch.setenv("QRNN_MNIST_DIR", str(mnist))
    assert MNISTPixels().batch(2, _gen(), split="test").size == 2
    monkeypatch.setenv("QRNN_MNIST_DIR", str(tmp_path))
    with pytest.raises(
        FileNotFoundError,
        match=r"set QRNN_MNIST_DIR or pass folder=\); got .* without mnist-simple-0-test",
    ):
        MNISTPixels().batch(2, split="test")


def test_no_folder(monkeypatch):
    monkeypatch.delenv("QRNN_MNIST_DIR", raising=False)
    message = (
        r"MNIST folder must hold mnist-simple-D-SPLIT.csv.gz files \(set QRNN_MNIST_DIR or "
        r"pass folder=\); got no folder"
    )
    with pytest.raises(FileNotFoundError, match=message):
        MNISTPixels().dataset("test")
    with pytest.raises(FileNotFoundError, match="mnist-umap-K-D-SPLIT.csv.gz"):
        MNISTUMAP().batch(1)


# --- where the files are found: folder=, else $QRNN_MNIST_DIR, else a clear error -----------------


def _first_token(task):
    return task.dataset("test").tokens[0, 0].item()


def test_folder_argument_then_env_var(monkeypatch, tmp_path):
    given = write_simple_files(tmp_path / "given", row=[0] * 100)  # ink: token 0
    env = write_simple_files(tmp_path / "env", row=[7] * 100)  # background: token 3
    monkeypatch.setenv("QRNN_MNIST_DIR", str(env))
    assert _first_token(MNISTPixels((0, 1), folder=given)) == 0
    assert _first_token(MNISTPixels((0, 1), folder=str(given))) == 0
    assert _first_token(MNISTPixels((0, 1))) == 3
    assert _first_token(get_task("mnist01", folder=given)) == 0


def test_no_default_folder_beside_a_checkout(monkeypatch):
    """An installed package has no data folder, so a checkout must not have one either: without
    folder= and QRNN_MNIST_DIR the task refuses (it used to read ../shared/data/mnist silently)."""
    monkeypatch.delenv("QRNN_MNIST_DIR", raising=False)
    with pytest.raises(DataNotFoundError) as caught:
        MNISTPixels((0, 1)).batch(1, split="test")
    message = str(caught.value)
    assert isinstance(caught.value, QRNNError) and isinstance(caught.value, FileNotFoundError)
    assert "got no folder (QRNN_MNIST_DIR is unset and no folder= was given)" in message
    # where to get them: the reference implementation's files, or our raw-IDX pipeline
    assert "https://github.com/CLEconomides/RVQE" in message and "RVQE/datasets/res" in message
    assert "write_preprocessed" in message and "idx3-ubyte" in message and "--data-dir" in message
    with pytest.raises(
        DataNotFoundError, match=r"mnist-umap-K-D-SPLIT.csv.gz files .* got no folder .*RVQE"
    ):
        MNISTUMAP().batch(1)


def test_missing_files_are_named_with_the_folder(monkeypatch, tmp_path):
    folder = write_simple_files(tmp_path / "half", digits=(0,), splits=("test",))
    monkeypatch.delenv("QRNN_MNIST_DIR", raising=False)
    task = MNISTPixels((0, 1, 2), folder=folder)
    expected = re.escape(
        f"got {str(folder)!r} (folder={str(folder)!r}) without mnist-simple-1-test.csv.gz, "
        "mnist-simple-2-test.csv.gz."
    )
    with pytest.raises(DataNotFoundError, match=expected):
        task.dataset("test")
    with pytest.raises(
        DataNotFoundError, match=expected
    ):  # refused again, nothing half-read was kept
        task.dataset("test")
    with pytest.raises(
        DataNotFoundError, match="mnist-simple-0-train.csv.gz, mnist-simple-1-train.csv.gz"
    ):
        task.batch(1, split="train")
    monkeypatch.setenv("QRNN_MNIST_DIR", str(folder))
    with pytest.raises(
        DataNotFoundError,
        match=re.escape(f"(QRNN_MNIST_DIR={str(folder)!r}) without mnist-simple-1-test"),
    ):
        MNISTPixels((0, 1)).dataset("test")
    monkeypatch.setenv("QRNN_MNIST_DIR", str(folder / "mnist-simple-0-test.csv.gz"))
    with pytest.raises(
        DataNotFoundError,
        match=r"QRNN_MNIST_DIR='.*mnist-simple-0-test.csv.gz', which is not a folder",
    ):
        MNISTPixels((0, 1)).dataset("test")


def test_folder_type():
    with pytest.raises(TypeError, match="folder must be a str, a path or None; got int"):
        MNISTPixels(folder=3)
    with pytest.raises(TypeError, match="folder must be a str, a path or None; got list"):
        MNISTUMAP(folder=["data"])


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: MNISTPixels(digits=(1,)),
            r"digits must be at least two distinct ints 0..9; got \(1,\)",
        ),
        (lambda: MNISTPixels(digits=(0, 0)), "digits must be at least two distinct"),
        (lambda: MNISTPixels(digits=(0, 10)), "digits must be at least two distinct"),
        (
            lambda: MNISTPixels(scanlines=(0, 3)),
            r"scanlines must be distinct values among 0, 1, 2; got \(0, 3\)",
        ),
        (lambda: MNISTPixels(scanlines=()), "scanlines must be distinct values"),
        (lambda: MNISTPixels(length=50), "length is fixed at 99 for this task; got 50"),
        (lambda: MNISTPixels().batch(0), "size must be an int >= 1; got 0"),
        (
            lambda: MNISTPixels().batch(2, split="dev"),
            r"split must be one of \('train', 'validate', 'test'\); got 'dev'",
        ),
        (
            lambda: GenerativeDigits(digits=(0, 1, 2, 3, 4)),
            "labels that fit one 2-bit word; got 5 digits",
        ),
        (lambda: MNISTUMAP(dims=5), r"dims must be one of \(2, 3, 4\); got 5"),
        (lambda: MNISTUMAP(resolution=1), r"resolution must be an int in \[2, 8\]; got 1"),
        (lambda: MNISTUMAP(resolution=9), r"resolution must be an int in \[2, 8\]; got 9"),
        (lambda: SklearnDigits(length=64), "length is fixed at 63 for this task; got 64"),
    ],
)
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- generative -----------------------------------------------------------------------------------


def test_generative_digits(mnist):
    task = GenerativeDigits((0, 1), folder=mnist)
    rows = {
        d: {tuple(_words(r[1:])) for r in _csv(mnist, f"mnist-simple-{d}-test.csv.gz")}
        for d in (0, 1)
    }
    batch = task.batch(6, _gen(4), split="test")
    assert batch.tokens.shape == (99, 6) and task.name == "mnist01-gen"
    assert batch.tokens[0].tolist() == [0, 1, 0, 1, 0, 1] == batch.labels.tolist()
    assert torch.equal(batch.tokens[1:], batch.targets[:-1])  # next-pixel prediction
    for n in range(6):
        assert tuple(batch.targets[:, n].tolist()) in rows[n % 2]
    assert batch.scored.all() and not batch.forced.any()
    assert torch.equal(batch.tokens, task.batch(6, _gen(4), split="test").tokens)


# --- scikit-learn's digits ------------------------------------------------------------------------


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
        expected = [
            2 * int(image[p // 8, p % 8] < 8) + int(image[p % 8, p // 8] < 8) for p in range(63)
        ]
        assert data.tokens[:, column].tolist() == expected
    sizes = [task.dataset(s).size for s in ("train", "validate", "test")]
    assert sum(sizes) == sum(raw.target < 2) and sizes[1] == sum(
        1 for i in range(len(raw.target)) if i % 5 == 1 and raw.target[i] < 2
    )
    batch = task.batch(5, _gen(5))
    assert batch.tokens.shape == (63, 5) and batch.targets[-1].tolist() == [0, 1, 0, 1, 0]
    assert torch.equal(batch.tokens, task.batch(5, _gen(5)).tokens) and torch.equal(
        batch.forced, ~batch.scored
    )


def test_sklearn_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(
        ImportError, match="pip install 'pennylane-qrnn\\[tasks\\]' \\(or scikit-learn\\)"
    ):
        SklearnDigits().batch(1)


# --- UMAP ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dims, resolution", [(2, 4), (3, 5), (4, 3)])
def test_mnist_umap(mnist, dims, resolution):
    task = MNISTUMAP(dims=dims, resolution=resolution, folder=mnist)
    ll = 1 if dims == 4 else 2  # 4 label bits in dims-bit words
    assert task.io_bits == dims and task.label_length == ll and task.length == resolution + ll - 2

    def encode(row):  # by hand: word t holds bit t of each coordinate, coordinate 0 first
        data = [
            sum(((x >> (7 - t)) & 1) << (dims - 1 - k) for k, x in enumerate(row))
            for t in range(resolution)
        ]
        return (data + [0] * (ll - 1))[:-1]

    data = task.dataset("validate")
    rows = [_csv(mnist, f"mnist-umap-{dims}-{d}-validate.csv.gz") for d in range(10)]
    assert data.size == sum(map(len, rows))
    for digit in (0, 9):
        start = sum(len(r) for r in rows[:digit])
        assert data.tokens[:, start].tolist() == encode(rows[digit][0])
        words = label_words(torch.tensor([digit]), 10, dims)[:, 0].tolist()
        assert data.targets[:, start].tolist() == ([0] * (resolution - 1) + words)[1:]
    assert (
        data.scored[-ll:].all()
        and not data.scored[:-ll].any()
        and torch.equal(data.forced, ~data.scored)
    )
    batch = task.batch(10, _gen(6), split="validate")
    assert batch.labels.tolist() == list(range(10)) and batch.tokens.max() < 2**dims
    assert torch.equal(batch.tokens, task.batch(10, _gen(6), split="validate").tokens)
    for n in range(10):
        assert batch.tokens[:, n].tolist() in [encode(r) for r in rows[n]]
