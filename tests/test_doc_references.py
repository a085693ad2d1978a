"""Every ``§`` reference in the code, the tests and the docs names a section of docs/DRIVERS.md.

The scheme (stated at the head of DRIVERS.md's "The contract, section by section"): ``§C1``,
``§S5``, ``§W3``, ... is the section whose heading starts with that ``§`` id; a ``§`` followed by
anything else (an upstream document's ``§2.8.3``, which is not in the repository) fails.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DRIVERS = ROOT / "docs" / "DRIVERS.md"
SCANNED = ("s3regfs", "docs", "tests", "bench", "README.md")
HEADING = re.compile(r"^#+ §([A-Z]\d+)\. ", re.MULTILINE)
REFERENCE = re.compile(r"§([A-Z]\d+)\b")


def _sections() -> set[str]:
    return set(HEADING.findall(DRIVERS.read_text()))


def _files() -> list[Path]:
    files: list[Path] = []
    for name in SCANNED:
        path = ROOT / name
        files += [path] if path.is_file() else [p for p in path.rglob("*") if p.suffix in (".py", ".md")]
    return sorted(files)


def test_drivers_md_has_the_sections() -> None:
    assert {"C1", "C2", "C3", "C4", "S1", "S5", "S6", "S7", "W1", "W3", "T1", "T2"} <= _sections()


def test_every_section_reference_resolves_in_drivers_md() -> None:
    sections = _sections()
    bad: list[str] = []
    for path in _files():
        if path == Path(__file__).resolve():
            continue  # this file shows the scheme
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if path == DRIVERS and HEADING.match(line):
                continue
            for match in re.finditer("§", line):
                ref = REFERENCE.match(line, match.start())
                if ref is None or ref.group(1) not in sections:
                    bad.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert bad == [], "references to no section of docs/DRIVERS.md:\n" + "\n".join(bad)
