"""Explaining genre models without PyTorch: where in a song the evidence lies, what filters respond to.

Both run on onnxruntime, so they work on the core install.

- :mod:`genrekit.explain.saliency`: occlusion saliency (Zeiler & Fergus 2014) of a whole
  song for a genre, for every kind of model; :mod:`genrekit.explain.occlusion` says what each
  model kind provides for it (:func:`occlusion_target`), :mod:`genrekit.explain.figure` draws it.
- :mod:`genrekit.explain.filters` (a folder: sources, probe, search, crops, index page,
  folder): for each filter of a convolution layer of a CNN bundle or of the default model's
  MSD-musicnn backbone, the dataset excerpts that activate it most (log-mel crops, wav
  excerpts, an HTML index to look and listen); after Choi, Fazekas & Sandler (2016) and
  Zeiler & Fergus (2014).

>>> from genrekit import load_model                                  # doctest: +SKIP
>>> from genrekit.explain.saliency import occlusion_saliency
>>> from genrekit.explain.figure import saliency_png
>>> s = occlusion_saliency(load_model(), y)                          # y: mono at the model's rate
>>> open("saliency.png", "wb").write(saliency_png(s, title="song.mp3"))
"""

#: Default occlusion grid: rows of equal mel-band runs, and the cell length in seconds. Chosen so
#: that the default model explains a 30-s clip in seconds on one core (about 300 backbone patch
#: runs). Defined here, not in :mod:`.saliency`, so that the command line reads them without numpy.
BANDS = 4
SECONDS = 2.0
