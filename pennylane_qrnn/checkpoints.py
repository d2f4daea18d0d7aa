"""Reading and writing the files a user hands the program, without ever running code from them.

Every file this package reads back (``model.pt``, ``checkpoint.pt``, ``best.pt``, a reference
checkpoint) goes through :func:`load_file`, which looks at the container before anything
unpickles it:

* ``torch.load`` hands a zip archive holding ``constants.pkl`` or ``code/`` (TorchScript) to
  ``torch.jit.load``, which runs the archive's ``__setstate__``: such archives are refused here,
  whatever the caller asked for, and so is any zip that is not a ``torch.save`` archive;
* this package's own files are ``torch.save`` zip archives, read with ``weights_only=True``
  (tensors and plain containers only);
* the reference implementation's checkpoints are legacy (pre-zip) pickles, read with a
  restricted unpickler supplied by the caller (:mod:`pennylane_qrnn.rvqe`);
* empty, truncated and foreign files are refused.

Every refusal is an :class:`~pennylane_qrnn.errors.UnsafeFileError` with one line saying what the
file was expected to be and what it is.

Writes are atomic (a temporary file beside the target, renamed into place), with the permissions
an ordinary ``open`` would give (``0666`` less the umask), and :func:`remove_stale_temporaries`
deletes what a killed write left behind.
"""

from __future__ import annotations

import math
import os
import pickle
import re
import secrets
import zipfile
from collections.abc import Callable, Container, Iterable
from pathlib import Path
from typing import Any, BinaryIO

import torch

from .errors import NonFiniteError, UnsafeFileError

__all__ = [
    "file_format",
    "load_file",
    "atomic_save",
    "atomic_write_text",
    "remove_stale_temporaries",
    "check_finite_state",
]

_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"
_TORCHSCRIPT_MARKERS = ("constants.pkl", ".debug_pkl")


def _zip_format(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, ValueError, EOFError):
        return "corrupt-zip"
    parts = [name.split("/") for name in names]
    if any(p[-1] in _TORCHSCRIPT_MARKERS or "code" in p[1:-1] for p in parts):
        return "torchscript"
    roots = {p[0] for p in parts}
    data = [name for name in names if name.count("/") == 1 and name.endswith("/data.pkl")]
    if len(roots) != 1 or len(data) != 1:
        return "zip"
    return "torch-zip"


def file_format(path: str | os.PathLike[str]) -> str:
    """The container format of ``path``, read from its first bytes and (for zips) its listing.

    Returns one of ``"torch-zip"`` (a ``torch.save`` archive), ``"torchscript"`` (a
    ``torch.jit.save`` archive: loading it runs code), ``"zip"`` (any other zip archive),
    ``"corrupt-zip"`` (a zip archive too damaged to list, e.g. truncated), ``"legacy-pickle"``
    (a pre-1.6 ``torch.save`` file or another pickle of protocol 2 to 5), ``"empty"`` or
    ``"unknown"``.

    Args:
        path (str or os.PathLike): the file

    Returns:
        str: the format, one of the names above

    Raises:
        OSError: if the file cannot be read

    **Example**

    >>> import pickle, tempfile
    >>> from pathlib import Path
    >>> import torch
    >>> from pennylane_qrnn.checkpoints import file_format
    >>> folder = tempfile.TemporaryDirectory()
    >>> torch.save({"w": torch.zeros(2)}, Path(folder.name) / "weights.pt")
    >>> file_format(Path(folder.name) / "weights.pt")
    'torch-zip'
    >>> _ = (Path(folder.name) / "plain.pkl").write_bytes(pickle.dumps([1, 2]))
    >>> file_format(Path(folder.name) / "plain.pkl")
    'legacy-pickle'
    >>> folder.cleanup()
    """
    path = Path(path)
    with open(path, "rb") as stream:
        head = stream.read(4)
    if not head:
        return "empty"
    if head.startswith((_ZIP_MAGIC, _EMPTY_ZIP_MAGIC)):
        return _zip_format(path)
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "legacy-pickle"
    return "unknown"


