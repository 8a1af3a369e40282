"""The import graph of bot, nlu, channels and handoff, read with `ast`: no cycle, no project
module loaded by name, and dependencies pointing one way (only the composition root and the
command line know channels and handoff).

Imports inside functions count; imports under `if TYPE_CHECKING:` do not (they never run).
`from P import x` depends on the package P (its __init__ runs); `import P.m` and
`from P.m import x` depend on P.m only.
"""

from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.paths import REPO_ROOT

PACKAGES = ("bot", "nlu", "channels", "handoff")
# Within bot/, only these know the channels and the console.
COMPOSITION = ("bot.app", "bot.cli")
# Never importing the channels, the console, the composition root or the command line.
NEVER_ABOVE = ("bot.core", "bot.storage", "bot.dialogue", "bot.messaging", "bot.worker", "bot.ops")
DYNAMIC = {"import_module", "__import__", "spec_from_file_location", "load_module"}


@dataclass
class Module:
    name: str
    path: Path
    imports: set[str] = field(default_factory=set)
    dynamic: list[str] = field(default_factory=list)  # "line: call" of each dynamic import


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class Reader(ast.NodeVisitor):
    def __init__(self, known: set[str]) -> None:
        self.known = known
        self.imports: set[str] = set()
        self.dynamic: list[str] = []

    def resolve(self, name: str) -> str | None:
        while name and name not in self.known:
            name = name.rpartition(".")[0]
        return name or None

    def visit_If(self, node: ast.If) -> None:
        if is_type_checking(node.test):
            for stmt in node.orelse:
                self.visit(stmt)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if (target := self.resolve(alias.name)) is not None:
                self.imports.add(target)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module:
            return
        if (base := self.resolve(node.module)) is not None:
            self.imports.add(base)
        for alias in node.names:
            sub = f"{node.module}.{alias.name}"
            if sub in self.known:
                self.imports.add(sub)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in DYNAMIC:
            self.dynamic.append(f"{node.lineno}: {ast.unparse(node)}")
        self.generic_visit(node)


def read_modules(root: Path = REPO_ROOT) -> dict[str, Module]:
    paths = {
        module_name(p, root): p
        for pkg in PACKAGES
        for p in sorted((root / pkg).rglob("*.py"))
        if "__pycache__" not in p.parts
    }
    known = set(paths)
    modules = {}
    for name, path in paths.items():
        reader = Reader(known)
        reader.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        reader.imports.discard(name)
        modules[name] = Module(name, path, reader.imports, reader.dynamic)
    return modules


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return read_modules()


def test_no_import_cycle(modules: dict[str, Module]) -> None:
    assert cycles({m.name: m.imports for m in modules.values()}) == []


def test_no_project_module_loaded_by_name(modules: dict[str, Module]) -> None:
    found = {m.name: m.dynamic for m in modules.values() if m.dynamic}
    assert found == {}


def test_dependencies_point_one_way(modules: dict[str, Module]) -> None:
    wrong = []
    for m in modules.values():
        for target in m.imports:
            if within(m.name, NEVER_ABOVE) and within(
                target, ("channels", "handoff", *COMPOSITION)
            ):
                wrong.append(f"{m.name} -> {target}")
            if within(m.name, ("channels", "handoff", "nlu")) and within(target, COMPOSITION):
                wrong.append(f"{m.name} -> {target}")
            if within(m.name, ("nlu",)) and within(target, ("channels", "handoff")):
                wrong.append(f"{m.name} -> {target}")
            # The kernel knows only itself, and the NLU's result types (a leaf module).
            if within(m.name, ("bot.core",)) and not within(target, ("bot.core", "nlu.types")):
                wrong.append(f"{m.name} -> {target}")
    assert sorted(wrong) == []
    assert modules["nlu.types"].imports == set()


def test_the_checks_see_what_they_look_for(tmp_path: Path) -> None:
    """The reader on a small made-up tree: a cycle through a function-level import, a
    TYPE_CHECKING import that does not count, and a module loaded by name."""
    pkg = tmp_path / "bot"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot import c\n"
        "def f():\n    from bot.b import g\n"
    )
    (pkg / "b.py").write_text("import bot.a\ndef g(): pass\n")
    (pkg / "c.py").write_text(
        "import importlib\nimport bot.a\nmod = importlib.import_module('bot.b')\n"
    )
    for other in PACKAGES[1:]:
        (tmp_path / other).mkdir()
    found = read_modules(tmp_path)
    assert cycles({m.name: m.imports for m in found.values()}) == [["bot.a", "bot.b"]]
    assert found["bot.a"].imports == {"bot.b"}
    assert found["bot.c"].dynamic == ["3: importlib.import_module('bot.b')"]


def test_every_package_folder_is_shipped() -> None:
    """pyproject.toml lists the packages (the data folder is mapped to `bot.data`): a new
    sub-package missing from the list would be missing from the wheel."""
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    assert config["tool"]["setuptools"]["package-dir"] == {"bot.data": "data"}
    found = {"bot.data"}
    for pkg in PACKAGES:
        for folder in [REPO_ROOT / pkg, *(REPO_ROOT / pkg).rglob("*")]:
            if not folder.is_dir() or "__pycache__" in folder.parts:
                continue
            if any(f.is_file() for f in folder.iterdir()):
                found.add(".".join(folder.relative_to(REPO_ROOT).parts))
    assert listed == found
