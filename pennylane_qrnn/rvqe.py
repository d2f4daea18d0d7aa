"""Import trained models of RVQE, the paper's reference implementation (github CLEconomides/RVQE).

Its checkpoints are legacy (non-zip) ``torch.save`` files of a dict that also holds an
``argparse.Namespace`` with a reference to a function of its ``main`` script, so
``torch.load(weights_only=True)`` refuses them and ``weights_only=False`` would execute whatever
the file names. :func:`load_rvqe_checkpoint` reads them through
:func:`pennylane_qrnn.checkpoints.load_file`, which accepts only that legacy pickle format (a zip
archive, TorchScript above all, is refused before torch sees it: ``torch.load`` would hand a
TorchScript archive to ``torch.jit.load``, which runs its code), and unpickles them with a
restricted unpickler: tensors, ``OrderedDict`` and ``Namespace`` are rebuilt, every other global
becomes an inert placeholder that runs nothing.

Weight mapping (RVQE uses ``RY(a) = exp(-i a Y / 2)`` and a fixed bias offset
``initial_bias``, so its ``eta = (sum phi + theta + initial_bias) / 2``; this package uses the
paper's angles, ``R(a) = exp(i a Y)``):

* neuron ``cell.input_layer.j`` / ``cell.kernel_layer.s.(j+1)`` / ``cell.output_layer.i``:
  our bias ``(theta + initial_bias) / 2``, our monomial weights ``phi / 2`` in the same order
  (controls: workspace lanes then i/o lanes, skipping the target; subsets by size, then
  lexicographic);
* work-stage rotations ``cell.kernel_layer.s.0.θs``: ours ``θs / 2``.
"""

from __future__ import annotations

import argparse
import pickle
import types

import torch

from .checkpoints import check_finite_state, load_file
from .errors import UnsafeFileError
from .nn import QRNN
from .validation import is_int

__all__ = [
    "load_rvqe_checkpoint",
    "import_rvqe_checkpoint",
    "rvqe_task",
    "RVQEImportError",
]


class RVQEImportError(UnsafeFileError):
    """A file that is not an RVQE checkpoint this importer understands.

    An :class:`~pennylane_qrnn.errors.UnsafeFileError`, so a ``ValueError`` too.

    **Example**

    >>> from pennylane_qrnn.rvqe import RVQEImportError, rvqe_task
    >>> try:
    ...     rvqe_task("cifar")
    ... except RVQEImportError as error:
    ...     print(str(error)[:44])
    dataset must be one this package provides (m
    """


