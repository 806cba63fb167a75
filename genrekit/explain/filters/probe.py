"""One conv layer's feature maps of a :class:`~genrekit.explain.filters.sources.FilterSource`'s network.

The graph is cut down to the layer (:mod:`genrekit.explain.filters.onnx_layers`) and run by
onnxruntime on the CPU; no PyTorch is needed.
"""

from __future__ import annotations

import numpy as np

from genrekit.explain.filters.onnx_layers import conv_layers, cut_graph, pick_layer, probe_graph
from genrekit.explain.filters.sources import filter_source
from genrekit.onnx_sessions import session_options

__all__ = ["LayerProbe"]


class LayerProbe:
    """An onnxruntime session that returns one conv layer's feature maps.

    Parameters
    ----------
    model : FilterSource, GenreClassifier or Bundle
        What to probe (:func:`genrekit.explain.filters.sources.filter_source`): a CNN bundle, or a model loaded by
        :func:`genrekit.models.registry.load_model` (a CNN, or a head on the backbone).
    layer : int, optional
        1-based conv layer number (default: the source's,
        :attr:`~genrekit.explain.filters.sources.FilterSource.default_layer`).

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
            for the backbone (:attr:`~genrekit.explain.filters.sources.FilterSource.time_axis`).
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
