"""Explaining CNN genre models without PyTorch: what filters respond to, where the evidence lies.

Both work on a CNN bundle's ONNX graph with onnxruntime, so they run on the core install.

- :mod:`genrekit.explain.filters`: for each filter of a convolution layer, the dataset
  excerpts that activate it most (log-mel crops, wav excerpts, an HTML index to look and
  listen); after Choi, Fazekas & Sandler (2016) and Zeiler & Fergus (2014).
- :mod:`genrekit.explain.saliency`: occlusion saliency (Zeiler & Fergus 2014) of a whole
  song for its predicted genre, drawn under its mel-spectrogram.

>>> from genrekit.explain import top_excerpts, write_filters      # doctest: +SKIP
>>> probe, excerpts, failed = top_excerpts(bundle, files, top=8)
>>> write_filters("filters/", bundle, probe, excerpts)
"""

from .filters import ConvLayer, Excerpt, ExplainError, LayerProbe, conv_layers, top_excerpts, write_filters
from .saliency import Saliency, occlusion_map, occlusion_saliency, saliency_png

__all__ = [
    "ConvLayer", "Excerpt", "ExplainError", "LayerProbe", "Saliency", "conv_layers", "occlusion_map",
    "occlusion_saliency", "saliency_png", "top_excerpts", "write_filters",
]
