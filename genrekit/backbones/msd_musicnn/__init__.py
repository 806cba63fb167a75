"""MSD-musicnn served by onnxruntime: musicnn's front end, 3-s patches, 50 tags and embeddings.

The network (Pons & Serra 2019; :mod:`genrekit.models.musicnn_architecture` is its PyTorch definition) was
trained by its authors on Million Song Dataset previews with the 50 most frequent Last.fm tags
(genres, eras, moods, instruments: :data:`TAGS`). genrekit ships the weights of musicnn 0.1.0's
``MSD_musicnn`` checkpoint as ONNX (``msd_musicnn/``, ISC licence; rebuilt and checked by
``scripts/convert_musicnn.py``), so tagging needs neither TensorFlow nor PyTorch.

Front end (musicnn's, kept exactly because the weights expect it):

- mono audio at :data:`SAMPLE_RATE` = 16 kHz;
- power spectrogram of a centred STFT (512-sample periodic Hann frames, hop 256 = 16 ms, zero
  padding as librosa >= 0.10), 96 mel bands (Slaney scale and normalisation, 0–8 kHz);
- cast to float16, then ``log10(10000 · x + 1)`` in float32 (musicnn rounds through float16;
  under numpy >= 2 its own code overflows there, which genrekit does not reproduce);
- patches of :data:`PATCH_FRAMES` = 187 frames (3 s), one every ``step`` frames
  (:data:`DEFAULT_STEP` = 61 frames ≈ 0.98 s is musicnn's ``input_overlap=1``).

Short input (one documented rule for training and classification alike): a signal with fewer
frames than one patch is repeated end to end until it fills one patch, as musicnn's authors
padded short training clips (``"pad_short": "repeat-pad"`` in the checkpoint's config).

Memory is bounded: :class:`TaggramStream` takes the decoded signal block by block, keeps only the
samples of the patches still to come, computes each patch's spectrogram when its samples are in
and runs patches through the network in batches; only the per-patch outputs (50 + 200 floats a
patch, at most ``max_patches`` of them for a planned song) grow with its length.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from genrekit.errors import ParameterError

SAMPLE_RATE = 16000
N_FFT = 512
HOP_LENGTH = 256
N_MELS = 96
PATCH_FRAMES = 187
DEFAULT_STEP = 61
PATCH_SECONDS = PATCH_FRAMES * HOP_LENGTH / SAMPLE_RATE   # 2.992 s
#: Frames between patch starts of a dense analysis: patches end to end, every frame in one.
DENSE_STEP = PATCH_FRAMES
#: Patches per network run. On one thread larger batches are no faster, rather slower (CPU ms a
#: patch, batch 1: 22-23, 4: 23-26, 16-32: 25-30; ``docs/patch_plan.json``), and each patch in a
#: batch costs ~30 MB of intermediate tensors: so one at a time, and a worker gains nothing from
#: batching patches across files.
_BATCH = 1

ONNX_FILE = "msd_musicnn.onnx"
FOLDER = Path(__file__).resolve().parent
OUTPUTS = ("tags", "penultimate", "max_pool", "mean_pool")
#: musicnn's MSD_LABELS, the order of the network's 50 outputs.
TAGS = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock",
    "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill", "instrumental",
    "punk", "oldies", "blues", "hard rock", "ambient", "acoustic", "experimental",
    "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country", "easy listening", "sexy",
    "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop",
    "sad", "House", "happy",
)
EMBEDDING = "penultimate"
EMBEDDING_SIZE = 200
#: Columns of a ``musicnn`` feature row: the 50 tags, then the 200 embedding dimensions.
TAG_COLUMNS = tuple(f"tag_{t.lower().replace(' ', '_').replace('-', '_')}" for t in TAGS)
EMBEDDING_COLUMNS = tuple(f"emb_{i:03d}" for i in range(EMBEDDING_SIZE))
COLUMNS = TAG_COLUMNS + EMBEDDING_COLUMNS


@dataclass
class Taggram:
    """The network's outputs for one signal, one row per patch.

    Attributes
    ----------
    tags : ndarray, shape (n_patches, 50)
        Tag probabilities (sigmoid outputs, each in [0, 1]; tags are not exclusive), in
        :data:`TAGS` order.
    embeddings : ndarray, shape (n_patches, 200)
        The penultimate layer (after its batch norm), the representation the tags are read from.
    starts : ndarray, shape (n_patches,)
        Start of each patch in seconds; each spans :data:`PATCH_SECONDS`.
    duration : float
        Length of the analysed signal in seconds.
    """

    tags: np.ndarray
    embeddings: np.ndarray
    starts: np.ndarray
    duration: float

    def __len__(self) -> int:
        return len(self.tags)

    def select(self, start: float, stop: float) -> "Taggram":
        """The patches whose centre lies in ``[start, stop)`` seconds (at least the nearest one)."""
        centres = self.starts + PATCH_SECONDS / 2
        keep = np.flatnonzero((centres >= start) & (centres < stop))
        if not len(keep):
            keep = np.array([int(np.argmin(np.abs(centres - (start + stop) / 2)))])
        return Taggram(self.tags[keep], self.embeddings[keep], self.starts[keep], self.duration)


# --- the front end ------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _mel_basis() -> np.ndarray:
    from genrekit.features.spectral import mel_filterbank

    return mel_filterbank(SAMPLE_RATE, N_FFT, N_MELS).astype(np.float32)


def n_frames(n_samples: int) -> int:
    """Frames of musicnn's centred STFT for ``n_samples`` samples at 16 kHz."""
    return 1 + n_samples // HOP_LENGTH


