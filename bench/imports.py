"""The shape of a package's imports, read with `ast` (nothing is imported).

    python bench/imports.py [package]     # default: rollouts

Prints, for modules and for parts (a part is a folder of the package, or a
module at its top): how many there are, import links between them, import
levels (the longest chain of imports, 1 when a part imports no other) and
import loops. Imports under `if TYPE_CHECKING:` are left out: they never run,
they only name a type. Migrations are left out: Django writes them.

`tests/project/test_architecture.py` checks the allowed table with the same reader.
"""

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

Graph = dict[str, set[str]]


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterable[ast.AST]:
    """Every node of `tree` except what sits under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def imports_of(path: Path, package: str, modules: set[str]) -> set[str]:
    """The modules of `package` that the file at `path` imports when it runs
    (`from rollouts.x import y` counts as rollouts.x.y when y is a module)."""
    here = module_name(path)
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the file's own package
                anchor = here.split(".")[: -node.level or None]
                if path.name == "__init__.py":
                    anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in modules else base)
    return {
        name
        for name in found
        if (name == package or name.startswith(package + ".")) and name != here
    }


def module_graph(package: str = "rollouts", root: Path = ROOT) -> Graph:
    files = [
        path
        for path in sorted((root / package).rglob("*.py"))
        if "migrations" not in path.parts
    ]
    modules = {module_name(path, root) for path in files}
    graph: Graph = {}
    for path in files:
        name = module_name(path, root)
        graph[name] = {m for m in imports_of(path, package, modules) if m in modules}
    return graph


def part_of(module: str, graph: Graph) -> str:
    """rollouts.spec.fields -> spec; rollouts.models -> models; a package's own
    __init__ (rollouts) -> "" (it holds nothing)."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else ""


def part_graph(graph: Graph) -> Graph:
    parts: Graph = {}
    for module, targets in graph.items():
        part = part_of(module, graph)
        if not part:
            continue
        parts.setdefault(part, set())
        for target in targets:
            other = part_of(target, graph)
            if other and other != part:
                parts[part].add(other)
    return parts


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected groups of more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def levels(graph: Graph) -> int:
    """The longest import chain, counted in nodes; a loop counts as one node."""
    group_of = {node: node for node in graph}
    for group in cycles(graph):
        for node in group:
            group_of[node] = group[0]
    condensed: Graph = {}
    for node, targets in graph.items():
        mine = condensed.setdefault(group_of[node], set())
        mine.update(group_of[t] for t in targets if t in group_of)
        mine.discard(group_of[node])
    depth: dict[str, int] = {}

    def level(node: str) -> int:
        if node not in depth:
            depth[node] = 1 + max((level(t) for t in condensed[node]), default=0)
        return depth[node]

    return max((level(node) for node in condensed), default=0)


def links(graph: Graph) -> int:
    return sum(len(targets) for targets in graph.values())


def report(package: str = "rollouts") -> str:
    modules = module_graph(package)
    parts = part_graph(modules)
    lines = []
    for label, graph in (("modules", modules), ("parts", parts)):
        loops = cycles(graph)
        shown = "".join(f"  [{' <-> '.join(group)}]" for group in loops)
        lines.append(
            f"{label:8} {len(graph):3}  links {links(graph):3}"
            f"  levels {levels(graph):2}  loops {len(loops)}{shown}"
        )
    for part in sorted(parts):
        lines.append(f"  {part:12} -> {', '.join(sorted(parts[part])) or '-'}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(sys.argv[1] if len(sys.argv) > 1 else "rollouts"))
