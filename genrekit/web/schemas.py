"""The JSON shapes of the API: pydantic models that FastAPI validates responses against and publishes in OpenAPI.

Every error is :class:`ErrorResponse` (``{"error": message}``, written by
:mod:`genrekit.web.app`'s handlers); :data:`ERROR_RESPONSES` documents it in a route's
``responses``. Numbers follow :mod:`genrekit.output`, as the command line's JSON does.

A class docstring would become the schema's description in ``/openapi.json``; those the API
has always published are kept as they were, and notes for readers are comments.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


# --- errors ---------------------------------------------------------------------------------
class ErrorResponse(BaseModel):
    error: str = Field(description="What went wrong, in plain words.")


# --- POST /api/classify ---------------------------------------------------------------------
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
    unknown_score: float | None = Field(
        None, description="How unlike the model's training songs the song is, 0 to 1 (4 decimals): the share of "
                          "known training songs lying nearer. The song is unknown at false-unknown rate r when it "
                          "reaches 1 - r. Null for a model that stores no out-of-fold scores or no decision.")
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


# --- GET /api/health -------------------------------------------------------------------------
class HealthResponse(BaseModel):
    status: str
    version: str
    model: str
    formats: list[str] = Field(description="File extensions this server can decode.")
    max_upload_mb: float
    workers: int
    busy: int = Field(description="Analyses running now.")
    reports: bool = Field(description="Training-run reports are served at /reports.")


# --- GET /api/models -------------------------------------------------------------------------
class ModelCard(BaseModel):
    model: str | None = None
    summary: str | None = Field(None, description="The model in words: what it listens to, how it decides, which "
                                                  "genres (\"MSD-musicnn tags + logistic regression/SVM vote, "
                                                  "GTZAN's ten genres\").")
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


# --- GET /api/reports ------------------------------------------------------------------------
class ReportRun(BaseModel):
    """One run under the server's runs folder."""

    name: str = Field(description="Path of the run folder relative to the runs folder ('/' separated).")
    url: str = Field(description="Where its report is.")
    kind: str | None = Field(None, description="classical, cnn or mixed.")
    models: list[str] = Field(default_factory=list)
    split: str | None = None
    leaky: bool = Field(False, description="Its split leaks (windows of one track on both sides): optimistic figures.")
    n_tracks: int | None = None
    date: str = Field(description="When results.json was last written (UTC, ISO 8601).")
    error: str | None = Field(None, description="Why the run cannot be read, if it cannot.")


#: A route's ``responses=``: every error status it may answer, each with the JSON error body.
ERROR_RESPONSES = {code: {"model": ErrorResponse} for code in (400, 404, 408, 413, 415, 422, 503)}