_FORMAT_WORDS = {
    "torchscript": "a TorchScript archive (loading it would run the code it holds)",
    "zip": "a zip archive that torch.save did not write",
    "corrupt-zip": "a truncated or corrupt zip archive",
    "torch-zip": "a torch.save zip archive",
    "legacy-pickle": "a legacy pickle (torch.save before version 1.6, or plain pickle)",
    "empty": "empty",
    "unknown": "not a torch.save file",
}


def load_file(
    path: str | os.PathLike[str],
    expected: str,
    *,
    what: str = "file",
    formats: Container[str] = ("torch-zip",),
    pickle_module: Any = None,
) -> Any:
    """Load ``path`` without running code from it.

    Args:
        path (str or os.PathLike): the file
        expected (str): what the file should be, for the error message (e.g. ``"a model.pt file
            written by `qrnn train`"``)
        what (str): the file's name in the error message (``"model"``, ``"checkpoint"``)
        formats (tuple): the container formats accepted, among ``"torch-zip"`` (read with
            ``weights_only=True``) and ``"legacy-pickle"`` (read with ``pickle_module``, which must
            then be a restricted unpickler that builds no arbitrary globals)
        pickle_module (Any): the restricted pickle module for ``"legacy-pickle"``

    Returns:
        Any: the unpickled object

    Raises:
        FileNotFoundError: if ``path`` is not a file
        UnsafeFileError: if its format is not one of ``formats``, or it cannot be read as one

    **Example**

    >>> import pickle, tempfile
    >>> from pathlib import Path
    >>> import torch
    >>> from pennylane_qrnn.checkpoints import load_file
    >>> folder = tempfile.TemporaryDirectory()
    >>> torch.save({"w": torch.ones(2)}, Path(folder.name) / "weights.pt")
    >>> load_file(Path(folder.name) / "weights.pt", "a torch.save file")
    {'w': tensor([1., 1.])}
    >>> _ = (Path(folder.name) / "plain.pkl").write_bytes(pickle.dumps([1, 2]))
    >>> load_file(Path(folder.name) / "plain.pkl", "a torch.save file", what="model")
    Traceback (most recent call last):
    ...
    pennylane_qrnn.errors.UnsafeFileError: model must be a torch.save file; ... a legacy pickle ...
    >>> folder.cleanup()
    """
    path = Path(path)
    if not path.is_file():
        found = "a folder" if path.is_dir() else "no such file"
        raise FileNotFoundError(f"{what} must be {expected}; got {str(path)!r} ({found})")
    kind = file_format(path)
    if kind not in formats:
        raise UnsafeFileError(
            f"{what} must be {expected}; {str(path)!r} is {_FORMAT_WORDS[kind]}: refused"
        )
    if kind == "legacy-pickle" and pickle_module is None:
        raise UnsafeFileError(
            f"{what} must be {expected}; {str(path)!r} is {_FORMAT_WORDS[kind]}: refused"
        )
    try:
        if kind == "torch-zip":
            # weights_only=True: tensors and plain containers only; torch itself refuses TorchScript
            # here too, a second guard behind the listing check above
            return torch.load(path, map_location="cpu", weights_only=True)
        return torch.load(path, map_location="cpu", pickle_module=pickle_module, weights_only=False)
    except (
        RuntimeError,
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        OSError,
        zipfile.BadZipFile,
    ) as error:
        raise UnsafeFileError(
            f"{what} must be {expected}; could not read {str(path)!r}: {_reason(error)}"
        ) from error


