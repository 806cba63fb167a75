"""genrekit: tell the genre of a piece of music from its audio.

>>> from genrekit import classify, load_model
>>> classify("song.mp3")          # [{"label": "jazz", "score": 0.71}, ...]
"""

from ._version import __version__

__all__ = ["classify", "load_model", "__version__"]


def __getattr__(name):
    # Imported on first use, so `import genrekit` (and the CLI's start-up) stays fast.
    if name in ("classify", "load_model"):
        from . import predict

        return getattr(predict, name)
    raise AttributeError(f"module 'genrekit' has no attribute {name!r}")
