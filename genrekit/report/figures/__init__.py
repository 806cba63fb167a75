"""The report's figures, one module per family, each with the tables that go with it.

- :mod:`~genrekit.report.figures.accuracy`: model comparisons, the overview chart, metrics tables;
- :mod:`~genrekit.report.figures.per_genre`: per-genre precision, recall and F1; several-genre F1;
- :mod:`~genrekit.report.figures.confusion`: confusion matrices;
- :mod:`~genrekit.report.figures.reliability`: reliability diagrams (calibration);
- :mod:`~genrekit.report.figures.curves`: training curves of CNN runs;
- :mod:`~genrekit.report.figures.clusters`: a clustering's PCA map and clusters × genres table.

What they share: :class:`~genrekit.report.figures.collector.Figures` (the page's list of
figures) and :mod:`~genrekit.report.figures.layout` (plotly layout pieces).
"""
