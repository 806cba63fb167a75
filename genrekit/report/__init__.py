"""Self-contained HTML dashboards of experiments: ``genrekit report``.

>>> from genrekit.report import write_report                                   # doctest: +SKIP
>>> write_report(["runs/ff", "runs/kfold"], ["clusters.json"], "report.html")

:mod:`~genrekit.report.build` reads run folders (``results.json``, ``history.csv``) and
cluster files into a data model; :mod:`~genrekit.report.html` renders it as one HTML file
with plotly.js embedded (``pip install 'genrekit[report]'``), which opens without a network.
"""

from .build import ReportError, build_report, find_runs, load_cluster, load_run
from .html import render_html, write_report

__all__ = ["ReportError", "build_report", "find_runs", "load_cluster", "load_run", "render_html", "write_report"]
