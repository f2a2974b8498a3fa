"""Property-based fuzzing (hypothesis) of the readers of untrusted input.

The one property: whatever the input, a reader returns or raises one of edge's own errors
(:class:`edge.errors.EdgeError`), with a one-line message. Anything else (a KeyError, a
RecursionError, a MemoryError, a hang) is a bug.

Time is bounded by the number of examples: ``EDGE_FUZZ_EXAMPLES`` (default 200) per test,
scaled by each test's cost; ``.ci/run`` sets it. A per-example deadline of a minute catches a
hang, nothing finer: a loaded machine must not fail a test. The examples are the same on every
run (derandomised), so that a change is never refused for a bug it did not bring;
``EDGE_FUZZ_RANDOM=1`` draws fresh ones to explore (run it with a large ``EDGE_FUZZ_EXAMPLES``
now and then). A failure prints the input that caused it (and ``@example`` pins it as a
regression test).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from edge.errors import EdgeError
from edge.system.inputs import MAX_JSON_DEPTH

EXAMPLES = int(os.environ.get("EDGE_FUZZ_EXAMPLES", "200"))
RANDOM = os.environ.get("EDGE_FUZZ_RANDOM") == "1"


def fuzz_settings(scale: float = 1.0) -> settings:
    return settings(
        max_examples=max(10, round(EXAMPLES * scale)),
        # Only a hang: a slow input is a bug for the reader's own tests to pin down by what it
        # does (refuses it before parsing), never by a clock a loaded machine can miss.
        deadline=timedelta(seconds=60),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,  # nothing written into the work tree
        derandomize=not RANDOM,
    )


def only_edge_errors(call: Callable[[], object]) -> EdgeError | None:
    """Run ``call``; its own errors are fine (returned), anything else propagates."""
    try:
        call()
    except EdgeError as exc:
        assert "\n" not in str(exc), f"a message of more than one line: {exc!r}"
        return exc
    return None


# --- strategies --------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)


def _paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document: dictionary keys and list indexes, depth first."""
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, valid: Any) -> Any:
    """``valid`` (a JSON document) with one to three places replaced, removed or added to."""
    document = json.loads(json.dumps(valid))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(document)
        path = draw(st.sampled_from(paths))
        if not path:
            document = draw(json_values)
            continue
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(json_values)
        elif action == "remove":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = draw(json_values)
        else:
            parent.append(draw(json_values))
    return document


@st.composite
def mutated_bytes(draw: st.DrawFn, valid: bytes) -> bytes:
    """``valid`` with a few bytes flipped, cut or inserted, or deep nesting put in."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        action = draw(st.sampled_from(["flip", "cut", "insert", "nest"]))
        if action == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:  # deep nesting where a value may start: the top, or after ':', '[' or ','
            starts = [0] + [i + 1 for i, byte in enumerate(data) if byte in b":[,"]
            at = draw(st.sampled_from(starts))
            depth = draw(st.sampled_from([2, MAX_JSON_DEPTH + 1, 1500, 50_000]))
            data[at:at] = (
                b"[" * depth + b"]" * depth + (b"," if at and data[at - 1 : at] == b"[" else b"")
            )
    return bytes(data)


def json_bytes(values: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """Documents as a sender might encode them, NaN and non-ASCII included."""
    return values.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8"))


def documents(valid: Any) -> st.SearchStrategy[bytes]:
    """Any bytes, any JSON, and near misses of ``valid`` (as JSON and as bytes)."""
    raw = json.dumps(valid, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return st.one_of(
        st.binary(max_size=256),
        json_bytes(json_values),
        json_bytes(mutated(valid)),
        mutated_bytes(raw),
    )
