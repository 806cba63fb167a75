"""What single convolution filters respond to: the dataset excerpts that activate each filter most.

``genrekit explain filters``. Two networks can be probed, each described by a
:class:`~genrekit.explain.filters.sources.FilterSource` (what network, what input tensor and
layout, how a song is cut into the patches it reads, at what rate);
:func:`~genrekit.explain.filters.sources.filter_source` picks one by the model's kind, in one place:

- a CNN bundle (:class:`~genrekit.explain.filters.sources.CNNBundleSource`): the bundle's own
  ONNX graph on its windows of log-mel patches ``(n, 1, n_mels, n_frames)``;
- a head on the MSD-musicnn backbone, the default model
  (:class:`~genrekit.explain.filters.sources.BackboneSource`): the backbone's ONNX graph on
  musicnn's 3-s patches ``(n, 187, 96)`` at 16 kHz. Its first five conv layers (two timbral,
  three temporal branches) all read the input; the default is the first, ``/timbral.0``
  (204 filters).

>>> from genrekit import load_model                                          # doctest: +SKIP
>>> from genrekit.explain.filters.search import top_excerpts
>>> from genrekit.explain.filters.folder import write_filters
>>> probe, excerpts, failed = top_excerpts(load_model(), ["songs/"], top=8)
>>> write_filters("filters/", probe.source, probe, excerpts)                 # filters/index.html

Method (activation maximisation over a dataset)
-----------------------------------------------
1. The network's ONNX graph is cut down to one convolution layer's feature maps: the
   output of the ``ReLU`` that follows the ``Conv`` node (through a
   ``BatchNormalization`` in between, if any), or the ``Conv`` output itself when no
   ReLU follows (:mod:`~genrekit.explain.filters.onnx_layers`). onnxruntime runs the cut
   graph (:class:`~genrekit.explain.filters.probe.LayerProbe`); no PyTorch is needed.
2. Every patch of every file (the same patches that prediction uses: a CNN bundle's
   windows, :func:`genrekit.models.cnn_inputs.bundle_inputs`; the backbone's patches at
   the head's step) goes through the network.
3. A filter's activation for a patch is the **maximum of its feature map over
   frequency and time**; the time position of that maximum, mapped back to input
   frames (centre of the feature-map cell), says when in the patch it fired.
4. For each filter the ``top`` windows with the highest activation are kept, at most
   one per moment of a file (overlapping windows see the same event; the second would
   be the same excerpt again): :func:`~genrekit.explain.filters.search.top_excerpts`.
   For the backbone, a filter whose activation is the same
   in every window (a dead filter: zero after its ReLU, or its bias alone where its
   weights decayed to nothing, as 180 of the 204 of MSD-musicnn's first layer) gets no
   excerpt: the ranking would be arbitrary. CNN bundles keep today's output, an excerpt
   list for every filter (:attr:`~genrekit.explain.filters.sources.FilterSource.skip_flat`).
5. :func:`~genrekit.explain.filters.folder.write_filters` writes each kept window's input
   patch as a PNG (the peak time marked by ticks at the top and bottom edges,
   :mod:`~genrekit.explain.filters.crops`), a short wav around the peak, and one
   ``index.html`` to look and listen, filter by filter
   (:mod:`~genrekit.explain.filters.index_page`).

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
