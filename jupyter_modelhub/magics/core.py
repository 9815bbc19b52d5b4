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
            %modelhub drift fraud-svc --window 1h
            %modelhub monitor fraud-svc --interval 5s

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
            if not getattr(args, "json", False) and _is_dashboard(args):
                return _dashboard(args)
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


def _is_dashboard(args: Any) -> bool:
    """Whether the line opens a live dashboard rather than a table: ``drift`` (unless it writes
    ``--html``) and ``monitor``."""
    return args.command == "monitor" or (args.command == "drift" and not args.html)


def _dashboard(args: Any) -> Any:
    """The drift or monitor widget of the line (plotly and ipywidgets load here)."""
    if args.command == "drift":
        from ..widgets.drift import DriftWidget

        return DriftWidget(
            commands.drift_loader(args),
            window=commands.drift_window(args),
            quality=commands.quality_loader(args),
        )
    from ..hub import Hub
    from ..widgets.monitor import MonitorWidget

    hub = Hub(args.hub)
    hub.deployment(args.name)  # a wrong name is a usage error now, not a widget that fails
    return MonitorWidget(
        args.name,
        lambda: hub.scrape_metrics(args.name),
        lambda: hub.deployment(args.name),
        interval=args.interval,
        history=args.history,
    )
