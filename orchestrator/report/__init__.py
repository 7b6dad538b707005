"""What a run directory shows: ``pareto.json``, the CSV tables, ``report.md`` with its PNG plots and
the self-contained ``report.html``, all built from one :class:`~orchestrator.report.view.RunView`.

Heavy imports (plotly, matplotlib, optuna's importance) happen only when a report is written.
"""

from orchestrator.report.view import RunView, ratios

__all__ = ["RunView", "ratios"]
