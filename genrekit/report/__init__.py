"""Self-contained HTML dashboards of experiments: ``genrekit report``.

>>> from genrekit.report.html import write_report                              # doctest: +SKIP
>>> write_report(["runs/ff", "runs/kfold"], ["clusters.json"], "report.html")

:mod:`~genrekit.report.build` reads run folders (``results.json``, ``history.csv``) and
cluster files into a data model; :mod:`~genrekit.report.html` renders it as one HTML file
with plotly.js embedded (``pip install 'genrekit[report]'``), which opens without a network.
"""
