"""No module of pnc/ imports or reads another module's underscore names.

A module's underscore names (``_stats``, ``ClassStats._means``, ``_Pending``) are its own business: another module
that needs one needs a public name instead. The check parses every module with :mod:`ast`:

- ``from X import _name`` with X a pnc module is a use of X's private name (``from pnc import data as _data`` is not:
  the name imported is public, the alias is local);
- ``something._name`` (not a dunder) is a use of a private attribute unless this module defines ``_name`` itself: as
  a function, class, variable or import alias, as an attribute of ``self``/``cls``, or by setting it on an object
  when no other pnc module defines it (``fig._pnc_alt`` in plotting.py). Same-module use is fine.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pnc"

NAMEDTUPLE_API = {"_asdict", "_replace", "_fields", "_make", "_field_defaults"}
"""Public API of named tuples that happens to start with an underscore."""


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_module(node: ast.ImportFrom, here: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = here.split(".") if is_package else here.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _own_private_names(tree: ast.AST) -> set[str]:
    """Underscore names this module defines (functions, classes, variables, aliases, ``self._x`` attributes)."""
    own: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            own.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)
        elif isinstance(node, ast.arg):
            own.add(node.arg)
        elif isinstance(node, ast.alias):
            own.add(node.asname or node.name.split(".")[0])
        elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
              and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            own.add(node.attr)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setattr" and len(node.args) >= 2:
            target, name = node.args[0], node.args[1]
            if isinstance(target, ast.Name) and target.id in ("self", "cls") and isinstance(name, ast.Constant):
                own.add(str(name.value))
    return {name for name in own if _private(name)}


def _set_attributes(tree: ast.AST) -> set[str]:
    """Underscore attributes this module sets on any object (``obj._x = ...``)."""
    return {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _private(node.attr)}


MODULES = sorted(PACKAGE.rglob("*.py"))
DEFINED = {path: _own_private_names(ast.parse(path.read_text())) for path in MODULES}
"""Each pnc module's own underscore names."""


def foreign_private_uses(path: Path, here: str | None = None) -> list[str]:
    """``"pnc/x.py:LINE: what"`` for every use of another module's underscore name in the module at ``path``
    (``here``: its dotted name, by default from its place under the repository root)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = here or _module_name(path)
    others = set().union(*(names for other, names in DEFINED.items() if other != path))
    own = _own_private_names(tree) | (_set_attributes(tree) - others)
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _imported_module(node, here, path.name == "__init__.py")
            if source == "pnc" or source.startswith("pnc."):
                for alias in node.names:
                    if _private(alias.name):
                        found.append(f"{where}:{node.lineno}: imports {source}.{alias.name}")
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            if node.attr not in own and node.attr not in NAMEDTUPLE_API:
                found.append(f"{where}:{node.lineno}: uses {ast.unparse(node)}")
    return found


def test_every_module_is_checked():
    names = {_module_name(p) for p in MODULES}
    assert {"pnc", "pnc.stats", "pnc.metrics", "pnc.report", "pnc.book.connections"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_uses_another_modules_private_names(path):
    uses = foreign_private_uses(path)
    assert not uses, "use a public name instead:\n" + "\n".join(uses)


def test_the_check_finds_what_it_should(tmp_path):
    """The check itself can fail: a module that reads another's private names is caught, its own are not."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from pnc.metrics import _stats, compression\n"
        "from . import report as R\n"
        "class Mine:\n"
        "    def __init__(self):\n"
        "        self._state = 1\n"
        "    def read(self, other):\n"
        "        return other._state, self._state, R._classifier\n"
        "def f(st, fig):\n"
        "    st._dim = 3\n"
        "    fig._sample_note = 'mine'\n"
        "    return st._means, st.__class__, fig._sample_note\n"
    )
    uses = foreign_private_uses(sample, here="pnc.book.sample")
    assert sorted(u.split(": ", 1)[1] for u in uses) == ["imports pnc.metrics._stats", "uses R._classifier",
                                                         "uses st._dim", "uses st._means"]
