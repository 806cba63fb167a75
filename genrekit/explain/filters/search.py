"""The top-excerpt search: for each filter of a conv layer, the dataset windows that activate it most.

Activation maximisation over a dataset (Zeiler & Fergus 2014; Choi, Fazekas & Sandler 2016):
a filter's activation for a window is the maximum of its feature map over frequency and time;
each filter keeps its ``top`` windows, at most one per moment of a file. The method and its
references: :mod:`genrekit.explain.filters`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrekit.errors import AudioError, ParameterError
from genrekit.explain.filters.probe import LayerProbe

__all__ = ["Excerpt", "top_excerpts", "flat_filters"]


@dataclass(frozen=True)
class Excerpt:
    """One of a filter's top windows.

    Attributes
    ----------
    filter : int
        Channel index in the layer (0-based).
    rank : int
        1 = the strongest activation of this filter.
    path : Path
        The audio file.
    start : float
        Start of the window in the file, seconds.
    peak : float
        Time of the maximum in the file, seconds.
    peak_frame : float
        Position of the maximum inside the window, in input frames (may be fractional).
    activation : float
        The maximum of the filter's feature map over the window.
    cell : float
        Input frames one feature-map time cell spans (the layer's time resolution).
    """

    filter: int
    rank: int
    path: Path
    start: float
    peak: float
    peak_frame: float
    activation: float
    cell: float


def top_excerpts(model, paths: Sequence[str | os.PathLike], *, layer: int | None = None, top: int = 8,
                 excerpt: float = 3.0, batch: int | None = None, progress=None):
    """The ``top`` patches of ``paths`` that activate each filter of a conv layer most.

    Parameters
    ----------
    model : FilterSource, GenreClassifier or Bundle
        What to probe (:func:`genrekit.explain.filters.sources.filter_source`): a CNN bundle, or a
        loaded CNN or backbone + head model.
    paths : sequence of path-like
        Audio files (decoded at the source's sample rate).
    layer : int, optional
        1-based conv layer number (default: the last of a CNN, the backbone's first).
    top : int
        Excerpts kept per filter.
    excerpt : float
        Seconds; two patches of one file whose peaks are closer than this count as the
        same moment, and only the stronger is kept.
    batch : int, optional
        Patches per onnxruntime call (default the source's).
    progress : callable, optional
        Called as ``progress(done, total, path)`` after each file.

    Returns
    -------
    probe : LayerProbe
    excerpts : list of list of Excerpt
        ``excerpts[f]`` is filter ``f``'s, strongest first (fewer than ``top`` when the
        data holds fewer distinct moments; none when the source skips filters whose
        activation is the same in every patch:
        :attr:`~genrekit.explain.filters.sources.FilterSource.skip_flat`).
    failed : list of str
        Files that could not be decoded, with the reason.
    """
    if top < 1:
        raise ParameterError(f"top must be at least 1, got {top}")
    probe = LayerProbe(model, layer)
    source = probe.source
    frame_s = source.hop_length / source.sample_rate
    n_frames = source.n_frames
    acts, where, owner, files, failed = [], [], [], [], []
    cell = 1.0
    for k, path in enumerate(paths):
        try:
            y = source.load(path)
        except AudioError as exc:
            failed.append(str(exc))
            continue
        starts = source.starts(len(y))
        act, t_idx, n_t = probe.peaks(source.inputs(y, starts), batch)  # (n_win, C) each
        # centre of the feature-map cell, in input frames (pooling/strides shrink time by n_frames / T')
        cell = n_frames / n_t
        peak_frame = (t_idx + 0.5) * cell
        duration = len(y) / source.sample_rate
        files.append((Path(path), duration))
        acts.append(act)
        where.append(np.stack([np.broadcast_to(starts[:, None] * frame_s, peak_frame.shape), peak_frame], -1))
        owner.append(np.full(len(starts), len(files) - 1))
        if progress:
            progress(k + 1, len(paths), path)
    if not acts:
        return probe, [], failed
    acts = np.concatenate(acts)  # (N, C)
    where = np.concatenate(where)  # (N, C, 2): patch start (s), peak frame
    owner = np.concatenate(owner)
    flat = flat_filters(acts) if source.skip_flat else np.zeros(acts.shape[1], dtype=bool)
    excerpts = []
    for f in range(acts.shape[1]):
        chosen: list[Excerpt] = []
        if flat[f]:
            excerpts.append(chosen)
            continue
        for i in np.argsort(-acts[:, f], kind="stable"):
            path, duration = files[owner[i]]
            start, frame = float(where[i, f, 0]), float(where[i, f, 1])
            peak = min(start + frame * frame_s, duration)
            if any(e.path == path and abs(e.peak - peak) < excerpt for e in chosen):
                continue
            chosen.append(Excerpt(f, len(chosen) + 1, path, start, peak, frame, float(acts[i, f]), cell))
            if len(chosen) == top:
                break
        excerpts.append(chosen)
    return probe, excerpts, failed


def flat_filters(acts: np.ndarray) -> np.ndarray:
    """Which filters have the same activation (to 1e-6, relative) in every one of two or more patches.

    Parameters
    ----------
    acts : np.ndarray [shape=(n_patches, n_filters)]

    Returns
    -------
    np.ndarray [shape=(n_filters,), dtype=bool]
    """
    if len(acts) < 2:  # one patch is its own top excerpt
        return np.zeros(acts.shape[1], dtype=bool)
    return np.ptp(acts, axis=0) <= 1e-6 * np.maximum(1.0, np.abs(acts).max(axis=0))
