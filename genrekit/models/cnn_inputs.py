"""The input of CNN bundles: spectrogram patches for windows of a song; numpy only, no torch.

Prediction with a CNN bundle (:mod:`genrekit.models.spectrogram_cnn`) and CNN training
(:mod:`genrekit.training.cnn.tracks`, :mod:`genrekit.training.cnn.crops`) cut windows the
same way, here, by the rules below. This module imports neither torch nor the dataset
readers, so that classifying with a CNN stays light.

Windows and frames
------------------
A track's log-mel spectrogram (``feature_set("logmel")``: centred STFT frames every
``hop_length`` samples) is computed **once, over the whole signal**, both in training
and in prediction. A window of ``window`` seconds is then the run of
:func:`window_frames` frames (130 for 3 s at 22050 Hz with a 512-sample hop) that
starts at the frame nearest the window's first sample. Evaluation and prediction take
the windows of :func:`genrekit.audio.windows.window_bounds` with ``cover_end=True`` (3-s
windows every 1.5 s by default, the last one ending at the signal's end); a last
window that ``window_bounds`` lengthened to absorb a short tail (at most 5 % of a
window) keeps the window's frame count and drops those few frames.

Inputs
------
Every network takes ``(batch, 1, bands, frames)`` images of one of :data:`CNN_INPUTS`
(:func:`cnn_feature_set`), recorded in the bundle's feature set so that classification
computes them the same way:

- ``logmel``: 128-band log-power mel spectrogram in dB, 22050 Hz, hop 512 (the default);
- ``mfcc``: its first ``n_mfcc`` cepstral coefficients (the seeds fed 128 × 599 and
  40 × 217 MFCC images to their CNNs);
- ``musicnn_frontend``: MSD-musicnn's front end (96 bands, 16 kHz, hop 256,
  ``log10(10000 x + 1)``), the only input of ``--arch musicnn``, whose patches are
  187 frames (2.99 s).

Short signals
-------------
One rule for every input, in training and in classification alike: a spectrogram with
fewer frames than a window is **repeated** (wrapped around in time) until it fills the
window — musicnn's authors' "repeat-pad" of short clips. A loop of the music has the
music's texture and rhythm, where zero or silence padding would add a stretch of
"silence" the network never saw in training. The shared 2–3-s GTZAN excerpts are thus
one window each (a 2-s excerpt is 126 musicnn frames, repeated to 187; 87 log-mel
frames, repeated to 130). Training crops of such tracks follow the same rule.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from genrekit.audio import windows
from genrekit.errors import ParameterError
from genrekit.features.sets import FeatureSet, feature_set


#: Feature sets a CNN can take as its input image.
CNN_INPUTS = ("logmel", "mfcc", "musicnn_frontend")


# --- frames ---------------------------------------------------------------------------
def cnn_feature_set(input: str = "logmel", **params) -> FeatureSet:
    """The CNNs' feature set: ``feature_set(input, **params)``.

    ``logmel`` (default): 128 mel bands in dB at 22050 Hz; ``mfcc``: the same front end's
    first ``n_mfcc`` coefficients (default 40 here); ``musicnn_frontend``: musicnn's front end.
    """
    if input not in CNN_INPUTS:
        raise ParameterError(f"unknown CNN input {input!r}; expected one of {', '.join(CNN_INPUTS)}")
    if input == "mfcc":
        params.setdefault("n_mfcc", 40)
    return feature_set(input, **params)


def input_bands(fs: FeatureSet) -> int:
    """Rows of the image ``fs`` computes: ``n_mfcc`` for ``mfcc``, ``n_mels`` otherwise."""
    return fs.n_mfcc if fs.name == "mfcc" else fs.n_mels


def window_frames(fs: FeatureSet, window: float) -> int:
    """Frames in a window of ``window`` seconds: those a centred STFT of a window-long signal has.

    ``1 + round(window * sample_rate) // hop_length``: 130 for 3 s at 22050 Hz, hop 512.
    """
    if not window > 0:
        raise ParameterError(f"window must be positive seconds, got {window}")
    return 1 + int(round(window * fs.sample_rate)) // fs.hop_length


def fit_frames(spec: np.ndarray, n_frames: int) -> np.ndarray:
    """``spec`` (``(n_mels, frames)``) repeated in time to at least ``n_frames`` frames.

    Returns ``spec`` itself when it is long enough (see "Short signals" above).
    """
    have = spec.shape[1]
    if have >= n_frames:
        return spec
    if have == 0:
        raise ParameterError("an empty spectrogram (0 frames) cannot be windowed")
    return spec[:, np.arange(n_frames) % have]


def frame_starts(bounds: Sequence[tuple[int, int]], hop_length: int, n_total: int, n_frames: int) -> np.ndarray:
    """First frame of each window given by sample ``bounds``.

    The frame nearest each window's first sample, moved back where needed so that the
    window's ``n_frames`` frames lie inside the ``n_total`` frames of the spectrogram
    (0 when the spectrogram is shorter than a window; :func:`fit_frames` then repeats it).
    """
    starts = np.array([int(round(s / hop_length)) for s, _ in bounds], dtype=np.int64)
    return np.clip(starts, 0, max(0, n_total - n_frames))


def patches(spec: np.ndarray, starts: np.ndarray, n_frames: int) -> np.ndarray:
    """Windows of ``spec`` starting at frames ``starts``: ``(len(starts), 1, n_mels, n_frames)`` float32."""
    spec = fit_frames(np.asarray(spec, dtype=np.float32), n_frames)
    idx = np.asarray(starts)[:, None] + np.arange(n_frames)[None, :]
    # (n_mels, n, n_frames) -> (n, 1, n_mels, n_frames)
    return np.ascontiguousarray(spec[:, idx].transpose(1, 0, 2)[:, None])


def signal_windows(
    spec: np.ndarray, n_samples: int, fs: FeatureSet, window: float, hop: float, n_frames: int | None = None
) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Evaluation windows of a whole-signal spectrogram: sample bounds and patches.

    Parameters
    ----------
    spec : np.ndarray [shape=(n_mels, frames)]
        ``fs.compute(y)`` of the whole signal.
    n_samples : int
        ``len(y)``, at ``fs.sample_rate``.
    fs : FeatureSet
    window, hop : float
        Seconds.
    n_frames : int, optional
        Frames per window (default :func:`window_frames`).

    Returns
    -------
    bounds : list of (start, stop)
        :func:`genrekit.audio.windows.window_bounds` with ``cover_end=True``, in samples.
    X : np.ndarray [shape=(len(bounds), 1, n_mels, n_frames), dtype=float32]
    """
    n_frames = n_frames or window_frames(fs, window)
    bounds = windows.window_bounds(n_samples, fs.sample_rate, window, hop, cover_end=True)
    starts = frame_starts(bounds, fs.hop_length, spec.shape[1], n_frames)
    return bounds, patches(spec, starts, n_frames)


