"""The JSON API: one router per concern (health, models, classification, test counters).

``POST /api/classify`` — multipart form, field ``file`` (the audio); optional query
``model=NAME`` (one of ``/api/models``) and ``spectrogram=false`` (skip the image). Returns
:class:`ClassifyResponse`::

    {"label": "jazz", "probabilities": {"jazz": 0.7102, "blues": 0.1203, ...},  # by score, sum 1
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
in-memory LRU: 64 images / 48 MB), after which the URL gives 404.

Errors (JSON ``{"error": message}``): 400 empty upload, no ``file`` field or a malformed
form; 404 unknown model; 413 upload over the limit (refused as soon as ``Content-Length``
or the bytes received pass it, and the connection is closed: the rest is never read);
415 not ``multipart/form-data``; 422 audio that cannot be decoded or is too short, the
message naming the problem (the client's file name appears only as text).

Uploads are written, as they arrive, to a file the server names (``tempfile`` in a
private folder, suffix kept only when it is a known audio extension) and deleted when
the request ends, whatever the outcome.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import secrets
import tempfile
import time
from typing import TYPE_CHECKING, Annotated

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from genrekit._version import __version__
from genrekit.audio.decode import AudioError, DecoderWarning, SilentAudioWarning, TooLongError
from genrekit.models.bundle import BundleError
from genrekit.audio.files import AUDIO_EXTENSIONS
from genrekit import output
from genrekit.output import seconds

if TYPE_CHECKING:  # app.py imports this module: the class is named here for the annotations only
    from genrekit.web.app import WebState

log = logging.getLogger("genrekit.web")

#: Headers of a 413: the server stops reading, so the connection cannot be reused.
_CLOSE = {"Connection": "close"}
#: Bytes of non-file form fields accepted (they are ignored).
_MAX_OTHER_FIELDS = 16 * 1024
_ID_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


# --- response models ----------------------------------------------------------------------
class ErrorResponse(BaseModel):
    error: str = Field(description="What went wrong, in plain words.")


class TagScore(BaseModel):
    label: str = Field(description="A Last.fm tag of MSD-musicnn's 50 (genre, era, mood, instrument).")
    score: float = Field(description="Its probability (tags are not exclusive), 4 decimals.")


class SimilarSong(BaseModel):
    path: str = Field(description="The song, as the library run named it.")
    label: str = Field(description="Its top genre.")
    score: float = Field(description="Cosine similarity of the embeddings, in [-1, 1].")


class TimelineWindow(BaseModel):
    start: float = Field(description="Window start (s).")
    end: float = Field(description="Window end (s).")
    probabilities: dict[str, float]


class FreqTick(BaseModel):
    hz: float
    position: float = Field(description="Height fraction from the image's bottom edge (mel scale).")


class SpectrogramInfo(BaseModel):
    url: str = Field(description="Where to GET the PNG (kept for the most recent analyses only).")
    width: int
    height: int
    duration: float = Field(description="Seconds spanned by the image's width.")
    fmin: float
    fmax: float
    n_mels: int
    db_min: float
    db_max: float
    freq_ticks: list[FreqTick]


class ClassifyResponse(BaseModel):
    label: str = Field(description="The most likely genre (the model's label).")
    name: str = Field(description="Its display name (the server's name map: hiphop is Hip-Hop).")
    unknown: bool | None = Field(None, description="Whether the song fits none of the model's genres (label: the "
                                                   "closest); null for a model that stores no such decision.")
    genres: list[str] | None = Field(None, description="Models trained on several genres per song only: every "
                                                       "genre at or above its own threshold, best first.")
    probabilities: dict[str, float] = Field(
        description="Every genre's probability (mean over windows), by score, highest first (ties by name); "
                    "4 decimals.")
    timeline: list[TimelineWindow] = Field(description="Per-window probabilities covering the whole song.")
    duration: float = Field(description="Length of the decoded audio (s, 3 decimals).")
    windows: int
    model: str
    notes: list[str] = Field(default_factory=list,
                             description="Cautions: an upload much shorter than the model's training clips, "
                                         "an uncertain result.")
    tags: list[TagScore] | None = Field(None, description="The song's strongest descriptive tags, best first "
                                                          "(models on the pretrained backbone only).")
    similar: list[SimilarSong] | None = Field(None, description="The most similar songs of the server's "
                                                                "--library (when it has one and the model fits).")
    filename: str = Field(description="The uploaded file's name, as text.")
    elapsed: float = Field(description="Server time spent decoding and analysing (s).")
    spectrogram: SpectrogramInfo | None = None


class HealthResponse(BaseModel):
    status: str
    version: str
    model: str
    formats: list[str] = Field(description="File extensions this server can decode.")
    max_upload_mb: float
    workers: int
    busy: int = Field(description="Analyses running now.")
    reports: bool = Field(description="Training-run reports are served at /reports.")


class ModelCard(BaseModel):
    model: str | None = None
    data: str | None = None
    split: str | None = None
    created: str | None = None
    genrekit_version: str | None = None
    limitations: str | None = None
    figures: dict = Field(default_factory=dict)


class ModelInfo(BaseModel):
    name: str
    default: bool
    kind: str
    labels: list[str]
    names: dict[str, str] = Field(default_factory=dict, description="Each label's display name.")
    window: float | None = Field(description="Analysis window (s); null: the whole song.")
    hop: float | None
    sample_rate: int
    feature_set: str
    card: ModelCard


class BrokenModel(BaseModel):
    name: str
    error: str = Field(description="Why the bundle cannot be used.")


class ModelsResponse(BaseModel):
    models: list[ModelInfo]
    broken: list[BrokenModel] = Field(default_factory=list,
                                      description="Bundles found under --runs that cannot be used, and why.")


_ERRORS = {code: {"model": ErrorResponse} for code in (400, 404, 408, 413, 415, 422, 503)}


def server_state(request: Request) -> WebState:
    """The server's settings and shared resources: the one :class:`~genrekit.web.app.WebState` that
    ``create_app`` made, handed to every route as a FastAPI dependency (``state: ServerState``)."""
    return request.app.state.web


#: A route parameter that receives the :class:`~genrekit.web.app.WebState`.
ServerState = Annotated["WebState", Depends(server_state)]


# --- health -----------------------------------------------------------------------------------
health_router = APIRouter(prefix="/api", tags=["health"])


def audio_formats() -> list[str]:
    """Extensions this installation decodes: libsndfile's formats, plus FFmpeg's through PyAV."""
    import soundfile as sf

    available = {name.upper() for name in sf.available_formats()}
    by_format = {"WAV": ["wav"], "FLAC": ["flac"], "OGG": ["ogg", "oga", "opus"], "MP3": ["mp3"],
                 "AIFF": ["aiff", "aif"], "AU": ["au"]}
    formats = {ext for name, exts in by_format.items() if name in available for ext in exts}
    if importlib.util.find_spec("av") is not None:  # installed; imported only when a file needs it
        formats |= {"mp3", "m4a", "aac", "ogg", "opus"}
    return sorted(formats)


@health_router.get("/health", response_model=HealthResponse, summary="Is the server up, and what can it do?")
async def health(state: ServerState) -> HealthResponse:
    if not hasattr(state, "_formats"):
        state._formats = audio_formats()
    return HealthResponse(status="ok", version=__version__, model=state.default.name, formats=state._formats,
                          max_upload_mb=round(state.max_upload_bytes / 2**20, 3), workers=state.workers,
                          busy=state.busy, reports=state.runs_dir is not None)


# --- models ---------------------------------------------------------------------------------------
models_router = APIRouter(prefix="/api", tags=["models"])


def _model_info(name: str, meta: dict, default: bool, names=None) -> ModelInfo:
    card = meta.get("card") or {}
    fs = meta.get("feature_set") or {}
    return ModelInfo(
        name=name, default=default, kind=meta.get("kind", "classical"), labels=list(meta["labels"]),
        names={label: names.display(label) for label in meta["labels"]} if names is not None else {},
        window=meta.get("window"), hop=meta.get("hop"), sample_rate=int(fs.get("sample_rate", 22050)),
        feature_set=str(fs.get("name", "?")),
        # The card minus `command`, which may name folders on the server.
        card=ModelCard(**{k: card.get(k) for k in ("model", "data", "split", "created", "genrekit_version",
                                                        "limitations")},
                       figures=card.get("figures") or {}),
    )


@models_router.get("/models", response_model=ModelsResponse, summary="The models this server offers")
async def models(state: ServerState) -> ModelsResponse:
    out, broken = [], []
    for name in state.bundles:
        try:
            meta = state.bundle_meta(name)
            info = _model_info(name, meta, name == state.default.name, state.names)
        except BundleError as exc:  # listed as broken; every other model still works
            broken.append(BrokenModel(name=name, error=_relative(str(exc), state)))
            continue
        except (OSError, ValueError, KeyError, TypeError) as exc:
            broken.append(BrokenModel(name=name, error=f"unusable bundle.json ({type(exc).__name__})"))
            continue
        out.append(info)
    return ModelsResponse(models=out, broken=broken)


def _relative(text: str, state) -> str:
    """A message with the runs folder's path left out (it names folders on the server)."""
    if state.runs_dir is not None:
        text = text.replace(str(state.runs_dir) + os.sep, "")
    return text


