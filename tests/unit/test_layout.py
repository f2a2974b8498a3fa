"""The package's layering rules (docs/architecture.md), checked on the source itself.

A module may import its own package and any package of a lower tier; packages of one tier never
import each other. Features (the middle layer) never import each other: where one needs another
it names a small Protocol and the wiring in ``edge.services`` or ``edge.cli`` passes the real
object in. The floor and the foundations are ordered too, so that a tool in a foundation cannot
reach up to the ones beside it. No files import each other round a circle.

The checkers are in tests/layout_rules.py; each rule is also shown failing on a bad example.
"""

from __future__ import annotations

import pytest
from layout_rules import (
    Module,
    import_cycles,
    import_graph,
    long_functions,
    mqtt_client_constructions,
    read_modules,
    topic_constructions,
    unit,
    upward_imports,
)
from paths import REPO

PACKAGE = REPO / "edge"

# Lowest first: (layer, tiers of that layer, lowest first). Within the floor and the
# foundations a tier may use the tiers below it (clock raises errors; config validates with
# system/inputs and pins models; backends load models; mqtt reads config); above them, every
# package of a layer is one tier, so siblings never import each other.
LAYERS: list[tuple[str, list[frozenset[str]]]] = [
    ("floor", [frozenset({"edge", "errors", "types"}), frozenset({"clock"})]),
    (
        "foundations",
        [
            frozenset({"system", "demo", "samples"}),
            frozenset({"models"}),
            frozenset({"config"}),
            frozenset({"backends", "mqtt", "audit"}),
        ],
    ),
    ("features", [frozenset({"pipeline", "watchlist", "alerts", "api"})]),
    ("built on features", [frozenset({"fleet", "bench", "dispatch"})]),
    ("processes", [frozenset({"services"})]),
    ("front doors", [frozenset({"cli"})]),
    ("entry point", [frozenset({"__main__"})]),
]
TIERS = [(layer, units) for layer, tiers in LAYERS for units in tiers]
RANK = {name: rank for rank, (_, units) in enumerate(TIERS) for name in units}
LAYER_OF = {name: layer for layer, units in TIERS for name in units}
FEATURES = next(units for layer, units in TIERS if layer == "features")

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
MAX_LOOSE_FILES = 8

# Longer on purpose, for good: (file, function) -> why.
LONG_FUNCTIONS_ALLOWED = {
    ("edge/cli/alerts.py", "register"): "argparse table: the alerts and outbox commands",
    ("edge/cli/watchlist.py", "register"): "argparse table: the watchlist commands",
    ("edge/dispatch/migrations/versions/0001_initial.py", "upgrade"): (
        "alembic migration: the first schema, table by table; migrations are never edited"
    ),
}
# Files importing each other within one package, for good: files -> why.
CYCLES_ALLOWED = {
    frozenset({"edge.backends.base", "edge.backends.litert", "edge.backends.onnx"}): (
        "the registry in base.py imports each runtime's session only when it is chosen (a "
        "missing runtime is an error then, not at import); the sessions use base's types"
    ),
}

MODULES = read_modules(REPO)
GRAPH = import_graph(MODULES)
BY_NAME = {m.name: m for m in MODULES}


def _path(module: Module) -> str:
    parts = module.name.split(".")
    return "/".join(parts) + ("/__init__.py" if module.is_package else ".py")


def _lines(module: Module) -> int:
    return len(module.text.splitlines())


def test_every_package_has_a_layer() -> None:
    units = {unit(m.name) for m in MODULES}
    assert units <= set(RANK), (
        f"place these in LAYERS and docs/architecture.md: {units - set(RANK)}"
    )


@pytest.mark.parametrize("module", MODULES, ids=_path)
def test_imports_only_go_down(module: Module) -> None:
    wrong = upward_imports({module.name: GRAPH[module.name]}, RANK).get(module.name, [])
    here = unit(module.name)
    named = [f"{t} ({LAYER_OF[unit(t)]})" for t in wrong]
    assert not wrong, f"{here} ({LAYER_OF[here]}) must not import: {', '.join(named)}"


def test_no_files_import_each_other_round_a_circle() -> None:
    found = {frozenset(cycle): cycle for cycle in import_cycles(GRAPH)}
    across = [cycle for cycle in found.values() if len({BY_NAME[m].package for m in cycle}) > 1]
    assert not across, f"files of different packages import each other: {across}"
    unexplained = [cycle for key, cycle in found.items() if key not in CYCLES_ALLOWED]
    assert not unexplained, f"files import each other round a circle: {unexplained}"


