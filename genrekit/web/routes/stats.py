"""``GET /api/_stats``: byte counters for tests (``GENREKIT_WEB_STATS=1``; not in the OpenAPI schema)."""

from __future__ import annotations

from fastapi import APIRouter

from genrekit.web.state import ServerState

stats_router = APIRouter(prefix="/api", include_in_schema=False)


@stats_router.get("/_stats")
async def stats(state: ServerState) -> dict:
    """Request-body bytes the last upload request pulled from the connection (tests only)."""
    return {**state.stats, "tmp_dir": state.tmp_dir, "spectrograms": len(state.spectrograms)}
