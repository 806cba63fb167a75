"""What single convolution filters respond to: the dataset excerpts that activate each filter most.

Two networks can be probed, each described by a :class:`FilterSource` (what network, what
input tensor and layout, how a song is cut into the patches it reads, at what rate);
:func:`filter_source` picks one by the model's kind, in one place:

- a CNN bundle (:class:`CNNBundleSource`): the bundle's own ONNX graph on its windows of
  log-mel patches ``(n, 1, n_mels, n_frames)``;
- a head on the MSD-musicnn backbone, the default model (:class:`BackboneSource`): the
  backbone's ONNX graph on musicnn's 3-s patches ``(n, 187, 96)`` at 16 kHz. Its first
  five conv layers (two timbral, three temporal branches) all read the input; the default
  is the first, ``/timbral.0`` (204 filters).

Method (activation maximisation over a dataset)
-----------------------------------------------
1. The network's ONNX graph is cut down to one convolution layer's feature maps: the
   output of the ``ReLU`` that follows the ``Conv`` node (through a
   ``BatchNormalization`` in between, if any), or the ``Conv`` output itself when no
   ReLU follows. onnxruntime runs the cut graph; no PyTorch is needed.
2. Every patch of every file (the same patches that prediction uses: a CNN bundle's
   windows, :func:`genrekit.models.cnn_inputs.bundle_inputs`; the backbone's patches at
   the head's step) goes through the network.
3. A filter's activation for a patch is the **maximum of its feature map over
   frequency and time**; the time position of that maximum, mapped back to input
   frames (centre of the feature-map cell), says when in the patch it fired.
4. For each filter the ``top`` windows with the highest activation are kept, at most
   one per moment of a file (overlapping windows see the same event; the second would
   be the same excerpt again). For the backbone, a filter whose activation is the same
   in every window (a dead filter: zero after its ReLU, or its bias alone where its
   weights decayed to nothing, as 180 of the 204 of MSD-musicnn's first layer) gets no
   excerpt: the ranking would be arbitrary. CNN bundles keep today's output, an excerpt
   list for every filter (:attr:`FilterSource.skip_flat`).
5. :func:`write_filters` writes each kept window's input patch as a PNG (the peak
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
- J. Pons, X. Serra, "musicnn: pre-trained convolutional neural networks for music audio
  tagging", ISMIR late-breaking demo, 2019 (the backbone; its front end's timbral and
  temporal filter shapes are musically motivated).
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

from genrekit.errors import ExplainError
from genrekit.onnx_sessions import session_options
from genrekit.explain.onnx_layers import conv_layers, cut_graph, pick_layer, probe_graph

#: Windows per onnxruntime call (bounds memory: 64 × 128 × 130 float32 ≈ 4 MB of input).
BATCH = 64
#: Marker colour (palette index 255) for the peak time in the crops: cyan, absent from the map.
MARKER = (0, 230, 255)


# --- what is probed: a FilterSource -------------------------------------------------------
class FilterSource:
    """A network whose conv filters are probed, and how songs become its input.

    Attributes
    ----------
    title : str
        Short name for the page's title.
    model : str
        The model named (its bundle folder).
    network : str
        The ONNX graph's file.
    input_name : str
        The graph's input tensor.
    sample_rate : int
        Hz the songs are decoded at.
    hop_length : int
        Samples per input frame (the patches' time step).
    n_frames : int
        Input frames per patch.
    time_axis : int
        The axis of a layer's feature maps that is time (the others past the channel
        axis are frequency).
    batch : int
        Patches per onnxruntime call (bounds the memory of the feature maps).
    default_layer : int or None
        The 1-based conv layer probed when none is asked (``None``: the last).
    top_db : float or None
        Range of the crops' colour map (``None``: each crop's own range).
    picture_note : str
        What the crops show, for the page.
    network_note : str
        Said after the model's name on the page (which network's filters these are, when it
        is not the model's own).
    skip_flat : bool
        Give no excerpts to a filter whose activation is the same in every patch
        (:func:`flat_filters`).
    """

    title: str
    model: str
    network: str
    input_name: str
    sample_rate: int
    hop_length: int
    n_frames: int
    time_axis: int
    batch: int = BATCH
    default_layer: int | None = None
    top_db: float | None = None
    picture_note: str = ""
    network_note: str = ""
    skip_flat: bool = False

    def network_bytes(self) -> bytes:
        """The ONNX graph."""
        raise NotImplementedError

    def load(self, path: str | os.PathLike) -> np.ndarray:
        """A file decoded to mono at :attr:`sample_rate` (raises :class:`genrekit.audio.decode.AudioError`)."""
        raise NotImplementedError

    def starts(self, n_samples: int) -> np.ndarray:
        """First input frame of each patch of a signal of ``n_samples`` samples."""
        raise NotImplementedError

    def inputs(self, y: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """The network's input for the patches starting at frames ``starts`` of ``y``."""
        raise NotImplementedError

    def picture(self, x: np.ndarray) -> np.ndarray:
        """One patch of :meth:`inputs` as an image ``(bands, frames)``, low bands first."""
        raise NotImplementedError