def test_one_module_constructs_the_mqtt_client() -> None:
    makers = [_path(m) for m in MODULES if mqtt_client_constructions(m)]
    assert makers == ["edge/mqtt/connection.py"]


def test_one_module_builds_topics() -> None:
    builders = {m.name: topic_constructions(m) for m in MODULES if m.name != "edge.mqtt.topics"}
    assert not {name: lines for name, lines in builders.items() if lines}, (
        "join the topic prefix in edge/mqtt/topics.py (DeviceTopics, ListTopics, every_device)"
    )


def test_modules_stay_small_and_few_files_are_loose() -> None:
    long = {_path(m): n for m in MODULES if (n := _lines(m)) > MAX_MODULE_LINES}
    assert not long, f"over {MAX_MODULE_LINES} lines (find the second job inside): {long}"
    loose = [p.name for p in PACKAGE.iterdir() if p.is_file()]
    assert len(loose) <= MAX_LOOSE_FILES, sorted(loose)


def test_functions_stay_short() -> None:
    long = {
        f"{_path(m)}: {name}": n
        for m in MODULES
        for name, n in long_functions(m, MAX_FUNCTION_LINES).items()
        if (_path(m), name) not in LONG_FUNCTIONS_ALLOWED
    }
    assert not long, f"over {MAX_FUNCTION_LINES} lines (split by step): {long}"


def test_allowed_exceptions_still_apply() -> None:
    """An exception that no longer applies is removed, so the list names only what it must."""
    long = {(_path(m), name) for m in MODULES for name in long_functions(m, MAX_FUNCTION_LINES)}
    assert set(LONG_FUNCTIONS_ALLOWED) <= long, set(LONG_FUNCTIONS_ALLOWED) - long
    cycles = {frozenset(c) for c in import_cycles(GRAPH)}
    assert set(CYCLES_ALLOWED) <= cycles, set(CYCLES_ALLOWED) - cycles


def test_fleet_builds_on_the_watchlist_alone() -> None:
    for module in MODULES:
        if unit(module.name) == "fleet":
            used = {unit(target) for target in GRAPH[module.name]} & FEATURES
            assert used <= {"watchlist"}, f"{module.name} imports {used - {'watchlist'}}"


# --- each rule fails on a bad example -----------------------------------------------------------


def _modules(**sources: str) -> list[Module]:
    """Modules from keyword arguments: ``edge__cli__run="..."`` is ``edge.cli.run``; a name
    ending in ``__init`` is a package."""
    made = []
    for key, text in sources.items():
        name = key.replace("__", ".")
        is_package = name.endswith(".init")
        made.append(Module(name.removesuffix(".init"), text, is_package))
    return made


def test_a_circle_hidden_in_function_local_imports_is_found() -> None:
    graph = import_graph(
        _modules(
            edge__dispatch__web="def app():\n    from edge.dispatch import api\n",
            edge__dispatch__api="from edge.dispatch.views import page\n",
            edge__dispatch__views="def page():\n    import edge.dispatch.web\n",
            edge__dispatch__store="from edge.dispatch import api\n",
        )
    )
    assert import_cycles(graph) == [
        ["edge.dispatch.api", "edge.dispatch.views", "edge.dispatch.web"]
    ]
    assert import_cycles({"a.x": {"a.y"}, "a.y": set()}) == []


def test_a_circle_between_packages_is_found_through_relative_imports() -> None:
    modules = _modules(
        edge__config__init="from .root import Config\n",
        edge__config__root="from edge.system import doctor\n",
        edge__system__doctor="def run():\n    from ..config import Config\n",
    )
    graph = import_graph(modules)
    assert graph["edge.system.doctor"] == {"edge.config"}
    cycles = import_cycles(graph)
    assert cycles == [["edge.config", "edge.config.root", "edge.system.doctor"]]
    by_name = {m.name: m for m in modules}
    assert len({by_name[m].package for m in cycles[0]}) == 2


