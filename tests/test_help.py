"""``--help`` of every verb and action works, ends with an example, and the README lists them.

The examples live once, in ``commands.EXAMPLES``: ``--help`` prints them (``modelhub`` and
``%modelhub`` alike), and the README's magics reference must show each one, so a new verb
without an example or without a line in the README fails here.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from jupyter_modelhub import commands
from jupyter_modelhub.magics.parser import parse_line

README = Path(__file__).resolve().parents[1] / "README.md"
NOT_IN_NOTEBOOKS = {"serve"}  # the foreground server: the command line only


def every_command() -> list[str]:
    verbs = [verb for verb in commands.DESCRIPTIONS if verb not in commands.ACTIONS]
    actions = [f"{verb} {action}" for verb, names in commands.ACTIONS.items() for action in names]
    return sorted({*verbs, *actions})


def cli_help(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    parser = commands.build_parser(serve=True)
    with pytest.raises(SystemExit) as exited:
        parser.parse_args([*command.split(), "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", [*every_command(), "serve"])
def test_every_command_line_help_ends_with_its_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = cli_help(command, capsys)
    assert out.startswith(f"usage: modelhub {command} ")
    assert f"Example: modelhub {commands.example(command)}" in out


@pytest.mark.parametrize("command", every_command())
def test_every_magic_help_ends_with_its_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert parse_line(f"{command} --help") is None
    out = capsys.readouterr().out
    assert out.startswith(f"usage: %modelhub {command} ")
    assert f"Example: %modelhub {commands.example(command)}" in out


def test_the_readme_shows_every_example() -> None:
    readme = README.read_text()
    missing = [
        command
        for command in every_command()
        if command not in NOT_IN_NOTEBOOKS
        and f"`%modelhub {commands.example(command)}`" not in readme
    ]
    assert not missing, f"add these to the README's magics reference: {missing}"
    assert f"`modelhub {commands.EXAMPLES['serve']}`" in readme


def test_the_examples_parse() -> None:
    parser = commands.build_parser(serve=True)
    for command in [*every_command(), "serve"]:
        args = parser.parse_args(shlex.split(commands.example(command)))
        assert args.command == command.split()[0]
