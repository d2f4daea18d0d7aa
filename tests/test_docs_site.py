"""The documentation site's configuration: every page in the navigation exists, every
``::: module`` in the API pages names an importable module, and the docstring converter keeps
its promises. Fast (no build); ``bash scripts/docs`` builds the site strictly in CI."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs", reason="the `docs` extra (mkdocs) is not installed")
yaml = pytest.importorskip("yaml", reason="PyYAML (installed with mkdocs) is missing")

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _config() -> dict:
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text())


def _nav_pages(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [page for item in node for page in _nav_pages(item)]
    if isinstance(node, dict):
        return [page for value in node.values() for page in _nav_pages(value)]
    return []


def test_nav_lists_only_existing_pages():
    pages = _nav_pages(_config()["nav"])
    assert len(pages) >= 20, pages
    missing = [page for page in pages if not (DOCS / page).is_file()]
    assert not missing, f"mkdocs.yml's nav names missing pages: {missing}"
    assert len(set(pages)) == len(pages), "a page is listed twice in the nav"


def test_every_markdown_page_is_in_the_nav():
    pages = set(_nav_pages(_config()["nav"]))
    on_disk = {
        str(path.relative_to(DOCS))
        for path in DOCS.rglob("*.md")
        if path.relative_to(DOCS).parts[0] not in {"hooks", "results"}
    }
    assert on_disk - pages == set(), f"pages outside the nav: {sorted(on_disk - pages)}"


def test_every_api_directive_names_an_importable_module():
    directives = []
    for page in sorted((DOCS / "api").glob("*.md")):
        directives += re.findall(r"^::: *([\w.]+) *$", page.read_text(), re.M)
    assert "pennylane_qrnn" in directives and "pennylane_qrnn.templates" in directives
    for name in directives:
        assert importlib.util.find_spec(name) is not None, f"docs/api names {name}"
        assert importlib.import_module(name).__doc__, f"{name} has no module docstring"


def test_hooks_and_changelog_are_wired():
    config = _config()
    assert config.get("strict") is True
    for hook in config["hooks"]:
        assert (ROOT / hook).is_file(), hook
    assert (DOCS / "changelog.md").read_text().strip() == '--8<-- "CHANGELOG.md"'


def test_docstring_converter():
    sys.path.insert(0, str(DOCS / "hooks"))
    try:
        griffe_rst = importlib.import_module("griffe_rst")
    finally:
        sys.path.remove(str(DOCS / "hooks"))
    text = "\n".join(
        [
            "Summary with :math:`x^2` and :class:`FutureWarning`.",
            "",
            "Example::",
            "",
            "    >>> 1 + 1",
            "    2",
            "",
            "Args:",
            "    device, dtype: torch factory arguments",
        ]
    )
    out = griffe_rst.convert(text)
    assert "<math" in out and ":math:" not in out
    assert "<code>FutureWarning</code>" in out and ":class:" not in out
    assert "```pycon\n>>> 1 + 1\n2\n```" in out
    assert "    device: torch factory arguments\n    dtype: torch factory arguments" in out


def test_docstring_converter_fences_indented_doctests_and_keeps_prose_returns():
    sys.path.insert(0, str(DOCS / "hooks"))
    try:
        griffe_rst = importlib.import_module("griffe_rst")
    finally:
        sys.path.remove(str(DOCS / "hooks"))
    # a doctest indented under a paragraph is fenced at the paragraph's level, not shown as text
    out = griffe_rst.convert("A paragraph, then an example:\n\n    >>> 1\n    1")
    assert "\n```pycon\n>>> 1" in out and "    ```pycon" not in out
    # a Returns text that starts with a sentence ending in a colon is not split into a type
    out = griffe_rst.convert("Returns:\n    a thing that unpacks as x:\n    more")
    assert "&#58;" in out