def test_a_diagnostic_tool_in_a_foundation_cannot_import_the_foundations_above_it() -> None:
    doctor = _modules(
        edge__system__doctor=(
            "from edge.config import Config\nfrom edge.models import MODEL_DIR\n"
            "from edge.errors import EdgeError\n"
            "def check():\n    from edge.backends import open_session\n"
            "    from edge.mqtt.oneshot import tool_client\n"
        ),
        edge__config__init="",
        edge__models__init="",
        edge__errors="",
        edge__backends__init="",
        edge__mqtt__oneshot="",
        edge__services__doctor="from edge.config import Config\nfrom edge.mqtt import oneshot\n",
        edge__mqtt__init="",
    )
    wrong = upward_imports(import_graph(doctor), RANK)
    assert wrong == {
        "edge.system.doctor": ["edge.backends", "edge.config", "edge.models", "edge.mqtt.oneshot"]
    }


def test_siblings_of_one_tier_may_not_import_each_other() -> None:
    graph = {"edge.mqtt.x": {"edge.audit"}, "edge.audit": set(), "edge.pipeline.a": set()}
    assert upward_imports(graph, RANK) == {"edge.mqtt.x": ["edge.audit"]}
    features = {"edge.pipeline.a": {"edge.watchlist.b"}, "edge.watchlist.b": set()}
    assert upward_imports(features, RANK) == {"edge.pipeline.a": ["edge.watchlist.b"]}


def test_long_functions_are_found_with_their_class() -> None:
    body = "\n".join(f"        x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (module,) = _modules(
        edge__a=f"class A:\n    def long(self):\n{body}\n    def short(self):\n        pass\n"
    )
    assert long_functions(module, MAX_FUNCTION_LINES) == {"A.long": MAX_FUNCTION_LINES + 1}


@pytest.mark.parametrize(
    "source",
    [
        "import paho.mqtt.client as mqtt\nc = mqtt.Client()\n",
        "import paho.mqtt.client\nc = paho.mqtt.client.Client(client_id='x')\n",
        "from paho.mqtt import client as m\ndef f():\n    return m.Client()\n",
        "from paho.mqtt.client import Client as Maker\nc = Maker()\n",
        "import paho.mqtt.client as paho\nMake = paho.Client\nAgain = Make\nc = Again()\n",
        "import functools\nimport paho.mqtt.client as p\nmake = functools.partial(p.Client, 'x')\n",
        "import paho.mqtt.client as p\nclass Mine(p.Client):\n    pass\n",
        "import paho.mqtt.client as p\nc = getattr(p, 'Client')()\n",
    ],
)
def test_every_way_of_making_a_paho_client_is_seen(source: str) -> None:
    (module,) = _modules(edge__alerts__sneaky=source)
    assert mqtt_client_constructions(module)


def test_naming_the_paho_client_class_is_not_making_one() -> None:
    (module,) = _modules(
        edge__a=(
            "import paho.mqtt.client as paho\n"
            "def close(client: paho.Client) -> None:\n"
            "    if isinstance(client, paho.Client):\n        client.disconnect()\n"
            "Client = object\nc = Client()\n"
        )
    )
    assert mqtt_client_constructions(module) == []


@pytest.mark.parametrize(
    "source",
    [
        "def f(config, device):\n    return f'{config.mqtt.topic_prefix}/{device}/alert'\n",
        "class S:\n    def __init__(self, config):\n"
        "        self.prefix = config.mqtt.topic_prefix\n"
        "    def topic(self, d):\n        return self.prefix.rstrip('/') + '/' + d\n",
        "def f(config, d):\n    root = config.mqtt.topic_prefix\n    base = root.rstrip('/')\n"
        "    return '/'.join([base, d, 'status'])\n",
        "def f(topic_prefix, d):\n    return '%s/%s/ack' % (topic_prefix, d)\n",
        "def f(data, d):\n    return '{}/{}'.format(data['mqtt']['topic_prefix'], d)\n",
    ],
)
def test_every_way_of_joining_the_topic_prefix_is_seen(source: str) -> None:
    (module,) = _modules(edge__alerts__sneaky=source)
    assert topic_constructions(module)


def test_handing_the_prefix_to_topics_is_not_building_one() -> None:
    (module,) = _modules(
        edge__a=(
            "from edge.mqtt.topics import DeviceTopics\n"
            "def f(config, d):\n    prefix = config.mqtt.topic_prefix\n"
            "    return DeviceTopics(prefix, d).alert, f'{d}/x', 'tmp-' + d\n"
        )
    )
    assert topic_constructions(module) == []