def bundle_inputs(bundle, y: np.ndarray, bounds: Sequence[tuple[int, int]]) -> np.ndarray:
    """The network input of a CNN bundle for a signal cut into ``bounds``; no torch needed.

    Parameters
    ----------
    bundle : genrekit.models.bundle.Bundle
        A ``kind == "cnn"`` bundle: its ``feature_set`` (a :class:`FeatureSet` or its
        dict), ``window`` and input shape ``[null, 1, n_mels, n_frames]`` (from
        ``bundle.meta["input"]["shape"]``) are used.
    y : np.ndarray [shape=(n,)]
        Mono float signal at the feature set's sample rate.
    bounds : sequence of (start, stop)
        Windows in samples, as :func:`genrekit.audio.windows.window_bounds` (``cover_end=True``)
        gives them for the bundle's window and hop.

    Returns
    -------
    np.ndarray [shape=(len(bounds), 1, n_mels, n_frames), dtype=float32]
        Log-mel patches of the whole signal's spectrogram (see "Windows and frames" and
        "Short signals" in the module docstring), ready for ``bundle.predict_proba``.
    """
    fs = bundle.feature_set
    fs = fs if isinstance(fs, FeatureSet) else FeatureSet.from_dict(fs)
    return spectrogram_inputs(bundle, fs.compute(np.asarray(y, dtype=np.float32)), bounds)


def spectrogram_inputs(bundle, spec: np.ndarray, bounds: Sequence[tuple[int, int]]) -> np.ndarray:
    """:func:`bundle_inputs` from the whole signal's spectrogram (``feature_set.compute`` of it).

    Used by block-wise classification, which streams the spectrogram instead of keeping the audio.
    """
    fs = bundle.feature_set
    fs = fs if isinstance(fs, FeatureSet) else FeatureSet.from_dict(fs)
    n_frames = _bundle_frames(bundle, fs)
    return patches(spec, frame_starts(bounds, fs.hop_length, spec.shape[1], n_frames), n_frames)


def _bundle_frames(bundle, fs: FeatureSet) -> int:
    meta = getattr(bundle, "meta", None) or {}
    shape = (meta.get("input") or {}).get("shape")
    if isinstance(shape, list) and len(shape) == 4 and isinstance(shape[3], int):
        return shape[3]
    return window_frames(fs, bundle.window)


def spectrogram_stream(fs) -> "SpectrogramStream":
    """A block-wise analysis whose ``finish()`` is ``fs.compute`` of the whole signal, for a CNN input."""
    return SpectrogramStream(fs if isinstance(fs, FeatureSet) else FeatureSet.from_dict(fs))


class SpectrogramStream:
    """The spectrogram of a CNN input (:data:`CNN_INPUTS`) built block by block; the audio is not kept.

    ``musicnn_frontend`` is MSD-musicnn's own front end (not a dB log-mel); ``mfcc`` is taken
    from the finished log-mel (its dB floor needs the whole song's peak).
    """

    def __init__(self, fs: FeatureSet) -> None:
        self.fs = fs
        if fs.name == "musicnn_frontend":
            from genrekit.backbones.msd_musicnn import MelStream

            self._stream = MelStream()
        else:
            from genrekit.features.blockwise import LogmelStream

            self._stream = LogmelStream(fs.sample_rate, fs.n_fft, fs.hop_length, fs.n_mels, fs.fmin, fs.fmax,
                                        fs.top_db)

    def feed(self, block: np.ndarray) -> None:
        self._stream.feed(block)

    def finish(self) -> np.ndarray:
        spec = self._stream.finish()
        if self.fs.name == "mfcc":
            from genrekit.features import spectral

            spec = spectral.mfcc_from_logmel(spec, n_mfcc=self.fs.n_mfcc)
        return spec
