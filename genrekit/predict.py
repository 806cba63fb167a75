"""Classify audio with a model bundle: per-window probabilities, song-level genres, timelines.

>>> from genrekit import classify, load_model
>>> classify("song.mp3")[:2]
[{'label': 'jazz', 'score': 0.71}, {'label': 'blues', 'score': 0.12}]
>>> model = load_model()                 # the bundled default model
>>> model.predict_proba(y, sr)           # (n_labels,) mean over the song's windows
>>> model.timeline(y, sr)                # [{'start': 0.0, 'end': 30.0, 'probabilities': {...}}, ...]

A song is cut into the bundle's windows (:func:`genrekit.audio.window_bounds` with
``cover_end=True``, so the windows cover the whole song; a song shorter than one window
is one window); the model gives probabilities per window, and the song's probabilities
are their mean. Everything a prediction needs (labels, feature set, window, hop) comes
from the bundle.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import audio

#: Descriptive tags given per song by backbone models (the strongest first).
SONG_TAGS = 10
#: Timeline windows of backbone models, in seconds (widened where patches are sparser).
TIMELINE_WINDOW, TIMELINE_HOP = 10.0, 5.0

#: Bundles shipped inside the package, one folder per model name.
SHIPPED_MODELS = Path(__file__).resolve().parent / "models" / "shipped"
#: The shipped model used when no model is named.
DEFAULT_MODEL_NAME = "musicnn"
DEFAULT_MODEL = SHIPPED_MODELS / DEFAULT_MODEL_NAME


def shipped_models() -> list[str]:
    """Names of the models shipped with genrekit (folders of :data:`SHIPPED_MODELS`)."""
    return sorted(p.parent.name for p in SHIPPED_MODELS.glob("*/bundle.json"))


@dataclass
class Prediction:
    """The genres of one song.

    ``probabilities`` (full floats) and each timeline window's are in the output order
    of :mod:`genrekit.output` (score descending, ties by name); ``notes`` are its
    cautions (:func:`genrekit.output.prediction_notes`).
    """

    path: str | None
    label: str
    probabilities: dict[str, float]
    duration: float
    model: str
    timeline: list[dict] | None = None
    windows: int = 0
    notes: list[str] = field(default_factory=list)
    #: The song's strongest descriptive tags ``[{"label", "score"}, ...]`` (backbone models
    #: only: MSD-musicnn's Last.fm tags, mean over the song's patches), best first.
    tags: list[dict] | None = None
    #: The song's embedding (backbone models only): mean of its patches' embeddings, float32.
    embedding: np.ndarray | None = field(default=None, repr=False)

    def top(self, k: int | None = None, precision: int | None = None) -> list[dict]:
        """``[{"label", "score"}, ...]`` by score, the first ``k`` (all when ``None``), rounded to ``precision``."""
        from .output import top_list

        return top_list(self.probabilities, k, precision)

    def to_dict(self, precision: int | None = None) -> dict:
        """The prediction as JSON-ready data (rounded as outputs are: ``precision`` defaults to 4 decimals)."""
        from . import output

        digits = output.PRECISION if precision is None else precision
        out = {"path": self.path, "label": self.label, "probabilities": output.ranked(self.probabilities, digits),
               "duration": output.seconds(self.duration), "model": self.model, "notes": list(self.notes)}
        if self.tags is not None:
            out["tags"] = output.scores(self.tags, digits)
        if self.timeline is not None:
            out["timeline"] = output.timeline(self.timeline, digits)
        return out


@dataclass
class GenreClassifier:
    """A loaded bundle that turns audio into genre probabilities.

    Use :func:`load_model` rather than building one: it loads each bundle once per process.
    """

    bundle: object
    name: str
    _inputs: object = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._inputs = _input_maker(self.bundle)

    # --- what the bundle says ------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        return list(self.bundle.labels)

    @property
    def sample_rate(self) -> int:
        return self.bundle.feature_set.sample_rate

    @property
    def window(self) -> float:
        return float(self.bundle.window)

    @property
    def hop(self) -> float:
        return float(self.bundle.hop)

    @property
    def min_samples(self) -> int:
        return self.bundle.feature_set.min_samples

    # --- prediction ------------------------------------------------------------------
    def window_bounds(self, n_samples: int) -> list[tuple[int, int]]:
        """Sample ranges of the windows a signal of ``n_samples`` (at :attr:`sample_rate`) is cut into."""
        return audio.window_bounds(n_samples, self.sample_rate, self.window, self.hop, cover_end=True)

    @property
    def has_backbone(self) -> bool:
        """Whether the model is a head on a pretrained network (it then also gives tags and embeddings)."""
        return self.bundle.feature_set.name == "musicnn"

    def taggram(self, y: np.ndarray, sr: int | None = None):
        """The backbone's tags and embeddings per patch (:class:`genrekit.backbones.musicnn.Taggram`)."""
        if not self.has_backbone:
            raise ValueError(f"{self.name}: a {self.bundle.feature_set.name} model has no pretrained backbone")
        from .backbones.musicnn import load_backbone

        fs = self.bundle.feature_set
        y = self._at_model_rate(y, sr)
        return load_backbone().taggram(y, step=fs.step or 61, max_patches=fs.max_patches, cover_end=True)

    def timeline_bounds(self, n_samples: int, taggram=None) -> list[tuple[int, int]]:
        """Windows of the timeline: the model's own windows, or for backbone models
        :data:`TIMELINE_WINDOW`-s windows every :data:`TIMELINE_HOP` s (wider where the song's
        patches are sparser, so every window holds at least two)."""
        if taggram is None or len(taggram) < 2:
            return self.window_bounds(n_samples)
        spacing = float(np.median(np.diff(taggram.starts)))
        hop = max(TIMELINE_HOP, spacing)
        return audio.window_bounds(n_samples, self.sample_rate, max(TIMELINE_WINDOW, 2 * hop), hop, cover_end=True)

    def window_probabilities(self, y: np.ndarray | None, sr: int | None = None, *, bounds=None,
                             taggram=None, n_samples: int | None = None) -> tuple[list[tuple[int, int]], np.ndarray]:
        """Window bounds (samples at :attr:`sample_rate`) and probabilities, shape ``(n_windows, n_labels)``.

        Backbone models may be given the song's ``taggram`` (and ``n_samples``) instead of ``y``.
        """
        if y is not None:
            y = self._at_model_rate(y, sr)
            n_samples = len(y)
        bounds = self.window_bounds(n_samples) if bounds is None else bounds
        if self.has_backbone:
            taggram = self.taggram(y) if taggram is None else taggram
            return bounds, self.bundle.predict_proba(self._inputs(taggram, bounds))
        return bounds, self.bundle.predict_proba(self._inputs(y, bounds))

    def predict_proba(self, y: np.ndarray, sr: int | None = None) -> np.ndarray:
        """Song-level probabilities (mean over windows), shape ``(n_labels,)`` in :attr:`labels` order."""
        _, proba = self.window_probabilities(y, sr)
        return proba.mean(axis=0)

    def timeline(self, y: np.ndarray, sr: int | None = None) -> list[dict]:
        """``[{"start", "end", "probabilities"}, ...]`` covering the whole signal (seconds)."""
        return self.classify_signal(y, sr, timeline=True).timeline

    def classify_signal(self, y: np.ndarray, sr: int | None = None, *, path: str | None = None,
                        timeline: bool = False) -> Prediction:
        y = self._at_model_rate(y, sr)
        if self.has_backbone:
            return self._from_taggram(self.taggram(y), len(y), path, timeline)
        bounds, proba = self.window_probabilities(y)
        return self.make_prediction(bounds, proba, len(y), path, timeline)

    def classify_file(self, path: str | os.PathLike, *, timeline: bool = False,
                      max_duration: float | None = None) -> Prediction:
        """Decode ``path`` and classify it, block by block (memory does not grow with the song).

        Raises :class:`genrekit.audio.AudioError` for a file that cannot be decoded
        (:class:`genrekit.audio.TooLongError` past ``max_duration`` seconds).
        """
        with audio.Decoder(path, self.sample_rate, min_samples=self.min_samples,
                           max_duration=max_duration) as decoder:
            analysis = self.stream(expected_samples=decoder.expected_samples)
            for block in decoder:
                analysis.feed(block)
        return self.finish_stream(analysis, decoder.n_samples, str(path), timeline)

    def finish_stream(self, analysis, n_samples: int, path: str | None = None, timeline: bool = False) -> Prediction:
        """The :class:`Prediction` of a :meth:`stream` that has been fed all ``n_samples`` samples."""
        if self.has_backbone:
            return self._from_taggram(analysis.finish(), n_samples, path, timeline)
        bounds, proba = analysis.finish()
        return self.make_prediction(bounds, proba, n_samples, path, timeline)

    def stream(self, expected_samples: int | None = None):
        """A block-wise analysis: ``feed(block)`` samples at :attr:`sample_rate`, then ``finish()``:
        ``(bounds, probabilities)``, equal to :meth:`window_probabilities`, or for backbone models
        the song's :class:`~genrekit.backbones.musicnn.Taggram`, equal to :meth:`taggram`.

        ``expected_samples`` (the header's length, a hint) lets a backbone model plan its patches
        for a long song before the song has been read.
        """
        if self.has_backbone:
            from .backbones.musicnn import TaggramStream, load_backbone

            fs = self.bundle.feature_set
            return TaggramStream(load_backbone(), step=fs.step or 61, max_patches=fs.max_patches,
                                 expected_samples=expected_samples, cover_end=True)
        if getattr(self.bundle, "kind", "classical") == "cnn":
            return _SpectrogramProbabilities(self)
        from .features.blockwise import gtzan57_window_rows

        def probabilities(y, bounds):
            return self.bundle.predict_proba(self._inputs(y, bounds))

        return gtzan57_window_rows(self.sample_rate, self.bundle.window, self.bundle.hop, probabilities,
                                   cover_end=True)

    def _from_taggram(self, taggram, n_samples: int, path: str | None, timeline: bool) -> Prediction:
        """A backbone model's prediction: the head on window means of the song's patches, the
        timeline from the same patches, the song's tags and embedding."""
        from .backbones.musicnn import TAGS

        bounds, proba = self.window_probabilities(None, taggram=taggram, n_samples=n_samples)
        line = None
        if timeline:
            line_bounds = self.timeline_bounds(n_samples, taggram)
            line = self._timeline(*self.window_probabilities(None, bounds=line_bounds, taggram=taggram,
                                                             n_samples=n_samples))
        tag_mean = taggram.tags.mean(axis=0)
        order = sorted(range(len(TAGS)), key=lambda i: (-tag_mean[i], TAGS[i]))[:SONG_TAGS]
        prediction = self.make_prediction(bounds, proba, n_samples, path, False)
        prediction.timeline = line
        prediction.tags = [{"label": TAGS[i], "score": float(tag_mean[i])} for i in order]
        prediction.embedding = taggram.embeddings.mean(axis=0).astype(np.float32)
        return prediction

    def make_prediction(self, bounds, proba, n_samples: int, path: str | None = None,
                        timeline: bool = False) -> Prediction:
        """The :class:`Prediction` from window bounds and their probabilities (as :meth:`stream` gives)."""
        from .output import prediction_notes, ranked

        mean = proba.mean(axis=0)
        probabilities = ranked(dict(zip(self.labels, mean.tolist())), None)
        prediction = Prediction(
            path=path,
            label=next(iter(probabilities)),
            probabilities=probabilities,
            duration=n_samples / self.sample_rate,
            model=self.name,
            timeline=self._timeline(bounds, proba) if timeline else None,
            windows=len(bounds),
        )
        prediction.notes = prediction_notes(prediction, self)
        return prediction

    # --- helpers -------------------------------------------------------------------------
    def _timeline(self, bounds, proba) -> list[dict]:
        from .output import ranked, seconds

        sr = self.sample_rate
        return [
            {"start": seconds(start / sr), "end": seconds(stop / sr),
             "probabilities": ranked(dict(zip(self.labels, row.tolist())), None)}
            for (start, stop), row in zip(bounds, proba)
        ]

    def _at_model_rate(self, y: np.ndarray, sr: int | None) -> np.ndarray:
        y = np.asarray(y, dtype=np.float32)
        if y.ndim == 2:  # (channels, samples), as librosa and soundfile(always_2d=False).T give
            y = y.mean(axis=0 if y.shape[0] < y.shape[1] else 1).astype(np.float32)
        if y.ndim != 1:
            raise ValueError(f"expected a mono signal or (channels, samples), got shape {y.shape}")
        if sr is not None and sr != self.sample_rate:
            import soxr

            y = soxr.resample(y, sr, self.sample_rate, quality="HQ").astype(np.float32)
        if len(y) < self.min_samples:
            raise ValueError(f"signal of {len(y)} samples at {self.sample_rate} Hz is shorter than one "
                             f"analysis frame ({self.min_samples} samples)")
        return y


