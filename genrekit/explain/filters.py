"""What single convolution filters respond to: the dataset excerpts that activate each filter most.

Method (activation maximisation over a dataset)
-----------------------------------------------
1. The CNN bundle's ONNX graph is copied and one convolution layer's feature maps are
   added to the graph's outputs: the output of the ``ReLU`` that follows the ``Conv``
   node (through a ``BatchNormalization`` in between, if any), or the ``Conv`` output
   itself when no ReLU follows. onnxruntime runs the copy; no PyTorch is needed.
2. Every window of every file (the bundle's window and hop, the same log-mel patches
   that prediction uses: :func:`genrekit.models.cnn_data.bundle_inputs`) goes through
   the network.
3. A filter's activation for a window is the **maximum of its feature map over
   frequency and time**; the time position of that maximum, mapped back to input
   frames (centre of the feature-map cell), says when in the window it fired.
4. For each filter the ``top`` windows with the highest activation are kept, at most
   one per moment of a file (overlapping windows see the same event; the second would
   be the same excerpt again).
5. :func:`write_filters` writes each kept window's log-mel patch as a PNG (the peak
   time marked by ticks at the top and bottom edges), a short wav around the peak, and
   one ``index.html`` to look and listen, filter by filter.

Searching the data instead of optimising the input (Erhan et al. 2009) keeps the
examples real music, which a listener can judge; Choi, Fazekas & Sandler (2016)
listened to filters of a genre CNN this way (by deconvolution) and heard vocal thirds,
vibrato, bass and drums, ambience.

References
----------
- K. Choi, G. Fazekas, M. Sandler, "Explaining deep convolutional neural networks on
  music classification", arXiv:1607.02444, 2016.
- M. D. Zeiler, R. Fergus, "Visualizing and understanding convolutional networks",
  ECCV 2014 (top-9 dataset patches per feature map).
- D. Erhan, Y. Bengio, A. Courville, P. Vincent, "Visualizing higher-layer features of
  a deep network", Technical report 1341, Université de Montréal, 2009.
"""

from __future__ import annotations

import hashlib
import html
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ExplainError

#: Windows per onnxruntime call (bounds memory: 64 × 128 × 130 float32 ≈ 4 MB of input).
BATCH = 64
#: Marker colour (palette index 255) for the peak time in the crops: cyan, absent from the map.
MARKER = (0, 230, 255)


# --- the ONNX graph -----------------------------------------------------------------------
@dataclass(frozen=True)
class ConvLayer:
    """One convolution layer of an ONNX graph.

    Attributes
    ----------
    number : int
        1-based position among the graph's ``Conv`` nodes, in graph order.
    node : str
        The ``Conv`` node's name (may be empty in hand-made graphs).
    output : str
        The tensor whose values are explained: the following ReLU's output, or the
        Conv output when none follows.
    activation : str or None
        ``"Relu"`` when :attr:`output` is a ReLU output.
    n_filters : int or None
        Output channels, from the weight's shape (``None`` when the weight is computed).
    """

    number: int
    node: str
    output: str
    activation: str | None
    n_filters: int | None


def check_cnn(bundle) -> None:
    """Raise :class:`ExplainError` unless ``bundle`` is a CNN bundle (log-mel patches in)."""
    if getattr(bundle, "kind", None) != "cnn":
        raise ExplainError(
            f"{bundle.path}: explain filters needs a CNN bundle (kind 'cnn'); this one is "
            f"{getattr(bundle, 'kind', '?')!r} (`genrekit explain SONG --model ...` draws the saliency "
            f"of any model)"
        )


def model_bytes(bundle) -> bytes:
    """The bundle's ONNX weights, re-checked against the SHA-256 in ``bundle.json``."""
    path = Path(bundle.path) / bundle.meta["weights"]["file"]
    data = path.read_bytes()
    # load_bundle checked the file, but it is read again here: it must be the same one
    if hashlib.sha256(data).hexdigest() != bundle.sha256:
        raise ExplainError(f"{path}: weights changed since the bundle was loaded")
    return data


