"""What a model kind provides for occlusion: a time–frequency plane to hide regions of, and the
song's probabilities with a region hidden. The one place that branches on the model kind.

:func:`occlusion_target` turns a loaded model (:class:`genrekit.models.protocol.GenreClassifier`) into
an :class:`OcclusionTarget`:

- **backbone + head** (the default ``musicnn`` model): the plane is MSD-musicnn's own input, its
  96-band log-compressed mel spectrogram (16 kHz, 16-ms frames). Hiding a region re-runs only the
  3-s patches that overlap it, then the head on the windows' mean tags and embeddings.
- **CNN bundles** (log-mel, MFCC or ``musicnn_frontend`` input): the plane is the bundle's log-mel
  spectrogram (MFCC bundles: the log-mel their MFCCs are the cosine transform of); hiding a region
  re-runs only the windows that overlap it.
- **feature-table models** (``gtzan57``): their features are computed from audio, so a region is
  hidden in the audio itself: its STFT coefficients (a 2048-point STFT, hop 512) are set to zero,
  the signal is resynthesised (inverse STFT by overlap-add) and the features of the windows it
  touches are recomputed. The plane drawn is the log-mel of that STFT.

"Hidden" means silenced in every kind: the region's energy is removed (a log-mel region set to
what silence gives, STFT coefficients set to zero), so a region that was silent already changes
nothing and its saliency is exactly zero; occlusion cannot credit silence.

Song-level probabilities are what ``genrekit classify`` reports: the mean over the model's
windows. Every target checks nothing of the model but through :class:`GenreClassifier`'s public
methods, except the backbone's patches, which it must cut itself to re-run a few.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from genrekit.errors import ExplainError

#: Network inputs per onnxruntime call when re-running occluded patches or windows.
BATCH = 16


@dataclass
class Plane:
    """A song's time–frequency plane as a model kind occludes it (mel bands × frames).

    Attributes
    ----------
    image : np.ndarray [shape=(n_bands, n_frames), dtype=float32]
        The values drawn under the saliency, low bands first.
    unit : str
        What :attr:`image` holds (``"dB"``, ``"log10(1 + 10^4 power)"``).
    seconds_per_frame : float
        Hop between frames in seconds.
    fmin, fmax : float
        Frequency range of the bands in Hz; bands are equally spaced on the (Slaney) mel scale.
    n_samples, sample_rate : int
        The analysed signal.
    state : dict
        What the target needs to re-run an occluded copy (private to the target).
    """

    image: np.ndarray
    unit: str
    seconds_per_frame: float
    fmin: float
    fmax: float
    n_samples: int
    sample_rate: int
    state: dict = field(default_factory=dict, repr=False)

    @property
    def n_bands(self) -> int:
        return self.image.shape[0]

    @property
    def n_frames(self) -> int:
        return self.image.shape[1]


#: A region of a plane: ``(first band, band stop, first frame, frame stop)``, stops exclusive.
Box = tuple[int, int, int, int]


class OcclusionTarget(Protocol):
    """What a model kind must provide for occlusion saliency."""

    #: The model's genres, in the order of its probabilities.
    labels: list[str]
    #: What kind of model this is, in words (for the sidecar and the messages).
    kind: str

    def representation(self, y: np.ndarray) -> Plane:
        """The plane of a mono signal at the model's sample rate."""

    def probabilities(self, plane: Plane, boxes: list[Box]) -> np.ndarray:
        """Song-level probabilities with each box silenced in turn, shape ``(len(boxes), n_labels)``;
        ``boxes=[]`` gives the song's own, shape ``(1, n_labels)``."""


def occlusion_target(model) -> OcclusionTarget:
    """The :class:`OcclusionTarget` of a loaded model (:func:`genrekit.models.registry.load_model`)."""
    from genrekit.models.backbone_head import BackboneHeadModel
    from genrekit.models.feature_table import FeatureTableModel
    from genrekit.models.spectrogram_cnn import SpectrogramCNNModel

    # By the model's kind (genrekit.models.protocol), never by its name.
    targets = {BackboneHeadModel: BackboneTarget, SpectrogramCNNModel: SpectrogramTarget, FeatureTableModel: AudioTarget}
    for kind, target in targets.items():
        if isinstance(model, kind):
            return target(model)
    raise ExplainError(f"no occlusion recipe for a {type(model).__name__}")


def _touching(starts: np.ndarray, length: int, t0: int, t1: int) -> np.ndarray:
    """Indices of the spans ``[start, start + length)`` that overlap frames ``[t0, t1)``."""
    return np.flatnonzero((starts < t1) & (starts + length > t0))