class _SpectrogramProbabilities:
    """A CNN bundle's block-wise analysis: the spectrogram streamed, its patches classified at the end.

    The spectrogram's ``top_db`` floor depends on the whole song's peak, so patches are
    cut once it is complete (1.3 MB per minute at the defaults; the audio is not kept).
    """

    def __init__(self, clf: GenreClassifier) -> None:
        from .features.blockwise import LogmelStream
        from .features.sets import FeatureSet

        fs = clf.bundle.feature_set
        self.fs = fs if isinstance(fs, FeatureSet) else FeatureSet.from_dict(fs)
        self.clf = clf
        if self.fs.name == "musicnn_mel":  # the backbone's own front end, not a dB log-mel
            from .backbones.musicnn import MelStream

            self.logmel = MelStream()
        else:
            self.logmel = LogmelStream(self.fs.sample_rate, self.fs.n_fft, self.fs.hop_length, self.fs.n_mels,
                                       self.fs.fmin, self.fs.fmax, self.fs.top_db)

    def feed(self, block: np.ndarray) -> None:
        self.logmel.feed(block)

    def finish(self):
        from .features import spectral
        from .models.cnn_data import spectrogram_inputs

        spec = self.logmel.finish()
        if self.fs.name == "mfcc":
            spec = spectral.mfcc_from_logmel(spec, n_mfcc=self.fs.n_mfcc)
        bounds = self.clf.window_bounds(self.logmel.n)
        return bounds, self.clf.bundle.predict_proba(spectrogram_inputs(self.clf.bundle, spec, bounds))


