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


def test_views_are_wrapper_drivers_on_the_driver_interface() -> None:
    forbidden = ("mfusepy", "boto3", "botocore", "s3regfs.fs", "s3regfs.cli", "s3regfs.mount", "s3regfs.config",
                 "s3regfs.driver.s3", "s3regfs.middleware")
    assert _violations(_modules("view"), forbidden) == []


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
    """The adapter is operations.py and its stat packing (statpack.py: mfusepy's ``c_stat`` layout)."""
    allowed = {PACKAGE / "fs" / "operations.py", PACKAGE / "fs" / "statpack.py", PACKAGE / "mount.py"}
    others = [p for p in PACKAGE.rglob("*.py") if p not in allowed]
    assert _violations(others, ("mfusepy",)) == []



def test_only_the_metrics_module_imports_prometheus_client() -> None:
    """The driver and the fs layers hand what they see to observers and hooks; metrics.py turns it into metrics."""
    others = [p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "metrics.py"]
    assert _violations(others, ("prometheus_client",)) == []


def test_the_benchmark_never_imports_the_tests() -> None:
    """bench/ stands on the package alone (its counting proxy is bench/countingproxy.py): no ``tests`` import."""
    bench = sorted((PACKAGE.parent / "bench").rglob("*.py"))
    assert bench
    assert _violations(bench, ("tests",)) == []


# -- import cycles ---------------------------------------------------------------------------

FUNCTION_LEVEL_IMPORTS: dict[tuple[str, str], str] = {
    # (importing module, imported s3regfs module): why the import is deferred to the function.
    # None of them hides a cycle: test_no_import_cycles counts them as ordinary imports.
    ("s3regfs.cli", "s3regfs.mount"): "mount imports mfusepy, which loads libfuse: only `mount` needs it",
    ("s3regfs.cli", "s3regfs.check"): "a subcommand, loaded when it runs",
    ("s3regfs.cli", "s3regfs.uploads"): "a subcommand, loaded when it runs",
    ("s3regfs.cli", "s3regfs.demo.command"): "a subcommand, loaded when it runs (SeaweedFS, the demo registry)",
    ("s3regfs.cli", "s3regfs.urlcommand"): "a subcommand, loaded when it runs (the driver, the ip filter)",
    ("s3regfs.cli", "s3regfs.status"): "`mount` (the settings it shows) and `status`: the fs core's xattr name",
    ("s3regfs.mount", "s3regfs.metrics"): "prometheus_client, loaded only for a mount with -o metrics",
    ("s3regfs.config.model", "s3regfs.driver.factory"): "build_driver only; loading a configuration builds nothing",
    ("s3regfs.config.model", "s3regfs.driver.errors"): "build_driver only, with the factory",
    ("s3regfs.config.model", "s3regfs.middleware"): "only when the configuration has middleware (cryptography)",
    ("s3regfs.config.sources", "s3regfs.driver.s3.params"): "the s3 parameters are checked only for the s3 driver",
    ("s3regfs.demo.command", "s3regfs.demo.localserver"): "SeaweedFS, started only by the demo's run",
    ("s3regfs.demo.command", "s3regfs.driver.factory"): "the fallback that writes the layout through the driver",
    ("s3regfs.demo.command", "s3regfs.middleware.keys"): "cryptography, loaded when the demo runs",
    ("s3regfs.demo.command", "s3regfs.middleware.cloudfront"): "cryptography, loaded for --check only",
    ("s3regfs.demo.registry", "s3regfs.config"): "only to start the real registry (its environment)",
    ("s3regfs.middleware", "s3regfs.middleware.cloudfront"): "cryptography, loaded when a middleware is used",
}
"""Every function-level import of an s3regfs module, with its reason; a new one must be listed here.

A function-level import that exists only to avoid an import cycle does not belong here: break the
cycle instead (test_no_import_cycles counts function-level imports too).  Imports of other packages
(the standard library, boto3, cryptography) are not listed: they cannot hide a cycle of the package.
"""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """The import statements under ``if TYPE_CHECKING:`` (never executed: no cycle at run time)."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            ids.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return ids


def _function_level_nodes(tree: ast.AST) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            ids.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return ids


def _named(module: str, path: Path, node: ast.Import | ast.ImportFrom, known: set[str]) -> set[str]:
    """The s3regfs modules an import names (``from a.b import c``: ``a.b.c`` if a module, else ``a.b``)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in known}
    base = node.module or ""
    if node.level:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join(package + ([node.module] if node.module else []))
    named = {f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names}
    return named & known


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom, known: set[str]) -> set[str]:
    """The s3regfs modules an import statement loads (the enclosing packages' ``__init__`` included)."""
    loaded: set[str] = set()
    for name in _named(module, path, node, known):
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            # a module's own enclosing packages are already being imported: no edge to them
            if prefix in known and prefix != module and not module.startswith(prefix + "."):
                loaded.add(prefix)
    return loaded


