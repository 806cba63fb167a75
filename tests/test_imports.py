"""genrekit's modules import each other downward only: no import cycle, at any depth.

The graph is read from the source with :mod:`ast`, so that imports inside functions (made
lazily, for start-up time) count as much as those at the top of a module: a lazy import
that points upward is a cycle waiting for the day someone moves it to the top.

Edges: ``import genrekit.a.b`` and ``from genrekit.a.b import name`` (or the relative
``from .b import name``) point to ``genrekit.a.b``, and also to ``genrekit.a.b.name`` when
that is a submodule; ``from . import x`` points to the submodule ``x`` when it is one, else
to the package itself (its ``__init__``). Imports under ``if TYPE_CHECKING:`` never run and
do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "genrekit"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE


def _modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted name -> source file of every module of the package (packages by their ``__init__``)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """Ids of the nodes inside ``if TYPE_CHECKING:`` blocks (never executed)."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else None
            if name == "TYPE_CHECKING":
                for child in node.body:
                    skipped.update(id(n) for n in ast.walk(child))
    return skipped


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules that module ``name`` imports, anywhere in its source."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    skipped = _type_checking_nodes(tree)
    targets = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    targets.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # The package a relative import starts from: the module's own for level 1.
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source != PACKAGE and not source.startswith(PACKAGE + "."):
                continue
            submodules = {f"{source}.{alias.name}" for alias in node.names} & modules.keys()
            targets |= submodules
            if node.module or len(submodules) < len(node.names):
                # `from .x import name` runs x; `from . import name` runs the package only for a non-module name.
                targets.add(source)
    # An import of something that is not a module of ours (a typo, a removed module) fails elsewhere.
    return targets & modules.keys()


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the package modules it imports (module level and inside functions)."""
    modules = _modules(root)
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module, and modules that import themselves.

    Tarjan's algorithm, iterative (the graph is small, but recursion depth is not ours to spend).
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    found.append(sorted(component))
    return sorted(found)


def _walk(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One closed walk through a cycle, from its first module back to it, to show how they reach each other."""
    members, start = set(component), component[0]
    previous: dict[str, str | None] = {start: None}
    queue = [start]
    for node in queue:  # breadth-first, inside the component: the shortest way back
        for child in sorted(graph[node] & members):
            if child == start:
                walk = [start]
                while node is not None:
                    walk.append(node)
                    node = previous[node]
                return walk[::-1]
            if child not in previous:
                previous[child] = node
                queue.append(child)
    return component


def test_cycles_are_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}, "e": {"a"}}
    assert cycles(graph) == [["a", "b", "c"], ["d"]]
    assert _walk(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_imports_are_read_at_every_depth(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("def f():\n    from . import top\n")
    (pkg / "top.py").write_text("from .sub import leaf\nfrom . import VALUE\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "leaf.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .. import top\n"
        "def g():\n    import genrekit.top\n    from ..top import thing\n"
    )
    graph = import_graph(pkg)
    assert graph == {
        PACKAGE: {f"{PACKAGE}.top"},
        f"{PACKAGE}.top": {f"{PACKAGE}.sub", f"{PACKAGE}.sub.leaf", PACKAGE},
        f"{PACKAGE}.sub": set(),
        f"{PACKAGE}.sub.leaf": {f"{PACKAGE}.top"},
    }
    assert cycles(graph) == [[PACKAGE, f"{PACKAGE}.sub.leaf", f"{PACKAGE}.top"]]


def test_no_import_cycles():
    graph = import_graph()
    found = cycles(graph)
    report = "\n".join(f"  {len(c)} modules: " + " -> ".join(_walk(graph, c))
                       + (f"\n    all of them: {', '.join(c)}" if len(c) > 3 else "") for c in found)
    assert not found, f"genrekit imports in a cycle (imports must go downward only):\n{report}"


def test_integrations_use_the_public_api_only():
    """The beets plugin imports names of ``genrekit.__all__`` from ``genrekit`` itself, never a module inside it:
    internal modules may move (CHANGELOG.md), the public API may not."""
    import genrekit

    plugin = ROOT.parent / "beetsplug" / "genrekit.py"
    found, internal = set(), []
    for node in ast.walk(ast.parse(plugin.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == PACKAGE:
            if node.module != PACKAGE:
                internal.append(f"line {node.lineno}: from {node.module} import ...")
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            internal += [f"line {node.lineno}: import {a.name}" for a in node.names if a.name.startswith(PACKAGE + ".")]
    assert not internal, "the beets plugin reaches into genrekit's internals:\n" + "\n".join(internal)
    assert found and found <= set(genrekit.__all__), sorted(found - set(genrekit.__all__))