def _input_maker(bundle):
    """The function turning a signal (a taggram for backbone heads) and window bounds into the bundle's input."""
    fs = bundle.feature_set
    kind = getattr(bundle, "kind", "classical")
    if fs.name == "musicnn":
        from .backbones.musicnn import COLUMNS, window_rows

        columns = [COLUMNS.index(name) for name in bundle.feature_names]
        sr = fs.sample_rate
        return lambda taggram, bounds: window_rows(taggram, [(a / sr, b / sr) for a, b in bounds])[:, columns]
    if kind == "cnn":
        from .models.cnn_data import bundle_inputs

        return lambda y, bounds: bundle_inputs(bundle, y, bounds)
    if fs.name == "gtzan57":
        from .features.gtzan57 import COLUMNS, gtzan57_windows

        # A model may use a subset of the 57 columns, in its own order.
        names = list(bundle.feature_names) or list(COLUMNS)
        columns = [COLUMNS.index(name) for name in names]
        return lambda y, bounds: gtzan57_windows(y, fs.sample_rate, bounds)[:, columns].astype(np.float32)
    raise ValueError(f"{bundle.path}: a classical model on '{fs.name}' features cannot classify audio "
                     f"(only gtzan57 rows can be computed per window)")


_MODELS: dict[tuple[str, int], GenreClassifier] = {}
_LOCK = threading.Lock()