# --- upload --------------------------------------------------------------------------------------
class _TooLarge(Exception):
    pass


class _WrongField(Exception):
    """A large part under another name than ``file``: the audio sent in the wrong field."""


def display_name(raw: bytes | None) -> str:
    """The client's file name as safe text: last path component, printable, at most 120 characters."""
    text = raw.decode("utf-8", "replace") if raw else ""
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(ch for ch in text if ch.isprintable()).strip()[:120]
    return text or "upload"


class MultipartUpload:
    """Stream a ``multipart/form-data`` body, writing the ``file`` part to a server-named temp file.

    Feed it chunks as they arrive (:meth:`feed`); it raises :class:`_TooLarge` as soon as
    the file part passes ``limit`` bytes. Always call :meth:`discard` at the end.
    """

    def __init__(self, boundary: bytes, tmp_dir: str, limit: int) -> None:
        self.tmp_dir, self.limit = tmp_dir, limit
        self.path: str | None = None
        self.name = "upload"
        self.size = 0
        self.received = 0  # body bytes taken from the connection
        self.complete = False
        self._fh = None
        self._writing = False
        self._other = 0
        self.other_fields: list[str] = []  # names of the form's other parts, files marked "(a file)"
        self._headers: dict[bytes, bytes] = {}
        self._field = self._value = b""
        self._parser = MultipartParser(boundary, callbacks={
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        })

    # parser callbacks
    def _part_begin(self) -> None:
        self._headers, self._field, self._value = {}, b"", b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if options.get(b"name") == b"file" and self._fh is None:
            self.name = display_name(options.get(b"filename"))
            ext = os.path.splitext(self.name)[1].lower()
            # The suffix only helps the decoder's messages; it is taken from a fixed list.
            suffix = ext if ext in AUDIO_EXTENSIONS else ""
            self._fh = tempfile.NamedTemporaryFile(dir=self.tmp_dir, prefix="upload-", suffix=suffix, delete=False)
            self.path = self._fh.name
            self._writing = True
        elif len(self.other_fields) < 8:
            name = display_name(options.get(b"name"))
            self.other_fields.append(f"'{name}' (a file)" if b"filename" in options else f"'{name}'")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        n = end - start
        if self._writing:
            self.size += n
            if self.size > self.limit:
                raise _TooLarge
            # A write to the page cache: microseconds for the parser's chunk sizes.
            self._fh.write(data[start:end])
        else:
            self._other += n
            if self._other > _MAX_OTHER_FIELDS:
                raise _WrongField(self.wrong_field_message())

    def wrong_field_message(self) -> str:
        """What to tell a client whose form has no ``file`` part (naming the fields it did send)."""
        got = f"got {', '.join(self.other_fields)}" if self.other_fields else "the form is empty"
        return f"no 'file' field in the form ({got}): send the audio as multipart field 'file'"

    def _part_end(self) -> None:
        self._writing = False

    def _end(self) -> None:
        self.complete = True

    # driving
    def feed(self, chunk: bytes) -> None:
        self._parser.write(chunk)

    def finish(self) -> None:
        self._parser.finalize()
        if self._fh is not None:
            self._fh.close()

    def discard(self) -> None:
        """Close and delete the temp file (safe to call more than once)."""
        if self._fh is not None:
            self._fh.close()
        if self.path is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