def log_mel(y: np.ndarray, first: int = 0, last: int | None = None) -> np.ndarray:
    """musicnn's log-compressed mel spectrogram of frames ``first`` … ``last - 1``, shape ``(frames, 96)``.

    ``y`` is mono float audio at 16 kHz. Computing a range of frames reads only the samples
    those frames cover, so a long song can be analysed block by block with the same result.
    """
    y = np.asarray(y, dtype=np.float32)
    total = n_frames(len(y))
    last = total if last is None else min(last, total)
    if last <= first:
        return np.zeros((0, N_MELS), np.float32)
    return _mel_of(y, 0, len(y), first, last)


def _mel_of(samples: np.ndarray, start: int, n: int, first: int, last: int) -> np.ndarray:
    """Frames ``first`` … ``last - 1`` of a signal of ``n`` samples of which ``samples`` holds those
    from index ``start`` on (enough for these frames); zero padding where the frames pass its ends."""
    lo, hi = _frame_span(first, last)
    seg = np.zeros(hi - lo, np.float32)
    a, b = max(lo, 0), min(hi, n)
    if b > a:
        seg[a - lo:b - lo] = samples[a - start:b - start]
    return _log_mel_frames(seg)


def _frame_span(first: int, last: int) -> tuple[int, int]:
    """Samples ``[lo, hi)`` that centred frames ``first`` … ``last - 1`` cover (negative: padding)."""
    half = N_FFT // 2
    return first * HOP_LENGTH - half, (last - 1) * HOP_LENGTH + half


def _log_mel_frames(seg: np.ndarray) -> np.ndarray:
    """The log-mel frames of a zero-padded segment holding exactly the samples they cover."""
    import scipy.fft

    from genrekit.features.spectral import hann_window

    frames = np.lib.stride_tricks.sliding_window_view(seg, N_FFT)[::HOP_LENGTH] * hann_window(N_FFT).astype(np.float32)
    spec = scipy.fft.rfft(frames, axis=-1)
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    mel = power @ _mel_basis().T
    # float16's largest value bounds the rounding step (louder bins would become inf)
    mel = np.minimum(mel, np.finfo(np.float16).max).astype(np.float16).astype(np.float32)
    return np.log10(10000.0 * mel + 1.0)


