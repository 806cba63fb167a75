"""What is probed: a network with conv filters, and how songs become its input (a :class:`FilterSource`).

:func:`filter_source` is the one place a source is chosen, by the model's kind
(:mod:`genrekit.models.protocol`), never by its name: a CNN bundle probes its own graph
(:class:`CNNBundleSource`), a head on the MSD-musicnn backbone probes the backbone
(:class:`BackboneSource`). Each cuts songs into the same patches that prediction uses.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from genrekit.errors import ExplainError

__all__ = ["BATCH", "FilterSource", "CNNBundleSource", "BackboneSource", "filter_source"]


#: Windows per onnxruntime call (bounds memory: 64 × 128 × 130 float32 ≈ 4 MB of input).
BATCH = 64


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
        (:func:`genrekit.explain.filters.search.flat_filters`).
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
        """A file decoded to mono at :attr:`sample_rate` (raises :class:`genrekit.errors.AudioError`)."""
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
        from genrekit.audio.windows import window_bounds
        from genrekit.features.spectral import n_frames as spec_frames
        from genrekit.models.cnn_inputs import frame_starts

        b = self.bundle
        bounds = window_bounds(n_samples, self.sample_rate, b.window, b.hop, cover_end=True)
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
    from genrekit.errors import BundleError
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