def conv_layers(model) -> list[ConvLayer]:
    """The ``Conv`` nodes of an ONNX model in graph order, with the tensor to explain for each.

    Parameters
    ----------
    model : onnx.ModelProto

    Returns
    -------
    list of ConvLayer
    """
    graph = model.graph
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    weights = {t.name: list(t.dims) for t in graph.initializer}

    def only_next(tensor: str, op: str):
        after = consumers.get(tensor, [])
        return after[0] if len(after) == 1 and after[0].op_type == op else None

    layers = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        out, act = node.output[0], None
        step = only_next(out, "BatchNormalization")  # unfused conv -> BN -> ReLU
        relu = only_next(step.output[0] if step else out, "Relu")
        if relu is not None:
            out, act = relu.output[0], "Relu"
        dims = weights.get(node.input[1]) if len(node.input) > 1 else None
        layers.append(ConvLayer(len(layers) + 1, node.name, out, act, int(dims[0]) if dims else None))
    return layers


def pick_layer(layers: Sequence[ConvLayer], layer: int | None) -> ConvLayer:
    """Layer number ``layer`` (1-based; ``None``: the last), or an :class:`ExplainError` that lists them."""
    if not layers:
        raise ExplainError("the model has no convolution (Conv) layers to explain")
    if layer is None:
        return layers[-1]
    if not 1 <= layer <= len(layers):
        raise ExplainError(
            f"--layer {layer} is out of range: the model has {len(layers)} convolution layers "
            f"(1..{len(layers)}; default the last)"
        )
    return layers[layer - 1]


class LayerProbe:
    """An onnxruntime session of a CNN bundle that returns one conv layer's feature maps.

    Parameters
    ----------
    bundle : genrekit.models.bundle.Bundle
        A CNN bundle.
    layer : int, optional
        1-based conv layer number (default: the last).

    Attributes
    ----------
    layers : list of ConvLayer
        Every conv layer of the graph.
    layer : ConvLayer
        The one probed.
    """

    def __init__(self, bundle, layer: int | None = None) -> None:
        import onnx
        import onnxruntime as ort

        check_cnn(bundle)
        model = onnx.load_from_string(model_bytes(bundle))
        self.layers = conv_layers(model)
        self.layer = pick_layer(self.layers, layer)
        if self.layer.output not in {o.name for o in model.graph.output}:
            # unknown shape: onnxruntime infers it; elem type float as every Conv here outputs
            model.graph.output.append(
                onnx.helper.make_tensor_value_info(self.layer.output, onnx.TensorProto.FLOAT, None)
            )
        self._input = bundle.meta["input"]["name"]
        self._session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])

    def __call__(self, X: np.ndarray, batch: int = BATCH) -> np.ndarray:
        """Feature maps of log-mel patches.

        Parameters
        ----------
        X : np.ndarray [shape=(n, 1, n_mels, n_frames), dtype=float32]
        batch : int
            Patches per onnxruntime call.

        Returns
        -------
        np.ndarray [shape=(n, n_filters, freq', time'), dtype=float32]
        """
        X = np.ascontiguousarray(X, dtype=np.float32)
        out = [
            self._session.run([self.layer.output], {self._input: X[s : s + batch]})[0]
            for s in range(0, len(X), batch)
        ]
        return np.concatenate(out)


# --- searching the data -------------------------------------------------------------------
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


def _file_windows(bundle, path):
    """Decoded signal, window bounds and first frame of each window of one file."""
    from .. import audio
    from ..features.spectral import n_frames as spec_frames
    from ..models.cnn_data import frame_starts

    fs = bundle.feature_set
    y = audio.load(path, sr=fs.sample_rate, min_samples=fs.min_samples)
    bounds = audio.window_bounds(len(y), fs.sample_rate, bundle.window, bundle.hop, cover_end=True)
    starts = frame_starts(bounds, fs.hop_length, spec_frames(len(y), fs.hop_length), bundle.input_shape[3])
    return y, bounds, starts