def _reason(error: BaseException) -> str:
    """One line on why torch could not read a file (not torch's advice to load it unsafely)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        named = re.search(r"GLOBAL (\S+)", line)
        if named:
            return f"it names Python objects other than tensors and plain data ({named.group(1)})"
    if any("Weights only load failed" in line for line in lines):
        return "it holds Python objects other than tensors and plain data"
    return (lines[0] if lines else type(error).__name__)[:300]


def check_finite_state(state: dict[str, Any], where: str) -> None:
    """Raise :class:`NonFiniteError` if a floating tensor of ``state`` holds NaN or infinity.

    Args:
        state (dict[str, Any]): a ``state_dict`` or a dict of plain values; floating tensors and
            floats are checked, anything else is skipped
        where (str): what holds ``state``, for the message (e.g. ``"checkpoint.pt"``)

    Raises:
        NonFiniteError: a floating tensor or float that is NaN or infinite

    **Example**

    >>> import torch
    >>> from pennylane_qrnn.checkpoints import check_finite_state
    >>> check_finite_state({"w": torch.zeros(2), "step": 3}, "model")
    >>> check_finite_state({"w": torch.tensor([0.0, float("nan")])}, "model")
    Traceback (most recent call last):
    ...
    pennylane_qrnn.errors.NonFiniteError: model must hold finite weights; w holds NaN or infinity
    """
    for key, value in state.items():
        if (
            isinstance(value, torch.Tensor)
            and value.is_floating_point()
            and not bool(torch.isfinite(value).all())
        ):
            raise NonFiniteError(f"{where} must hold finite weights; {key} holds NaN or infinity")
        if isinstance(value, float) and not math.isfinite(value):
            raise NonFiniteError(f"{where} must hold finite values; {key} is {value}")


def _temporary_beside(path: Path) -> tuple[int, Path]:
    """Open a new temporary file beside ``path``; its mode is ``0666`` less the umask."""
    for _ in range(100):
        temporary = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            handle = os.open(
                temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666
            )
        except FileExistsError:
            continue
        return handle, temporary
    raise FileExistsError(f"could not create a temporary file beside {str(path)!r}")


def _atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = _temporary_beside(path)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def atomic_save(obj: object, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it into place.

    A run killed while writing leaves the old file (or none) and a ``.NAME.*.tmp`` temporary,
    never a truncated ``path``; :func:`remove_stale_temporaries` deletes the temporary.

    Args:
        obj (object): what to save (tensors and plain containers, for :func:`load_file`)
        path (str or os.PathLike): the target; missing parent folders are created

    **Example**

    >>> import tempfile
    >>> from pathlib import Path
    >>> import torch
    >>> from pennylane_qrnn.checkpoints import atomic_save, load_file
    >>> folder = tempfile.TemporaryDirectory()
    >>> atomic_save({"step": 7}, Path(folder.name) / "run" / "checkpoint.pt")
    >>> load_file(Path(folder.name) / "run" / "checkpoint.pt", "a checkpoint")
    {'step': 7}
    >>> folder.cleanup()
    """
    _atomic_write(Path(path), lambda stream: torch.save(obj, stream))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_save`).

    Args:
        path (str or os.PathLike): the target; missing parent folders are created
        text (str): the contents

    **Example**

    >>> import tempfile
    >>> from pathlib import Path
    >>> from pennylane_qrnn.checkpoints import atomic_write_text
    >>> folder = tempfile.TemporaryDirectory()
    >>> atomic_write_text(Path(folder.name) / "config.json", '{"seed": 0}')
    >>> (Path(folder.name) / "config.json").read_text()
    '{"seed": 0}'
    >>> folder.cleanup()
    """
    _atomic_write(Path(path), lambda stream: stream.write(text.encode("utf-8")))


def remove_stale_temporaries(folder: str | os.PathLike[str], names: Iterable[str]) -> list[Path]:
    """Delete the temporary files that a killed :func:`atomic_save` of one of ``names`` left in
    ``folder`` (``.NAME.*.tmp``).

    Args:
        folder (str or os.PathLike): the folder written to (nothing happens if it is missing)
        names (Iterable[str]): the file names written there with :func:`atomic_save`

    Returns:
        list[Path]: the temporaries removed

    **Example**

    >>> import tempfile
    >>> from pathlib import Path
    >>> from pennylane_qrnn.checkpoints import remove_stale_temporaries
    >>> folder = tempfile.TemporaryDirectory()
    >>> _ = (Path(folder.name) / ".model.pt.1a2b3c4d.tmp").write_bytes(b"PK")
    >>> [p.name for p in remove_stale_temporaries(folder.name, ["model.pt", "best.pt"])]
    ['.model.pt.1a2b3c4d.tmp']
    >>> folder.cleanup()
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for name in names:
        for stale in folder.glob(f".{name}.*.tmp"):
            if stale.is_file() and not stale.is_symlink():
                stale.unlink()
                removed.append(stale)
    return removed
