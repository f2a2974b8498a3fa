"""``edge config check FILE`` and ``edge config defaults``: the config reference, from the code."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from edge.cli.args import Subparsers, command_group
from edge.config import Config, load_config


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, Path):
        value = str(value)
    return (
        json.dumps(value)
        if isinstance(value, str | list | dict) or value is None
        else (str(value).lower() if isinstance(value, bool) else str(value))
    )


def commented_defaults(model: BaseModel, indent: int = 0) -> list[str]:
    """The model's defaults as YAML, each field preceded by its description as a comment."""
    lines: list[str] = []
    pad = "  " * indent
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if field.description:
            lines.extend(f"{pad}# {part}" for part in _wrap(field.description, 96 - len(pad)))
        if isinstance(value, BaseModel):
            lines.append(f"{pad}{name}:")
            lines.extend(commented_defaults(value, indent + 1))
        else:
            lines.append(f"{pad}{name}: {_yaml_scalar(value)}")
    return lines


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    words, line = text.split(), ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line] if line else lines


def cmd_check(args: argparse.Namespace) -> int:
    load_config(args.file)
    print(f"{args.file}: ok")
    return 0


def cmd_defaults(args: argparse.Namespace) -> int:
    print("\n".join(commented_defaults(Config())))
    return 0


def register(subparsers: Subparsers) -> None:
    config_sub = command_group(
        subparsers, "config", "check a config file, or print the defaults", "ACTION"
    )
    check = config_sub.add_parser("check", help="validate a YAML config file")
    check.add_argument("file", type=Path, help="YAML config file to validate")
    check.set_defaults(handler=cmd_check)
    defaults = config_sub.add_parser("defaults", help="every setting with its default and meaning")
    defaults.set_defaults(handler=cmd_defaults)
