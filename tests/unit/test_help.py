"""Every command explains itself: help on every argument, defaults in one style, exit codes."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

import pytest
from layout_rules import exit_codes_of

from edge.cli import build_parser
from edge.cli.args import COMMON_EXIT_CODES, finish_commands


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


def _listed_codes(parser: argparse.ArgumentParser) -> set[int]:
    """The codes the command's own help lists under 'exit status:'."""
    _, _, listed = parser.format_help().partition("exit status:")
    return {int(m.group(1)) for m in re.finditer(r"^ +(\d+) ", listed, flags=re.M)}


def _unstated_exit_codes(parser: argparse.ArgumentParser) -> str | None:
    """What the command's help fails to say about the codes its handler exits with, or None.

    The common codes (0, 2 on an edge error, 130, 141) are listed for every command, so listing
    them proves nothing; what a command's help must get right is the codes its own handler
    returns. Where the handler's code comes from elsewhere (``return runner.run().exit_code``)
    the command must list its codes itself (``set_defaults(exit_codes=...)``)."""
    returned = exit_codes_of(parser.get_default("handler"))
    own = set(parser.get_default("exit_codes") or {})
    if returned is None:
        return None if own else "its handler's exit code comes from elsewhere: list its codes"
    missing = returned - _listed_codes(parser)
    if missing:
        return f"returns {sorted(missing)} but its help does not say when"
    promised = own - returned - set(COMMON_EXIT_CODES)
    if promised:
        return f"its help lists {sorted(promised)}, which its handler never returns"
    return None


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=IDS)
def test_every_command_says_its_exit_codes(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    text = " ".join(parser.format_help().split())
    assert "exit status: 0" in text, f"edge {' '.join(path)} does not list its exit codes"
    assert "2 on an error" in text
    problem = _unstated_exit_codes(parser)
    assert problem is None, f"edge {' '.join(path)}: {problem}"


def _one_command(handler: object, **defaults: object) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge")
    command = parser.add_subparsers().add_parser("probe")
    command.set_defaults(handler=handler, **defaults)
    finish_commands(parser)
    return command


def _returns_a_code_it_does_not_list(args: argparse.Namespace) -> int:
    if args.strict:
        return 3
    return 0


def _returns_what_another_says(args: argparse.Namespace) -> int:
    return int(args.runner.run())


EXIT_LISTED_AS_A_NAME = 1


def _returns_named_codes(args: argparse.Namespace) -> int:
    status = 0
    if args.partial:
        status = EXIT_LISTED_AS_A_NAME

    def nested() -> int:  # not the handler's own return
        return 4

    return status if args.ok else nested()


def test_the_exit_code_rule_fails_on_commands_whose_help_is_silent_or_wrong() -> None:
    assert "[3]" in str(_unstated_exit_codes(_one_command(_returns_a_code_it_does_not_list)))
    listed = _one_command(_returns_a_code_it_does_not_list, exit_codes={3: "when strict"})
    assert _unstated_exit_codes(listed) is None
    assert "elsewhere" in str(_unstated_exit_codes(_one_command(_returns_what_another_says)))
    said = _one_command(_returns_what_another_says, exit_codes={1: "when the runner failed"})
    assert _unstated_exit_codes(said) is None
    # ``nested()`` is a call: its code cannot be read here, so the command must list its own.
    assert _unstated_exit_codes(_one_command(_returns_named_codes)) is not None
    promised = _one_command(_returns_a_code_it_does_not_list, exit_codes={3: "x", 5: "never"})
    assert "[5]" in str(_unstated_exit_codes(promised))


def test_exit_codes_are_read_through_names_and_branches() -> None:
    def handler(args: argparse.Namespace) -> int:
        code = EXIT_LISTED_AS_A_NAME if args.bad else 0
        if args.quiet:
            raise SystemExit(7)
        return code

    assert exit_codes_of(handler) == {0, 1, 7}


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