# --- backbone + head -------------------------------------------------------------------------
class BackboneTarget:
    """A head on MSD-musicnn: occlusion in the backbone's mel patches, the head on window means."""

    kind = "backbone + head"

    def __init__(self, model) -> None:
        from genrekit.backbones import msd_musicnn

        self.model = model
        self.labels = model.labels
        self._mn = msd_musicnn

    def patch_starts(self, total: int) -> np.ndarray:
        """First frame of each patch :meth:`GenreClassifier.taggram` runs for ``total`` frames."""
        mn, fs = self._mn, self.model.bundle.feature_set
        if total <= mn.PATCH_FRAMES:
            return np.zeros(1, dtype=np.int64)
        step = mn.planned_step(total, fs.step or mn.DEFAULT_STEP, fs.max_patches)
        end = total - mn.PATCH_FRAMES
        starts = list(range(0, end + 1, step))
        if end - starts[-1] > step / 2:  # cover_end=True, as prediction does
            starts.append(end)
        return np.asarray(starts, dtype=np.int64)

    def representation(self, y: np.ndarray) -> Plane:
        mn = self._mn
        mel = mn.log_mel(y)  # (frames, 96)
        starts = self.patch_starts(len(mel))
        tags, embs = self._run([self._patch(mel, s) for s in starts])
        return Plane(image=np.ascontiguousarray(mel.T), unit="log10(1 + 10^4 power)",
                     seconds_per_frame=mn.HOP_LENGTH / mn.SAMPLE_RATE, fmin=0.0, fmax=mn.SAMPLE_RATE / 2,
                     n_samples=len(y), sample_rate=mn.SAMPLE_RATE,
                     state={"mel": mel, "starts": starts, "tags": tags, "embs": embs})

    def probabilities(self, plane: Plane, boxes: list) -> np.ndarray:
        st = plane.state
        if not boxes:
            return self._song(plane, st["tags"], st["embs"])[None]
        mel, starts = st["mel"], st["starts"]
        jobs, inputs = [], []
        for b0, b1, t0, t1 in boxes:
            hit = _touching(starts, self._mn.PATCH_FRAMES, t0, t1) if len(mel) > self._mn.PATCH_FRAMES \
                else np.zeros(1, dtype=np.int64)  # one repeated patch holds every frame
            jobs.append(hit)
            for p in hit:
                inputs.append(self._patch(mel, starts[p], (b0, b1, t0, t1)))
        tags, embs = self._run(inputs)
        out, k = [], 0
        for hit in jobs:
            t, e = st["tags"].copy(), st["embs"].copy()
            t[hit], e[hit] = tags[k : k + len(hit)], embs[k : k + len(hit)]
            k += len(hit)
            out.append(self._song(plane, t, e))
        return np.asarray(out)

    def _patch(self, mel: np.ndarray, start: int, box=None) -> np.ndarray:
        mn = self._mn
        if len(mel) <= mn.PATCH_FRAMES:  # short signal: repeated to fill the patch, as prediction does
            part = mel.copy()
            if box is not None:
                part[box[2] : box[3], box[0] : box[1]] = 0.0
            return mn._repeat_pad(part)
        part = mel[start : start + mn.PATCH_FRAMES].copy()
        if box is not None:
            b0, b1, t0, t1 = box
            # log10(10000 · 0 + 1) = 0: what silence gives in this front end
            part[max(t0 - start, 0) : max(t1 - start, 0), b0:b1] = 0.0
        return part

    def _run(self, patches: list) -> tuple[np.ndarray, np.ndarray]:
        backbone = self._mn.load_backbone()
        tags, embs = [], []
        for s in range(0, len(patches), BATCH):
            t, e = backbone.run(np.stack(patches[s : s + BATCH]))
            tags.append(t)
            embs.append(e)
        if not tags:
            return np.zeros((0, len(self._mn.TAGS)), np.float32), np.zeros((0, self._mn.EMBEDDING_SIZE), np.float32)
        return np.concatenate(tags), np.concatenate(embs)

    def _song(self, plane: Plane, tags: np.ndarray, embs: np.ndarray) -> np.ndarray:
        mn = self._mn
        taggram = mn.Taggram(tags, embs, plane.state["starts"] * mn.HOP_LENGTH / mn.SAMPLE_RATE,
                             plane.n_samples / mn.SAMPLE_RATE)
        proba = self.model.head_probabilities(taggram, self.model.window_bounds(plane.n_samples))
        return proba.mean(axis=0)