def _boundary(content_type: str | None) -> bytes:
    kind, options = parse_options_header(content_type or "")
    if kind != b"multipart/form-data":
        raise HTTPException(415, "send the audio as multipart/form-data with the field 'file' "
                                 f"(got Content-Type {kind.decode('latin-1') or 'none'})")
    boundary = options.get(b"boundary")
    if not boundary or len(boundary) > 200:
        raise HTTPException(400, "multipart/form-data without a valid boundary")
    return boundary


def _too_large(state) -> HTTPException:
    mb = state.max_upload_bytes / 2**20
    return HTTPException(413, f"upload too large: the limit is {mb:g} MB", headers=_CLOSE)


# --- analysis -------------------------------------------------------------------------------------
def analyse_upload(model, name: str, path: str, spectrogram: bool, max_duration: float | None):
    """Decode, classify and draw one upload, block by block (in an analysis worker process).

    ``model`` is the bundle folder (``None``: the bundled default) and ``name`` the name
    the server lists it under. One pass of the decoder feeds both the classifier and the
    spectrogram, and neither keeps the audio, so memory does not grow with the song.
    Raises :class:`genrekit.audio.decode.AudioError` (``TooLongError`` past ``max_duration``)
    or ``ValueError`` for bad audio.
    """
    from genrekit.features.blockwise import LogmelStream
    from genrekit.models.registry import load_model
    from genrekit.web.spectrogram import spectrogram_png

    t0 = time.perf_counter()
    clf = load_model(model)
    image = LogmelStream(clf.sample_rate) if spectrogram else None
    # The spectrogram is one more consumer of the blocks the model's decode loop reads.
    prediction = clf.classify_file(path, timeline=True, max_duration=max_duration,
                                   also=[image] if image is not None else [])
    prediction.model = name
    prediction.path = None  # the upload's temporary file: the client knows its file by its own name
    png = meta = None
    if image is not None:
        png, meta = spectrogram_png(image.finish(), prediction.duration, clf.sample_rate)
    return prediction, png, meta, time.perf_counter() - t0


