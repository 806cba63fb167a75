"""``POST /api/classify``: the genres of an uploaded song; ``GET /api/spectrogram/{id}.png``: its image.

``POST /api/classify`` — multipart form, field ``file`` (the audio) and optional field
``unknown_rate`` (the "none of these" decision's false-unknown rate, 0 < P < 1; default the
server's ``--unknown-rate``, else the model's own); optional query ``model=NAME`` (one of
``/api/models``) and ``spectrogram=false`` (skip the image). Returns
:class:`~genrekit.web.schemas.ClassifyResponse`::

    {"label": "jazz", "unknown": false, "unknown_score": 0.41,
     "probabilities": {"jazz": 0.7102, "blues": 0.1203, ...},  # by score, sum 1
     "timeline": [{"start": 0.0, "end": 30.0, "probabilities": {...}}, ...],
     "duration": 30.013, "windows": 1, "model": "gtzan57", "notes": [], "filename": "song.mp3",
     "elapsed": 0.41,
     "spectrogram": {"url": "/api/spectrogram/<id>.png", "width": 1292, "height": 128,
                     "duration": 30.01, "fmin": 0.0, "fmax": 11025.0, "n_mels": 128,
                     "db_min": -60.0, "db_max": 20.0,
                     "freq_ticks": [{"hz": 1000.0, "position": 0.299}, ...]}}

Numbers follow :mod:`genrekit.output`, as the command line's JSON does: probabilities
by score (ties by name) to 4 decimals, seconds to 3; ``notes`` holds cautions (a
short upload, an uncertain result).

The spectrogram is a URL rather than inline data so that JSON clients do not carry an
image they do not want; the PNG stays fetchable for the most recent analyses (a bounded
in-memory LRU: 64 images / 48 MB, :class:`genrekit.web.state.PngCache`), after which the
URL gives 404.

Errors (JSON ``{"error": message}``): 400 empty upload, no ``file`` field or a malformed
form; 404 unknown model; 408 an upload that stalls or trickles; 413 upload over the limit
(refused as soon as ``Content-Length`` or the bytes received pass it, and the connection is
closed: the rest is never read) or audio longer than ``max_duration``; 415 not
``multipart/form-data``; 422 audio that cannot be decoded or is too short, the message
naming the problem (the client's file name appears only as text), or an ``unknown_rate`` that is
not a number strictly between 0 and 1 or that the model cannot move to; 503 too many uploads in
progress (with ``Retry-After``).

The upload is streamed to a server-named temp file (:mod:`genrekit.web.uploads`), analysed
on a worker (:mod:`genrekit.web.analysis`) and deleted when the request ends, whatever
the outcome.
"""

from __future__ import annotations

import os
import secrets

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from genrekit import output
from genrekit.errors import BundleError
from genrekit.output import seconds
from genrekit.web.schemas import ERROR_RESPONSES, ClassifyResponse, ErrorResponse, SpectrogramInfo
from genrekit.web.settings import RETRY_AFTER
from genrekit.web.state import ServerSettings, ServerState
from genrekit.web.uploads import CLOSE, MultipartUpload, multipart_boundary, receive_upload, too_large

#: Characters of a spectrogram id (``secrets.token_urlsafe``): anything else is no image of ours.
_ID_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

classify_router = APIRouter(prefix="/api", tags=["classify"])

_MULTIPART_BODY = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary",
                                    "description": "The audio: mp3, wav, flac, ogg (m4a/aac with PyAV)."},
                           "unknown_rate": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1,
                                            "description": "Share of songs of the model's own genres wrongly "
                                                           "called unknown (default: the server's)."}},
        }}},
    }
}


def _unknown_rate(upload: MultipartUpload, settings, clf) -> float | None:
    """The request's false-unknown rate (form field ``unknown_rate``; absent or empty: the server's),
    checked against the model; 422 where it is no rate or the model cannot move to it."""
    from genrekit.errors import ParameterError
    from genrekit.models.unknown import check_rate

    raw = upload.fields.get("unknown_rate", b"").decode("utf-8", "replace").strip()
    rate = settings.unknown_rate
    if raw:
        try:
            rate = check_rate(float(raw))
        except ValueError:
            raise HTTPException(422, f"unknown_rate must be a number strictly between 0 and 1, "
                                     f"found {output.printable(raw, 40)!r}") from None
    try:
        clf.at_unknown_rate(rate)
    except ParameterError as exc:
        raise HTTPException(422, f"unknown_rate {rate:g}: {exc}") from None
    return rate


