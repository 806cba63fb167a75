"""Where in the mel-spectrogram the evidence for the predicted genre lies: occlusion saliency.

Method (Zeiler & Fergus 2014)
-----------------------------
For every window of the song (the bundle's window and hop, the same log-mel patches
prediction uses), a rectangle of ``patch`` mel bands × frames is set to the window's
mean dB value ("grey": neither loud nor silent for this window) at every position of a
grid with step ``stride``, and the network runs on each occluded copy (in batches). The
**drop** of the predicted genre's probability, ``p(window) - p(occluded)``, is credited
to every cell of the rectangle; a cell's saliency is the mean drop over the rectangles
that covered it. Windows overlap, so the song's map is the mean over the windows that
cover each frame.

A positive value means hiding that region lowers the model's belief in the genre: the
evidence is there. Negative values (hiding it *raises* the belief) are kept in the map
but drawn as zero. Occlusion needs only forward passes, so it works on the ONNX model
without PyTorch; its resolution is the patch size, and its cost is one forward pass
per grid position and window.

The predicted genre is the track's: the argmax of the window probabilities' mean, as
``genrekit classify`` reports it.

References
----------
- M. D. Zeiler, R. Fergus, "Visualizing and understanding convolutional networks",
  ECCV 2014, section 4.2 (occlusion sensitivity).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .filters import ExplainError, check_cnn, db_pixels

#: Default occluding rectangle and grid step: (mel bands, frames). 16 frames ≈ 0.37 s at 22050 Hz, hop 512.
PATCH = (16, 16)
STRIDE = (8, 8)
#: Occluded patches per onnxruntime call.
BATCH = 128
#: Rows of separator between the two panels of the image.
GAP = 3


@dataclass
class Saliency:
    """An occlusion saliency map of a whole song.

    Attributes
    ----------
    spec : np.ndarray [shape=(n_mels, frames), dtype=float32]
        The song's log-mel spectrogram (dB).
    saliency : np.ndarray [shape=(n_mels, frames), dtype=float32]
        Mean probability drop of :attr:`label` when each cell is hidden (positive:
        evidence for the genre).
    label : str
        The genre explained.
    probabilities : dict
        Track-level probability of every genre.
    seconds_per_frame : float
    patch, stride : tuple of int
        (mel bands, frames).
    """

    spec: np.ndarray
    saliency: np.ndarray
    label: str
    probabilities: dict
    seconds_per_frame: float
    patch: tuple
    stride: tuple
    windows: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """What the JSON sidecar holds (no arrays but a per-second profile)."""
        positive = np.clip(self.saliency, 0, None).sum(axis=0)
        per_second = max(1, int(round(1.0 / self.seconds_per_frame)))
        profile = [float(positive[i : i + per_second].sum()) for i in range(0, len(positive), per_second)]
        total = float(positive.sum()) or 1.0
        return {
            "label": self.label,
            "probabilities": dict(sorted(self.probabilities.items(), key=lambda kv: -kv[1])),
            "method": "occlusion (Zeiler & Fergus 2014): mean drop of the label's probability when a "
                      "patch is set to the window's mean dB",
            "patch": list(self.patch), "stride": list(self.stride),
            "seconds_per_frame": self.seconds_per_frame,
            "duration": self.spec.shape[1] * self.seconds_per_frame,
            "saliency_per_second": [round(v / total, 5) for v in profile],
        }


def _grid(size: int, patch: int, stride: int) -> list[int]:
    """Start positions covering ``0..size`` with rectangles of ``patch`` every ``stride`` (the last flush)."""
    if patch >= size:
        return [0]
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)  # the edge gets covered too
    return starts


def occlusion_map(bundle, X: np.ndarray, target: int, *, patch=PATCH, stride=STRIDE,
                  batch: int = BATCH) -> np.ndarray:
    """Occlusion saliency of each window for class ``target``.

    Parameters
    ----------
    bundle : genrekit.models.bundle.Bundle
    X : np.ndarray [shape=(n, 1, n_mels, n_frames), dtype=float32]
        The bundle's input patches.
    target : int
        Column of the class explained.
    patch, stride : (int, int)
        Occluding rectangle and grid step, (mel bands, frames).
    batch : int
        Occluded copies per onnxruntime call.

    Returns
    -------
    np.ndarray [shape=(n, n_mels, n_frames), dtype=float32]
        Mean probability drop per cell.
    """
    n, _, n_mels, n_frames = X.shape
    ph, pw = min(patch[0], n_mels), min(patch[1], n_frames)
    spots = [(f, t) for f in _grid(n_mels, ph, stride[0]) for t in _grid(n_frames, pw, stride[1])]
    base = bundle.predict_proba(X)[:, target]
    out = np.zeros((n, n_mels, n_frames), dtype=np.float32)
    cover = np.zeros((n_mels, n_frames), dtype=np.float32)
    for f, t in spots:
        cover[f : f + ph, t : t + pw] += 1
    for w in range(n):
        grey = np.float32(X[w, 0].mean())
        drops = np.empty(len(spots))
        for s in range(0, len(spots), batch):
            chunk = spots[s : s + batch]
            occluded = np.repeat(X[w : w + 1], len(chunk), axis=0)
            for k, (f, t) in enumerate(chunk):
                occluded[k, 0, f : f + ph, t : t + pw] = grey
            drops[s : s + len(chunk)] = base[w] - bundle.predict_proba(occluded)[:, target]
        for (f, t), d in zip(spots, drops):
            out[w, f : f + ph, t : t + pw] += d
    return out / cover


def occlusion_saliency(bundle, y: np.ndarray, *, label: str | None = None, patch=PATCH, stride=STRIDE,
                       batch: int = BATCH) -> Saliency:
    """Occlusion saliency of a whole signal for its predicted genre (or ``label``).

    Parameters
    ----------
    bundle : genrekit.models.bundle.Bundle
        A CNN bundle.
    y : np.ndarray [shape=(n,)]
        Mono signal at the bundle's sample rate.
    label : str, optional
        Genre to explain (default: the predicted one).
    patch, stride : (int, int)
        Occluding rectangle and grid step in (mel bands, frames).
    batch : int
        Occluded copies per onnxruntime call.

    Returns
    -------
    Saliency
    """
    from .. import audio
    from ..models.cnn_data import bundle_inputs, frame_starts

    check_cnn(bundle)
    if min(*patch, *stride) < 1:
        raise ValueError(f"patch and stride must be positive, got {patch} and {stride}")
    fs = bundle.feature_set
    bounds = audio.window_bounds(len(y), fs.sample_rate, bundle.window, bundle.hop, cover_end=True)
    X = bundle_inputs(bundle, y, bounds)
    proba = bundle.predict_proba(X).mean(axis=0)
    if label is None:
        target = int(proba.argmax())
    elif label in bundle.labels:
        target = bundle.labels.index(label)
    else:
        raise ExplainError(f"unknown genre {label!r}; the model knows {', '.join(bundle.labels)}")
    per_window = occlusion_map(bundle, X, target, patch=patch, stride=stride, batch=batch)

    spec = fs.compute(np.asarray(y, dtype=np.float32))
    total, n_frames = spec.shape[1], X.shape[3]
    starts = frame_starts(bounds, fs.hop_length, total, n_frames)
    acc = np.zeros_like(spec)
    count = np.zeros(total, dtype=np.float32)
    for w, s in enumerate(starts):
        # a signal shorter than a window was repeated to fill it: keep its real frames only
        k = min(n_frames, total - s)
        acc[:, s : s + k] += per_window[w, :, :k]
        count[s : s + k] += 1
    return Saliency(
        spec=spec, saliency=acc / np.maximum(count, 1), label=bundle.labels[target],
        probabilities={g: float(p) for g, p in zip(bundle.labels, proba)},
        seconds_per_frame=fs.hop_length / fs.sample_rate, patch=tuple(patch), stride=tuple(stride),
        windows=[(a / fs.sample_rate, b / fs.sample_rate) for a, b in bounds],
    )


def heat_colors(n: int) -> np.ndarray:
    """A black → red → yellow → white ramp ("hot"), ``(n, 3)`` uint8."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    rgb = np.clip(np.hstack([3 * t, 3 * t - 1, 3 * t - 2]), 0, 1)
    return np.round(rgb * 255).astype(np.uint8)