def _problem(text: str, upload: MultipartUpload, tmp_dir: str) -> str:
    """A decoder message with every server path replaced by the client's file name."""
    if upload.path:
        text = text.replace(upload.path, upload.name)
    return text.replace(tmp_dir + os.sep, "").replace(tmp_dir, "")


classify_router = APIRouter(prefix="/api", tags=["classify"])

_MULTIPART_BODY = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary",
                                    "description": "The audio: mp3, wav, flac, ogg (m4a/aac with PyAV)."}},
        }}},
    }
}


@classify_router.post(
    "/classify", response_model=ClassifyResponse, responses=_ERRORS, openapi_extra=_MULTIPART_BODY,
    summary="The genres of an uploaded song",
    description="Multipart field `file`. The upload is streamed to a temporary file (removed afterwards) "
                "and refused with 413 as soon as it passes the server's limit.",
)
async def classify(
    request: Request,
    state: ServerState,
    model: str | None = Query(None, description="A model name from /api/models (default: the server's default)."),
    spectrogram: bool = Query(True, description="Also draw the mel-spectrogram image."),
) -> ClassifyResponse:
    if state.tmp_dir is None:  # an app driven without its lifespan (some test clients)
        state.start()
    try:
        clf = state.classifier(model)
    except KeyError:
        raise HTTPException(404, f"unknown model {model!r}; see /api/models") from None
    except BundleError as exc:  # listed under "broken" by /api/models
        raise HTTPException(422, f"model {model!r} cannot be used: {exc.problem}") from None
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise HTTPException(400, "invalid Content-Length header")
        if int(length) > state.max_body_bytes:
            _note(state, 0)
            raise _too_large(state)  # before reading a byte of the body
    boundary = _boundary(request.headers.get("content-type"))
    if state.uploads >= state.max_uploads:
        # Before reading the body: every upload in progress holds a temp file and a connection.
        raise HTTPException(503, f"the server is busy ({state.uploads} uploads in progress); try again shortly",
                            headers={"Retry-After": str(RETRY_AFTER), **_CLOSE})
    state.uploads += 1
    upload = MultipartUpload(boundary, state.tmp_dir, state.max_upload_bytes)
    try:
        try:
            await _receive(request, upload, state)
            upload.finish()
        except _TooLarge:
            raise _too_large(state) from None
        except _WrongField as exc:
            raise HTTPException(400, str(exc)) from None
        except _TooSlow as exc:
            raise HTTPException(408, str(exc), headers=_CLOSE) from None
        except MultipartParseError as exc:
            raise HTTPException(400, f"malformed multipart body: {exc}") from None
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening
        finally:
            _note(state, upload.received)
        if not upload.complete:
            raise HTTPException(400, "malformed multipart body: it ends before the closing boundary")
        if upload.path is None:
            raise HTTPException(400, upload.wrong_field_message())
        if upload.size == 0:
            raise HTTPException(400, f"{upload.name}: empty upload (0 bytes)")

        outcome = await state.analyse(model, clf.name, upload.path, spectrogram)
        kind = outcome[0]
        if kind == "too long":
            raise HTTPException(413, f"{upload.name}: {_problem(outcome[1], upload, state.tmp_dir)}")
        if kind == "bad audio":
            raise HTTPException(422, f"{upload.name}: {_problem(outcome[1], upload, state.tmp_dir)}")
        if kind == "bad model":
            raise HTTPException(422, f"{upload.name}: model {clf.name!r} cannot be used: {outcome[1]}")
        prediction, png, meta, elapsed = outcome[1:]
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
        label=public["label"], name=public["name"], unknown=public["unknown"], genres=public.get("genres"),
        probabilities=public["probabilities"], timeline=public["timeline"],
        duration=public["duration"], windows=prediction.windows, model=public["model"], notes=public["notes"],
        tags=public.get("tags"), similar=state.similar_to(clf, prediction),
        filename=upload.name, elapsed=seconds(elapsed), spectrogram=info,
    )


