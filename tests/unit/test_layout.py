"""The package's layering rules (docs/architecture.md), checked on the source itself.

A module may import its own package and any package of a lower layer. Features (the middle
layer) never import each other: where one needs another it names a small Protocol and the
wiring in ``edge.services`` or ``edge.cli`` passes the real object in.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from paths import REPO

PACKAGE = REPO / "edge"

# Lowest first. The floor and the foundations may use their siblings (clock raises errors;
# every foundation reads config); no other layer may import a sibling package.
LAYERS: list[tuple[str, frozenset[str]]] = [
    ("floor", frozenset({"edge", "errors", "types", "clock"})),
    (
        "foundations",
        frozenset({"config", "mqtt", "backends", "models", "audit", "system", "demo", "samples"}),
    ),
    ("features", frozenset({"pipeline", "watchlist", "alerts", "api"})),
    ("built on features", frozenset({"fleet", "bench", "dispatch"})),
    ("processes", frozenset({"services"})),
    ("front doors", frozenset({"cli"})),
    ("entry point", frozenset({"__main__"})),
]
RANK = {unit: rank for rank, (_, units) in enumerate(LAYERS) for unit in units}
SIBLINGS_ALLOWED = {"floor", "foundations"}
MAX_LINES = 700
MAX_LOOSE_FILES = 8


def _unit(module: str) -> str:
    """``edge.cli.run`` -> 'cli'; ``edge.audit`` -> 'audit'; ``edge`` -> 'edge'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "edge"


def _module_name(path: Path) -> str:
    relative = path.relative_to(REPO).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every ``edge...`` module the file imports, at any depth (lazy imports count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "edge")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "edge":
                continue
            found.add(node.module)
            if node.module == "edge":  # `from edge import audit` names a module
                found.update(f"edge.{a.name}" for a in node.names if a.name != "__version__")
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_package_has_a_layer() -> None:
    units = {_unit(_module_name(p)) for p in SOURCES}
    assert units <= set(RANK), (
        f"place these in LAYERS and docs/architecture.md: {units - set(RANK)}"
    )


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_imports_only_go_down(path: Path) -> None:
    here = _unit(_module_name(path))
    layer, _ = LAYERS[RANK[here]]
    wrong = []
    for module in sorted(_imports(path)):
        there = _unit(module)
        if there == here:
            continue
        if RANK[there] < RANK[here]:
            continue
        if RANK[there] == RANK[here] and layer in SIBLINGS_ALLOWED:
            continue
        wrong.append(f"{module} ({LAYERS[RANK[there]][0]})")
    assert not wrong, f"{here} ({layer}) must not import: {', '.join(wrong)}"


def test_one_module_constructs_the_mqtt_client() -> None:
    makers = [p for p in SOURCES if "paho.Client(" in p.read_text(encoding="utf-8")]
    assert makers == [PACKAGE / "mqtt" / "connection.py"]


def test_one_module_builds_topics() -> None:
    # Topics are '<prefix>/...': whoever joins the prefix to something builds topics.
    builders = [p for p in SOURCES if "rstrip('/')" in (t := p.read_text()) or 'rstrip("/")' in t]
    assert builders == [PACKAGE / "mqtt" / "topics.py"]


def test_modules_stay_small_and_few_files_are_loose() -> None:
    long = {
        str(p.relative_to(REPO)): n
        for p in SOURCES
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"over {MAX_LINES} lines (find the second job inside): {long}"
    loose = [p.name for p in PACKAGE.iterdir() if p.is_file()]
    assert len(loose) <= MAX_LOOSE_FILES, sorted(loose)


def test_fleet_builds_on_the_watchlist_alone() -> None:
    features = LAYERS[RANK["pipeline"]][1]
    for path in sorted((PACKAGE / "fleet").rglob("*.py")):
        used = {_unit(module) for module in _imports(path)} & features
        assert used <= {"watchlist"}, f"{path.name} imports {used - {'watchlist'}}"
