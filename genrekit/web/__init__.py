"""The web app: ``genrekit serve`` (FastAPI JSON API + a static page). See :mod:`genrekit.web.app`."""