def _problem(text: str, upload: MultipartUpload, tmp_dir: str) -> str:
    """A decoder message with every server path replaced by the client's file name."""
    if upload.path:
        text = text.replace(upload.path, upload.name)
    return text.replace(tmp_dir + os.sep, "").replace(tmp_dir, "")


@classify_router.post(
    "/classify", response_model=ClassifyResponse, responses=ERROR_RESPONSES, openapi_extra=_MULTIPART_BODY,
    summary="The genres of an uploaded song",
    description="Multipart field `file`. The upload is streamed to a temporary file (removed afterwards) "
                "and refused with 413 as soon as it passes the server's limit.",
)
async def classify(
    request: Request,
    state: ServerState,
    settings: ServerSettings,
    model: str | None = Query(None, description="A model name from /api/models (default: the server's default)."),
    spectrogram: bool = Query(True, description="Also draw the mel-spectrogram image."),
) -> ClassifyResponse:
    if state.tmp_dir is None:  # an app driven without its lifespan (some test clients)
        state.start()
    try:
        clf = state.models.classifier(model)
    except KeyError:
        raise HTTPException(404, f"unknown model {model!r}; see /api/models") from None
    except BundleError as exc:  # listed under "broken" by /api/models
        raise HTTPException(422, f"model {model!r} cannot be used: {exc.problem}") from None
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise HTTPException(400, "invalid Content-Length header")
        if int(length) > settings.max_body_bytes:
            state.note_request(0)
            raise too_large(settings)  # before reading a byte of the body
    boundary = multipart_boundary(request.headers.get("content-type"))
    if state.uploads >= settings.max_uploads:
        # Before reading the body: every upload in progress holds a temp file and a connection.
        raise HTTPException(503, f"the server is busy ({state.uploads} uploads in progress); try again shortly",
                            headers={"Retry-After": str(RETRY_AFTER), **CLOSE})
    state.uploads += 1
    upload = MultipartUpload(boundary, state.tmp_dir, settings.max_upload_bytes)
    try:
        try:
            await receive_upload(request, upload, settings)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening
        finally:
            state.note_request(upload.received)

        rate = _unknown_rate(upload, settings, clf)
        outcome = await state.analyses.run(state.models.source(model), clf.name, upload.path, spectrogram, rate)
        kind = outcome[0]
        if kind == "too long":
            raise HTTPException(413, f"{upload.name}: {_problem(outcome[1], upload, state.tmp_dir)}")
        if kind == "bad audio":
            raise HTTPException(422, f"{upload.name}: {_problem(outcome[1], upload, state.tmp_dir)}")
        if kind == "bad model":
            raise HTTPException(422, f"{upload.name}: model {clf.name!r} cannot be used: {outcome[1]}")
        prediction, png, meta, elapsed, identity = outcome[1:]
    finally:
        state.uploads -= 1
        upload.discard()  # at once, whatever happened: aborted and refused uploads included

    info = None
    if png is not None:
        sid = secrets.token_urlsafe(16)
        state.spectrograms.put(sid, png)
        root = request.scope.get("root_path", "")
        info = SpectrogramInfo(url=f"{root}/api/spectrogram/{sid}.png",
                               **{**meta.to_dict(), "duration": seconds(meta.duration)})
    public = output.public(prediction, timeline=True, names=state.names)  # the CLI's JSON convention
    return ClassifyResponse(
        label=public["label"], name=public["name"], unknown=public["unknown"],
        unknown_score=public["unknown_score"], genres=public.get("genres"),
        probabilities=public["probabilities"], timeline=public["timeline"],
        duration=public["duration"], windows=prediction.windows, model=public["model"], notes=public["notes"],
        tags=public.get("tags"), similar=state.library.similar_to(clf, prediction, exclude=identity),
        filename=upload.name, elapsed=seconds(elapsed), spectrogram=info,
    )


@classify_router.get(
    "/spectrogram/{sid}.png", summary="A mel-spectrogram image made by /api/classify",
    responses={200: {"content": {"image/png": {}}, "description": "The PNG."}, 404: {"model": ErrorResponse}},
    response_class=Response,
)
async def spectrogram_png(sid: str, state: ServerState) -> Response:
    png = state.spectrograms.get(sid) if set(sid) <= _ID_CHARS else None
    if png is None:
        raise HTTPException(404, "no such spectrogram (images are kept for the most recent analyses only)")
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})
