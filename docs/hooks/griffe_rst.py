"""A griffe extension: the package's docstrings are PennyLane-style reST inside Google sections;
this rewrites the reST parts into the Markdown that mkdocstrings renders.

* roles (``:func:`~pennylane_qrnn.neuron.activation```, ``:class:`QRNNCell```, ...) become code
  wrapped in an *optional* cross-reference: a link where the target is documented, plain code
  otherwise (never a warning);
* ``:math:`...``` and ``.. math::`` become MathML (latex2mathml), which browsers render natively,
  so the site needs no JavaScript and no CDN;
* doctest blocks (``>>>``) and ``::`` literal blocks become fenced code blocks (a doctest
  indented under a top-level paragraph, a reST block quote, is fenced at the paragraph's level);
* a ``Returns:``/``Yields:`` text whose first line is prose ending in a colon (``a
  :class:`X` that unpacks as ...:``) keeps that colon out of griffe's ``type: description`` split;
* ``.. details::`` (PennyLane's collapsible block) becomes a collapsible admonition;
* reST simple tables (``===  ===``) become Markdown tables.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe
from latex2mathml.converter import convert as latex_to_mathml

ROLE = re.compile(r":(?:py:)?(func|class|meth|attr|data|mod|exc|obj):`(~?)([^`]+)`")
MATH_ROLE = re.compile(r":math:`([^`]+)`")
TABLE_BORDER = re.compile(r"^ *=+( +=+)+ *$")
FENCE = "```"


def _mathml(tex: str, display: bool = False) -> str:
    mathml = latex_to_mathml(tex.strip(), display="block" if display else "inline")
    mathml = mathml.replace("\n", "")
    # Markdown treats <math> as a block element: inside a paragraph it must sit in a span
    return mathml if display else f'<span class="math">{mathml}</span>'


def _lookup(scope: Any, parts: list[str]) -> str | None:
    """The canonical path of ``parts`` looked up from ``scope``, or None."""
    current = scope
    for part in parts:
        members = getattr(current, "members", None)
        if members is None or part not in members:
            return None
        current = members[part]
        if current.is_alias:
            target = current.target_path
            if not target.startswith("pennylane_qrnn"):
                return None
            try:
                current = current.final_target
            except (griffe.AliasResolutionError, griffe.CyclicAliasError):  # link its import path
                return target
    return current.path


def _role(match: re.Match[str], scopes: list[Any], package: Any) -> str:
    role, tilde, target = match.groups()
    target = target.strip()
    label, _, explicit = target.partition(" <")
    if explicit:  # :func:`label <target>`
        target, shown = explicit.rstrip(">"), label
    else:
        shown = target.rsplit(".", 1)[-1] if tilde else target
    parts = target.rstrip("()").split(".")
    code = f"<code>{html.escape(shown)}</code>"
    if parts[0] == "pennylane_qrnn":
        found = _lookup(package, parts[1:])
    else:
        found = next((p for s in scopes if (p := _lookup(s, parts)) is not None), None)
    if found is None:  # outside the package (PennyLane, torch, builtins): plain code
        return code
    # an optional autoref: a link when the target is rendered anywhere, plain code otherwise
    return f'<autoref identifier="{found}" optional>{code}</autoref>'


def _scopes(obj: Any) -> list[Any]:
    """Where a bare name in ``obj``'s docstring may live: the object, its class, its module."""
    scopes: list[Any] = []
    current: Any = obj
    while current is not None:
        if current.is_class or current.is_module:
            scopes.append(current)
        current = current.parent
    return scopes


def _fence(lines: list[str]) -> list[str]:
    body = [line for line in lines]
    indent = min((len(x) - len(x.lstrip()) for x in body if x.strip()), default=0)
    body = [x[indent:] for x in body]
    while body and not body[-1].strip():
        body.pop()
    language = "pycon" if body and body[0].lstrip().startswith(">>>") else "python"
    return [f"{FENCE}{language}", *body, FENCE]


def _table(lines: list[str]) -> list[str]:
    border = lines[0]
    spans = [(m.start(), m.end()) for m in re.finditer(r"=+", border)]
    rows: list[list[str]] = []
    borders = 0
    for line in lines[1:]:
        if TABLE_BORDER.match(line):
            borders += 1
            continue
        cells = []
        for i, (start, _) in enumerate(spans):
            end = spans[i + 1][0] if i + 1 < len(spans) else len(line)
            cells.append(line[start:end].strip())
        if rows and not cells[0] and borders >= 1:
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
        else:
            rows.append(cells)
    header, body = rows[0], rows[1:]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in body]
    return ["", *out, ""]


ARGS_HEADER = re.compile(r"^( *)(Args|Arguments|Parameters):$")
RETURNS_HEADER = re.compile(r"^( *)(Returns|Yields):$")
SECTION_HEADER = re.compile(r"^[A-Z][A-Za-z ]{0,30}:$")
NAMES = r"\*{0,2}[A-Za-z_]\w*"
SHARED_ENTRY = re.compile(rf"^( +)({NAMES}(?:, *{NAMES})+)(?: *\(([^)]*)\))?: *(.*)$")