def top_excerpts(bundle, paths: Sequence[str | os.PathLike], *, layer: int | None = None, top: int = 8,
                 excerpt: float = 3.0, batch: int = BATCH, progress=None):
    """The ``top`` windows of ``paths`` that activate each filter of a conv layer most.

    Parameters
    ----------
    bundle : genrekit.models.bundle.Bundle
        A CNN bundle.
    paths : sequence of path-like
        Audio files (decoded at the bundle's sample rate).
    layer : int, optional
        1-based conv layer number (default: the last).
    top : int
        Excerpts kept per filter.
    excerpt : float
        Seconds; two windows of one file whose peaks are closer than this count as the
        same moment, and only the stronger is kept.
    batch : int
        Windows per onnxruntime call.
    progress : callable, optional
        Called as ``progress(done, total, path)`` after each file.

    Returns
    -------
    probe : LayerProbe
    excerpts : list of list of Excerpt
        ``excerpts[f]`` is filter ``f``'s, strongest first (fewer than ``top`` when the
        data holds fewer distinct moments).
    failed : list of str
        Files that could not be decoded, with the reason.
    """
    from ..audio import AudioError

    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    from ..models.cnn_data import bundle_inputs

    probe = LayerProbe(bundle, layer)
    fs = bundle.feature_set
    frame_s = fs.hop_length / fs.sample_rate
    n_frames = bundle.input_shape[3]
    acts, where, owner, files, failed = [], [], [], [], []
    for k, path in enumerate(paths):
        try:
            y, bounds, starts = _file_windows(bundle, path)
        except AudioError as exc:
            failed.append(str(exc))
            continue
        maps = probe(bundle_inputs(bundle, y, bounds), batch)  # (n_win, C, F', T')
        n_win, n_ch, _, n_t = maps.shape
        over_freq = maps.max(axis=2)  # (n_win, C, T')
        t_idx = over_freq.argmax(axis=2)
        # centre of the feature-map cell, in input frames (pooling/strides shrink time by n_frames / T')
        peak_frame = (t_idx + 0.5) * (n_frames / n_t)
        duration = len(y) / fs.sample_rate
        files.append((Path(path), duration))
        acts.append(over_freq.max(axis=2))
        where.append(np.stack([np.broadcast_to(starts[:, None] * frame_s, peak_frame.shape), peak_frame], -1))
        owner.append(np.full(n_win, len(files) - 1))
        cell = n_frames / n_t
        if progress:
            progress(k + 1, len(paths), path)
    if not acts:
        return probe, [], failed
    acts = np.concatenate(acts)  # (N, C)
    where = np.concatenate(where)  # (N, C, 2): window start (s), peak frame
    owner = np.concatenate(owner)
    excerpts = []
    for f in range(acts.shape[1]):
        chosen: list[Excerpt] = []
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


# --- images, audio, the page ----------------------------------------------------------------
def db_pixels(S: np.ndarray, levels: int, top_db: float | None = 80.0) -> np.ndarray:
    """dB values scaled to palette indices ``0..levels-1``, low frequencies at the bottom (uint8).

    The range is ``max - top_db .. max`` of ``S`` (its own range when ``top_db`` is None).
    """
    hi = float(S.max())
    lo = hi - top_db if top_db else float(S.min())
    scaled = np.clip((S - lo) / max(hi - lo, 1e-9), 0.0, 1.0)
    return np.round(scaled[::-1] * (levels - 1)).astype(np.uint8)


