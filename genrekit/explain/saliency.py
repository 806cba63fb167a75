"""Where in a song the evidence for a genre lies: occlusion saliency, for every kind of model.

Method (Zeiler & Fergus 2014, on the song's time–frequency plane)
------------------------------------------------------------------
The song's plane (:func:`genrekit.explain.occlusion.occlusion_target`: the model's own
spectrogram input, or for feature-table models the STFT of the audio) is cut into a grid of
``bands`` rows, equal runs of mel bands, by cells of ``seconds`` in time. Each cell in turn is
silenced (its energy removed) and the song's probability of the genre explained is measured
again, as ``genrekit classify`` computes it (the mean over the model's windows). A cell's
saliency is the **drop** ``p(song) - p(song with the cell silenced)``:

- positive: hiding the cell lowers the model's belief in the genre; the evidence is there;
- negative: hiding it *raises* the belief (the cell speaks against the genre);
- zero: the model does not use it, or the cell is silent (silencing silence changes nothing).

The drops are song-level probabilities, so on a long song, whose windows each weigh little,
they are smaller than on a clip. Occlusion needs only forward passes (no gradients), so it runs
on onnxruntime without PyTorch; each target re-runs only the patches or windows a cell touches.

The genre explained is the model's top genre for the song unless ``label`` names another.

References
----------
- M. D. Zeiler, R. Fergus, "Visualizing and understanding convolutional networks",
  ECCV 2014, section 4.2 (occlusion sensitivity).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genrekit.errors import ExplainError, ParameterError
from genrekit.explain import BANDS, SECONDS
from genrekit.explain.occlusion import Plane, occlusion_target


@dataclass
class Saliency:
    """An occlusion saliency map of a whole song.

    Attributes
    ----------
    plane : Plane
        The song's time–frequency plane (``plane.image``: bands × frames).
    grid : np.ndarray [shape=(n_rows, n_cells), dtype=float64]
        Drop of :attr:`label`'s song probability when each cell is silenced; row 0 is the
        lowest band run.
    band_edges : np.ndarray [shape=(n_rows + 1,)]
        Band index at which each row starts (the last: ``n_bands``).
    frame_edges : np.ndarray [shape=(n_cells + 1,)]
        Frame at which each cell starts (the last: ``n_frames``).
    label : str
        The genre explained.
    probabilities : dict
        The song's probability of every genre.
    model : str
        The model's name.
    kind : str
        The model kind (``"backbone + head"``, ``"CNN"``, ``"feature table"``).
    """

    plane: Plane
    grid: np.ndarray
    band_edges: np.ndarray
    frame_edges: np.ndarray
    label: str
    probabilities: dict
    model: str
    kind: str

    @property
    def seconds_per_frame(self) -> float:
        return self.plane.seconds_per_frame

    @property
    def duration(self) -> float:
        return self.plane.n_samples / self.plane.sample_rate

    def band_hz(self) -> list[float]:
        """Frequency (Hz) of each row edge: the mel-scale boundary between band runs."""
        from genrekit.features.spectral import hz_to_mel, mel_to_hz

        p = self.plane
        m0, m1 = float(hz_to_mel(p.fmin)), float(hz_to_mel(p.fmax))
        # band b is centred on mel point b + 1 of n_bands + 2; row edges lie halfway between centres
        mels = m0 + (np.asarray(self.band_edges, dtype=float) + 0.5) * (m1 - m0) / (p.n_bands + 1)
        hz = mel_to_hz(mels)
        hz[0], hz[-1] = p.fmin, p.fmax
        return [round(float(v), 1) for v in hz]

    def per_frame(self) -> np.ndarray:
        """:attr:`grid` spread over the plane: ``(n_bands, n_frames)``, each cell's drop on its frames."""
        rows = np.repeat(np.arange(len(self.band_edges) - 1), np.diff(self.band_edges))
        cols = np.repeat(np.arange(len(self.frame_edges) - 1), np.diff(self.frame_edges))
        return self.grid[np.ix_(rows, cols)]

    def to_dict(self) -> dict:
        """What the JSON sidecar holds: the grid with its axes in Hz and seconds, and the probabilities."""
        spf = self.seconds_per_frame
        return {
            "label": self.label,
            "probability": self.probabilities[self.label],
            "probabilities": dict(sorted(self.probabilities.items(), key=lambda kv: -kv[1])),
            "model": self.model, "model_kind": self.kind,
            "method": "occlusion (Zeiler & Fergus 2014): drop of the song's probability of the label when "
                      "a time-frequency cell is silenced",
            "duration": round(self.duration, 3),
            "band_edges_hz": self.band_hz(),
            "cell_starts_s": [round(float(f) * spf, 3) for f in self.frame_edges[:-1]],
            "cell_ends_s": [round(min(float(f) * spf, self.duration), 3) for f in self.frame_edges[1:]],
            # rows from the lowest band run up, columns in time
            "saliency": [[round(float(v), 6) for v in row] for row in self.grid],
        }


def grid_edges(size: int, parts: int) -> np.ndarray:
    """``parts + 1`` edges cutting ``0..size`` into near-equal runs (fewer parts when ``size`` is smaller)."""
    parts = max(1, min(parts, size))
    return np.round(np.linspace(0, size, parts + 1)).astype(np.int64)


def occlusion_saliency(model, y: np.ndarray, *, label: str | None = None, bands: int = BANDS,
                       seconds: float = SECONDS) -> Saliency:
    """Occlusion saliency of a whole signal for its top genre (or ``label``).

    Parameters
    ----------
    model : genrekit.models.protocol.GenreClassifier
        Any model (:func:`genrekit.models.registry.load_model`).
    y : np.ndarray [shape=(n,)]
        Mono signal at ``model.sample_rate``.
    label : str, optional
        Genre to explain (default: the model's top genre for the song).
    bands : int
        Rows of the grid (equal runs of mel bands).
    seconds : float
        Length of a grid cell in seconds (the last cell of the song may be shorter).

    Returns
    -------
    Saliency
    """
    if bands < 1 or not seconds > 0:
        raise ParameterError(f"bands must be positive and seconds > 0, got {bands} and {seconds}")
    target = occlusion_target(model)
    plane = target.representation(np.asarray(y, dtype=np.float32))
    base = target.probabilities(plane, [])[0]
    if label is None:
        index = int(np.argmax(base))
    elif label in target.labels:
        index = target.labels.index(label)
    else:
        raise ExplainError(f"unknown genre {label!r}; the model knows {', '.join(target.labels)}")
    band_edges = grid_edges(plane.n_bands, bands)
    per_cell = max(1, int(round(seconds / plane.seconds_per_frame)))
    frame_edges = np.append(np.arange(0, plane.n_frames, per_cell), plane.n_frames)
    if len(frame_edges) > 2 and frame_edges[-1] - frame_edges[-2] < per_cell / 2:
        frame_edges = np.delete(frame_edges, -2)  # a sliver at the end joins the cell before it
    boxes = [(int(band_edges[r]), int(band_edges[r + 1]), int(frame_edges[c]), int(frame_edges[c + 1]))
             for r in range(len(band_edges) - 1) for c in range(len(frame_edges) - 1)]
    proba = target.probabilities(plane, boxes)
    grid = (base[index] - proba[:, index]).reshape(len(band_edges) - 1, len(frame_edges) - 1)
    return Saliency(plane=plane, grid=grid, band_edges=band_edges, frame_edges=frame_edges,
                    label=target.labels[index], probabilities={g: float(p) for g, p in zip(target.labels, base)},
                    model=model.name, kind=target.kind)
