"""The app's routes, one module per area, each an ``APIRouter`` that :func:`genrekit.web.app.create_app` includes.

- :mod:`~genrekit.web.routes.health`: ``GET /api/health``;
- :mod:`~genrekit.web.routes.models`: ``GET /api/models``;
- :mod:`~genrekit.web.routes.classify`: ``POST /api/classify`` and ``GET /api/spectrogram/{id}.png``;
- :mod:`~genrekit.web.routes.reports`: ``/reports``, ``/api/reports`` (with ``--runs``);
- :mod:`~genrekit.web.routes.page`: ``GET /``, the page, and its static files;
- :mod:`~genrekit.web.routes.stats`: ``GET /api/_stats``, byte counters for tests.
"""
