"""The package layout: the core library imports nothing from the book, and no module imports itself in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "pnc"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """Absolute names of the pnc modules ``path`` imports (anywhere, or at module level only)."""
    tree = ast.parse(path.read_text())
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rsplit(".", 1)[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("pnc")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.startswith("pnc"):
                out.add(module)
                out |= {f"{module}.{a.name}" for a in node.names}
    return out


def _known(names: set[str], modules: set[str]) -> set[str]:
    return {n for n in names if n in modules}


def test_core_imports_nothing_from_the_book() -> None:
    core = [p for p in PACKAGE.glob("*.py")]
    assert len(core) >= 15
    offenders = {p.name: sorted(n for n in _imports(p, top_level_only=False) if n.startswith("pnc.book"))
                 for p in core}
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"core modules import the book: {offenders}"


def test_no_import_circles() -> None:
    """Not at module level and not inside functions either (a deferred import hides a circle, it does not remove it).

    ``from . import metrics`` names the package and its module; the edge that counts is the one to the module.
    """
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    packages = {n for n, p in files.items() if p.name == "__init__.py"}
    graph = {name: _known(_imports(path, top_level_only=False), set(files)) - {name} - packages
             for name, path in files.items() if name not in packages}
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in graph[node]:
            if state.get(dep) == 1:
                raise AssertionError(f"import circle: {' -> '.join(stack[stack.index(dep):] + [dep])}")
            if dep not in state:
                visit(dep, [*stack, dep])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])


def test_book_modules_live_in_the_book_subpackage() -> None:
    """Every module of ``pnc/book`` (found on disk, not from a hand list) is in the book subpackage only, and the
    subpackage's index (its docstring) names each one, so a reader of ``help(pnc.book)`` finds every study."""
    import pnc.book

    book = PACKAGE / "book"
    modules = {p.stem for p in book.glob("*.py") if not p.stem.startswith("_")} | {"figures"}
    assert len(modules) >= 20
    shared = {"cli"}  # the core has its own command line (``pnc``), the book its own (``python -m pnc.book``)
    assert not [m for m in modules - shared if (PACKAGE / f"{m}.py").exists() or (PACKAGE / m).is_dir()]
    index = pnc.book.__doc__ or ""
    assert not sorted(m for m in modules if f":mod:`pnc.book.{m}`" not in index), "missing from pnc/book/__init__.py"


def test_fixtures_that_ask_for_a_build_at_run_time_are_ordered_with_the_builds() -> None:
    """A fixture that calls ``request.getfixturevalue`` for a build must be in ``conftest.BUILD_FIXTURES``: pytest
    cannot see that dependency, and the test ordering (build first, builds' tests before the rest) relies on it, or a
    second worker waits on the build's lock with nothing to do."""
    import re

    from conftest import BUILD_FIXTURES, ROOT

    for path in sorted((ROOT / "tests").glob("*.py")):
        text = path.read_text()
        for call in re.finditer(r"getfixturevalue\(\s*[\"'](\w+)[\"']", text):
            if call.group(1) not in BUILD_FIXTURES:
                continue
            owner = re.findall(r"^def (\w+)\(", text[: call.start()], flags=re.MULTILINE)[-1]
            assert owner in BUILD_FIXTURES, f"{path.name}: fixture {owner} asks for {call.group(1)}"
