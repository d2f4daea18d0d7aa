"""MkDocs hook: the site's pictures and its tutorial list, made from the code at build time.

The figures are drawn by the package itself (``qml.drawer.tape_mpl`` on the templates'
decompositions, the activation curves from :mod:`pennylane_qrnn.neuron`), written to the
git-ignored folder ``.cache/docs-figures/`` and added to the site as ``figures/*.png``, so they
always match the code. They are redrawn only when a file of the package (or this hook) changed
since the last build. ``<!-- tutorials -->`` in a page is replaced by a table of
``tutorials/*.py`` with each tutorial's title and summary.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "docs-figures"
FIGURE_DIR = CACHE / "figures"
STAMP = CACHE / "stamp.json"
SOURCE_URL = "https://github.com/pennylane-qrnn/pennylane-qrnn/blob/main/"
FIGURES = ("activation.png", "neuron.png", "cell.png")


def _source_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted((ROOT / "pennylane_qrnn").rglob("*.py")) + [Path(__file__)]:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _activation(plt: Any) -> None:
    import numpy as np

    from pennylane_qrnn import neuron

    eta = np.linspace(0.0, np.pi, 721)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(eta, eta, color="0.6", linestyle=":", label="identity (no neuron)")
    for order in (1, 2, 3):
        left.plot(eta, neuron.activation(eta, order), label=f"order {order}")
        right.plot(eta, neuron.success_probability(eta, order), label=f"order {order}")
    left.set(xlabel="pre-activation eta", ylabel="f(eta)", title="activation f(eta)")
    right.set(xlabel="pre-activation eta", ylabel="probability", title="success probability")
    for ax in (left, right):
        ax.set_xticks(np.pi * np.arange(5) / 4, ["0", "pi/4", "pi/2", "3pi/4", "pi"])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(FIGURE_DIR / "activation.png", dpi=110)
    plt.close(fig)


def _draw(ops: list[Any], wires: list[str], path: Path, measure: list[str]) -> None:
    import matplotlib.pyplot as plt
    import pennylane as qml

    class Neuron(qml.operation.Operation):
        """A drawn stand-in for a QuantumNeuron box whose label names the lane it rotates."""

        num_params = 0

        def __init__(self, text: str, wires: Any) -> None:
            self.text = text
            super().__init__(wires=wires)

        def label(self, decimals: Any = None, base_label: Any = None, cache: Any = None) -> str:
            return self.text

    drawn = [
        Neuron(f"neuron on {op.hyperparameters['target_wire'][0]}", op.wires)
        if op.name == "QuantumNeuron"
        else op
        for op in ops
    ]
    tape = qml.tape.QuantumScript(drawn, [qml.probs(wires=measure)] if measure else [])
    fig, _ = qml.drawer.tape_mpl(tape, wire_order=wires, style="pennylane", decimals=None)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _circuits() -> None:
    import numpy as np

    from pennylane_qrnn import QRNNCell, QuantumNeuron

    neuron = QuantumNeuron(
        np.array([0.3, 0.5]),
        control_wires=["x"],
        target_wire="t",
        ancilla_wires=["a"],
        degree=1,
        order=1,
    )
    _draw(neuron.decomposition(), ["x", "t", "a"], FIGURE_DIR / "neuron.png", [])
    shapes = QRNNCell.shape(io_bits=1, workspace=2, stages=1, degree=2)
    cell = QRNNCell(
        **{name: np.full(shape, 0.3) for name, shape in shapes.items()},
        token=1,
        io_wires=["io"],
        workspace_wires=["h0", "h1"],
        degree=2,
        order=1,
        mode="amplified",
    )
    _draw(cell.decomposition(), ["io", "h0", "h1"], FIGURE_DIR / "cell.png", ["io"])


def _make_figures() -> None:
    source = _source_hash()
    if STAMP.exists() and all((FIGURE_DIR / name).exists() for name in FIGURES):
        if json.loads(STAMP.read_text()).get("source") == source:
            return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    FIGURE_DIR.mkdir(parents=True, exist_ok=True)
    _activation(plt)
    _circuits()
    STAMP.write_text(json.dumps({"source": source}))


def on_files(files: Files, config: Any) -> Files:
    _make_figures()
    for name in FIGURES:
        files.append(
            File(f"figures/{name}", str(CACHE), config["site_dir"], config["use_directory_urls"])
        )
    return files


def _tutorial_summary(path: Path) -> tuple[str, str]:
    """A tutorial's title and first paragraph: its markdown cell, else its docstring."""
    text = path.read_text()
    heading = re.search(r"^# # (.+)$", text, re.M)
    if heading:
        lines = text[heading.end() :].splitlines()[2:]
        paragraph = []
        for line in lines:
            if not line.startswith("# ") or not line[2:].strip():
                break
            paragraph.append(line[2:].strip())
        summary = " ".join(paragraph)
        if not summary.endswith((".", ":")) and ". " in summary:  # cut a sentence a list continues
            summary = summary[: summary.rindex(". ") + 1]
        return heading.group(1).strip(), summary
    docstring = re.match(r'\s*"""(.+?)"""', text, re.S)
    if docstring:
        first, _, rest = docstring.group(1).strip().partition("\n")
        title, _, summary = first.partition(": ")
        return title.strip().rstrip("."), (summary or rest.strip().split("\n\n")[0]).strip()
    return path.stem, ""


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if "<!-- tutorials -->" not in markdown:
        return markdown
    rows = ["| tutorial | what it shows |", "|---|---|"]
    for path in sorted((ROOT / "tutorials").glob("*.py")):
        title, summary = _tutorial_summary(path)
        link = f"[{title}]({SOURCE_URL}tutorials/{path.name})"
        rows.append(f"| **{link}**<br>`{path.name}` | {' '.join(summary.split())} |")
    return markdown.replace("<!-- tutorials -->", "\n".join(rows))
