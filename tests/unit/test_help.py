"""Every command explains itself: help on every argument, defaults in one style, exit codes."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

import pytest

from edge.cli import build_parser


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))
    if parser.get_default("handler") is not None:
        yield path, parser


COMMANDS = sorted(_commands(build_parser()), key=lambda item: item[0])
IDS = [" ".join(path) for path, _ in COMMANDS]


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=IDS)
def test_every_argument_has_help_and_defaults_in_one_style(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    text = parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help.strip(), f"edge {' '.join(path)}: {name} has no help"
    # One style: "(default: X)"; never "(default X)", "(30)" or "default:" outside parentheses.
    flat = " ".join(text.split())
    assert not re.search(r"\(default [^:]", flat), flat
    assert not re.search(r"(?<!\()default: ", flat), flat
    assert not re.search(r"\(\d+(\.\d+)?( s| seconds)?\)", flat), flat


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=IDS)
def test_every_command_says_its_exit_codes(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    text = " ".join(parser.format_help().split())
    assert "exit status: 0" in text, f"edge {' '.join(path)} does not list its exit codes"
    assert "2 on an error" in text


def _groups(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield path, parser
            for name, sub in action.choices.items():
                yield from _groups(sub, (*path, name))


GROUPS = sorted(_groups(build_parser()), key=lambda item: item[0])


@pytest.mark.parametrize(
    ("path", "parser"), GROUPS, ids=[" ".join(("edge", *path)) for path, _ in GROUPS]
)
def test_every_group_says_the_exit_codes_its_commands_share(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    text = " ".join(parser.format_help().split())
    assert "exit status: 0 on success" in text, f"edge {' '.join(path)}"
    assert "130 when interrupted" in text and "141 when the output is closed" in text
    assert f"own codes: {' '.join(('edge', *path))} " in text


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=IDS)
def test_no_command_gives_two_codes_for_one_ctrl_c(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    """A command that ends with 0 (or any code) on SIGINT does not also promise the generic
    130 for Ctrl-C: its help says when each applies."""
    lines = parser.format_help().split("exit status:")[-1].splitlines()
    on_sigint = [line for line in lines if "SIGINT" in line or "Ctrl-C" in line]
    if len(on_sigint) > 1:
        assert not any(line.strip() == "130  when interrupted (Ctrl-C)" for line in on_sigint), (
            f"edge {' '.join(path)}: {on_sigint}"
        )
