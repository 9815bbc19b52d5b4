"""``ModelHubMagics``: the ``%modelhub`` line magic.

A thin adapter, like ``cli.py``: parse the line, one ``Hub`` call through ``commands.run``,
return the view (HTML in a notebook, text in a terminal) or, with ``--json``, plain data.
"""

from __future__ import annotations

import json
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from .. import commands
from ..errors import ModelHubError
from .namespace import UserNamespace, notebook_path
from .parser import parse_line


@magics_class
class ModelHubMagics(Magics):
    """Magics of jupyter-modelhub."""

    @line_magic
    def modelhub(self, line: str = "") -> Any:
        """Register, version and stage models in a git + DVC hub.

        Usage::

            %modelhub register model --name fraud --sample X_test --reference X_train
            %modelhub ls
            %modelhub promote fraud@v0.0.1 --stage prod
            %modelhub show fraud#prod

        ``MODEL`` and the data options of ``register`` name variables of the notebook (else
        files). ``--json`` returns plain data instead of a table. Run ``%modelhub --help`` for
        every command and ``%modelhub COMMAND --help`` for its options.
        """
        args = parse_line(line)
        if args is None:
            return None
        user_ns = self.shell.user_ns if self.shell is not None else {}
        hidden = self.shell.user_ns_hidden if self.shell is not None else {}
        namespace = UserNamespace(user_ns, hidden)
        ctx = commands.Context(
            resolve_model=namespace.resolve_model,
            resolve_data=namespace.resolve_data,
            notebook=notebook_path(user_ns),
        )
        try:
            view = commands.run(args, ctx)
        except ModelHubError as exc:
            raise UsageError(str(exc)) from None
        return json.loads(view.to_json()) if getattr(args, "json", False) else view
