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
    forbidden = ("boto3", "botocore", "s3regfs.driver.s3", "s3regfs.errors")  # the mount words UserErrors
    assert _violations(_modules("fs"), forbidden) == []


def _fs_graph() -> dict[str, set[str]]:
    """fs module → the fs modules it imports (``from s3regfs.fs import paths`` included)."""
    graph: dict[str, set[str]] = {}
    for path in _modules("fs"):
        if path.stem == "__init__":
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        deps: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "s3regfs.fs":
                deps.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("s3regfs.fs."):
                deps.add(node.module.split(".")[2])
            elif isinstance(node, ast.Import):
                deps.update(a.name.split(".")[2] for a in node.names if a.name.startswith("s3regfs.fs."))
        graph[path.stem] = deps - {path.stem}
    return graph


def test_the_parts_of_the_filesystem_core_import_one_way() -> None:
    """No import cycle among ``s3regfs/fs/`` modules, and no part imports the core or the adapter."""
    graph = _fs_graph()
    assert {m for m, deps in graph.items() if "core" in deps} == {"operations"}
    assert {m for m, deps in graph.items() if "operations" in deps} == set()
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(module: str, trail: list[str]) -> None:
        if state.get(module) == 2:
            return
        if state.get(module) == 1:
            cycles.append(" -> ".join(trail[trail.index(module) :] + [module]))
            return
        state[module] = 1
        for dep in sorted(graph.get(module, ())):
            visit(dep, trail + [module])
        state[module] = 2

    for module in sorted(graph):
        visit(module, [])
    assert cycles == []


def test_only_the_adapter_and_mount_import_mfusepy() -> None:
    allowed = {PACKAGE / "fs" / "operations.py", PACKAGE / "mount.py"}
    others = [p for p in PACKAGE.rglob("*.py") if p not in allowed]
    assert _violations(others, ("mfusepy",)) == []