class _TooSlow(Exception):
    pass


#: Seconds a client is told to wait (Retry-After) when the upload cap is reached.
RETRY_AFTER = 5
#: Slowest average body rate accepted after the first ``body_timeout`` seconds (bytes/s).
MIN_BODY_RATE = 8 * 1024


async def _receive(request: Request, upload: MultipartUpload, state) -> int:
    """Feed the body to ``upload`` as it arrives; the bytes received.

    Raises :class:`_TooSlow` when no byte arrives for ``state.body_timeout`` seconds, or
    when the body comes in slower than :data:`MIN_BODY_RATE` on average beyond its first
    ``body_timeout`` seconds (a client trickling bytes to hold a connection and a temp file).
    """
    received = 0
    started = time.monotonic()
    chunks = request.stream().__aiter__()
    while True:
        now = time.monotonic()
        deadline = started + state.body_timeout + received / MIN_BODY_RATE
        wait = min(state.body_timeout, deadline - now)
        if wait <= 0:
            raise _TooSlow(f"upload too slow: {received} bytes in {now - started:.0f} s "
                           f"(at least {MIN_BODY_RATE // 1024} KB/s are needed)")
        try:
            with anyio.fail_after(wait):
                chunk = await chunks.__anext__()
        except StopAsyncIteration:
            return received
        except TimeoutError:
            stalled = wait >= state.body_timeout
            raise _TooSlow(f"upload timed out: no data for {state.body_timeout:g} s" if stalled else
                           f"upload too slow: {received} bytes in {time.monotonic() - started:.0f} s "
                           f"(at least {MIN_BODY_RATE // 1024} KB/s are needed)") from None
        received += len(chunk)
        upload.received = received
        if received > state.max_body_bytes:
            raise _TooLarge
        upload.feed(chunk)


def analysis_job(model, name: str, path: str, spectrogram: bool, max_duration: float | None) -> tuple:
    """:func:`analyse_upload` in an analysis worker, its errors as plain tuples.

    Returns ``("ok", prediction, png, meta, elapsed)``, ``("too long", problem)``,
    ``("bad audio", problem)`` or ``("bad model", problem)``. Plain tuples, because exceptions with custom constructors
    do not always survive the trip back from a worker process.
    """
    import warnings

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = analyse_upload(model, name, path, spectrogram, max_duration)
        for w in caught:  # decoder chatter and silence: logged by the server with the client's name
            if isinstance(w.message, (DecoderWarning, SilentAudioWarning)):
                log.info("%s", w.message)
        return ("ok", *result)
    except TooLongError as exc:
        return ("too long", exc.problem)
    except AudioError as exc:
        return ("bad audio", exc.problem)
    except BundleError as exc:  # e.g. a graph that outputs NaN: the model's fault, named as such
        return ("bad model", exc.problem)
    except (ValueError, MemoryError) as exc:  # e.g. a signal shorter than one analysis frame
        return ("bad audio", f"could not be analysed ({type(exc).__name__}: {exc})")


def _note(state, received: int) -> None:
    state.stats["requests"] += 1
    state.stats["last"] = {"body_bytes": received}


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


# --- counters for tests -------------------------------------------------------------------------
stats_router = APIRouter(prefix="/api", include_in_schema=False)


@stats_router.get("/_stats")
async def stats(state: ServerState) -> dict:
    """Request-body bytes the last upload request pulled from the connection (tests only)."""
    return {**state.stats, "tmp_dir": state.tmp_dir, "spectrograms": len(state.spectrograms)}
