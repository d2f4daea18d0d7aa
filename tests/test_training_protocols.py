"""Training under a protocol (issue 9): one name per meaning, the old names still accepted with a
FutureWarning, run folders written with the old names still resume, and the checks of a config
raise TypeError for types and ValueError for values."""

import json
import warnings
from dataclasses import asdict, replace

import pytest
import torch

from pennylane_qrnn.errors import QRNNTypeError, QRNNValueError
from pennylane_qrnn.protocols import FORCED_STEPS, MEASURED, TEACHER_FORCED
from pennylane_qrnn.training import (
    LOSSES,
    TRAIN_PROTOCOLS,
    VALIDATION_PROTOCOLS,
    TrainConfig,
    Trainer,
    load_trained_model,
    reference_loss,
    rvqe_loss,
)
from tests.cli_flags import TINY_TRAIN_CONFIG

TINY = {**TINY_TRAIN_CONFIG, "checkpoint_every": 1}


def test_choice_lists_are_the_canonical_names():
    assert TRAIN_PROTOCOLS == ("teacher-forced", "measured", "qpu")
    assert VALIDATION_PROTOCOLS == ("forced-steps", "measured", "qpu")
    assert LOSSES == ("nll", "rvqe")
    assert reference_loss is rvqe_loss


@pytest.mark.parametrize(
    "protocol, validation",
    [("teacher-forced", "forced-steps"), ("measured", "measured")],
)
def test_validation_protocol_follows_the_training_protocol(protocol, validation):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = TrainConfig(**TINY, protocol=protocol).resolved()
    assert (config.protocol, config.validation_protocol) == (protocol, validation)
    assert TrainConfig(task="elman-xor").resolved().protocol == "teacher-forced"
    explicit = TrainConfig(**TINY, protocol=protocol, validation_protocol="measured").resolved()
    assert explicit.validation_protocol == "measured"


def test_protocol_objects_are_stored_by_name():
    config = TrainConfig(**TINY, protocol=MEASURED, validation_protocol=FORCED_STEPS).resolved()
    assert (config.protocol, config.validation_protocol) == ("measured", "forced-steps")


@pytest.mark.parametrize(
    "field, old, new",
    [
        ("protocol", "reference", "teacher-forced"),
        ("validation_protocol", "reference", "forced-steps"),
        ("loss", "reference", "rvqe"),
    ],
)
def test_former_names_warn_and_are_stored_canonically(field, old, new):
    with pytest.warns(FutureWarning, match="deprecated"):
        config = TrainConfig(**TINY, **{field: old}).resolved()
    assert getattr(config, field) == new
    with warnings.catch_warnings():  # resolving a resolved config warns no more
        warnings.simplefilter("error")
        assert getattr(config.resolved(), field) == new


@pytest.mark.parametrize(
    "field, value",
    [
        ("protocol", "forced-steps"),  # validation's protocol: training needs a sampled rule
        ("protocol", "nope"),
        ("validation_protocol", "teacher-forced"),  # samples nothing to score
        ("loss", "mse"),
        ("optimizer", "lbfgs"),
        ("model", "gru"),
        ("dtype", "float16"),
    ],
)
def test_choices_are_refused_with_value_error(field, value):
    with pytest.raises(QRNNValueError, match=rf"{field.replace('_', '-')} must be one of"):
        TrainConfig(**{**TINY, field: value}).resolved()


@pytest.mark.parametrize(
    "field, value, error, message",
    [
        ("steps", 0, QRNNValueError, r"steps must be an int >= 1; got 0"),
        ("steps", 2.0, QRNNTypeError, r"steps must be an int >= 1; got 2.0 \(float\)"),
        ("batch_size", True, QRNNTypeError, r"batch-size must be an int >= 1; got True"),
        ("eval_every", "2", QRNNTypeError, r"eval-every must be an int >= 1; got '2'"),
        ("stages", -1, QRNNValueError, r"stages must be an int >= 0; got -1"),
        ("seed", -1, QRNNValueError, r"seed must be an int >= 0; got -1"),
        ("seed", 0.5, QRNNTypeError, r"seed must be an int >= 0; got 0.5"),
        ("lr", 0, QRNNValueError, r"lr must be a finite number > 0; got 0.0"),
        ("lr", -1.0, QRNNValueError, r"lr must be a finite number > 0; got -1.0"),
        ("lr", float("nan"), QRNNValueError, r"lr must be a finite number; got nan"),
        ("lr", "0.1", QRNNTypeError, r"lr must be a finite number; got '0.1'"),
    ],
)
def test_numbers_are_checked_type_then_value(field, value, error, message):
    with pytest.raises(error, match=message):
        TrainConfig(**{**TINY, field: value}).resolved()