class CNNBundleSource(FilterSource):
    """A CNN bundle: its ONNX graph on its windows of ``(n, 1, bands, frames)`` log-mel patches."""

    time_axis = 3  # feature maps (n, C, freq, time)

    def __init__(self, model) -> None:
        bundle = model.bundle
        fs = bundle.feature_set
        self.bundle = bundle
        self.title = Path(bundle.path).name
        self.model = str(bundle.path)
        self.network = str(Path(bundle.path) / bundle.meta["weights"]["file"])
        self.input_name = bundle.meta["input"]["name"]
        self.sample_rate, self.hop_length = fs.sample_rate, fs.hop_length
        self.n_frames = bundle.input_shape[3]
        self.top_db = fs.top_db
        self._min_samples = model.min_samples
        self.picture_note = "the window's log-mel input (low frequencies at the bottom)"

    def network_bytes(self) -> bytes:
        """The bundle's ONNX weights, re-checked against the SHA-256 in ``bundle.json``."""
        path = Path(self.network)
        data = path.read_bytes()
        # load_bundle checked the file, but it is read again here: it must be the same one
        if hashlib.sha256(data).hexdigest() != self.bundle.sha256:
            raise ExplainError(f"{path}: weights changed since the bundle was loaded")
        return data

    def load(self, path):
        from genrekit.audio import decode as audio

        return audio.load(path, sr=self.sample_rate, min_samples=self._min_samples)

    def starts(self, n_samples: int) -> np.ndarray:
        from genrekit.audio import decode as audio
        from genrekit.features.spectral import n_frames as spec_frames
        from genrekit.models.cnn_inputs import frame_starts

        b = self.bundle
        bounds = audio.window_bounds(n_samples, self.sample_rate, b.window, b.hop, cover_end=True)
        return frame_starts(bounds, self.hop_length, spec_frames(n_samples, self.hop_length), self.n_frames)

    def inputs(self, y, starts):
        from genrekit.models.cnn_inputs import bundle_inputs

        # bounds whose first sample lies on each start frame: bundle_inputs cuts the same patches
        return bundle_inputs(self.bundle, y, [(int(s) * self.hop_length, int(s) * self.hop_length + 1) for s in starts])

    def picture(self, x):
        return x[0]


class BackboneSource(FilterSource):
    """The MSD-musicnn backbone under a head: its ONNX graph on musicnn's ``(n, 187, 96)`` patches
    (16 kHz, :func:`genrekit.backbones.msd_musicnn.log_mel`), cut at the head's step as prediction
    cuts them (an end-aligned patch covers the end; a song shorter than a patch is repeated)."""

    time_axis = 2  # feature maps (n, C, time, freq) or, past the front end, (n, C, time)
    batch = 4  # the first layer's maps are 9 MB a patch
    default_layer = 1  # the front end's first timbral branch, /timbral.0
    skip_flat = True  # most of its front-end filters are dead: their "top" excerpts would be noise

    def __init__(self, model) -> None:
        from genrekit.backbones import msd_musicnn as mn

        fs = model.bundle.feature_set
        self.title = mn.FOLDER.name
        self.model = str(model.bundle.path)
        self.network = str(mn.FOLDER / mn.ONNX_FILE)
        self.input_name = "patches"
        self.sample_rate, self.hop_length, self.n_frames = mn.SAMPLE_RATE, mn.HOP_LENGTH, mn.PATCH_FRAMES
        self._step, self._max_patches = fs.step or mn.DEFAULT_STEP, fs.max_patches
        self._min_samples = model.min_samples
        self.picture_note = ("the patch's input, musicnn's log-compressed mel spectrogram (96 bands, 0–8 kHz, "
                             "low frequencies at the bottom)")
        self.network_note = f": the filters of its MSD-musicnn backbone ({mn.ONNX_FILE})"

    def network_bytes(self) -> bytes:
        try:
            return Path(self.network).read_bytes()
        except OSError as exc:
            raise ExplainError(f"{self.network}: cannot read the backbone: {exc.strerror or exc}") from None

    def load(self, path):
        from genrekit.audio import decode as audio

        return audio.load(path, sr=self.sample_rate, min_samples=self._min_samples)

    def starts(self, n_samples: int) -> np.ndarray:
        from genrekit.backbones.msd_musicnn import n_frames, planned_step

        total = n_frames(n_samples)
        last = total - self.n_frames
        if last <= 0:
            return np.zeros(1, dtype=np.int64)
        step = planned_step(total, self._step, self._max_patches)
        starts = list(range(0, last + 1, step))
        if last - starts[-1] > step / 2:  # the end-aligned patch, as TaggramStream(cover_end=True) adds
            starts.append(last)
        return np.asarray(starts, dtype=np.int64)

    def inputs(self, y, starts):
        from genrekit.backbones.msd_musicnn import log_mel

        mel = log_mel(y)  # (frames, 96)
        if len(mel) < self.n_frames:  # repeated end to end, as the backbone pads short songs
            mel = mel[np.arange(self.n_frames) % len(mel)]
        idx = np.asarray(starts)[:, None] + np.arange(self.n_frames)[None, :]
        return np.ascontiguousarray(mel[idx], dtype=np.float32)

    def picture(self, x):
        return x.T


