"""The import rules of docs/ARCHITECTURE.md, checked on the source with an AST scan."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "s3regfs"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(subdir: str) -> list[Path]:
    return sorted((PACKAGE / subdir).rglob("*.py"))


def _violations(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for path in files:
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    return bad


def test_driver_layer_knows_nothing_of_fuse_or_the_filesystem() -> None:
    forbidden = ("mfusepy", "s3regfs.fs", "s3regfs.cli", "s3regfs.mount")
    assert _violations(_modules("driver"), forbidden) == []


def test_filesystem_core_talks_only_to_the_driver_interface() -> None:
    forbidden = ("boto3", "botocore", "s3regfs.driver.s3")
    assert _violations(_modules("fs"), forbidden) == []


def test_only_the_adapter_and_mount_import_mfusepy() -> None:
    allowed = {PACKAGE / "fs" / "operations.py", PACKAGE / "mount.py"}
    others = [p for p in PACKAGE.rglob("*.py") if p not in allowed]
    assert _violations(others, ("mfusepy",)) == []
