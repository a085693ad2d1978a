"""docs/SEMANTICS.md and docs/VIEWS.md: every claim names a test, and every named test exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = {ROOT / "docs" / "SEMANTICS.md": 60, ROOT / "docs" / "VIEWS.md": 8}
"""Each document and the fewest claims it has."""
TAG = re.compile(r"\[t: ([^\]:]+)::([A-Za-z_][A-Za-z0-9_]*)\]")


def _claims(doc: Path) -> list[str]:
    """The bullet points of the document (a bullet continues on indented lines)."""
    claims: list[str] = []
    for line in doc.read_text().splitlines():
        if line.startswith("- "):
            claims.append(line)
        elif line.startswith("  ") and claims:
            claims[-1] += " " + line.strip()
        elif not line.strip():
            continue
        elif claims and not line.startswith("- "):
            claims.append("")  # a paragraph ends the bullet
    return [c for c in claims if c]


def _defined(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    names |= {
        t.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    return names


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.name)
def test_every_claim_names_a_test(doc: Path) -> None:
    claims = _claims(doc)
    assert len(claims) > DOCS[doc]
    untested = [c[:80] for c in claims if not TAG.search(c)]
    assert untested == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.name)
def test_every_named_test_exists(doc: Path) -> None:
    missing = []
    for file, name in TAG.findall(doc.read_text()):
        path = ROOT / "tests" / file if "/" in file else ROOT / "tests" / "fs" / file
        if not path.exists() or name not in _defined(path):
            missing.append(f"{file}::{name}")
    assert missing == []
