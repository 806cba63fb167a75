"""``GET /``: the page, a static HTML file whose script calls the same JSON API scripts use.

Its files are under :data:`STATIC_DIR` (one HTML, one script, one style sheet, no CDN, system
fonts), served at ``/static`` by the app (:func:`genrekit.web.app.create_app` mounts them).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

#: The page's files.
STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
#: The page's Content-Security-Policy: everything from this server, nothing from elsewhere.
PAGE_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
            "frame-ancestors 'none'; form-action 'self'")

page_router = APIRouter()


@page_router.get("/", include_in_schema=False)
async def index():
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html",
                        headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"})