def filter_source(model) -> FilterSource:
    """The :class:`FilterSource` of a loaded model (:func:`genrekit.models.registry.load_model`),
    a CNN bundle, or a source itself; an :class:`ExplainError` for a model without conv filters."""
    from genrekit.models.backbone_head import BackboneHeadModel
    from genrekit.models.bundle import BundleError
    from genrekit.models.protocol import GenreClassifier
    from genrekit.models.registry import classifier
    from genrekit.models.spectrogram_cnn import SpectrogramCNNModel

    if isinstance(model, FilterSource):
        return model
    if not isinstance(model, GenreClassifier):  # a bundle
        try:
            model = classifier(model, Path(model.path).name)
        except BundleError as exc:
            raise ExplainError(str(exc)) from exc
    # By the model's kind (genrekit.models.protocol), never by its name: the one place a source is chosen.
    sources = {SpectrogramCNNModel: CNNBundleSource, BackboneHeadModel: BackboneSource}
    for kind, source in sources.items():
        if isinstance(model, kind):
            return source(model)
    bundle = model.bundle
    raise ExplainError(
        f"{bundle.path}: explain filters needs a CNN bundle (kind 'cnn') or a head on the MSD-musicnn backbone "
        f"(the default model); this one is {getattr(bundle, 'kind', '?')!r} on "
        f"'{bundle.feature_set.name}' features (`genrekit explain SONG --model ...` draws the saliency of any model)"
    )


