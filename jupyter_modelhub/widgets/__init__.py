"""Notebook dashboards (ipywidgets + plotly): adapters like the magics, drawing what ``Hub``
returns. Figures are built from records in plain functions (``abfigure``), apart from the
widget wiring (``abreport``), so they can be tested without a browser.
"""

from __future__ import annotations

from .abfigure import ab_report_figure
from .abreport import ABReportWidget

__all__ = ["ABReportWidget", "ab_report_figure"]
