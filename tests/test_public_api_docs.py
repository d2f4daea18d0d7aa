"""Every public name is documented in PennyLane's docstring style (issue 11, item 1).

"Public" is every class and function named in an ``__all__`` of the package or of one of the
modules below. Each must have a docstring with an ``Args:`` section when it takes arguments
(a dataclass may call it ``Attributes:``: its fields are its arguments), naming every argument
and only arguments its signature has (mkdocstrings/griffe warns about the others, and the
documentation site builds with warnings as errors), and at least one ``>>>`` example (for a class,
in the class docstring). tests/test_doctests.py runs the examples.
"""

import dataclasses
import functools
import importlib
import inspect
import re

import pytest

#: the modules whose ``__all__`` is the public API
MODULES = [
    "pennylane_qrnn",
    "pennylane_qrnn.templates",
    "pennylane_qrnn.nn",
    "pennylane_qrnn.engine",
    "pennylane_qrnn.executors",
    "pennylane_qrnn.protocols",
    "pennylane_qrnn.results",
    "pennylane_qrnn.layout",
    "pennylane_qrnn.neuron",
    "pennylane_qrnn.encoding",
    "pennylane_qrnn.tasks",
    "pennylane_qrnn.devices",
    "pennylane_qrnn.training",
    "pennylane_qrnn.evaluation",
    "pennylane_qrnn.optim",
    "pennylane_qrnn.baselines",
    "pennylane_qrnn.checkpoints",
    "pennylane_qrnn.errors",
    "pennylane_qrnn.rvqe",
    "pennylane_qrnn.cli",
]

#: left out for now: their modules are being rewritten by other work (the engine for
#: torch.compile, the trainer for batched hardware submission), whose docstrings gain their
#: examples there; remove a name from here once its docstring has one
LEFT_OUT = {
    "pennylane_qrnn.training.Trainer",
}

#: ``Args:`` entries: ``name (type): meaning`` or ``name: meaning`` at the section's first indent
_ARG = re.compile(r"^(\*{0,2}[A-Za-z_][A-Za-z0-9_]*)(?: \(.*\))?:(?:\s|$)")


def _is_public_callable(obj):
    return (
        inspect.isclass(obj)
        or inspect.isfunction(obj)
        or isinstance(obj, functools._lru_cache_wrapper)
    )


def _public_names():
    """``(qualified name, object)`` for each public class or function, each object once."""
    seen, names = set(), []
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if not _is_public_callable(obj) or id(obj) in seen:
                continue
            if f"{module_name}.{name}" in LEFT_OUT:
                continue
            seen.add(id(obj))
            names.append((f"{module_name}.{name}", obj))
    return names


PUBLIC = _public_names()


def _parameters(obj):
    """The argument names a user passes (none for exceptions, which take a message)."""
    if inspect.isclass(obj) and issubclass(obj, BaseException):
        return []
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    return [
        ("*" * (p.kind == p.VAR_POSITIONAL) + "**" * (p.kind == p.VAR_KEYWORD)) + p.name
        for p in signature.parameters.values()
        if p.name not in ("self", "cls")
    ]


def _documented_arguments(doc, headings=("Args:",)):
    """The names in the docstring's first section among ``headings`` (None when it has none)."""
    lines = doc.splitlines()
    starts = [lines.index(heading) for heading in headings if heading in lines]
    if not starts:
        return None
    start = min(starts)
    names, indent = [], None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        width = len(line) - len(line.lstrip())
        if width == 0:
            break
        indent = width if indent is None else indent
        if width == indent:
            match = _ARG.match(line.strip())
            assert match, f"Args: entry not in the form 'name (type): meaning': {line.strip()!r}"
            names.append(match.group(1))
    return names


def test_the_public_api_is_large():
    """The walk finds the package's names (a broken walk would make the tests below vacuous)."""
    assert len(PUBLIC) > 90
    assert {"QRNN", "QuantumNeuron", "CellLayout", "evaluate"} <= {
        qualified.rsplit(".", 1)[1] for qualified, _ in PUBLIC
    }


@pytest.mark.parametrize("qualified, obj", [pytest.param(*item, id=item[0]) for item in PUBLIC])
def test_public_name_is_documented(qualified, obj):
    doc = inspect.getdoc(obj)
    assert doc, f"{qualified} has no docstring"
    assert ">>>" in doc, f"{qualified}'s docstring has no '>>>' example"
    parameters = _parameters(obj)
    headings = ("Args:", "Attributes:") if dataclasses.is_dataclass(obj) else ("Args:",)
    documented = _documented_arguments(doc, headings)
    if parameters:
        assert documented is not None, f"{qualified} takes {parameters} but has no Args: section"
        unknown = [name for name in documented if name not in parameters]
        assert not unknown, f"{qualified} documents {unknown}, not in its signature {parameters}"
        missing = [name for name in parameters if name not in documented]
        assert not missing, f"{qualified}'s Args: section lacks {missing}"
