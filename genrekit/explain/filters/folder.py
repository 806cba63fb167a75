"""The output folder of ``genrekit explain filters``: crops, wav excerpts, ``filters.json`` and ``index.html``."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from genrekit.explain.filters.crops import crop_png
from genrekit.explain.filters.index_page import index_html
from genrekit.explain.filters.probe import LayerProbe
from genrekit.explain.filters.search import Excerpt
from genrekit.explain.filters.sources import filter_source

__all__ = ["write_filters", "wav_bytes"]


def write_filters(out_dir: str | os.PathLike, model, probe: LayerProbe, excerpts, *,
                  excerpt: float = 3.0, root: str | os.PathLike | None = None) -> Path:
    """Write the crops, wav excerpts, ``filters.json`` and ``index.html`` for a search's result
    (:func:`~genrekit.explain.filters.search.top_excerpts`).

    Layout: ``out_dir/filter_007/03.png`` and ``03.wav`` (filter 7, rank 3), one
    ``filters.json`` (every excerpt, machine-readable) and ``index.html`` (relative
    links only: the folder can be moved or zipped). The index is written last, so a
    folder with an index is complete.

    Parameters
    ----------
    model : FilterSource, GenreClassifier or Bundle
        What was probed (as given to :func:`~genrekit.explain.filters.search.top_excerpts`).
    excerpt : float
        Length of each wav in seconds, centred on the peak (shifted to stay in the file).
    root : path-like, optional
        Folder the displayed file names are relative to.

    Returns
    -------
    Path
        The ``index.html`` written.
    """
    from genrekit._io import write_bytes_atomic, write_json_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source = filter_source(model)
    sr = source.sample_rate
    frame_s = source.hop_length / sr
    by_file: dict[Path, list[Excerpt]] = {}
    for chosen in excerpts:
        for e in chosen:
            by_file.setdefault(e.path, []).append(e)
    for path, group in by_file.items():  # decode each file once
        y = source.load(path)
        starts = sorted({e.start for e in group})
        # the network's own input for each patch, from its first frame
        X = source.inputs(y, np.array([int(round(s / frame_s)) for s in starts], dtype=np.int64))
        row = {s: i for i, s in enumerate(starts)}
        half = int(round(excerpt * sr / 2))
        for e in group:
            folder = out / f"filter_{e.filter:03d}"
            folder.mkdir(exist_ok=True)
            picture = source.picture(X[row[e.start]])
            (folder / f"{e.rank:02d}.png").write_bytes(crop_png(picture, e.peak_frame, e.cell, source.top_db))
            centre = int(round(e.peak * sr))
            a = max(0, min(centre - half, len(y) - 2 * half))
            (folder / f"{e.rank:02d}.wav").write_bytes(wav_bytes(y[a : a + 2 * half], sr))
    base = Path(root) if root is not None else None
    rows = [[_entry(e, base) for e in chosen] for chosen in excerpts]
    layer = probe.layer
    write_json_atomic(out / "filters.json", {
        "model": source.model, "network": source.network, "layer": layer.number, "node": layer.node,
        "tensor": layer.output, "activation": layer.activation, "n_layers": len(probe.layers),
        "n_filters": len(excerpts), "excerpt_seconds": excerpt, "filters": rows,
    })
    index = out / "index.html"
    write_bytes_atomic(index, index_html(source, probe, rows).encode("utf-8"))
    return index


def _entry(e: Excerpt, base: Path | None) -> dict:
    name = e.path.as_posix()
    if base is not None:
        try:
            name = e.path.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            pass
    prefix = f"filter_{e.filter:03d}/{e.rank:02d}"
    return {"filter": e.filter, "rank": e.rank, "file": name, "start": round(e.start, 3),
            "peak": round(e.peak, 3), "activation": e.activation, "image": f"{prefix}.png", "audio": f"{prefix}.wav"}


def wav_bytes(y: np.ndarray, sr: int) -> bytes:
    """16-bit PCM wav of ``y``, peak-limited to full scale."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(y, -1.0, 1.0), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()
