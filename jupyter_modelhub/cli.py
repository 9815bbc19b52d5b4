"""``modelhub``: the command line, for terminals and CI pipelines.

A thin adapter: parse, one ``Hub`` call (through ``commands``), print. A user mistake prints
one line to stderr and exits with code 2; there is no traceback for a ``ModelHubError``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from . import commands
from .errors import ModelHubError
from .hub import default_hub_path


def _resolve_data(value: str, raw: bool) -> Any:
    return value if raw else commands.read_table(value)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 user error)."""
    parser = commands.build_parser(serve=True)
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    if not args.command:
        parser.print_help()
        return 0
    if args.command == "serve":
        return serve(args)
    ctx = commands.Context(
        resolve_model=lambda value: value,
        resolve_data=_resolve_data,
    )
    try:
        view = commands.run(args, ctx)
    except ModelHubError as exc:
        print(f"modelhub: {exc}", file=sys.stderr)
        return 2
    print(view.to_json() if getattr(args, "json", False) else view.to_text())
    return 0


def serve(args: argparse.Namespace) -> int:
    """``modelhub serve``: become the model server (``python -m jupyter_modelhub.modelserver``)
    in the foreground until Ctrl-C; it reports its own errors and exit code.

    An exec, not an import: the model server is a program of its own (tornado), outside the
    layers this command line sits on.
    """
    hub = str(args.hub or default_hub_path())
    argv = [sys.executable, "-m", "jupyter_modelhub.modelserver", args.ref, "--hub", hub]
    argv += ["--host", args.host, "--port", str(args.port)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)
    return 0  # pragma: no cover  (execv does not return)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
