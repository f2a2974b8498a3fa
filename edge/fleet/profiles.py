"""Device profiles + a site config -> the device's one config file.

A profile (``firmware-config/profiles/*.yaml``) holds what depends on the hardware (backend,
threads, precision, detector range, camera); the site config holds what depends on the
deployment (broker, keys, lists, state directory). Both are partial configs; the site wins
where both set a key. ``edge provision`` writes the merged file after validating it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from edge.config import Config, config_from_dict
from edge.errors import ConfigError


def read_mapping(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}".splitlines()[0]) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: mappings merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def compose(
    profile: Path, site: Path | None = None, device_id: str | None = None
) -> tuple[dict[str, Any], Config]:
    """The merged document and the validated config it gives."""
    data = read_mapping(profile)
    if site is not None:
        data = deep_merge(data, read_mapping(site))
    if device_id is not None:
        data = deep_merge(data, {"device": {"id": device_id}})
    try:
        config = config_from_dict(data)
    except ConfigError as exc:
        names = str(profile) + (f" + {site}" if site is not None else "")
        raise ConfigError(f"{names}: {exc}") from exc
    return data, config


def render(data: dict[str, Any], sources: list[Path]) -> str:
    head = "# Written by `edge provision` from " + ", ".join(str(s) for s in sources) + "\n"
    return head + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
