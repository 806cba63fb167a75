"""``GET /api/health``: is the server up, and what can it do?"""

from __future__ import annotations

import functools
import importlib.util

from fastapi import APIRouter

from genrekit._version import __version__
from genrekit.web.schemas import HealthResponse
from genrekit.web.state import ServerSettings, ServerState

health_router = APIRouter(prefix="/api", tags=["health"])


@functools.cache
def audio_formats() -> tuple[str, ...]:
    """Extensions this installation decodes: libsndfile's formats, plus FFmpeg's through PyAV (found once)."""
    import soundfile as sf

    available = {name.upper() for name in sf.available_formats()}
    by_format = {"WAV": ["wav"], "FLAC": ["flac"], "OGG": ["ogg", "oga", "opus"], "MP3": ["mp3"],
                 "AIFF": ["aiff", "aif"], "AU": ["au"]}
    formats = {ext for name, exts in by_format.items() if name in available for ext in exts}
    if importlib.util.find_spec("av") is not None:  # installed; imported only when a file needs it
        formats |= {"mp3", "m4a", "aac", "ogg", "opus"}
    return tuple(sorted(formats))


@health_router.get("/health", response_model=HealthResponse, summary="Is the server up, and what can it do?")
async def health(state: ServerState, settings: ServerSettings) -> HealthResponse:
    return HealthResponse(status="ok", version=__version__, model=state.models.default.name,
                          formats=list(audio_formats()), max_upload_mb=round(settings.max_upload_bytes / 2**20, 3),
                          workers=state.analyses.workers, busy=state.analyses.busy,
                          reports=settings.runs_dir is not None)
