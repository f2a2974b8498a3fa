"""The checkers behind tests/unit/test_layout.py and the exit-code rule in test_help.py.

Each reads Python source as syntax (``ast``), never as text, so an alias, a function-local
import or a reformatted line cannot slip past it; each takes its input as a value (modules as
source text, a graph as a dict) so that a test can feed it a deliberately bad example and see
it fail.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Graph = Mapping[str, set[str]]


@dataclass(frozen=True)
class Module:
    """One source file: ``name`` is its dotted module name (``edge.cli.run``; a package's
    ``__init__.py`` is named after the package)."""

    name: str
    text: str
    is_package: bool = False
    tree: ast.Module = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tree", ast.parse(self.text))

    @property
    def package(self) -> str:
        """The package the file sits in (``edge.cli`` for ``edge.cli.run`` and ``edge.cli``)."""
        return self.name if self.is_package else self.name.rpartition(".")[0]


def read_modules(root: Path, package: str = "edge") -> list[Module]:
    """Every ``.py`` file under ``root/package``."""
    modules = []
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        modules.append(Module(".".join(parts), path.read_text(encoding="utf-8"), is_package))
    return modules


def unit(module: str) -> str:
    """The top-level part of the package a module belongs to: ``edge.cli.run`` -> 'cli';
    ``edge.audit`` -> 'audit'; ``edge`` -> 'edge'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "edge"


# --- imports ------------------------------------------------------------------------------------


def _named_modules(module: Module) -> Iterator[tuple[str, str | None]]:
    """(module, name imported from it or None) for every import at any depth: function-local
    and ``if TYPE_CHECKING:`` imports are dependencies too."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.name.split(".") if module.is_package else module.package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            for alias in node.names:
                yield origin, alias.name


def imported_files(module: Module, known: Iterable[str]) -> set[str]:
    """The files (of ``known``) this module imports: ``from edge.dispatch import api`` is the file
    ``edge.dispatch.api``; ``from edge.config import Config`` is ``edge.config``'s ``__init__``."""
    names = set(known)
    found = set()
    for origin, name in _named_modules(module):
        if name is not None and f"{origin}.{name}" in names:
            found.add(f"{origin}.{name}")
        elif origin in names:
            found.add(origin)
    found.discard(module.name)
    return found


def import_graph(modules: Iterable[Module]) -> dict[str, set[str]]:
    """File -> the files it imports, within the given modules."""
    modules = list(modules)
    known = {m.name for m in modules}
    return {m.name: imported_files(m, known) for m in modules}