def planned_step(total_frames: int, step: int = DEFAULT_STEP, max_patches: int | None = None) -> int:
    """The step (frames) that keeps a signal of ``total_frames`` within ``max_patches`` patches."""
    if max_patches is None or total_frames <= PATCH_FRAMES:
        return step
    span = total_frames - PATCH_FRAMES
    return max(step, -(-span // max(max_patches - 1, 1)))


def patch_starts(n_samples: int, step: int = DEFAULT_STEP, max_patches: int | None = None, *,
                 cover_end: bool = False, dense: bool = False) -> list[int]:
    """Start frames of the patches :class:`TaggramStream` runs on a signal of ``n_samples`` whose
    length was known beforehand (its ``expected_samples``); the same arguments."""
    total = n_frames(n_samples)
    if total <= PATCH_FRAMES:
        return [0]
    step = planned_step(total, step, None if dense else max_patches)
    starts = list(range(0, total - PATCH_FRAMES + 1, step))
    short = total - PATCH_FRAMES - starts[-1]
    if (dense and short > 0) or ((cover_end or dense) and short > step / 2):
        starts.append(total - PATCH_FRAMES)
    return starts


class PlannedPatches:
    """The patches of a song of known length, fed only the samples they cover (:meth:`spans`).

    For decoders that read only parts of a file (:mod:`genrekit.audio.regions`): the same
    patches, spectrograms and network outputs as :class:`TaggramStream` fed the whole signal,
    as long as the samples fed equal the full signal's there.

    Parameters
    ----------
    backbone : Backbone
    starts : list of int
        Start frames (:func:`patch_starts`).
    n_samples : int
        The song's length at 16 kHz.
    """

    def __init__(self, backbone: "Backbone", starts: list[int], n_samples: int) -> None:
        self.backbone, self.starts, self.n = backbone, list(starts), n_samples
        self._outputs: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def spans(self) -> list[tuple[int, int]]:
        """Sample ranges ``[lo, hi)`` (within the song) that the patches need, sorted."""
        if n_frames(self.n) <= PATCH_FRAMES:
            return [(0, self.n)]
        return [(max(lo, 0), min(hi, self.n)) for lo, hi in
                (_frame_span(s, s + PATCH_FRAMES) for s in self.starts)]

    def feed_region(self, start: int, samples: np.ndarray) -> None:
        """Samples ``start`` … ``start + len(samples) - 1`` of the song: run every patch they hold."""
        end = start + len(samples)
        total = n_frames(self.n)
        for s in self.starts:
            if s in self._outputs:
                continue
            lo, hi = _frame_span(s, s + PATCH_FRAMES)
            if max(lo, 0) >= start and min(hi, self.n) <= end:
                if total <= PATCH_FRAMES:
                    patch = _repeat_pad(_mel_of(samples, start, self.n, 0, total))
                else:
                    patch = _mel_of(samples, start, self.n, s, s + PATCH_FRAMES)
                tags, embs = self.backbone.run(patch[None])
                self._outputs[s] = (tags[0], embs[0])

    def finish(self) -> Taggram:
        missing = [s for s in self.starts if s not in self._outputs]
        if missing:
            # A bug, not a bad file: spans() covers every patch, and a region that reads short raises
            # RegionReader.Unavailable (the whole file is then decoded) before this is reached.
            raise ValueError(f"{len(missing)} planned patches were never fed (first at frame {missing[0]})")
        tags = np.stack([self._outputs[s][0] for s in self.starts]).astype(np.float32)
        embs = np.stack([self._outputs[s][1] for s in self.starts]).astype(np.float32)
        return Taggram(tags, embs, np.asarray(self.starts) * HOP_LENGTH / SAMPLE_RATE, self.n / SAMPLE_RATE)


def _repeat_pad(block: np.ndarray) -> np.ndarray:
    reps = -(-PATCH_FRAMES // max(len(block), 1))
    return np.tile(block, (reps, 1))[:PATCH_FRAMES]


# --- the network --------------------------------------------------------------------------------
class Backbone:
    """MSD-musicnn's ONNX graph in an onnxruntime session (thread-safe; one per process is enough)."""

    def __init__(self, onnx_path: str | Path | None = None, *, threads: int = 1) -> None:
        import onnxruntime as ort

        from genrekit.onnx_sessions import session_options

        path = Path(onnx_path) if onnx_path is not None else FOLDER / ONNX_FILE
        self.path = path
        # one thread, no spin-waiting: a worker uses one core fully (see genrekit.onnx_sessions)
        self.options = session_options(threads)
        self._session = ort.InferenceSession(path.read_bytes(), self.options, providers=["CPUExecutionProvider"])

    def run(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tags ``(n, 50)`` and embeddings ``(n, 200)`` of log-mel patches ``(n, frames, 96)``."""
        tags, emb, *_ = self._session.run(["tags", EMBEDDING, "max_pool", "mean_pool"],
                                          {"patches": np.ascontiguousarray(patches, dtype=np.float32)})
        return tags, emb

    def taggram(self, y: np.ndarray, *, step: int = DEFAULT_STEP, cover_end: bool = False,
                max_patches: int | None = None, dense: bool = False) -> Taggram:
        """Tags and embeddings of every patch of a 16-kHz mono signal.

        Parameters
        ----------
        y : ndarray
            Mono float audio at :data:`SAMPLE_RATE`.
        step : int
            Frames between patch starts (61 ≈ 0.98 s, musicnn's default overlap; 187 = no overlap).
        cover_end : bool
            Add an end-aligned patch so the patches reach the end of the signal.
        max_patches : int or None
            Widen the step for long signals so that at most this many patches are run
            (one more with ``cover_end``).
        dense : bool
            Every frame in some patch (see :class:`TaggramStream`).
        """
        stream = TaggramStream(self, step=step, max_patches=max_patches, expected_samples=len(y),
                               cover_end=cover_end, dense=dense)
        stream.feed(np.asarray(y, dtype=np.float32))
        return stream.finish()


class TaggramStream:
    """The patches of a signal that arrives block by block (:meth:`feed`), run through the network
    as they become complete; :meth:`finish` gives the :class:`Taggram`.

    Only the samples of the patches still to come are kept (at most one patch and a frame,
    ~48 k samples), so memory does not grow with the song; the result equals analysing the
    whole signal at once (:meth:`Backbone.taggram` is this stream fed once).

    Parameters
    ----------
    backbone : Backbone
    step : int
        Frames between patch starts.
    max_patches : int or None
        Widen the step so that a signal of ``expected_samples`` gets at most this many patches.
    expected_samples : int or None
        The signal's length if known beforehand (a header's; a hint: a longer signal simply
        gets more patches at the planned step).
    cover_end : bool
        Add an end-aligned patch where the regular ones stop more than half a step early.
    dense : bool
        Every frame of the signal in some patch, whatever its length: no patch budget (the step
        must be at most :data:`PATCH_FRAMES`), and an end-aligned patch wherever the regular ones
        stop short of the end. The per-patch outputs (250 floats, 1 kB a patch: 1.2 MB an hour
        at :data:`DENSE_STEP`) are all that grows with the song.
    """

    _KEEP = PATCH_FRAMES * HOP_LENGTH + N_FFT  # samples kept for the end-aligned or only patch

    def __init__(self, backbone: "Backbone", *, step: int = DEFAULT_STEP, max_patches: int | None = None,
                 expected_samples: int | None = None, cover_end: bool = False, dense: bool = False) -> None:
        if step <= 0:
            raise ParameterError(f"patch step must be a positive number of frames, got {step}")
        if dense and step > PATCH_FRAMES:
            raise ParameterError(f"a dense analysis needs a step of at most {PATCH_FRAMES} frames, got {step}")
        self.backbone = backbone
        if dense:
            max_patches = None
        self._step_arg, self._max_patches = step, max_patches
        self.step = planned_step(n_frames(expected_samples), step, max_patches) if expected_samples else step
        self.cover_end = cover_end or dense
        self.dense = dense
        self.n = 0
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0
        self._next = 0
        self._starts: list[int] = []
        self._pending: list[np.ndarray] = []
        self._tags: list[np.ndarray] = []
        self._embs: list[np.ndarray] = []

    def planned(self, n_samples: int) -> PlannedPatches:
        """The same plan for a song known to be ``n_samples`` long, fed only the regions it needs."""
        starts = patch_starts(n_samples, self._step_arg, self._max_patches, cover_end=self.cover_end,
                              dense=self.dense)
        return PlannedPatches(self.backbone, starts, n_samples)

    def feed(self, block: np.ndarray) -> None:
        """Take the next samples (mono float at 16 kHz)."""
        block = np.asarray(block, dtype=np.float32).ravel()
        self._buf = np.concatenate([self._buf, block]) if len(self._buf) else block.copy()
        self.n += len(block)
        while _frame_span(self._next, self._next + PATCH_FRAMES)[1] <= self.n:
            self._patch(self._next)
            self._next += self.step
        keep_from = max(0, min(_frame_span(self._next, self._next + 1)[0], self.n - self._KEEP))
        if keep_from > self._buf_start:
            self._buf = self._buf[keep_from - self._buf_start:]
            self._buf_start = keep_from

    def finish(self) -> Taggram:
        """The taggram of everything fed (the last patches zero-padded past the end, as centred frames are)."""
        total = n_frames(self.n)
        if total <= PATCH_FRAMES:  # shorter than one patch: repeated to fill it
            self._starts, self._pending = [0], [_repeat_pad(self._frames(0, total))]
        else:
            while self._next <= total - PATCH_FRAMES:
                self._patch(self._next)
                self._next += self.step
            end = total - PATCH_FRAMES
            short = end - self._starts[-1]  # frames the regular patches leave at the end
            if (self.dense and short > 0) or (self.cover_end and short > self.step / 2):
                self._patch(end)
        self._run()
        starts = np.asarray(self._starts)
        return Taggram(np.concatenate(self._tags).astype(np.float32), np.concatenate(self._embs).astype(np.float32),
                       starts * HOP_LENGTH / SAMPLE_RATE, self.n / SAMPLE_RATE)

    def _frames(self, first: int, last: int) -> np.ndarray:
        return _mel_of(self._buf, self._buf_start, self.n, first, last)

    def _patch(self, start: int) -> None:
        self._starts.append(start)
        self._pending.append(self._frames(start, start + PATCH_FRAMES))
        if len(self._pending) == _BATCH:
            self._run()

    def _run(self) -> None:
        if self._pending:
            tags, embs = self.backbone.run(np.stack(self._pending))
            self._tags.append(tags)
            self._embs.append(embs)
            self._pending = []


_SHARED: dict[str, Backbone] = {}
_LOCK = threading.Lock()


def load_backbone(onnx_path: str | Path | None = None) -> Backbone:
    """The shipped MSD-musicnn (or another ONNX of the same graph), loaded once per process."""
    key = str(onnx_path or FOLDER / ONNX_FILE)
    with _LOCK:
        if key not in _SHARED:
            _SHARED[key] = Backbone(onnx_path)
        return _SHARED[key]


CONVERSION_FILE = "conversion.json"  # written by scripts/convert_musicnn.py beside the graph


def parameters_sha256(onnx_path: str | Path) -> str:
    """SHA-256 of a graph's parameters: every initializer's name, dtype, shape and bytes, by name.

    Two exports of the same weights as differently arranged graphs (a faster layout of the
    same arithmetic) have the same value; the file's own hash would differ. Needs the ``onnx``
    package (installed with skl2onnx).
    """
    import onnx
    from onnx import numpy_helper

    digest = hashlib.sha256()
    graph = onnx.load_model_from_string(Path(onnx_path).read_bytes()).graph
    for init in sorted(graph.initializer, key=lambda i: i.name):
        array = np.ascontiguousarray(numpy_helper.to_array(init))
        digest.update(f"{init.name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


@lru_cache(maxsize=1)
def weights_sha256() -> str:
    """The shipped network's weights (:func:`parameters_sha256`; it enters the ``msd_musicnn``
    feature set's key, so features are recomputed when the weights change, not when only the
    graph around them does). Read from the conversion record, so that no start-up parses the graph;
    ``tests/test_backbone.py`` checks the record against the graph."""
    try:
        return str(json.loads((FOLDER / CONVERSION_FILE).read_text())["parameters_sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return "missing"


def window_rows(taggram: Taggram, bounds: list[tuple[float, float]]) -> np.ndarray:
    """One row per ``(start, stop)`` window (seconds): the mean tags and embedding of its patches."""
    rows = []
    for start, stop in bounds:
        part = taggram.select(start, stop)
        rows.append(np.concatenate([part.tags.mean(axis=0), part.embeddings.mean(axis=0)]))
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), len(COLUMNS))


class MelStream:
    """:func:`log_mel` of a signal fed block by block: ``feed`` samples, ``finish() -> (96, frames)``
    (the ``musicnn_frontend`` layout). Only a frame's worth of samples is kept between blocks; the
    spectrogram itself (1.4 MB a minute) is, since CNN bundles cut their windows at the end."""

    def __init__(self) -> None:
        self.n = 0
        self._done = 0  # frames computed
        self._frames: list[np.ndarray] = []
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0

    def feed(self, block: np.ndarray) -> None:
        block = np.asarray(block, dtype=np.float32).ravel()
        self._buf = np.concatenate([self._buf, block])
        self.n += len(block)
        last = self._done
        while _frame_span(last, last + 1)[1] <= self.n:  # frames whose samples are all in
            last += 1
        self._compute(last)

    def finish(self) -> np.ndarray:
        self._compute(n_frames(self.n))  # the last frames zero-padded past the end, as centred frames are
        mel = np.concatenate(self._frames) if self._frames else np.zeros((0, N_MELS), np.float32)
        return mel.T

    def _compute(self, last: int) -> None:
        if last <= self._done:
            return
        self._frames.append(_mel_of(self._buf, self._buf_start, self.n, self._done, last))
        self._done = last
        keep = max(0, _frame_span(last, last + 1)[0])
        self._buf = self._buf[keep - self._buf_start:]
        self._buf_start = keep


class FeatureRowsStream:
    """:func:`feature_rows` of a signal fed block by block (``feed``, then ``finish``), in bounded memory."""

    def __init__(self, *, step: int | None = None, window: float | None = None) -> None:
        self.window = window
        self._stream = TaggramStream(load_backbone(), step=step or DEFAULT_STEP)

    def feed(self, block: np.ndarray) -> None:
        self._stream.feed(block)

    def finish(self) -> np.ndarray:
        n = self._stream.n
        return _rows(self._stream.finish(), n, self.window)


def _rows(tg: Taggram, n_samples: int, window: float | None) -> np.ndarray:
    if window is None:
        return np.concatenate([tg.tags, tg.embeddings], axis=1)
    from genrekit.audio.windows import window_bounds

    bounds = window_bounds(n_samples, SAMPLE_RATE, window, window)
    return window_rows(tg, [(a / SAMPLE_RATE, b / SAMPLE_RATE) for a, b in bounds])


def feature_rows(y: np.ndarray, *, step: int | None = None, max_patches: int | None = None,
                 window: float | None = None) -> np.ndarray:
    """The ``musicnn`` feature set's rows for a 16-kHz signal (see :mod:`genrekit.features.sets`).

    ``window=None``: one row per patch, ``(n_patches, 250)`` (tags then embedding).
    ``window=W``: one row per whole window of ``W`` seconds (a signal shorter than a window is
    one window), the mean of its patches.
    """
    return _rows(load_backbone().taggram(y, step=step or DEFAULT_STEP, max_patches=max_patches), len(y), window)