class _Inert:
    """Stands in for any global a checkpoint names that is not plain data; does nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _Inert()

    def __setstate__(self, state):
        pass

    def __repr__(self):
        return "<inert placeholder>"


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("collections", "OrderedDict"),
    ("argparse", "Namespace"),
    ("torch", "Size"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        return _Inert


_restricted_pickle = types.SimpleNamespace(
    __name__="pennylane_qrnn_restricted_pickle",
    Unpickler=_RestrictedUnpickler,
    load=lambda stream, **kwargs: _RestrictedUnpickler(stream, **kwargs).load(),
)


def load_rvqe_checkpoint(path) -> dict:
    """Read an RVQE checkpoint safely (see the module docstring).

    Returns the checkpoint dict; ``_original_args`` is an ``argparse.Namespace`` (its ``func``
    an inert placeholder).

    Args:
        path (str or Path): the checkpoint (RVQE writes ``.tar`` files)

    Returns:
        dict: the checkpoint, with ``model_state_dict`` and ``_original_args``

    Raises:
        FileNotFoundError: if ``path`` is not a file
        RVQEImportError: if it is not a readable RVQE checkpoint (a TorchScript or other
            zip archive, an empty, truncated or foreign file)

    **Example**

    A checkpoint in RVQE's format, for a 3-qubit cell:

    >>> import argparse, tempfile
    >>> from pathlib import Path
    >>> import torch
    >>> neuron = {"θ": torch.tensor(0.0), "φ": torch.zeros(1)}  # bias, one control weight
    >>> layers = ("input_layer.0", "kernel_layer.0.1", "output_layer.0")
    >>> state = {f"cell.{layer}.{k}": v for layer in layers for k, v in neuron.items()}
    >>> state["cell.kernel_layer.0.0.θs"] = torch.zeros(1)
    >>> args = argparse.Namespace(workspace=1, stages=1, order=1, degree=1,
    ...                           dataset="elman-xor", initial_bias=0.5)
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = Path(folder.name) / "rvqe.tar"
    >>> checkpoint = {"model_state_dict": state, "_original_args": args, "epoch": 7}
    >>> torch.save(checkpoint, path, _use_new_zipfile_serialization=False)  # RVQE's format
    >>> from pennylane_qrnn.rvqe import load_rvqe_checkpoint
    >>> loaded = load_rvqe_checkpoint(path)
    >>> sorted(loaded), loaded["_original_args"].workspace
    (['_original_args', 'epoch', 'model_state_dict'], 1)
    >>> folder.cleanup()
    """
    try:
        checkpoint = load_file(
            path,
            "an RVQE checkpoint (the reference implementation's), a legacy torch.save file",
            what="checkpoint",
            formats=("legacy-pickle",),
            pickle_module=_restricted_pickle,
        )
    except UnsafeFileError as error:
        raise RVQEImportError(str(error)) from error
    if (
        not isinstance(checkpoint, dict)
        or "model_state_dict" not in checkpoint
        or "_original_args" not in checkpoint
    ):
        held = (
            sorted(map(str, checkpoint))
            if isinstance(checkpoint, dict)
            else type(checkpoint).__name__
        )
        raise RVQEImportError(
            "checkpoint must hold 'model_state_dict' and '_original_args' (an RVQE training "
            f"checkpoint); {str(path)!r} holds {held}"
        )
    return checkpoint


def _kind(value) -> str:
    if isinstance(value, _Inert):
        return "an object the file names (not loaded: only tensors and plain data are)"
    return type(value).__name__


def _neuron(state, prefix, initial_bias):
    phi, theta = state[f"{prefix}.φ"], state[f"{prefix}.θ"]
    return torch.cat([((theta + initial_bias) / 2).reshape(1), phi / 2]).to(torch.float64)


def import_rvqe_checkpoint(path, dtype=torch.float64) -> tuple[QRNN, dict]:
    """Build a :class:`~pennylane_qrnn.QRNN` holding an RVQE checkpoint's trained weights.

    Args:
        path (str or Path): the checkpoint
        dtype (torch.dtype): the model's parameter dtype

    Returns:
        tuple: ``(model, info)``; ``info`` has RVQE's settings (``workspace``, ``stages``,
        ``order``, ``degree``, ``io_bits``, ``dataset``, ``initial_bias``, ``epoch``, ...)

    Raises:
        FileNotFoundError: if ``path`` is not a file
        RVQEImportError: a file :func:`load_rvqe_checkpoint` refuses, or weights that do not
            fit the settings it holds
        NonFiniteError: weights that are NaN or infinite

    **Example**

    A checkpoint in RVQE's format, for a 3-qubit cell:

    >>> import argparse, tempfile
    >>> from pathlib import Path
    >>> import torch
    >>> neuron = {"θ": torch.tensor(0.0), "φ": torch.zeros(1)}  # bias, one control weight
    >>> layers = ("input_layer.0", "kernel_layer.0.1", "output_layer.0")
    >>> state = {f"cell.{layer}.{k}": v for layer in layers for k, v in neuron.items()}
    >>> state["cell.kernel_layer.0.0.θs"] = torch.zeros(1)
    >>> args = argparse.Namespace(workspace=1, stages=1, order=1, degree=1,
    ...                           dataset="elman-xor", initial_bias=0.5)
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = Path(folder.name) / "rvqe.tar"
    >>> checkpoint = {"model_state_dict": state, "_original_args": args, "epoch": 7}
    >>> torch.save(checkpoint, path, _use_new_zipfile_serialization=False)  # RVQE's format
    >>> from pennylane_qrnn.rvqe import import_rvqe_checkpoint
    >>> model, info = import_rvqe_checkpoint(path)
    >>> model.layout
    CellLayout(io_bits=1, workspace=1, stages=1, degree=1, order=1, mode='postselect')
    >>> info["dataset"], info["epoch"]
    ('elman-xor', 7)
    >>> model.input_weights.tolist()  # bias (0 + initial_bias) / 2, then phi / 2
    [[0.25, 0.0]]
    >>> folder.cleanup()
    """
    checkpoint = load_rvqe_checkpoint(path)
    try:
        return _import(checkpoint, dtype)
    except RVQEImportError as error:
        raise RVQEImportError(
            f"checkpoint must be an RVQE checkpoint this importer reads; {str(path)!r}: {error}"
        ) from error


def _import(checkpoint, dtype):
    args = checkpoint["_original_args"]
    if not isinstance(args, argparse.Namespace):
        raise RVQEImportError(f"_original_args must be an argparse.Namespace; got {_kind(args)}")
    states = checkpoint["model_state_dict"]
    if not isinstance(states, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in states.items()
    ):
        raise RVQEImportError("model_state_dict must map names to tensors; got other objects")
    state = {key.removeprefix("module."): value for key, value in states.items()}
    settings = {}
    for key in ("workspace", "stages", "order", "degree"):
        value = getattr(args, key, None)
        if not is_int(value):
            raise RVQEImportError(f"_original_args.{key} must be an int; got {_kind(value)}")
        settings[key] = int(value)
    workspace, stages, order, degree = (
        settings[k] for k in ("workspace", "stages", "order", "degree")
    )
    io_bits = sum(1 for key in state if key.startswith("cell.output_layer.") and key.endswith(".θ"))
    if io_bits == 0:
        raise RVQEImportError("model_state_dict must hold cell.output_layer.*; none found")
    bias = getattr(args, "initial_bias", torch.pi / 2)
    if isinstance(bias, bool) or not isinstance(bias, (int, float)):
        raise RVQEImportError(f"_original_args.initial_bias must be a number; got {_kind(bias)}")
    bias = float(bias)
    model = QRNN(io_bits, workspace, stages, degree, order, dtype=dtype)
    try:
        weights = {
            "input_weights": torch.stack(
                [_neuron(state, f"cell.input_layer.{j}", bias) for j in range(workspace)]
            ),
            "rotation_weights": torch.stack(
                [state[f"cell.kernel_layer.{s}.0.θs"] / 2 for s in range(stages)]
            )
            .reshape(stages, workspace)
            .to(torch.float64),
            "stage_weights": torch.stack(
                [
                    torch.stack(
                        [
                            _neuron(state, f"cell.kernel_layer.{s}.{j + 1}", bias)
                            for j in range(workspace)
                        ]
                    )
                    for s in range(stages)
                ]
            ).reshape(stages, workspace, -1),
            "output_weights": torch.stack(
                [_neuron(state, f"cell.output_layer.{i}", bias) for i in range(io_bits)]
            ),
        }
        model.load_state_dict({k: v.to(dtype) for k, v in weights.items()})
    except (KeyError, RuntimeError) as error:
        raise RVQEImportError(
            f"model_state_dict does not match a workspace={workspace}, stages={stages}, "
            f"degree={degree} QRNN with {io_bits} i/o bits: "
            f"{str(error).splitlines()[0] if str(error) else type(error).__name__}"
        ) from error
    check_finite_state(model.state_dict(), "the RVQE checkpoint")
    info = {
        "io_bits": io_bits,
        "workspace": workspace,
        "stages": stages,
        "order": order,
        "degree": degree,
        "dataset": _plain(getattr(args, "dataset", None)),
        "initial_bias": bias,
        "epoch": _plain(checkpoint.get("epoch")),
        "best_validation_loss": _plain(checkpoint.get("best_validation_loss")),
        "seed": _plain(getattr(args, "seed", None)),
        "tag": _plain(getattr(args, "tag", None)),
    }
    return model, info


def _plain(value):
    """``value`` as plain data (a 0-d tensor becomes its number); anything else becomes None, so
    that no object a checkpoint names travels on into the files written from it."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return value if value is None or isinstance(value, (str, int, float, bool)) else None