def split_shared_args(lines: list[str]) -> list[str]:
    """``device, dtype: text`` in an ``Args:`` section (PennyLane's way of describing several
    arguments at once) becomes one entry per name, each with the text, so that every entry names
    one parameter of the signature. A name list may continue on the next line after a comma."""
    out: list[str] = []
    section: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        header = ARGS_HEADER.match(line)
        if header:
            section = header.group(1) + "    "
            out.append(line)
            i += 1
            continue
        if section is not None and line.strip() and not line.startswith(section):
            section = None
        if section is not None and line.startswith(section) and line[len(section)] != " ":
            entry = line
            j = i + 1
            while entry.rstrip().endswith(",") and ":" not in entry and j < len(lines):
                entry = entry.rstrip() + " " + lines[j].strip()
                j += 1
            match = SHARED_ENTRY.match(entry)
            if match:
                indent, names, kind, text = match.groups()
                rest = []
                while j < len(lines) and lines[j].startswith(section + " "):
                    rest.append(lines[j])
                    j += 1
                for name in re.split(r", *", names):
                    typed = f"{name} ({kind})" if kind else name
                    out += [f"{indent}{typed}: {text}", *rest]
                i = j
                continue
        out.append(line)
        i += 1
    return out


def _is_type(text: str) -> bool:
    """Whether the text before a ``Returns:`` colon reads as a type (``Tensor``, ``int or None``,
    ``tuple[int, ...]``), not as prose."""
    try:
        compile(text.strip().lstrip("(").rstrip(")"), "<type>", "eval")
    except SyntaxError:
        return False
    return True


def protect_prose_returns(lines: list[str]) -> list[str]:
    """griffe reads a ``Returns:`` item as ``type: description``, split at the first colon of its
    first line. When the text before that colon is prose, not a type, the colon becomes ``&#58;``
    (it renders as a colon) so that the whole text is the description and the type comes from the
    signature."""
    out = list(lines)
    for i, line in enumerate(out):
        header = RETURNS_HEADER.match(line)
        if not header:
            continue
        j = i + 1
        while j < len(out) and not out[j].strip():
            j += 1
        if j == len(out) or not out[j].startswith(header.group(1) + " "):
            continue
        before, colon, after = out[j].partition(":")
        if colon and not _is_type(before):
            out[j] = f"{before}&#58;{after}"
    return out


def _doctest_indent(lines: list[str], i: int, indent: str) -> str:
    """The indent to fence the doctest at ``lines[i]`` with: a doctest indented under a
    top-level paragraph (a reST block quote) would be an indented code block in Markdown, so it
    is fenced at the paragraph's level; elsewhere (a section's items) at its own."""
    k = i - 1
    while k >= 0 and not lines[k].strip():
        k -= 1
    if k < 0 or not indent:
        return indent
    previous = lines[k]
    if previous[:1] != " " and not SECTION_HEADER.match(previous.strip()):
        return ""
    return indent


def convert(text: str, obj: Any = None, package: Any = None) -> str:
    """The Markdown for one reST-flavoured docstring."""
    lines = split_shared_args(text.split("\n"))
    out: list[str] = []
    i = 0
    in_fence = False
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        indent = line[: len(line) - len(line.lstrip())]
        if stripped.startswith(FENCE):
            in_fence = not in_fence
            out.append(line)
            i += 1
            continue
        if in_fence:
            out.append(line)
            i += 1
            continue
        if TABLE_BORDER.match(line):
            j = i + 1
            borders = 1
            while j < len(lines) and borders < 3:
                if TABLE_BORDER.match(lines[j]):
                    borders += 1
                j += 1
            out += [indent + x if x else x for x in _table(lines[i:j])]
            i = j
            continue
        if stripped.startswith(".. math::"):
            tex = [stripped[len(".. math::") :]]
            j = i + 1
            while j < len(lines) and (not lines[j].strip() or lines[j].startswith(indent + " ")):
                tex.append(lines[j])
                j += 1
            out += ["", indent + _mathml(" ".join(x.strip() for x in tex), display=True), ""]
            i = j
            continue
        if stripped.startswith(".. details::"):
            j = i + 1
            title = "Details"
            if j < len(lines) and lines[j].strip().startswith(":title:"):
                title = lines[j].strip()[len(":title:") :].strip()
                j += 1
            out.append(f'{indent}??? note "{title}"')
            i = j
            continue
        if stripped.startswith(">>>"):
            j = i
            while j < len(lines) and lines[j].strip():
                j += 1
            fence_indent = _doctest_indent(lines, i, indent)
            out += [fence_indent + x for x in _fence(lines[i:j])]
            i = j
            continue
        if stripped.endswith("::") and not stripped.startswith(".."):
            head = line[:-2] if stripped != "::" else ""
            if stripped == "Example::":
                head = indent + "**Example**"
            elif not head.endswith(" "):
                head += ":"
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            k = j
            while k < len(lines) and (not lines[k].strip() or lines[k].startswith(indent + " ")):
                k += 1
            out += [head.rstrip(), ""]
            out += [indent + x for x in _fence(lines[j:k])]
            out.append("")
            i = k
            continue
        out.append(line)
        i += 1
    result = "\n".join(out)
    result = MATH_ROLE.sub(lambda m: _mathml(m.group(1)), result)
    scopes = _scopes(obj) if obj is not None else []
    result = ROLE.sub(lambda m: _role(m, scopes, package), result)
    return "\n".join(protect_prose_returns(result.split("\n")))


class ReSTToMarkdown(griffe.Extension):
    """Rewrite every docstring's reST parts into Markdown once the package is loaded (so that
    cross-references can be resolved to the objects' canonical paths)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        done: set[int] = set()

        def visit(obj: Any) -> None:
            if obj.is_alias or id(obj) in done:
                return
            done.add(id(obj))
            if obj.docstring is not None:
                obj.docstring.value = convert(obj.docstring.value, obj, pkg)
            for member in obj.members.values():
                visit(member)

        visit(pkg)
