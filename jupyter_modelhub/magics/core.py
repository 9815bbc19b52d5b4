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
            %modelhub deploy fraud#prod --name fraud-svc
            %modelhub ab start fraud-svc --challenger v0.0.2 --split 90/10 --key user_id
            %modelhub ab report fraud-svc --refresh 30s

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
        if getattr(args, "json", False):
            return json.loads(view.to_json())
        if (args.command, getattr(args, "action", None)) == ("ab", "report"):
            from ..widgets import ABReportWidget  # plotly and ipywidgets load when first drawn

            return ABReportWidget(
                lambda: commands.run(args, ctx).payload,
                initial=view.payload,
                refresh_seconds=args.refresh,
            )
        return view
