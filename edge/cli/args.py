"""What the sub-commands share: argument types, the common options, and the config they give.

argparse turns the argument types' errors into usage messages; :func:`config_from_args` turns
the common options into a validated :class:`Config` (a bad override is a one-line error).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TypeAlias

from edge.config import Config, config_from_dict, load_config
from edge.errors import ConfigError

STATE_DIR_DEFAULT = "(default: $EDGE_STATE_DIR, else state_dir from the config)"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written; every default shown one way, '(default: X)',
    unless the help already says it (or there is none worth saying: a flag, an unset option)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "(default" in text
            or default in (None, False, argparse.SUPPRESS)
            or not action.option_strings
        ):
            return text
        shown = ",".join(str(v) for v in default) if isinstance(default, list | tuple) else default
        if (
            isinstance(default, tuple)
            and len(default) == 2
            and all(isinstance(v, int) for v in default)
        ):
            shown = f"{default[0]}x{default[1]}"
        return f"{text} (default: {shown})"


COMMON_EXIT_CODES = {
    0: "on success",
    2: "on an error (one line on stderr: 'edge: error: ...')",
    130: "when interrupted (Ctrl-C)",
    141: "when the output is closed early (e.g. piped into head)",
}


def _exit_status(codes: dict[int, str]) -> str:
    return "exit status:\n" + "\n".join(f"  {code:<5}{why}" for code, why in sorted(codes.items()))


def finish_commands(parser: argparse.ArgumentParser) -> None:
    """Give every command the one help style and an 'exit status' paragraph. A command lists
    its own further codes with ``set_defaults(exit_codes={1: "when ..."})``; a group (a command
    with sub-commands) lists the codes they share and points at theirs."""
    parser.formatter_class = HelpFormatter
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in groups:
        for sub in action.choices.values():
            finish_commands(sub)
    if parser.get_default("handler") is not None:
        codes = dict(COMMON_EXIT_CODES)
        codes.update(parser.get_default("exit_codes") or {})
        text = _exit_status(codes)
    elif groups:
        codes = dict(COMMON_EXIT_CODES)
        command = groups[0].metavar
        codes[2] = f"{codes[2]}, or without {command}"
        text = f"{_exit_status(codes)}\n  and a command's own codes: {parser.prog} {command} --help"
    else:
        return
    parser.epilog = f"{parser.epilog}\n\n{text}" if parser.epilog else text


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """'1 entry', '3 entries': a count with its noun in agreement."""
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if not value > 0:  # also refuses NaN
        raise argparse.ArgumentTypeError("must be above 0")
    return value


# Not subscriptable at run time: a string alias.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def command_group(
    subparsers: Subparsers, name: str, help_text: str, metavar: str = "SUBCOMMAND"
) -> Subparsers:
    """``edge NAME ...``: a command whose sub-commands are required."""
    group = subparsers.add_parser(name, help=help_text)
    return group.add_subparsers(dest=f"{name}_command", metavar=metavar, required=True)


def add_common(
    parser: argparse.ArgumentParser,
    *,
    recognition: bool = False,
    broker: bool = False,
    state_dir: str | None = None,
) -> None:
    """``--config`` always; ``--backend``/``--precision`` for commands that run the models;
    ``--broker`` for those that talk MQTT; ``--state-dir`` naming what lives there."""
    parser.add_argument("--config", type=Path, help="YAML config file (default: built-in)")
    if recognition:
        parser.add_argument(
            "--backend", choices=["onnx", "litert"], help="override runtime.backend"
        )
        parser.add_argument(
            "--precision", choices=["fp32", "fp16", "int8"], help="override embedder.precision"
        )
        parser.add_argument(
            "--detector-precision", choices=["fp32", "int8"], help="override detector.precision"
        )
    if broker:
        parser.add_argument(
            "--broker", metavar="HOST:PORT", help="broker address (default: mqtt.host/port)"
        )
    if state_dir is not None:
        parser.add_argument("--state-dir", type=Path, help=f"{state_dir} {STATE_DIR_DEFAULT}")


def parse_broker(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (an IPv6 host in brackets) -> (host, port)."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"--broker {text!r}: expected HOST:PORT, e.g. 127.0.0.1:1883")
    return host.strip("[]"), int(port_text)


def config_from_args(
    args: argparse.Namespace, overrides: dict[str, dict[str, Any]] | None = None
) -> Config:
    """The config file (or defaults) with the command-line overrides applied and re-validated.

    ``overrides`` maps a section to the settings a command's own options set."""
    config = load_config(getattr(args, "config", None))
    changes: dict[str, dict[str, Any]] = {}
    if getattr(args, "backend", None):
        changes.setdefault("runtime", {})["backend"] = args.backend
    if getattr(args, "precision", None):
        changes.setdefault("embedder", {})["precision"] = args.precision
    if getattr(args, "detector_precision", None):
        changes.setdefault("detector", {})["precision"] = args.detector_precision
    if getattr(args, "broker", None):
        host, port = parse_broker(args.broker)
        changes.setdefault("mqtt", {}).update(host=host, port=port)
    for section, values in (overrides or {}).items():
        changes.setdefault(section, {}).update(values)
    if not changes:
        return config
    data = config.model_dump()
    for section, values in changes.items():
        data[section].update(values)
    return config_from_dict(data)