# --- CNN bundles -----------------------------------------------------------------------------
class SpectrogramTarget:
    """A CNN bundle: occlusion in its log-mel input (MFCC bundles: in the log-mel under their MFCCs)."""

    kind = "CNN"

    def __init__(self, model) -> None:
        from genrekit.features.sets import FeatureSet

        self.model = model
        self.labels = model.labels
        fs = model.bundle.feature_set
        self.fs = fs if isinstance(fs, FeatureSet) else FeatureSet.from_dict(fs)

    def representation(self, y: np.ndarray) -> Plane:
        from genrekit.features import spectral
        from genrekit.features.sets import feature_set
        from genrekit.models.cnn_inputs import _bundle_frames, frame_starts

        fs = self.fs
        if fs.name == "musicnn_frontend":
            from genrekit.backbones import msd_musicnn as mn

            spec, unit, fill, fmax = fs.compute(y), "log10(1 + 10^4 power)", 0.0, mn.SAMPLE_RATE / 2
        else:
            logmel = fs if fs.name == "logmel" else feature_set(
                "logmel", sample_rate=fs.sample_rate, n_fft=fs.n_fft, hop_length=fs.hop_length,
                n_mels=fs.n_mels, fmin=fs.fmin, fmax=fs.fmax, top_db=fs.top_db)
            spec, unit = logmel.compute(y), "dB"
            # the value a silent region gets: power_to_db's floor, or top_db below the song's peak
            floor = 10 * np.log10(spectral.AMIN)
            fill = max(floor, float(spec.max()) - fs.top_db) if fs.top_db else floor
            fmax = fs.fmax or fs.sample_rate / 2
        n_frames = _bundle_frames(self.model.bundle, fs)
        bounds = self.model.window_bounds(len(y))
        starts = frame_starts(bounds, fs.hop_length, spec.shape[1], n_frames)
        state = {"spec": spec, "starts": starts, "length": n_frames, "fill": np.float32(fill)}
        state["base"] = self._run(self._inputs(spec, starts, n_frames))
        return Plane(image=spec, unit=unit, seconds_per_frame=fs.hop_length / fs.sample_rate,
                     fmin=float(fs.fmin), fmax=float(fmax), n_samples=len(y), sample_rate=fs.sample_rate,
                     state=state)

    def probabilities(self, plane: Plane, boxes: list) -> np.ndarray:
        st = plane.state
        base = st["base"]
        if not boxes:
            return base.mean(axis=0)[None]
        spec, starts, length = st["spec"], st["starts"], st["length"]
        jobs, inputs = [], []
        for b0, b1, t0, t1 in boxes:
            hit = _touching(starts, length, t0, t1) if spec.shape[1] > length else np.arange(len(starts))
            lo, hi = int(starts[hit].min()), int(starts[hit].max()) + length
            part = spec[:, lo:hi].copy()  # only the frames the touched windows see
            part[b0:b1, max(t0 - lo, 0) : max(t1 - lo, 0)] = st["fill"]
            jobs.append(hit)
            inputs.append(self._inputs(part, starts[hit] - lo, length))
        rows = self._run(np.concatenate(inputs))
        out, k = [], 0
        for hit in jobs:
            proba = base.copy()
            proba[hit] = rows[k : k + len(hit)]
            k += len(hit)
            out.append(proba.mean(axis=0))
        return np.asarray(out)

    def _inputs(self, spec: np.ndarray, starts, length: int) -> np.ndarray:
        from genrekit.features.spectral import mfcc_from_logmel
        from genrekit.models.cnn_inputs import patches

        if self.fs.name == "mfcc":
            spec = mfcc_from_logmel(spec, n_mfcc=self.fs.n_mfcc)  # frame by frame: a slice gives the same
        return patches(spec, np.asarray(starts), length)

    def _run(self, X: np.ndarray) -> np.ndarray:
        bundle = self.model.bundle
        return np.concatenate([bundle.predict_proba(X[s : s + BATCH]) for s in range(0, len(X), BATCH)])


