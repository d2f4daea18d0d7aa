"""Hostile and broken files for the loader tests: each would leave a sentinel file behind if a
loader ran anything from it (tests/test_files.py, tests/test_cli_errors.py)."""

import builtins
import io
import os
import pickle
import zipfile
from pathlib import Path

import torch


class Exploit:
    """Unpickling this calls ``function(*arguments)``: with os.system or open, it creates the
    sentinel."""

    def __init__(self, function, arguments):
        self.function, self.arguments = function, arguments

    def __reduce__(self):
        return (self.function, self.arguments)


class _SetStateWritesFile(torch.nn.Module):
    """A TorchScript module whose ``__setstate__`` (run by ``torch.jit.load``) writes 8 bytes
    into the file it names, creating it."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def forward(self, x):
        return x

    @torch.jit.export
    def __getstate__(self) -> tuple[str, bool]:
        return (self.path, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, bool]) -> None:
        self.path = state[0]
        written = torch.from_file(state[0], shared=True, size=8, dtype=torch.uint8)
        written.fill_(80)
        # use the result, or TorchScript drops the write as dead code
        self.training = bool(written.sum() < 0) or state[1]


def torchscript_archive(path: Path, sentinel: Path) -> Path:
    torch.jit.save(torch.jit.script(_SetStateWritesFile(str(sentinel))), str(path))
    return path


def _legacy_save(obj, path: Path) -> Path:
    torch.save(obj, path, _use_new_zipfile_serialization=False, pickle_protocol=2)
    return path


def plant(kind: str, path: Path, sentinel: Path, model_file: Path | None = None) -> Path:
    """Write the hostile or broken file ``kind`` at ``path``; see :data:`KINDS`."""
    system = Exploit(os.system, (f"touch {sentinel}",))
    opener = Exploit(builtins.open, (str(sentinel), "w"))
    if kind == "torchscript":
        return torchscript_archive(path, sentinel)
    if kind == "plain-zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("readme.txt", "not a model")
        return path
    if kind == "zip-os-system":  # a torch.save zip whose data.pkl names os.system
        torch.save({"config": {"task": "elman-xor"}, "model": {}, "x": system}, path)
        return path
    if kind == "zip-open":
        torch.save({"config": opener, "model": {}}, path)
        return path
    if kind == "legacy-os-system":  # a legacy torch.save file naming os.system
        return _legacy_save(
            {"model_state_dict": {}, "_original_args": system, "config": {}, "model": {}}, path
        )
    if kind == "pickle-os-system":  # a bare pickle, protocol 4
        path.write_bytes(pickle.dumps(system, protocol=4))
        return path
    if kind == "pickle-text-open":  # a protocol-0 pickle
        path.write_bytes(pickle.dumps(opener, protocol=0))
        return path
    if kind == "truncated-zip":
        data = model_file.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path
    if kind == "truncated-legacy":
        buffer = io.BytesIO()
        torch.save(
            {"model_state_dict": {"w": torch.zeros(64)}},
            buffer,
            _use_new_zipfile_serialization=False,
        )
        path.write_bytes(buffer.getvalue()[:40])
        return path
    if kind == "empty":
        path.write_bytes(b"")
        return path
    if kind == "random-bytes":
        path.write_bytes(bytes(range(256)) * 4)
        return path
    raise ValueError(kind)


KINDS = (
    "torchscript",
    "plain-zip",
    "zip-os-system",
    "zip-open",
    "legacy-os-system",
    "pickle-os-system",
    "pickle-text-open",
    "truncated-zip",
    "truncated-legacy",
    "empty",
    "random-bytes",
)
