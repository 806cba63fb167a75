"""Self-contained HTML dashboards of experiments: ``genrekit report``.

>>> from genrekit.report.page import write_report                              # doctest: +SKIP
>>> write_report(["runs/ff", "runs/kfold"], ["clusters.json"], "report.html")

:mod:`~genrekit.report.build` reads run folders (``results.json``, ``history.csv``) and
cluster files into a data model; :mod:`~genrekit.report.page` renders it as one HTML file
with plotly.js embedded (``pip install 'genrekit[report]'``), which opens without a network:
its sections (:mod:`~genrekit.report.sections`) are made of the figures in
:mod:`~genrekit.report.figures`, with the look of :mod:`~genrekit.report.theme`.
:mod:`~genrekit.report.images` writes the indexed PNGs of spectrograms and explanations.
"""
