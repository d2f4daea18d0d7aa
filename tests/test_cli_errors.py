"""Bad input to the `qrnn` command line, table-driven: every case ends with a nonzero exit status
and exactly one error line on stderr that says what was wrong, never a traceback. Run in-process
through ``pennylane_qrnn.cli.main``."""

import importlib.util
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pennylane_qrnn.cli import main
from pennylane_qrnn.training import TrainConfig, Trainer
from tests.cli_flags import TINY_TRAIN_CONFIG, TINY_TRAIN_FLAGS
from tests.planted_files import plant

TINY_FLAGS = TINY_TRAIN_FLAGS
TINY = TINY_TRAIN_CONFIG


def _has(module):
    return importlib.util.find_spec(module) is not None


def _device_installed(name):
    from pennylane_qrnn.devices.catalogue import installed_devices

    return name in installed_devices()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A finished tiny run, and broken variants of its files."""
    root = tmp_path_factory.mktemp("files")
    run = root / "run"
    Trainer(TrainConfig(**TINY), run).run(progress=False)
    model = run / "model.pt"
    saved = torch.load(model, weights_only=True)
    paths = {"run": run, "model": model, "root": root, "afile": root / "afile.txt"}
    paths["afile"].write_text("a file, not a folder")

    nan = {**saved, "model": {k: v * math.nan for k, v in saved["model"].items()}}
    torch.save(nan, root / "nan.pt")
    mismatch = {**saved, "config": {**saved["config"], "workspace": 2}}
    torch.save(mismatch, root / "mismatch.pt")
    unknown = {**saved, "config": {**saved["config"], "colour": "blue"}}
    torch.save(unknown, root / "unknown.pt")
    torch.save({"weights": torch.zeros(3)}, root / "foreign.pt")
    torch.save([1, 2, 3], root / "list.pt")
    no_weights = {**saved, "model": {"input_weights": "not a tensor"}}
    torch.save(no_weights, root / "noweights.pt")
    for kind in (
        "torchscript",
        "plain-zip",
        "zip-os-system",
        "pickle-os-system",
        "truncated-zip",
        "empty",
        "random-bytes",
    ):
        plant(kind, root / f"{kind}.pt", root / "sentinel", model)
    torch.save({"epoch": 1}, root / "legacy-foreign.tar", _use_new_zipfile_serialization=False)

    # run folders whose checkpoint.pt is broken, for --resume
    for name in (
        "torchscript",
        "truncated-zip",
        "empty",
        "random-bytes",
        "foreign",
        "nan",
        "mismatch",
        "list",
    ):
        folder = root / f"resume-{name}"
        folder.mkdir()
        shutil.copy(root / f"{name}.pt", folder / "checkpoint.pt")
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
    bad_generator = {**checkpoint, "data_generator": torch.zeros(3, dtype=torch.uint8)}
    (root / "resume-generator").mkdir()
    torch.save(bad_generator, root / "resume-generator" / "checkpoint.pt")
    bad_history = {**checkpoint, "history": "{not json"}
    (root / "resume-history").mkdir()
    torch.save(bad_history, root / "resume-history" / "checkpoint.pt")
    return paths


no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
needs_proc = pytest.mark.skipif(
    not Path("/proc/self").is_dir(), reason="needs /proc (a folder nobody can write)"
)


def case(argv, pattern, *marks, id=None):
    return pytest.param(argv, pattern, marks=marks, id=id)


CASES = [
    # -- train: flags
    case(["train", "--quiet"], r"--task is required"),
    case(["train", "--task", "nope", "--quiet"], r"task must be one of"),
    case(["train", *TINY_FLAGS, "--steps", "0"], r"steps must be an int >= 1; got 0"),
    case(
        ["train", *TINY_FLAGS, "--batch-size", "-3"],
        r"batch-size must be an int >= 1; got -3",
    ),
    case(["train", *TINY_FLAGS, "--eval-every", "0"], r"eval-every must be an int >= 1; got 0"),
    case(
        ["train", *TINY_FLAGS, "--checkpoint-every", "0"],
        r"checkpoint-every must be an int >= 1; got 0",
    ),
    case(["train", *TINY_FLAGS, "--lr", "-1"], r"lr must be a finite number > 0; got -1.0"),
    case(["train", *TINY_FLAGS, "--lr", "nan"], r"lr must be a finite number; got nan"),
    case(["train", *TINY_FLAGS, "--lr", "inf"], r"lr must be a finite number; got inf"),
    case(["train", *TINY_FLAGS, "--seed", "-1"], r"seed must be an int >= 0; got -1"),
    case(["train", *TINY_FLAGS, "--stages", "-1"], r"stages must be an int >= 0; got -1"),
    case(["train", *TINY_FLAGS, "--degree", "0"], r"degree must be .*1; got 0"),
    case(["train", *TINY_FLAGS, "--order", "0"], r"order must be .*1; got 0"),
    case(["train", *TINY_FLAGS, "--length", "0"], r"length must be .*; got 0"),
    case(["train", *TINY_FLAGS, "--workspace", "0"], r"workspace must be an int >= 1; got 0"),
    case(
        ["train", "--task", "elman-xor", "--workspace", "40", "--quiet", "--out", "{root}/w40"],
        r"(memory|GiB|workspace)",
    ),
    case(
        [
            "train",
            "--task",
            "dna",
            "--model",
            "qrnn",
            "--hidden",
            "4",
            "--quiet",
            "--out",
            "{root}/h",
        ],
        r"hidden is for the classical baselines",
    ),
    case(
        ["train", *TINY_FLAGS, "--model", "lstm", "--hidden", "0", "--out", "{root}/h0"],
        r"hidden_size must be .*; got 0",
    ),
    case(
        ["train", *TINY_FLAGS, "--torch-device", "banana"],
        r"torch-device must be a torch device such as 'cpu' or 'cuda'; got 'banana'",
    ),
    case(
        ["train", *TINY_FLAGS, "--torch-device", "cuda"],
        r"torch-device 'cuda' needs a CUDA GPU",
        no_cuda,
    ),
    # -- train: devices
    case(
        ["train", *TINY_FLAGS, "--device", "no.such.device"],
        r"--device must be one of \('exact', .*'default.qubit'.*; got 'no.such.device'",
    ),
    case(
        [
            "train",
            *TINY_FLAGS,
            "--device",
            "qiskit.aer",
            "--mode",
            "amplified",
            "--out",
            "{root}/aer",
        ],
        r"device must give gradients to train on; 'qiskit.aer' runs the model on "
        r"shots.*optim\.SPSA",
        pytest.mark.skipif(not _has("pennylane_qiskit"), reason="pennylane-qiskit not installed"),
    ),
    case(
        [
            "train",
            *TINY_FLAGS,
            "--device",
            "qiskit.remote",
            "--mode",
            "amplified",
            "--out",
            "{root}/remote",
        ],
        r"qiskit.remote also needs an IBM backend: .*backend=",
        pytest.mark.skipif(not _has("pennylane_qiskit"), reason="pennylane-qiskit not installed"),
    ),
    case(
        [
            "train",
            *TINY_FLAGS,
            "--device",
            "braket.aws.qubit",
            "--mode",
            "amplified",
            "--out",
            "{root}/aws",
        ],
        r"device must give gradients to train on; 'braket.aws.qubit'",
        pytest.mark.skipif(
            not _has("braket.pennylane_plugin"), reason="braket plugin not installed"
        ),
    ),
    case(
        [
            "train",
            *TINY_FLAGS,
            "--device",
            "braket.local.qubit",
            "--mode",
            "amplified",
            "--out",
            "{root}/braket",
        ],
        r"device must give gradients to train on; 'braket.local.qubit'",
        pytest.mark.skipif(
            not _has("braket.pennylane_plugin"), reason="braket plugin not installed"
        ),
    ),
    case(
        ["train", *TINY_FLAGS, "--device", "default.mixed", "--out", "{root}/mixed"],
        r"device must give gradients to train on",
    ),
    case(
        [
            "train",
            *TINY_FLAGS,
            "--model",
            "rnn",
            "--device",
            "default.qubit",
            "--out",
            "{root}/rnn",
        ],
        r"device must be 'exact' for a classical baseline \(model 'rnn' runs on torch\); got "
        r"'default.qubit'",
    ),
    case(["train", *TINY_FLAGS, "--out", ""], r"--out must name a folder; got an empty string"),
    case(
        [
            "train",
            *TINY_FLAGS,
            "--device",
            "default.qubit",
            "--protocol",
            "measured",
            "--out",
            "{root}/dq",
        ],
        r"protocol must be 'teacher-forced' to train on device 'default.qubit'",
    ),
    # -- train: the output folder
    case(
        ["train", *TINY_FLAGS, "--steps", "2", "--out", "{afile}"],
        r"--out must be a folder; got .*, which is a file",
    ),
    case(
        ["train", *TINY_FLAGS, "--steps", "2", "--out", "/proc/qrnn-cannot-write/run"],
        r"out must be a folder this user can write",
        needs_proc,
    ),
    case(
        ["train", *TINY_FLAGS, "--steps", "2", "--out", "{run}"],
        r"--out .* already holds a run \(checkpoint.pt, model.pt.*--resume",
    ),
    case(
        [
            "train",
            *TINY_FLAGS,
            "--optimizer",
            "sgd",
            "--lr",
            "1e38",
            "--steps",
            "50",
            "--out",
            "{root}/sgd",
        ],
        r"training stopped at step \d+: .* must (be|stay) finite.*Lower the learning rate",
    ),
    # -- train --resume
    case(["train", "--resume", "--quiet"], r"--resume needs --out"),
    case(
        ["train", "--resume", "--quiet", "--out", "/nonexistent/run"],
        r"--resume needs a checkpoint at",
    ),
    case(
        ["train", "--resume", "--quiet", "--out", "{root}/resume-torchscript"],
        r"checkpoint must be .*TorchScript archive.*refused",
    ),
    case(
        ["train", "--resume", "--quiet", "--out", "{root}/resume-truncated-zip"],
        r"truncated or corrupt zip archive",
    ),
    case(["train", "--resume", "--quiet", "--out", "{root}/resume-empty"], r"is empty: refused"),
    case(
        ["train", "--resume", "--quiet", "--out", "{root}/resume-random-bytes"],
        r"is not a torch.save file: refused",
    ),
    case(
        ["train", "--resume", "--quiet", "--out", "{root}/resume-foreign"],
        r"has no 'config' of type dict",
    ),
    case(["train", "--resume", "--quiet", "--out", "{root}/resume-list"], r"holds a list"),
    case(
        ["train", "--resume", "--quiet", "--out", "{root}/resume-nan"],
        r"(has no 'optimizer'|must hold finite weights)",
    ),
    case(
        ["train", "--resume", "--quiet", "--out", "{root}/resume-generator"],
        r"must hold the optimiser, generator and history of its own run",
    ),
    case(
        ["train", "--resume", "--quiet", "--out", "{root}/resume-history"],
        r"must hold the optimiser, generator and history of its own run",
    ),
    case(
        ["train", "--resume", "--quiet", "--out", "{run}", "--task", "dna"],
        r"task must match the run being resumed \('elman-xor'.*got 'dna'",
    ),
    case(
        ["train", "--resume", "--quiet", "--out", "{run}", "--workspace", "3"],
        r"workspace must match the run being resumed \(1 .*got 3",
    ),
    case(
        ["train", "--resume", "--quiet", "--out", "{run}", "--mode", "amplified"],
        r"mode must match the run being resumed",
    ),
    case(
        ["train", "--resume", "--quiet", "--out", "{run}", "--lr", "0.5"],
        r"lr must match the run being resumed",
    ),
    case(
        ["train", "--resume", "--quiet", "--out", "{run}", "--steps", "1"],
        r"steps must be at least the 2 steps .*; got 1",
    ),
    # -- eval
    case(
        ["eval", "/nonexistent/model.pt"],
        r"model must be a model file written by `qrnn train`.*\(no such file\)",
    ),
    case(["eval", "{run}"], r"model must be a model file .*\(a folder\)"),
    case(["eval", "{root}/empty.pt"], r"is empty: refused"),
    case(["eval", "{root}/truncated-zip.pt"], r"truncated or corrupt zip archive: refused"),
    case(["eval", "{run}/metrics.csv"], r"is not a torch.save file: refused"),
    case(
        ["eval", "{root}/torchscript.pt"],
        r"TorchScript archive \(loading it would run the code it holds\): refused",
    ),
    case(["eval", "{root}/plain-zip.pt"], r"a zip archive that torch.save did not write: refused"),
    case(
        ["eval", "{root}/zip-os-system.pt"],
        r"could not read .*: it (holds|names) Python objects other than tensors",
    ),
    case(["eval", "{root}/pickle-os-system.pt"], r"is a legacy pickle .*: refused"),
    case(["eval", "{root}/legacy-foreign.tar"], r"is a legacy pickle .*: refused"),
    case(["eval", "{root}/foreign.pt"], r"has no 'config' of type dict"),
    case(["eval", "{root}/noweights.pt"], r"weights in .* are not a dict of tensors"),
    case(["eval", "{root}/nan.pt"], r"must hold finite weights; \w+ holds NaN or infinity"),
    case(["eval", "{root}/mismatch.pt"], r"weights in .* must fit the model its config describes"),
    case(
        ["eval", "{root}/unknown.pt"],
        r"must hold a `qrnn train` config; got unknown fields 'colour'",
    ),
    case(["eval", "{model}", "--seeds", "0"], r"--seeds must be an int >= 1; got 0"),
    case(["eval", "{model}", "--batches", "0"], r"--batches must be an int >= 1; got 0"),
    case(["eval", "{model}", "--batches", "-2"], r"--batches must be an int >= 1; got -2"),
    case(["eval", "{model}", "--batch-size", "0"], r"--batch-size must be an int >= 1; got 0"),
    case(["eval", "{model}", "--full"], r"--full needs a task with a fixed dataset"),
    # -- sample
    case(
        ["sample", "/nonexistent/model.pt"], r"model must be a model file written by `qrnn train`"
    ),
    case(["sample", "{root}/torchscript.pt"], r"TorchScript archive .*: refused"),
    case(["sample", "{root}/nan.pt"], r"must hold finite weights"),
    case(["sample", "{model}", "--count", "0"], r"--count must be an int >= 1; got 0"),
    case(["sample", "{model}", "--steps", "-1"], r"steps must be an int >= 0; got -1"),
    case(
        ["sample", "{model}", "--prefix", "0,9"],
        r"--prefix tokens must lie in \[0, 3\] for elman-xor; got '0,9'",
    ),
    case(["sample", "{model}", "--prefix", "a,b"], r"--prefix must be comma-separated integers"),
    case(["sample", "{model}", "--prefix", ","], r"--prefix must hold at least one token"),
    case(["sample", "{model}", "--png", "{root}/samples.png"], r"--png is for the digit tasks"),
    case(
        ["sample", "{model}", "--png", "/nonexistent/folder/x.png"],
        r"--png must be a file in an existing folder",
    ),
    # -- import-rvqe
    case(
        ["import-rvqe", "/nonexistent/ref.tar", "--out", "{root}/ref.pt"],
        r"checkpoint must be an RVQE checkpoint .*no such file",
    ),
    case(
        ["import-rvqe", "{model}", "--out", "{root}/ref.pt"],
        r"is a torch.save zip archive: refused",
    ),
    case(
        ["import-rvqe", "{root}/torchscript.pt", "--out", "{root}/ref.pt"],
        r"TorchScript archive .*: refused",
    ),
    case(["import-rvqe", "{root}/empty.pt", "--out", "{root}/ref.pt"], r"is empty: refused"),
    case(
        ["import-rvqe", "{root}/pickle-os-system.pt", "--out", "{root}/ref.pt"],
        r"could not read .*Invalid magic number",
    ),
    case(
        ["import-rvqe", "{root}/legacy-foreign.tar", "--out", "{root}/ref.pt"],
        r"must hold 'model_state_dict' and '_original_args'",
    ),
    case(
        ["import-rvqe", "{root}/legacy-foreign.tar", "--out", "{root}"],
        r"--out must be a model file to write; got .*, which is a folder",
    ),
]


@pytest.mark.parametrize("argv, pattern", CASES)
def test_bad_input_one_line_nonzero_no_traceback(files, argv, pattern, capsys):
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in argv]
    before = {p: p.stat().st_mtime_ns for p in files["run"].iterdir()}
    status = main(argv)
    err = capsys.readouterr().err
    assert status != 0
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    assert errors[0].startswith(f"qrnn {argv[0]}: error: "), errors[0]
    assert re.search(pattern, errors[0]), errors[0]
    # nothing in the finished run changed
    assert {p: p.stat().st_mtime_ns for p in files["run"].iterdir()} == before
    assert not (files["root"] / "sentinel").exists()


def test_table_size():
    assert len(CASES) >= 60


def test_argparse_errors_are_one_usage_line():
    result = subprocess.run(
        [sys.executable, "-m", "pennylane_qrnn", "train", "--task", "elman-xor", "--steps", "many"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        result.returncode == 2
        and "invalid int value" in result.stderr
        and "Traceback" not in result.stderr
    )


def test_eval_json_is_valid_json_with_one_seed(files, capsys):
    """One seed has no error bar: JSON gets null (not NaN, which is not JSON), text gets no
    '+- nan'."""
    assert main(["eval", str(files["model"]), "--batches", "1", "--seeds", "1", "--json"]) == 0
    text = capsys.readouterr().out

    def refuse(constant):
        raise AssertionError(f"invalid JSON constant {constant}")

    result = json.loads(text, parse_constant=refuse)
    assert result["accuracy_sampled_stderr"] is None and 0 <= result["accuracy_sampled_mean"] <= 1
    assert main(["eval", str(files["model"]), "--batches", "1", "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out.lower() and "1 seed: no error bar" in out
    assert main(["eval", str(files["model"]), "--batches", "1", "--seeds", "2"]) == 0
    assert re.search(r"\+- \d+\.\d\d % over 2 seeds", capsys.readouterr().out)


def _project_errors():
    from pennylane_qrnn import errors
    from pennylane_qrnn.devices.braket import MissingCredentialsError
    from pennylane_qrnn.devices.capabilities import DeviceCapabilityError
    from pennylane_qrnn.devices.resources import BudgetExceededError
    from pennylane_qrnn.rvqe import RVQEImportError

    found = [
        MissingCredentialsError,
        DeviceCapabilityError,
        BudgetExceededError,
        RVQEImportError,
    ]
    found += [
        getattr(errors, name)
        for name in errors.__all__
        if isinstance(getattr(errors, name), type)
        and issubclass(getattr(errors, name), errors.QRNNError)
    ]
    return found + [PermissionError, FileNotFoundError]


@pytest.mark.parametrize("error", _project_errors(), ids=lambda e: e.__name__)
def test_every_project_error_is_one_line(files, monkeypatch, capsys, error):
    """Wherever a deliberate refusal comes from (credentials, budget, size, shots, files), the
    command line reports it in one line with status 2."""
    import pennylane_qrnn.training as training

    def refuse(*args, **kwargs):
        raise error("what was wrong\nand what to do")

    monkeypatch.setattr(training, "load_trained_model", refuse)
    assert main(["eval", str(files["model"])]) == 2
    err = capsys.readouterr().err
    assert err == "qrnn eval: error: what was wrong and what to do\n"


@pytest.mark.parametrize("error", [ValueError, TypeError, RuntimeError, KeyError, AssertionError])
def test_other_errors_are_bugs_and_keep_their_traceback(files, monkeypatch, error):
    import pennylane_qrnn.training as training

    def broken(*args, **kwargs):
        raise error("an internal bug")

    monkeypatch.setattr(training, "load_trained_model", broken)
    with pytest.raises(error, match="an internal bug"):
        main(["eval", str(files["model"])])
