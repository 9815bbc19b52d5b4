"""``modelhub``: the command line, for terminals and CI pipelines.

A thin adapter: parse, one ``Hub`` call (through ``commands``), print. A user mistake prints
one line to stderr and exits with code 2; there is no traceback for a ``ModelHubError``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from . import commands
from .errors import ModelHubError


def _resolve_data(value: str, raw: bool) -> Any:
    return value if raw else commands.read_table(value)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 user error)."""
    parser = commands.build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    if not args.command:
        parser.print_help()
        return 0
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