def crop_png(patch: np.ndarray, peak_frame: float, cell: float, top_db: float | None = 80.0) -> bytes:
    """A log-mel patch as a PNG with the peak's time span marked at the top and bottom edges.

    Parameters
    ----------
    patch : np.ndarray [shape=(n_mels, n_frames)]
        dB values.
    peak_frame : float
        Centre of the peak, in frames.
    cell : float
        Frames one feature-map cell spans (the width of the mark).
    """
    from ..web.spectrogram import colormap, indexed_png

    pixels = db_pixels(patch, 255, top_db)
    a = int(np.clip(np.floor(peak_frame - cell / 2), 0, pixels.shape[1] - 1))
    b = int(np.clip(np.ceil(peak_frame + cell / 2), a + 1, pixels.shape[1]))
    tick = max(2, pixels.shape[0] // 24)
    # ticks on the edges only: the spectrogram under the peak stays visible
    pixels[:tick, a:b] = 255
    pixels[-tick:, a:b] = 255
    palette = np.vstack([colormap(255), np.array([MARKER], dtype=np.uint8)])
    return indexed_png(pixels, palette)


def wav_bytes(y: np.ndarray, sr: int) -> bytes:
    """16-bit PCM wav of ``y``, peak-limited to full scale."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(y, -1.0, 1.0), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def write_filters(out_dir: str | os.PathLike, bundle, probe: LayerProbe, excerpts, *,
                  excerpt: float = 3.0, root: str | os.PathLike | None = None) -> Path:
    """Write the crops, wav excerpts, ``filters.json`` and ``index.html`` for :func:`top_excerpts`' result.

    Layout: ``out_dir/filter_007/03.png`` and ``03.wav`` (filter 7, rank 3), one
    ``filters.json`` (every excerpt, machine-readable) and ``index.html`` (relative
    links only: the folder can be moved or zipped). The index is written last, so a
    folder with an index is complete.

    Parameters
    ----------
    excerpt : float
        Length of each wav in seconds, centred on the peak (shifted to stay in the file).
    root : path-like, optional
        Folder the displayed file names are relative to.

    Returns
    -------
    Path
        The ``index.html`` written.
    """
    from .._io import write_bytes_atomic, write_json_atomic
    from ..models.cnn_data import bundle_inputs

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fs = bundle.feature_set
    sr = fs.sample_rate
    by_file: dict[Path, list[Excerpt]] = {}
    for chosen in excerpts:
        for e in chosen:
            by_file.setdefault(e.path, []).append(e)
    for path, group in by_file.items():  # decode each file once
        y, _, _ = _file_windows(bundle, path)
        starts = sorted({e.start for e in group})
        # the network's own input for each window: bounds in samples from the window starts
        X = bundle_inputs(bundle, y, [(int(round(s * sr)), int(round(s * sr)) + 1) for s in starts])
        row = {s: i for i, s in enumerate(starts)}
        half = int(round(excerpt * sr / 2))
        for e in group:
            folder = out / f"filter_{e.filter:03d}"
            folder.mkdir(exist_ok=True)
            (folder / f"{e.rank:02d}.png").write_bytes(crop_png(X[row[e.start], 0], e.peak_frame, e.cell, fs.top_db))
            centre = int(round(e.peak * sr))
            a = max(0, min(centre - half, len(y) - 2 * half))
            (folder / f"{e.rank:02d}.wav").write_bytes(wav_bytes(y[a : a + 2 * half], sr))
    base = Path(root) if root is not None else None
    rows = [[_entry(e, base) for e in chosen] for chosen in excerpts]
    layer = probe.layer
    write_json_atomic(out / "filters.json", {
        "model": str(bundle.path), "layer": layer.number, "node": layer.node, "tensor": layer.output,
        "activation": layer.activation, "n_layers": len(probe.layers), "n_filters": len(excerpts),
        "excerpt_seconds": excerpt, "filters": rows,
    })
    index = out / "index.html"
    write_bytes_atomic(index, _page(bundle, probe, rows).encode("utf-8"))
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


def _page(bundle, probe: LayerProbe, rows) -> str:
    esc = html.escape
    layer = probe.layer
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Filters of conv layer {layer.number}: {esc(bundle.path.name)}</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}"
        "section{margin-bottom:2em}.row{display:flex;flex-wrap:wrap;gap:12px}"
        "figure{margin:0;background:#fff;border:1px solid #ddd;padding:6px;width:262px}"
        "img{width:260px;height:256px;image-rendering:pixelated;display:block}"
        "audio{width:260px}figcaption{font-size:12px;word-break:break-all}</style></head><body>",
        f"<h1>What the filters of conv layer {layer.number} of {len(probe.layers)} respond to</h1>",
        f"<p>Model <code>{esc(str(bundle.path))}</code>, tensor <code>{esc(layer.output)}</code>"
        f"{' (after ReLU)' if layer.activation else ''}. For each filter: the dataset windows with the "
        "highest activation (maximum of the feature map over frequency and time), strongest first. "
        "Images: the window's log-mel input (low frequencies at the bottom); the cyan ticks mark when "
        "the filter peaked. Audio: a short excerpt around the peak.</p>",
    ]
    for f, chosen in enumerate(rows):
        parts.append(f"<section id='filter-{f}'><h2>Filter {f}</h2><div class='row'>")
        for e in chosen:
            parts.append(
                f"<figure><img src='{esc(e['image'])}' alt='log-mel of {esc(e['file'])} at {e['start']:.2f} s'>"
                f"<audio controls preload='none' src='{esc(e['audio'])}'></audio>"
                f"<figcaption>#{e['rank']} {esc(e['file'])}<br>window at {e['start']:.2f} s, "
                f"peak {e['peak']:.2f} s, activation {e['activation']:.3g}</figcaption></figure>"
            )
        parts.append("</div></section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
