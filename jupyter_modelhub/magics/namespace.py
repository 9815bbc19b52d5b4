"""What ``register`` arguments mean in a notebook: variables first, then files.

``%modelhub register model --sample X_test`` names variables of the user's namespace; a name
that is not a variable may be a path. This is the notebook's side of ``commands.Context``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Container, Mapping
from pathlib import Path
from typing import Any

from .. import commands
from ..errors import InvalidArgument

SESSION_VARIABLE = "__session__"
SESSION_ENV = "JPY_SESSION_NAME"


class UserNamespace:
    """Resolves the ``MODEL`` and data arguments of ``register`` against the kernel's variables.

    Args:
        values: the user's namespace (``shell.user_ns``).
        hidden: names the user did not define (``shell.user_ns_hidden``), never suggested.
    """

    def __init__(self, values: Mapping[str, Any], hidden: Container[str] = ()) -> None:
        self.values = values
        self.hidden = hidden

    def resolve_model(self, value: str) -> Any:
        """The variable named ``value``, else the path ``value`` if it exists.

        Raises:
            InvalidArgument: ``value`` is neither a variable nor an existing path.
        """
        if value in self.values:
            return self.values[value]
        return str(self._existing_path(value))

    def resolve_data(self, value: str, raw: bool) -> Any:
        """The variable named ``value`` as it is; else the file ``value``, read as a table
        unless ``raw`` (then its path, to be hashed as it is).

        Raises:
            InvalidArgument: ``value`` is neither a variable nor an existing path, or the file
                cannot be read as a table.
        """
        if value in self.values:
            return self.values[value]
        path = self._existing_path(value)
        return str(path) if raw else commands.read_table(str(path))

    def _existing_path(self, value: str) -> Path:
        path = Path(value).expanduser()
        if path.exists():
            return path
        close = difflib.get_close_matches(value, self._user_names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InvalidArgument(f"No variable or file named {value!r}{hint}")

    def _user_names(self) -> list[str]:
        return [n for n in self.values if not n.startswith("_") and n not in self.hidden]


def notebook_path(values: Mapping[str, Any]) -> str | None:
    """The path of the running notebook, recorded as lineage, if the kernel knows it.

    ipykernel puts it in ``__session__``; Jupyter Server also exports ``JPY_SESSION_NAME``.
    """
    session = values.get(SESSION_VARIABLE) or os.environ.get(SESSION_ENV)
    return str(session) if session else None