def test_teacher_forced_step_leaves_the_data_generator_to_the_batches(tmp_path):
    """Teacher forcing samples nothing: a step draws its batch from the data generator and
    nothing else (the numbers of docs/results depend on it); a measured step samples with it."""
    for protocol, sampled in (("teacher-forced", False), ("measured", True)):
        trainer = Trainer(TrainConfig(**TINY, protocol=protocol), tmp_path / protocol)
        twin = torch.Generator().set_state(trainer.data_generator.get_state())
        trainer.task.batch(trainer.config.batch_size, twin, split="train")
        with warnings.catch_warnings():  # no deprecated result attribute is read
            warnings.simplefilter("error", FutureWarning)
            metrics = trainer.train_step()
        assert 0 < metrics["min_postselection"] <= 1
        moved = not torch.equal(trainer.data_generator.get_state(), twin.get_state())
        assert moved is sampled, protocol


def test_measured_step_is_the_measured_protocol_on_the_model(tmp_path):
    trainer = Trainer(TrainConfig(**TINY, protocol="measured"), tmp_path)
    assert trainer.protocol is MEASURED and trainer.validation_protocol is MEASURED
    model_state = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    generator = torch.Generator().set_state(trainer.data_generator.get_state())
    batch = trainer.task.batch(trainer.config.batch_size, generator, split="train")
    output = trainer.model(
        batch.tokens,
        batch.targets,
        postselected=torch.zeros_like(batch.scored),
        generator=generator,
    )
    expected = trainer.model.loss(output.log_probs, batch.targets, batch.scored).item()
    trainer.model.load_state_dict(model_state)
    assert trainer.train_step()["loss"] == expected


def _rewrite_as_old_run(path):
    """Make a run file look written before the renames: protocol and loss "reference", no
    validation protocol."""
    saved = torch.load(path, weights_only=True)
    config = saved["config"]
    assert config["protocol"] == "teacher-forced" and config["loss"] == "rvqe"
    config.update(protocol="reference", loss="reference")
    del config["validation_protocol"]
    torch.save(saved, path)


def test_a_run_written_with_the_old_names_loads_and_resumes(tmp_path):
    config = TrainConfig(**{**TINY, "steps": 2, "loss": "rvqe"})
    Trainer(config, tmp_path).run(progress=False)
    for name in ("checkpoint.pt", "model.pt"):
        _rewrite_as_old_run(tmp_path / name)
    old_json = {**asdict(config), "protocol": "reference", "loss": "reference"}
    del old_json["validation_protocol"]
    (tmp_path / "config.json").write_text(json.dumps(old_json))
    with warnings.catch_warnings():  # an old file is not the user's to rename: no warning
        warnings.simplefilter("error", FutureWarning)
        _, _, loaded = load_trained_model(tmp_path / "model.pt")
        resumed = Trainer(None, tmp_path, resume=True)
    assert (loaded.protocol, loaded.loss, loaded.validation_protocol) == (
        "teacher-forced",
        "rvqe",
        "forced-steps",
    )
    assert resumed.config == loaded and resumed.step == 2
    # the resume rules compare canonical names: the old spelling, the new one and the default
    # all match the saved run
    with pytest.warns(FutureWarning):
        Trainer(replace(config, steps=3, protocol="reference"), tmp_path, resume=True)
    again = Trainer(
        replace(config, steps=3, validation_protocol="forced-steps"), tmp_path, resume=True
    )
    again.run(progress=False)
    written = json.loads((tmp_path / "config.json").read_text())
    assert (written["protocol"], written["loss"], written["validation_protocol"]) == (
        "teacher-forced",
        "rvqe",
        "forced-steps",
    )
    with pytest.raises(QRNNValueError, match="validation-protocol must match the run"):
        Trainer(replace(config, steps=4, validation_protocol="measured"), tmp_path, resume=True)


def test_a_circuit_device_trains_teacher_forced_only(tmp_path):
    with pytest.raises(QRNNValueError, match="protocol must be 'teacher-forced' to train on"):
        Trainer(TrainConfig(**TINY, protocol="measured", backend="default.qubit"), tmp_path)


def test_teacher_forced_is_the_protocol_object_of_the_default_run(tmp_path):
    trainer = Trainer(TrainConfig(**TINY), tmp_path)
    assert trainer.protocol is TEACHER_FORCED and trainer.validation_protocol is FORCED_STEPS


def test_a_task_default_in_the_former_loss_name_is_taken_silently():
    # the MNIST tasks' default loss is the reference implementation's: a default is not the
    # user's to rename, so it resolves without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        assert TrainConfig(task="mnist01").resolved().loss == "rvqe"