def import_cycles(graph: Graph) -> list[list[str]]:
    """Every set of files that import each other round a circle (the graph's strongly connected
    components of more than one file), each sorted, in a stable order."""
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm; the graph is small, recursion is fine
        index[node] = lowest[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                lowest[node] = min(lowest[node], lowest[target])
            elif target in on_stack:
                lowest[node] = min(lowest[node], index[target])
        if lowest[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


def upward_imports(graph: Graph, rank: Mapping[str, int]) -> dict[str, list[str]]:
    """File -> the files it imports that are not in its own unit nor of a lower rank. Units of
    one rank never import each other (features, siblings of one tier of the foundations)."""
    wrong: dict[str, list[str]] = {}
    for source, targets in sorted(graph.items()):
        here = unit(source)
        bad = [t for t in sorted(targets) if unit(t) != here and rank[unit(t)] >= rank[here]]
        if bad:
            wrong[source] = bad
    return wrong


# --- sizes --------------------------------------------------------------------------------------


def long_functions(module: Module, limit: int) -> dict[str, int]:
    """Qualified name (``Class.method``, ``outer.inner``) -> lines, of functions over ``limit``
    lines (from ``def`` to the last line of the body)."""
    found: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    lines = (child.end_lineno or child.lineno) - child.lineno + 1
                    if lines > limit:
                        found[name] = lines
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(module.tree, "")
    return found


# --- who constructs the MQTT client -------------------------------------------------------------

PAHO_CLIENT = "paho.mqtt.client.Client"


def _bindings(tree: ast.Module) -> dict[str, str]:
    """Local name -> the dotted thing it stands for, from imports and plain aliases
    (``Maker = paho.Client``)."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    bound[top] = top
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    aliases = [
        (node.targets[0].id, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
    ]
    for _ in range(3):  # an alias of an alias
        for name, value in aliases:
            dotted = _dotted(value, bound)
            if dotted is not None:
                bound[name] = dotted
    return bound


def _dotted(node: ast.AST, bound: Mapping[str, str]) -> str | None:
    if isinstance(node, ast.Name):
        return bound.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, bound)
        return f"{base}.{node.attr}" if base else None
    if (  # getattr(paho, "Client")
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "getattr"
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
        and isinstance(node.args[1].value, str)
    ):
        base = _dotted(node.args[0], bound)
        return f"{base}.{node.args[1].value}" if base else None
    return None


def mqtt_client_constructions(module: Module) -> list[int]:
    """Lines where the module makes a paho client, however the class was imported or aliased:
    a call, a subclass, or the class handed to another callable (``functools.partial``)."""
    bound = _bindings(module.tree)

    def is_client(node: ast.AST) -> bool:
        return _dotted(node, bound) == PAHO_CLIENT

    lines = []
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Call):
            checks_type = isinstance(node.func, ast.Name) and node.func.id in {
                "isinstance",
                "issubclass",
            }
            if is_client(node.func) or (
                not checks_type and any(is_client(a) for a in [*node.args, *node.keywords])
            ):
                lines.append(node.lineno)
        elif isinstance(node, ast.keyword) and is_client(node.value):
            continue  # counted with its call
        elif isinstance(node, ast.ClassDef) and any(is_client(base) for base in node.bases):
            lines.append(node.lineno)
    return sorted(set(lines))


# --- who builds topic strings -------------------------------------------------------------------

PREFIX_NAMES = frozenset({"topic_prefix"})


class _PrefixTracker:
    """Which expressions hold the topic prefix: ``x.topic_prefix``, ``x["topic_prefix"]``, a
    name or ``self`` attribute assigned from one (``self.prefix = config.mqtt.topic_prefix``),
    and the prefix changed by its own methods (``prefix.rstrip("/")``)."""

    def __init__(self, tree: ast.Module) -> None:
        self.names: set[str] = set(PREFIX_NAMES)
        self.attributes: set[str] = set(PREFIX_NAMES)
        assignments: list[tuple[ast.expr, ast.expr]] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                assignments += [(target, node.value) for target in node.targets]
            elif isinstance(node, ast.AnnAssign | ast.NamedExpr) and node.value is not None:
                assignments.append((node.target, node.value))
        grew = True
        while grew:
            grew = False
            for target, value in assignments:
                if not self.holds_prefix(value):
                    continue
                if isinstance(target, ast.Name) and target.id not in self.names:
                    self.names.add(target.id)
                    grew = True
                elif isinstance(target, ast.Attribute) and target.attr not in self.attributes:
                    self.attributes.add(target.attr)
                    grew = True

    def holds_prefix(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.names
        if isinstance(node, ast.Attribute):
            return node.attr in self.attributes
        if isinstance(node, ast.Subscript):
            key = node.slice
            if isinstance(key, ast.Constant) and key.value in PREFIX_NAMES:
                return True
            return self.holds_prefix(node.value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            return self.holds_prefix(node.func.value)  # prefix.rstrip("/"), prefix.strip()
        if isinstance(node, ast.IfExp):
            return self.holds_prefix(node.body) or self.holds_prefix(node.orelse)
        if isinstance(node, ast.BoolOp):
            return any(self.holds_prefix(v) for v in node.values)
        return False


def topic_constructions(module: Module) -> list[int]:
    """Lines where the module joins the topic prefix to something: an f-string, ``+`` or ``%``
    with the prefix, ``"...".format(prefix)`` or a ``join`` of a sequence holding it. Passing the
    prefix to a function (``DeviceTopics(prefix, device)``) is not building a topic."""
    tracker = _PrefixTracker(module.tree)
    holds = tracker.holds_prefix

    def holds_any(nodes: Iterable[ast.AST]) -> bool:
        for node in nodes:
            if isinstance(node, ast.Starred):
                node = node.value
            if holds(node) or (
                isinstance(node, ast.List | ast.Tuple | ast.Set) and holds_any(node.elts)
            ):
                return True
        return False

    lines = []
    for node in ast.walk(module.tree):
        if isinstance(node, ast.JoinedStr):
            built = any(isinstance(v, ast.FormattedValue) and holds(v.value) for v in node.values)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
            built = holds_any([node.left, node.right])
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            built = node.func.attr in {"format", "join"} and holds_any(
                [*node.args, *(k.value for k in node.keywords)]
            )
        else:
            built = False
        if built:
            lines.append(node.lineno)
    return sorted(set(lines))


# --- what a command's handler can exit with -----------------------------------------------------


def _own_nodes(function: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a function's body, not those of functions or classes defined inside it."""
    for child in ast.iter_child_nodes(function):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            continue
        yield child
        yield from _own_nodes(child)


def exit_codes_of(handler: Callable[..., Any]) -> set[int] | None:
    """The exit statuses a command's handler can return (or pass to ``sys.exit`` /
    ``SystemExit``), read from its source; None when one of them cannot be read there (the
    code comes from a call, as in ``return Runner(...).run().exit_code``)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(handler)))
    function = tree.body[0]
    scope = getattr(inspect.unwrap(handler), "__globals__", {})
    assigned: dict[str, list[ast.expr]] = {}
    for node in _own_nodes(function):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
            if isinstance(node, ast.AugAssign) or node.value is None:
                assigned.setdefault(node.target.id, []).append(node.target)  # unreadable
            else:
                assigned.setdefault(node.target.id, []).append(node.value)

    def codes(node: ast.expr | None, seen: frozenset[str] = frozenset()) -> set[int] | None:
        if node is None:
            return {0}  # a bare return: sys.exit(None) is 0
        if isinstance(node, ast.Constant):
            return {node.value} if isinstance(node.value, int) else None
        if isinstance(node, ast.IfExp):
            body, orelse = codes(node.body, seen), codes(node.orelse, seen)
            return None if body is None or orelse is None else body | orelse
        if isinstance(node, ast.Name) and node.id in assigned and node.id not in seen:
            found: set[int] = set()
            for value in assigned[node.id]:
                more = codes(value, seen | {node.id})
                if more is None:
                    return None
                found |= more
            return found
        if isinstance(node, ast.Name | ast.Attribute):
            value = _global_value(node, scope)
            return {value} if isinstance(value, int) and not isinstance(value, bool) else None
        return None

    found: set[int] = set()
    for node in _own_nodes(function):
        if isinstance(node, ast.Return):
            exits: list[ast.expr | None] = [node.value]
        elif isinstance(node, ast.Call) and _is_exit(node.func):
            exits = [node.args[0] if node.args else None]
        else:
            continue
        for value in exits:
            more = codes(value)
            if more is None:
                return None
            found |= more
    return found


def _is_exit(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in {"SystemExit", "exit"}
    return isinstance(func, ast.Attribute) and func.attr == "exit"


def _global_value(node: ast.expr, scope: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Name):
        return scope.get(node.id)
    if isinstance(node, ast.Attribute):
        return getattr(_global_value(node.value, scope), node.attr, None)
    return None