def load_model(path: str | os.PathLike | None = None) -> GenreClassifier:
    """Load a model once per process (``None``: the shipped default model).

    ``path`` is anything :func:`resolve_model` accepts: a shipped model's name, a
    bundle folder, or a run folder. Raises :class:`genrekit.models.bundle.BundleError`
    for anything that is not a valid bundle.
    """
    from .models.bundle import load_bundle

    folder = resolve_model(path)
    key = (str(folder.resolve()), _mtime(folder))
    with _LOCK:
        if key not in _MODELS:
            bundle = load_bundle(folder)
            _MODELS[key] = GenreClassifier(bundle, name=model_name(folder))
        return _MODELS[key]


class PackedModel:
    """A model bundle's files as bytes, to send to workers that may not see this machine's files.

    Pickled once per job and sent to each worker once (the Ray engine puts it in Ray's
    object store); :meth:`load` rebuilds the model from the bytes, once per process.
    Loading checks everything :func:`genrekit.models.bundle.load_bundle` checks
    (checksum, signature): the bytes are trusted no more than a folder would be.

    Parameters
    ----------
    files : dict of str to bytes
        ``bundle.json`` and the weights file, by name.
    name : str
        The model's name (:attr:`GenreClassifier.name`).
    """

    def __init__(self, files: dict[str, bytes], name: str) -> None:
        import hashlib

        self.files = dict(files)
        self.name = name
        digest = hashlib.sha256()
        for file_name in sorted(self.files):
            digest.update(file_name.encode() + b"\0" + hashlib.sha256(self.files[file_name]).digest())
        self.digest = digest.hexdigest()

    @classmethod
    def of(cls, clf: GenreClassifier) -> "PackedModel":
        """Pack the files of a loaded model; raises ``BundleError`` if they changed since it was loaded."""
        from .models.bundle import BUNDLE_JSON, BundleError

        folder = Path(clf.bundle.path)
        weights_name = clf.bundle.meta["weights"]["file"]
        try:
            files = {BUNDLE_JSON: (folder / BUNDLE_JSON).read_bytes(), weights_name: (folder / weights_name).read_bytes()}
        except OSError as exc:
            raise BundleError(folder, f"cannot read the bundle to send it to workers: {exc.strerror or exc}") from None
        import hashlib

        if hashlib.sha256(files[weights_name]).hexdigest() != clf.bundle.sha256:
            raise BundleError(folder, "the model bundle changed on disk since it was loaded")
        return cls(files, clf.name)

    def load(self) -> GenreClassifier:
        """The model, rebuilt from the bytes once per process (a private folder, removed at once)."""
        import shutil
        import tempfile

        from .models.bundle import load_bundle

        with _LOCK:
            clf = _PACKED.get(self.digest)
        if clf is not None:
            return clf
        folder = Path(tempfile.mkdtemp(prefix="genrekit-model-"))
        try:
            for file_name, data in self.files.items():
                (folder / Path(file_name).name).write_bytes(data)
            bundle = load_bundle(folder)  # the weights are read into memory: the folder can go
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        with _LOCK:
            return _PACKED.setdefault(self.digest, GenreClassifier(bundle, name=self.name))

    def __repr__(self) -> str:
        return f"PackedModel({self.name!r}, {sum(map(len, self.files.values()))} bytes)"