# --- models on features computed from audio (gtzan57) -----------------------------------------
class AudioTarget:
    """A model whose input is computed from the audio: regions silenced in the STFT, audio resynthesised.

    The STFT has :data:`N_FFT` points and hop :data:`HOP` at the model's rate; the plane's
    :data:`N_MELS` mel bands group its bins (a band row covers the bins between the midpoints
    of its neighbours' centres). Silencing a box subtracts the inverse STFT of the box's
    coefficients, which equals resynthesising the masked STFT (the overlap-add is linear).
    """

    kind = "feature table"
    N_FFT, HOP, N_MELS, TOP_DB = 2048, 512, 128, 80.0

    def __init__(self, model) -> None:
        self.model = model
        self.labels = model.labels

    def representation(self, y: np.ndarray) -> Plane:
        from genrekit.features import spectral

        sr = self.model.sample_rate
        y = np.asarray(y, dtype=np.float32)
        D = spectral.stft(y, self.N_FFT, self.HOP)
        image = spectral.power_to_db(spectral.mel_power(np.abs(D) ** 2, sr, self.N_FFT, self.N_MELS),
                                     top_db=self.TOP_DB).astype(np.float32)
        # band row b spans the bins between the midpoints of the mel centres around it
        m = np.linspace(spectral.hz_to_mel(0.0), spectral.hz_to_mel(sr / 2), self.N_MELS + 2)
        freqs = spectral.fft_frequencies(sr, self.N_FFT)
        inner = np.searchsorted(freqs, spectral.mel_to_hz((m[1:-2] + m[2:-1]) / 2))
        bin_edges = np.concatenate([[0], inner, [len(freqs)]])
        window = spectral.hann_window(self.N_FFT).astype(np.float32)
        padded = len(y) + 2 * (self.N_FFT // 2)
        norm = np.zeros(padded + self.N_FFT, np.float32)
        for t in range(D.shape[1]):  # the squared-window envelope of the overlap-add
            norm[t * self.HOP : t * self.HOP + self.N_FFT] += window ** 2
        bounds, proba = self.model.window_probabilities(y)
        return Plane(image=image, unit="dB", seconds_per_frame=self.HOP / sr, fmin=0.0, fmax=sr / 2,
                     n_samples=len(y), sample_rate=sr,
                     state={"y": y, "D": D, "bin_edges": bin_edges, "window": window, "norm": norm,
                            "bounds": bounds, "base": proba, "segments": {}})

    def probabilities(self, plane: Plane, boxes: list) -> np.ndarray:
        st = plane.state
        base = st["base"]
        if not boxes:
            return base.mean(axis=0)[None]
        out = []
        for box in boxes:
            y, a, hit = self._silenced(plane, box)
            bounds = [(s - a, e - a) for s, e in (st["bounds"][i] for i in hit)]
            reference = self._reference(plane, a, len(y), bounds, hit)
            masked = self._window_probabilities(y, bounds)
            # windows analysed on a segment differ slightly from the whole song's: compare like with like
            proba = base.copy()
            proba[hit] = base[hit] - (reference - masked)
            out.append(proba.mean(axis=0))
        return np.asarray(out)

    def _silenced(self, plane: Plane, box) -> tuple[np.ndarray, int, list]:
        """The touched windows' span of the signal with the box silenced, its first sample, the windows."""
        import scipy.fft

        st = plane.state
        b0, b1, t0, t1 = box
        half = self.N_FFT // 2
        s0, s1 = t0 * self.HOP - half, (t1 - 1) * self.HOP + half  # samples the frames cover
        hit = [i for i, (s, e) in enumerate(st["bounds"]) if s < s1 and e > s0]
        a, b = min(st["bounds"][i][0] for i in hit), max(st["bounds"][i][1] for i in hit)
        coeffs = np.zeros((self.N_FFT // 2 + 1, t1 - t0), np.complex64)
        k0, k1 = st["bin_edges"][b0], st["bin_edges"][b1]
        coeffs[k0:k1] = st["D"][k0:k1, t0:t1]
        frames = scipy.fft.irfft(coeffs.T, n=self.N_FFT, axis=-1).astype(np.float32) * st["window"]
        removed = np.zeros((t1 - t0 - 1) * self.HOP + self.N_FFT, np.float32)
        for j in range(t1 - t0):
            removed[j * self.HOP : j * self.HOP + self.N_FFT] += frames[j]
        norm = st["norm"][t0 * self.HOP : t0 * self.HOP + len(removed)]
        removed = np.where(norm > 1e-8, removed / np.maximum(norm, 1e-8), 0.0)
        y = st["y"][a:b].copy()
        lo, hi = max(s0, a), min(s0 + len(removed), b)  # s0: the removed part's first sample
        if hi > lo:
            y[lo - a : hi - a] -= removed[lo - s0 : hi - s0]
        return y, a, hit

    def _reference(self, plane: Plane, a: int, n: int, bounds, hit) -> np.ndarray:
        """Probabilities of windows ``hit`` analysed on the unmasked segment ``[a, a + n)`` (cached)."""
        st = plane.state
        if a == 0 and n == plane.n_samples:  # the whole song: the song's own rows
            return st["base"][hit]
        key = (a, n, tuple(bounds))
        if key not in st["segments"]:
            st["segments"][key] = self._window_probabilities(st["y"][a : a + n], bounds)
        return st["segments"][key]

    def _window_probabilities(self, y: np.ndarray, bounds) -> np.ndarray:
        return self.model.bundle.predict_proba(self.model.inputs(y, bounds))
