"""Feature sets: a named, parameterised recipe that turns audio into an array.

A :class:`FeatureSet` is a plain value. Two equal sets compute identical arrays, and
:attr:`FeatureSet.key` is a stable hash of the recipe (name, parameters and the
implementation version), so that caches and model bundles can say exactly what a
stored array was computed with.

Shapes returned by :meth:`FeatureSet.compute`:

- ``logmel``:  ``(n_mels, n_frames)`` log-power mel spectrogram in dB;
- ``mfcc``:    ``(n_mfcc, n_frames)`` mel-frequency cepstral coefficients;
- ``gtzan57``: ``(n_windows, 57)``, one row of the Kaggle GTZAN table per analysis
  window of ``window`` seconds (``None``: the whole signal is one window);
- ``msd_musicnn`` (formerly ``musicnn``): ``(n_patches, 250)``, one row per 3-s patch of the pretrained MSD-musicnn
  network (:mod:`genrekit.backbones.msd_musicnn`): its 50 tag probabilities then its 200-d
  embedding (the penultimate layer); with ``window`` set, one row per window of ``window``
  seconds instead, the mean of the patches whose centre lies in it (what heads train on);
- ``musicnn_frontend`` (formerly ``musicnn_mel``): ``(96, n_frames)``, MSD-musicnn's own input: the log-compressed mel
  spectrogram ``log10(10000 x + 1)`` of :func:`genrekit.backbones.msd_musicnn.log_mel` (16 kHz,
  hop 256), transposed to genrekit's bands × frames layout; what ``--arch musicnn`` trains on.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
from genrekit.features.defaults import HOP_LENGTH, N_FFT, N_MELS, SAMPLE_RATE

from genrekit.engines.threads import on_one_blas_thread
from genrekit.errors import ParameterError

#: Bump when a change alters the numbers a feature set produces; it enters every key,
#: so stale cache entries are never served.
IMPLEMENTATION_VERSION = 1

NAMES = ("logmel", "mfcc", "gtzan57", "msd_musicnn", "musicnn_frontend")
#: Former names of feature sets, still read (bundles, caches, archives and ``--set`` written before the renaming).
RENAMED = {"musicnn": "msd_musicnn", "musicnn_mel": "musicnn_frontend"}
#: The name a set's key is computed with: its first, so that renaming a set changed no key
#: (caches, bundles and results stores made before stay valid).
_KEY_NAMES = {new: old for old, new in RENAMED.items()}
#: Parameters that only some sets have; left out of the key when unset, so adding them
#: changed no existing key.
_OPTIONAL = ("step", "max_patches")

#: Bounds of a recipe's parameters (see :meth:`FeatureSet._check_ranges`).
MAX_SAMPLE_RATE = 192_000
MIN_WINDOW, MAX_WINDOW = 0.1, 600.0


@dataclass(frozen=True)
class FeatureSet:
    """A recipe for features.

    Parameters
    ----------
    name : {"logmel", "mfcc", "gtzan57", "msd_musicnn", "musicnn_frontend"}
    sample_rate : int
        Rate in Hz that audio is decoded to before analysis.
    n_fft : int
        STFT frame length in samples (Hann window, centred frames, zero padding).
    hop_length : int
        STFT hop in samples.
    n_mels : int
        Mel bands (Slaney scale and normalisation, as librosa's default).
    fmin, fmax : float
        Mel filter bank range in Hz; ``fmax=None`` means ``sample_rate / 2``.
    n_mfcc : int
        Cepstral coefficients kept (``mfcc`` only; ``gtzan57`` always uses 20).
    top_db : float or None
        Dynamic range of the dB scale below each spectrogram's peak.
    window : float or None
        ``gtzan57``: analysis window in seconds (30 for the Kaggle 30-sec table, 3 for
        the 3-sec table); ``None`` analyses the whole signal at once. ``musicnn``: rows
        are means over windows of this many seconds; ``None`` gives one row per patch.
    step : int or None
        ``musicnn`` only: STFT frames between patch starts (61 ≈ 0.98 s, musicnn's own).
    max_patches : int or None
        ``musicnn`` only: at most this many patches per signal; a longer signal gets them
        spread evenly over its length (a larger step), which bounds the time a long song
        costs. ``None``: no limit.
    """

    name: str
    sample_rate: int = SAMPLE_RATE
    n_fft: int = N_FFT
    hop_length: int = HOP_LENGTH
    n_mels: int = N_MELS
    fmin: float = 0.0
    fmax: float | None = None
    n_mfcc: int = 20
    top_db: float | None = 80.0
    window: float | None = None
    step: int | None = None
    max_patches: int | None = None

    def __post_init__(self) -> None:
        # Canonical types, so that equal recipes (window=30 vs 30.0) hash to the same key.
        for name, kind in (("sample_rate", int), ("n_fft", int), ("hop_length", int), ("n_mels", int),
                           ("n_mfcc", int), ("fmin", float)):
            object.__setattr__(self, name, kind(getattr(self, name)))
        for name in ("step", "max_patches"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, int(getattr(self, name)))
                if getattr(self, name) <= 0:
                    raise ParameterError(f"{name} must be a positive integer or None, got {getattr(self, name)}")
        for name in ("fmax", "top_db", "window"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, float(getattr(self, name)))
        if self.name not in NAMES:
            raise ParameterError(f"unknown feature set {self.name!r}; expected one of {', '.join(NAMES)}")
        if self.sample_rate <= 0 or self.n_fft <= 0 or self.hop_length <= 0 or self.n_mels <= 0:
            raise ParameterError("sample_rate, n_fft, hop_length and n_mels must be positive")
        if self.window is not None and self.window <= 0:
            raise ParameterError(f"window must be positive seconds or None, got {self.window}")
        self._check_ranges()

    def _check_ranges(self) -> None:
        """Refuse values no analysis can be run with in reasonable time and memory.

        A recipe can come from a file someone sent (a model bundle), so absurd values
        (a 2 MHz sample rate, a one-sample hop) must fail here, naming the parameter,
        rather than hang or exhaust memory later.
        """
        def bad(name: str, rule: str):
            raise ParameterError(f"{name} must be {rule}, got {getattr(self, name)!r}")

        if not 1000 <= self.sample_rate <= MAX_SAMPLE_RATE:
            bad("sample_rate", f"between 1000 and {MAX_SAMPLE_RATE} Hz")
        if not 16 <= self.n_fft <= 65536:
            bad("n_fft", "between 16 and 65536 samples")
        if not 16 <= self.hop_length <= self.n_fft:
            bad("hop_length", f"between 16 and n_fft ({self.n_fft}) samples")
        if not 1 <= self.n_mels <= min(512, self.n_fft // 2 + 1):
            bad("n_mels", f"between 1 and {min(512, self.n_fft // 2 + 1)}")
        if not 1 <= self.n_mfcc <= self.n_mels:
            bad("n_mfcc", f"between 1 and n_mels ({self.n_mels})")
        nyquist = self.sample_rate / 2
        if not (math.isfinite(self.fmin) and 0 <= self.fmin < nyquist):
            bad("fmin", f"at least 0 and below sample_rate / 2 ({nyquist:g} Hz)")
        if self.fmax is not None and not (math.isfinite(self.fmax) and self.fmin < self.fmax <= nyquist):
            bad("fmax", f"above fmin and at most sample_rate / 2 ({nyquist:g} Hz), or None")
        if self.top_db is not None and not (math.isfinite(self.top_db) and 0 <= self.top_db <= 1000):
            bad("top_db", "between 0 and 1000 dB, or None")
        if self.window is not None and not (math.isfinite(self.window) and MIN_WINDOW <= self.window <= MAX_WINDOW):
            bad("window", f"between {MIN_WINDOW:g} and {MAX_WINDOW:g} seconds, or None")

    # --- identity -------------------------------------------------------------
    def to_dict(self) -> dict:
        """Parameters as a JSON-ready dict (the inverse of :meth:`from_dict`)."""
        out = asdict(self)
        for name in _OPTIONAL:
            if out[name] is None:
                del out[name]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureSet":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known - {"key", "implementation_version"}
        if unknown:
            raise ParameterError(f"unknown feature-set parameters: {', '.join(sorted(unknown))}")
        values = {k: v for k, v in data.items() if k in known}
        if values.get("name") in RENAMED:
            values["name"] = RENAMED[values["name"]]
        return cls(**values)

    @property
    def key(self) -> str:
        """Stable 16-hex-digit hash of the recipe, including the implementation version."""
        payload = dict(self.to_dict(), implementation_version=IMPLEMENTATION_VERSION)
        payload["name"] = _KEY_NAMES.get(self.name, self.name)
        if self.name == "msd_musicnn":  # other weights would give other numbers
            from genrekit.backbones.msd_musicnn import weights_sha256

            payload["weights"] = weights_sha256()
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def with_params(self, **changes) -> "FeatureSet":
        return replace(self, **changes)

    @property
    def min_samples(self) -> int:
        """Shortest signal (samples) that can be analysed: one full STFT frame."""
        return self.n_fft

    @property
    def tabular(self) -> bool:
        """Whether :meth:`compute` gives rows of named columns (a table) rather than an image."""
        return self.name in ("gtzan57", "msd_musicnn")

    @property
    def columns(self) -> list[str]:
        """Column names of a ``gtzan57`` or ``msd_musicnn`` row (empty for array-valued sets)."""
        if self.name == "msd_musicnn":
            from genrekit.backbones.msd_musicnn import COLUMNS

            return list(COLUMNS)
        if self.name != "gtzan57":
            return []
        from genrekit.features.gtzan57 import COLUMNS

        return list(COLUMNS)

    # --- computing ------------------------------------------------------------
    @on_one_blas_thread  # as in every worker: the same numbers from the API and from a batch job
    def compute(self, y: np.ndarray) -> np.ndarray:
        """Compute the features of a mono float signal at :attr:`sample_rate`.

        Raises :class:`~genrekit.errors.ParameterError` (a ``ValueError``) for a signal shorter than
        :attr:`min_samples` (callers that know the file name turn it into an ``AudioError``).
        """
        y = np.asarray(y, dtype=np.float32)
        if y.ndim != 1:
            raise ParameterError(f"expected a mono signal (1-D array), got shape {y.shape}")
        if len(y) < self.min_samples:
            raise ParameterError(
                f"signal of {len(y)} samples is shorter than one analysis frame "
                f"({self.min_samples} samples = {self.min_samples / self.sample_rate * 1000:.0f} ms)"
            )
        if self.name == "gtzan57":
            from genrekit.features.gtzan57 import gtzan57_table

            return gtzan57_table(y, self.sample_rate, window=self.window)
        if self.name == "msd_musicnn":
            from genrekit.backbones.msd_musicnn import feature_rows

            return feature_rows(y, step=self.step, max_patches=self.max_patches, window=self.window)
        if self.name == "musicnn_frontend":
            from genrekit.backbones.msd_musicnn import log_mel

            return np.ascontiguousarray(log_mel(y).T)
        from genrekit.features import spectral

        front = spectral.SpectralFrontEnd(
            sr=self.sample_rate, n_fft=self.n_fft, hop_length=self.hop_length,
            n_mels=self.n_mels, fmin=self.fmin, fmax=self.fmax,
        )
        logmel = front.logmel(y, top_db=self.top_db)
        if self.name == "logmel":
            return logmel
        return spectral.mfcc_from_logmel(logmel, n_mfcc=self.n_mfcc)


def feature_set(name: str, **params) -> FeatureSet:
    """Build a feature set by name (or a former name, :data:`RENAMED`); ``gtzan57`` defaults to 30-s windows, ``msd_musicnn`` to its
    own front end (16 kHz, STFT 512, hop 256, 96 mel bands) and a patch every 61 frames,
    ``musicnn_frontend`` to that same front end (its other parameters are not used)."""
    name = RENAMED.get(name, name)
    if name == "gtzan57":
        params.setdefault("window", 30.0)
    if name == "musicnn_frontend":
        from genrekit.backbones import msd_musicnn as m

        params = {**dict(sample_rate=m.SAMPLE_RATE, n_fft=m.N_FFT, hop_length=m.HOP_LENGTH,
                         n_mels=m.N_MELS, top_db=None), **params}
    if name == "msd_musicnn":
        from genrekit.backbones import msd_musicnn as m

        for key, value in (("sample_rate", m.SAMPLE_RATE), ("n_fft", m.N_FFT), ("hop_length", m.HOP_LENGTH),
                           ("n_mels", m.N_MELS), ("step", m.DEFAULT_STEP), ("top_db", None)):
            params.setdefault(key, value)
    return FeatureSet(name=name, **params)