_PACKED: dict[str, GenreClassifier] = {}


def model_name(folder: Path) -> str:
    """What outputs call the model in ``folder``: a shipped model's name, else the folder's name."""
    folder = Path(folder)
    try:
        if folder.resolve().parent == SHIPPED_MODELS:
            return folder.name
    except OSError:
        pass
    return folder.name or str(folder)


#: The file a training run writes beside its bundles, naming the one chosen on validation.
RUN_RESULTS = "results.json"


def resolve_model(spec: str | os.PathLike | None = None) -> Path:
    """The bundle folder a ``--model`` value names; the one place model names are resolved.

    Parameters
    ----------
    spec : str, path or None
        ``None``: the default shipped model (:data:`DEFAULT_MODEL_NAME`). A path that
        exists: a bundle folder (holding ``bundle.json``), or a training run folder,
        which stands for the model its ``results.json`` selected on validation, or for
        its only bundle. Otherwise the name of a shipped model (:func:`shipped_models`).

    Raises
    ------
    genrekit.models.bundle.BundleError
        When ``spec`` names nothing, or a run folder holding several models none of
        which is selected (the message lists them).
    """
    from .models.bundle import BundleError

    if spec is None:
        return DEFAULT_MODEL
    path = Path(spec).expanduser()
    if not path.exists():
        if str(spec) in shipped_models():
            return SHIPPED_MODELS / str(spec)
        raise BundleError(spec, f"no such model: not a bundle or run folder, nor a shipped model "
                          f"({', '.join(shipped_models()) or 'none installed'}); `genrekit models DIR` "
                          f"lists the models in a folder")
    if (path / "bundle.json").exists() or not path.is_dir():
        return path  # load_bundle says what is wrong with it, if anything
    selected = selected_bundle(path)
    if selected is not None:
        return selected
    found = sorted(p.parent for p in path.glob("*/bundle.json"))
    if len(found) == 1:
        return found[0]
    if found:
        names = ", ".join(p.name for p in found)
        raise BundleError(path, f"a run folder holding {len(found)} models ({names}) and none selected "
                          f"(a run selects one when trained with --valid-size); name one, "
                          f"e.g. --model {found[0]}")
    deeper = sorted(p.parent for p in path.glob("*/*/bundle.json"))
    if deeper:
        raise BundleError(path, f"a folder of runs, not one model; name one, e.g. --model {deeper[0]} "
                          f"(`genrekit models {path}` lists them)")
    raise BundleError(path, "no bundle.json in it or in its subfolders "
                      "(is it a model bundle or a training run folder?)")