class LayerProbe:
    """An onnxruntime session that returns one conv layer's feature maps.

    Parameters
    ----------
    model : FilterSource, GenreClassifier or Bundle
        What to probe (:func:`filter_source`): a CNN bundle, or a model loaded by
        :func:`genrekit.models.registry.load_model` (a CNN, or a head on the backbone).
    layer : int, optional
        1-based conv layer number (default: the source's, :attr:`FilterSource.default_layer`).

    Attributes
    ----------
    source : FilterSource
    layers : list of ConvLayer
        Every conv layer of the graph.
    layer : ConvLayer
        The one probed.
    """

    def __init__(self, model, layer: int | None = None) -> None:
        import onnx
        import onnxruntime as ort

        self.source = filter_source(model)
        graph = onnx.load_from_string(self.source.network_bytes())
        self.layers = conv_layers(graph)
        self.layer = pick_layer(self.layers, self.source.default_layer if layer is None else layer)
        cut = cut_graph(probe_graph(graph, self.layer), self.layer.output)
        self._session = ort.InferenceSession(cut.SerializeToString(), session_options(),
                                             providers=["CPUExecutionProvider"])

    def __call__(self, X: np.ndarray, batch: int | None = None) -> np.ndarray:
        """Feature maps of input patches.

        Parameters
        ----------
        X : np.ndarray [dtype=float32]
            The source's input: ``(n, 1, n_mels, n_frames)`` for a CNN bundle, ``(n, 187, 96)``
            for the backbone.
        batch : int, optional
            Patches per onnxruntime call (default the source's).

        Returns
        -------
        np.ndarray [shape=(n, n_filters, ...), dtype=float32]
            ``(n, C, freq', time')`` for a CNN bundle; ``(n, C, time', freq')`` or ``(n, C, time')``
            for the backbone (:attr:`FilterSource.time_axis`).
        """
        return np.concatenate(list(self._runs(X, batch)))

    def peaks(self, X: np.ndarray, batch: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
        """Each filter's maximum over frequency and time per patch, and when it happened.

        Reduced batch by batch, so the full maps of a song are never held (the backbone's first
        layer: 9 MB a patch).

        Returns
        -------
        activation : np.ndarray [shape=(n, n_filters), dtype=float32]
        time : np.ndarray [shape=(n, n_filters), dtype=int]
            The feature-map time cell of the maximum.
        n_time : int
            Time cells of the feature maps.
        """
        acts, times, n_time = [], [], 0
        for maps in self._runs(X, batch):
            maps = np.moveaxis(maps, self.source.time_axis, -1)
            n_time = maps.shape[-1]
            over_freq = maps.reshape(*maps.shape[:2], -1, n_time).max(axis=2)  # (n, C, T')
            acts.append(over_freq.max(axis=2))
            times.append(over_freq.argmax(axis=2))
        return np.concatenate(acts), np.concatenate(times), n_time

    def _runs(self, X: np.ndarray, batch: int | None):
        X = np.ascontiguousarray(X, dtype=np.float32)
        batch = batch or self.source.batch
        name = self.source.input_name
        for s in range(0, len(X), batch):
            yield self._session.run([self.layer.output], {name: X[s : s + batch]})[0]


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


def top_excerpts(model, paths: Sequence[str | os.PathLike], *, layer: int | None = None, top: int = 8,
                 excerpt: float = 3.0, batch: int | None = None, progress=None):
    """The ``top`` patches of ``paths`` that activate each filter of a conv layer most.

    Parameters
    ----------
    model : FilterSource, GenreClassifier or Bundle
        What to probe (:func:`filter_source`): a CNN bundle, or a loaded CNN or backbone + head model.
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
        activation is the same in every patch: :attr:`FilterSource.skip_flat`).
    failed : list of str
        Files that could not be decoded, with the reason.
    """
    from genrekit.audio.decode import AudioError

    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
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
    from genrekit.report.images import colormap, indexed_png

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


def write_filters(out_dir: str | os.PathLike, model, probe: LayerProbe, excerpts, *,
                  excerpt: float = 3.0, root: str | os.PathLike | None = None) -> Path:
    """Write the crops, wav excerpts, ``filters.json`` and ``index.html`` for :func:`top_excerpts`' result.

    Layout: ``out_dir/filter_007/03.png`` and ``03.wav`` (filter 7, rank 3), one
    ``filters.json`` (every excerpt, machine-readable) and ``index.html`` (relative
    links only: the folder can be moved or zipped). The index is written last, so a
    folder with an index is complete.

    Parameters
    ----------
    model : FilterSource, GenreClassifier or Bundle
        What was probed (as given to :func:`top_excerpts`).
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
    write_bytes_atomic(index, _page(source, probe, rows).encode("utf-8"))
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


def _page(source: FilterSource, probe: LayerProbe, rows) -> str:
    esc = html.escape
    layer = probe.layer
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Filters of conv layer {layer.number}: {esc(source.title)}</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}"
        "section{margin-bottom:2em}.row{display:flex;flex-wrap:wrap;gap:12px}"
        "figure{margin:0;background:#fff;border:1px solid #ddd;padding:6px;width:262px}"
        "img{width:260px;height:256px;image-rendering:pixelated;display:block}"
        "audio{width:260px}figcaption{font-size:12px;word-break:break-all}</style></head><body>",
        f"<h1>What the filters of conv layer {layer.number} of {len(probe.layers)} respond to</h1>",
        f"<p>Model <code>{esc(source.model)}</code>{esc(source.network_note)}, tensor <code>{esc(layer.output)}</code>"
        f"{' (after ReLU)' if layer.activation else ''}. For each filter: the dataset windows with the "
        "highest activation (maximum of the feature map over frequency and time), strongest first. "
        f"Images: {esc(source.picture_note)}; the cyan ticks mark when "
        "the filter peaked. Audio: a short excerpt around the peak.</p>",
    ]
    for f, chosen in enumerate(rows):
        parts.append(f"<section id='filter-{f}'><h2>Filter {f}</h2><div class='row'>")
        if not chosen:
            parts.append("<p>No excerpt: its activation is the same in every window of these songs "
                         "(a filter that does not respond to them).</p>")
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