def _factory_table(known: set[str]) -> set[str]:
    """The modules of the driver factory's static table (imported with importlib, invisible to ``import``)."""
    tree = ast.parse((PACKAGE / "driver" / "factory.py").read_text())
    modules: set[str] = set()
    for node in ast.walk(tree):
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(target, ast.Name) and target.id == "BUILTIN":
            assert isinstance(node, ast.AnnAssign)
            assert isinstance(node.value, ast.Dict)
            for value in node.value.values:
                assert isinstance(value, ast.Tuple) and isinstance(value.elts[0], ast.Constant)
                modules.add(str(value.elts[0].value))
    assert modules and modules <= known, modules
    return modules


def _import_graph() -> tuple[dict[str, set[str]], list[tuple[str, str, int]]]:
    """Module → the s3regfs modules it imports at run time (top level and in functions), and the latter."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(paths)
    graph: dict[str, set[str]] = {name: set() for name in paths}
    function_level: list[tuple[str, str, int]] = []
    for module, path in paths.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        skip, in_function = _type_checking_nodes(tree), _function_level_nodes(tree)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in skip:
                continue
            graph[module] |= _targets(module, path, node, known)
            if id(node) in in_function:
                named = _named(module, path, node, known)
                function_level.extend((module, target, node.lineno) for target in sorted(named))
    graph["s3regfs.driver.factory"] |= _factory_table(known)
    return graph, function_level


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (``[a, b, ..., a]``), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for succ in sorted(graph.get(node, ())):
            if state.get(succ) == 1:
                return stack[stack.index(succ):] + [succ]
            if succ not in state and (found := visit(succ)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_no_import_cycles() -> None:
    """No cycle among the package's modules, counting function-level imports and the factory's table."""
    graph, _ = _import_graph()
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_cycle_finder_sees_function_level_imports() -> None:
    """The check itself: a cycle closed by an import inside a function is found."""
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None
    tree = ast.parse("def f():\n    from s3regfs import cli\n")
    node = tree.body[0].body[0]  # type: ignore[attr-defined]
    assert id(node) in _function_level_nodes(tree)
    known = {"s3regfs", "s3regfs.cli", "s3regfs.mounthelper"}
    assert _targets("s3regfs.mounthelper", PACKAGE / "mounthelper.py", node, known) == {"s3regfs.cli"}


def test_every_function_level_import_states_its_reason() -> None:
    """A function-level import of an s3regfs module must be listed in FUNCTION_LEVEL_IMPORTS, with why."""
    _, function_level = _import_graph()
    unlisted = sorted(
        f"{importer} line {line} imports {target}"
        for importer, target, line in function_level
        if (importer, target) not in FUNCTION_LEVEL_IMPORTS
    )
    assert unlisted == [], "function-level imports not in FUNCTION_LEVEL_IMPORTS: " + "; ".join(unlisted)


def test_every_module_is_in_the_architecture_table_with_what_it_owns() -> None:
    """docs/ARCHITECTURE.md's module table names every module of the package (issue: the map matches the code)."""
    doc = (PACKAGE.parent / "docs" / "ARCHITECTURE.md").read_text()
    rows = [line for line in doc.splitlines() if line.startswith("| `")]
    listed = " ".join(row.split("|")[1] for row in rows if len(row.split("|")) > 3 and row.split("|")[2].strip())
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.endswith("/__init__.py") and rel != "middleware/__init__.py":
            continue
        if f"`{rel}`" not in listed:
            missing.append(rel)
    assert not missing, f"docs/ARCHITECTURE.md lists no row for: {missing}"