def selected_bundle(run: Path) -> Path | None:
    """The bundle a run folder's results.json selected, if it names one that exists."""
    import json

    try:
        results = json.loads((run / RUN_RESULTS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        results = None
    if isinstance(results, dict) and isinstance(results.get("selected"), str):
        entry = (results.get("models") or {}).get(results["selected"]) or {}
        folder = run / str(entry.get("bundle") or results["selected"])
        if (folder / "bundle.json").exists():
            return folder
    legacy = run / "selected"
    return legacy if (legacy / "bundle.json").exists() else None


def bundle_folder(folder: Path) -> Path:
    """The bundle a path names (:func:`resolve_model`); the path itself when it names none."""
    from .models.bundle import BundleError

    try:
        return resolve_model(folder)
    except BundleError:
        return Path(folder)


def _mtime(folder: Path) -> int:
    try:
        return (folder / "bundle.json").stat().st_mtime_ns
    except OSError:
        return 0


def classify(inputs, model: str | os.PathLike | GenreClassifier | None = None, *, sr: int | None = None,
             top_k: int | None = None, precision: int | None = 4):
    """Genres of a song, Hugging Face pipeline style.

    Parameters
    ----------
    inputs : path, numpy array, or a list of paths
        A file to decode, or a signal (then give ``sr``).
    model : str, path, a loaded model, or None
        A shipped model's name, a bundle or run folder (:func:`resolve_model`), or
        ``None`` for the default shipped model.
    top_k : int or None
        Keep the ``top_k`` best labels.
    precision : int or None
        Decimals of the scores (default 4, as every genrekit output); ``None``: full floats.

    Returns
    -------
    ``[{"label": ..., "score": ...}, ...]`` sorted by score, ties by label (a list of
    such lists for a list of paths). A result with notes (an input much shorter than
    the model's clips, an uncertain result) also issues a :class:`GenreNote` warning.
    """
    clf = model if isinstance(model, GenreClassifier) else load_model(model)
    if isinstance(inputs, (list, tuple)):
        return [classify(item, clf, sr=sr, top_k=top_k, precision=precision) for item in inputs]
    if isinstance(inputs, np.ndarray):
        if sr is None:
            raise ValueError("give sr= (the signal's sample rate in Hz) with an array input")
        prediction = clf.classify_signal(inputs, sr)
    else:
        prediction = clf.classify_file(inputs)
    if prediction.notes:  # the list has no room for them: say them as a warning, as the CLI prints them
        import warnings

        where = prediction.path or "signal"
        warnings.warn(f"{where}: {'; '.join(prediction.notes)}", GenreNote, stacklevel=2)
    return prediction.top(top_k, precision)


class GenreNote(UserWarning):
    """A caution about one result of :func:`classify` (a short input, an uncertain result)."""
