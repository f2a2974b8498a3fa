"""Fuzzing the config loader: any mapping, any YAML, any bytes give a Config or a ConfigError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fuzz_helpers import fuzz_settings, json_values, mutated, mutated_bytes, only_edge_errors
from hypothesis import example, given
from hypothesis import strategies as st

from edge.cli.config import commented_defaults
from edge.config import Config, config_from_dict, load_config
from edge.errors import ConfigError

DEFAULTS = json.loads(Config().model_dump_json())
DEFAULTS_YAML = ("\n".join(commented_defaults(Config())) + "\n").encode("utf-8")
# Sections filled in, so that mutations reach the optional parts too.
FULLER = {
    **DEFAULTS,
    "device": {"id": "cam-1", "location": {"name": "North gate", "lat": 51.5, "lon": -0.12}},
    "mqtt": {**DEFAULTS["mqtt"], "tls": {"ca_file": "/etc/edge/ca.pem"}, "username": "cam-1"},
    "sync": {**DEFAULTS["sync"], "lists": ["gate", "lobby"]},
}


def _only_config_errors(call: object) -> None:
    error = only_edge_errors(call)  # type: ignore[arg-type]
    assert error is None or isinstance(error, ConfigError), repr(error)


@fuzz_settings()
@given(
    st.one_of(
        mutated(DEFAULTS),
        mutated(FULLER),
        st.dictionaries(st.text(max_size=12), json_values, max_size=4),
    )
)
def test_config_from_dict_raises_only_config_errors(data: object) -> None:
    _only_config_errors(lambda: config_from_dict(data))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("config")


def _yaml_text(value: object) -> bytes:
    return yaml.safe_dump(value, allow_unicode=True).encode("utf-8")


@fuzz_settings(0.5)
@given(
    st.one_of(
        st.binary(max_size=256),
        st.text(max_size=200).map(lambda t: t.encode("utf-8")),
        mutated(FULLER).map(_yaml_text),
        mutated_bytes(DEFAULTS_YAML),
        mutated_bytes(_yaml_text(FULLER)),
    )
)
@example(b"a: 2024-13-45\n")
@example(b"[" * 5000 + b"]" * 5000)
@example(b"\xff\xfe not UTF-8")
@example(b"a: &a [x, x]\nb: &b [*a, *a, *a, *a]\nc: [*b, *b, *b, *b]\n")
def test_load_config_raises_only_config_errors(config_dir: Path, text: bytes) -> None:
    path = config_dir / "edge.yaml"
    path.write_bytes(text)
    _only_config_errors(lambda: load_config(path))
