"""genrekit: tell the genre of a piece of music from its audio."""

__version__ = "0.1.0"
