"""Parsing a ``%modelhub`` line without ever exiting the kernel.

The verbs and options are those of ``commands.build_parser``; this module only changes what a
parser does at the end of the road: a mistake raises ``UsageError`` (shown by IPython as one
message, no traceback) and ``--help`` prints to stdout and raises ``HelpPrinted``.
"""

from __future__ import annotations

import argparse
import shlex
from typing import NoReturn

from IPython.core.error import UsageError

from .. import commands

PROG = "%modelhub"
MODEL_HELP = (
    "name of a variable holding the model (a fitted estimator, an ONNX model), "
    "else a path of a .joblib/.pkl/.onnx file or of a folder"
)


class HelpPrinted(Exception):
    """Help (or a version) was printed; there is nothing to run."""


class _RaisingParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that raises where the stock one calls ``sys.exit``."""

    def error(self, message: str) -> NoReturn:
        usage = self.format_usage().strip()
        raise UsageError(f"{self.prog}: {message}\n{usage}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if status:
            raise UsageError((message or f"{self.prog}: error").strip())
        if message:
            self._print_message(message)
        raise HelpPrinted()


class MagicParser(commands.HelpfulParser, _RaisingParser):
    """``HelpfulParser``'s wording (closest verb or action on a typo), ``_RaisingParser``'s
    ending. Its ``verbs`` let an unrecognised option be reported with the usage of the verb
    (or action) it was given to.
    """

    def error(self, message: str) -> NoReturn:
        _RaisingParser.error(self, self.explain(message))

    def verb_parser(self, name: str) -> argparse.ArgumentParser:
        """The parser of the verb ``name`` (this parser if it has no such verb)."""
        if self.verbs is not None and name in self.verbs.choices:
            return self.verbs.choices[name]
        return self


def build_magic_parser() -> MagicParser:
    """The parser of every ``%modelhub`` verb (``commands.build_parser`` with our ending)."""
    parser = commands.build_parser(MagicParser, prog=PROG, model_help=MODEL_HELP, notebook=True)
    assert isinstance(parser, MagicParser)
    return parser


def parse_line(line: str) -> argparse.Namespace | None:
    """Parse a ``%modelhub`` line; ``None`` when help was printed instead of a command.

    Raises:
        UsageError: the line cannot be split, or is not a valid command line.
    """
    try:
        argv = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"{PROG}: {exc} in {line.strip()!r}") from None
    parser = build_magic_parser()
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:
            where: argparse.ArgumentParser = parser
            for name in (args.command, getattr(args, "action", None)):
                if name and isinstance(where, MagicParser):
                    where = where.verb_parser(name)
            where.error(f"unrecognized arguments: {' '.join(extras)}")
    except HelpPrinted:
        return None
    if not args.command:
        parser.print_help()
        return None
    return args