def rvqe_task(dataset: str) -> tuple[str, dict]:
    """This package's task (name, options) for an RVQE dataset name.

    Args:
        dataset (str): the ``--dataset`` an RVQE run was trained on

    Returns:
        tuple: ``(name, options)`` for :func:`~pennylane_qrnn.tasks.get_task`

    Raises:
        RVQEImportError: for a dataset with no counterpart here

    **Example**

    >>> from pennylane_qrnn.rvqe import rvqe_task
    >>> rvqe_task("elman-letter"), rvqe_task("mnist-umap-d3-r4")
    (('elman-letters', {}), ('mnist-umap', {'dims': 3, 'resolution': 4}))
    """
    fixed = {
        "mnist01": "mnist01",
        "mnist36": "mnist36",
        "mnist01-gen": "mnist-gen",
        "simple-seq": "memorise-rvqe",
        "elman-xor": "elman-xor",
        "elman-letter": "elman-letters",
        "dna": "dna-rvqe",
    }
    if not isinstance(dataset, str):
        raise RVQEImportError(f"dataset must be an RVQE dataset name (a str); got {_kind(dataset)}")
    if dataset in fixed:
        return fixed[dataset], {}
    if dataset and dataset.startswith("mnist-umap-d"):
        try:
            dims, resolution = dataset.removeprefix("mnist-umap-d").split("-r")
            return "mnist-umap", {"dims": int(dims), "resolution": int(resolution)}
        except ValueError:
            pass  # refused below
    raise RVQEImportError(
        "dataset must be one this package provides (mnist01, mnist36, mnist01-gen, "
        f"mnist-umap-dD-rR, simple-seq, elman-xor, elman-letter, dna); got {dataset!r}"
    )
