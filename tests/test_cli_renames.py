"""The command line after the renames of issue 9: "reference" named the author's code (now
"rvqe"), a training protocol ("teacher-forced") and an evaluation protocol ("forced-steps"). The
former spellings still work, each with one note on stderr; the choices come from the modules that
own them."""

import json
import warnings

import pytest

from pennylane_qrnn.cli import main
from pennylane_qrnn.protocols import PROTOCOLS
from pennylane_qrnn.training import LOSSES, TRAIN_PROTOCOLS
from tests.cli_flags import TINY_TRAIN_FLAGS

NOTE = "qrnn: note: {flag} {old} is deprecated: it stands for {flag} {new}"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    out = tmp_path_factory.mktemp("renames") / "run"
    assert main(["train", *TINY_TRAIN_FLAGS, "--steps", "2", "--out", str(out)]) == 0
    return out / "model.pt"


def _eval_json(capsys, model, *flags):
    assert main(["eval", str(model), "--batches", "1", "--seeds", "1", "--json", *flags]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


def test_eval_protocol_default_is_forced_steps_and_reference_still_means_it(model, capsys):
    default, err = _eval_json(capsys, model)
    assert default["protocol"] == "forced-steps" and err == ""
    explicit, _ = _eval_json(capsys, model, "--protocol", "forced-steps")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the note replaces the Python warning
        former, err = _eval_json(capsys, model, "--protocol", "reference")
    assert err.splitlines() == [NOTE.format(flag="--protocol", old="reference", new="forced-steps")]
    assert former == explicit == default


def test_eval_text_names_the_protocol(model, capsys):
    assert main(["eval", str(model), "--batches", "1", "--seeds", "1"]) == 0
    assert "protocol forced-steps" in capsys.readouterr().out


def test_train_former_names_are_stored_as_the_new_ones(tmp_path, capsys):
    out = tmp_path / "run"
    flags = ["--task", "dna-reference", "--length", "5", "--workspace", "1", "--stages", "1"]
    flags += ["--degree", "1", "--order", "1", "--batch-size", "2", "--eval-every", "2"]
    flags += ["--steps", "2", "--quiet", "--protocol", "reference", "--loss", "reference"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        assert main(["train", *flags, "--out", str(out)]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "deprecated" in line]
    assert notes == [
        NOTE.format(flag="--task", old="dna-reference", new="dna-rvqe"),
        NOTE.format(flag="--protocol", old="reference", new="teacher-forced"),
        NOTE.format(flag="--loss", old="reference", new="rvqe"),
    ]
    config = json.loads((out / "config.json").read_text())
    assert (config["task"], config["protocol"], config["loss"]) == (
        "dna-rvqe",
        "teacher-forced",
        "rvqe",
    )


@pytest.mark.parametrize(
    "argv, choices",
    [
        (["train", "--protocol", "x"], TRAIN_PROTOCOLS),
        (["train", "--loss", "x"], LOSSES),
        (["eval", "model.pt", "--protocol", "x"], tuple(PROTOCOLS)),
    ],
)
def test_choices_come_from_their_owning_modules(argv, choices, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'x'" in err
    offered = err.split("choose from", 1)[1]
    assert offered.replace("'", "").strip(" ()\n").split(", ") == list(choices)
