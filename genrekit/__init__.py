"""genrekit: tell the genre of a piece of music from its audio.

>>> from genrekit import classify, load_audio, load_model
>>> classify("song.mp3")          # [{"label": "jazz", "score": 0.71}, ...]
>>> y, sr = load_audio("song.mp3")
>>> load_model().predict_proba(y, sr)

The public API is :data:`__all__`; each name is imported from its module on first use,
so ``import genrekit`` (and the command line's start-up) loads neither numpy nor a model.
Integrations (the beets plugin, a script over a library) use these names only; every other
module is internal and may move (``CHANGELOG.md`` records what moved).
"""

import os as _os

from genrekit._version import __version__

# onnxruntime writes a device id and a telemetry database under ~/.cache/Microsoft when it is
# imported; genrekit sends nothing anywhere and leaves no file behind, so it is switched off
# (before any genrekit module imports onnxruntime; a user's own setting wins).
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

#: Public name -> the module (below genrekit) that defines it.
_EXPORTS = {
    "classify": "pipeline",
    "load_model": "models.registry",
    "resolve_model": "models.registry",
    "Prediction": "prediction",
    "GenreClassifier": "models.protocol",
    "GenreNote": "pipeline",
    "load_audio": "audio.decode",
    "AudioError": "audio.decode",
    "classify_library": "library.run",
    # For integrations (the beets plugin, anyone's library tool): a resumable library run, its
    # results store, how genres become tag values, and the one error class to catch.
    "LibraryRun": "library.run",
    "open_results": "library.results",
    "TagPlan": "tagging.plan",
    "TagJournal": "tagging.journal",
    "printable": "output",
    "load_names": "tagging.names",
    "read_genres": "tagging.formats",
    "PROVENANCE_FIELDS": "tagging.formats",
    "GenrekitError": "errors",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name):
    # Imported on first use, so `import genrekit` (and the CLI's start-up) stays fast.
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'genrekit' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted({*globals(), *__all__})
