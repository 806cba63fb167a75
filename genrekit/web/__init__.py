"""The web app: ``genrekit serve`` (FastAPI JSON API + a static page), in FastAPI's "bigger applications" layout.

- :mod:`~genrekit.web.app`: ``create_app(settings)``, wiring the routers, error handlers, middleware and lifespan;
- :mod:`~genrekit.web.settings`: the server's limits and options, one frozen ``WebSettings``;
- :mod:`~genrekit.web.state`: what the routes share (``WebState``) and the dependencies that hand it to them;
- :mod:`~genrekit.web.schemas`: the JSON shapes (pydantic response models);
- :mod:`~genrekit.web.routes`: one router per area (health, models, classify, reports, the page, test counters);
- :mod:`~genrekit.web.uploads`: a multipart upload streamed to a temp file, within the limits;
- :mod:`~genrekit.web.analysis`: the analysis of an upload, run on worker processes;
- :mod:`~genrekit.web.served_models`, :mod:`~genrekit.web.library_index`: the models offered, the
  ``--library`` similar songs come from;
- :mod:`~genrekit.web.spectrogram`: the spectrogram PNG; :mod:`~genrekit.web.reports`: the runs' report pages;
- :mod:`~genrekit.web.connections`: the header deadline and the Host allow-list (uvicorn's side).
"""