def saliency_png(s: Saliency, *, max_width: int | None = None, top_db: float | None = 80.0) -> bytes:
    """The song's log-mel spectrogram (top) and its saliency map (bottom) on one time axis, as a PNG.

    Top panel: the "ember" colour map over ``max - top_db .. max`` dB. Bottom panel:
    the positive part of the saliency, black (none) to white (the largest drop).
    Low frequencies at the bottom of each panel; long songs are averaged down in time
    to ``max_width`` pixels (default :data:`genrekit.web.spectrogram.MAX_WIDTH`).
    """
    from ..web.spectrogram import MAX_WIDTH, _shrink_time, colormap, indexed_png

    width = max_width or MAX_WIDTH
    spec = _shrink_time(s.spec, width)
    heat = np.clip(_shrink_time(s.saliency, width), 0, None)
    top = db_pixels(spec, 128, top_db)
    peak = float(heat.max())
    bottom = 128 + np.round((heat[::-1] / peak if peak > 0 else heat[::-1]) * 126).astype(np.uint8)
    gap = np.full((GAP, top.shape[1]), 255, dtype=np.uint8)
    palette = np.vstack([colormap(128), heat_colors(127), np.array([[255, 255, 255]], dtype=np.uint8)])
    return indexed_png(np.vstack([top, gap, bottom]), palette)
