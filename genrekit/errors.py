"""The errors genrekit raises on purpose, all under one root: :class:`GenrekitError`.

>>> import genrekit
>>> from genrekit.errors import GenrekitError
>>> try:
...     genrekit.classify("missing.mp3")            # doctest: +SKIP
... except GenrekitError as exc:
...     print(exc)                                  # one sentence: the file and what is wrong

Import them from here (their one home). Classes that callers catch as ``ValueError`` or
``RuntimeError`` also derive from those: :class:`ParameterError`, a caller's mistake in an
argument (librosa's ``ParameterError`` is the model), is a ``ValueError`` too, so code written
against the built-in keeps working. This module imports nothing of genrekit, so that any
module may import its errors from here without pulling in another layer.

Private control flow (an upload too large, a download dropped) uses private exceptions of its
own module, never these.
"""

from __future__ import annotations

import os

__all__ = [
    "GenrekitError", "ParameterError", "AudioError", "TooLongError", "BundleError", "CommandError", "DatasetError",
    "DownloadError", "EngineError", "ExplainError", "ReportError", "ResultsError", "SimilarityError",
    "StoreError", "TagError", "JournalError", "TrainingError", "UnsafeArchiveError",
]


class GenrekitError(Exception):
    """Every error genrekit raises on purpose derives from this one.

    Its message is a complete sentence naming the file or value at fault and what to do, fit
    to be shown as it is: ``genrekit`` prints it on one line (exit status 1) with no traceback.
    An exception that is not a ``GenrekitError`` is a bug of genrekit.
    """


class ParameterError(GenrekitError, ValueError):
    """A caller's mistake in an argument: a value out of range, of the wrong kind, or missing.

    Raised at the boundary of a public function or a verb, with a message that names the
    parameter, what it got and what it takes (``hop must be > 0 seconds, got -1``). A
    ``ValueError`` raised anywhere else inside genrekit is a bug, not a message.
    """


# --- audio -------------------------------------------------------------------------------------------
class AudioError(GenrekitError):
    """A file that cannot be turned into a usable signal.

    Attributes
    ----------
    path : str
        The file.
    problem : str
        What is wrong, in plain words.
    """

    def __init__(self, path, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class TooLongError(AudioError):
    """Audio longer than the caller's ``max_duration``, refused before the rest is decoded."""

    def __init__(self, path, seconds: float, limit: float, *, declared: bool = False):
        self.seconds, self.limit = seconds, limit
        how = "its header declares" if declared else "it runs past"
        amount = f"{seconds / 60:.1f} min" if declared else f"{limit / 60:g} min"
        super().__init__(path, f"too long: {how} {amount}; the limit is {limit / 60:g} min of audio")


# --- data, caches and results --------------------------------------------------------------------
class DatasetError(GenrekitError, ValueError):
    """A data file that cannot be used, with a message naming the file and the problem."""


class UnsafeArchiveError(DatasetError):
    """An archive member that would land outside the destination, or is not a plain file or folder."""


class DownloadError(DatasetError):
    """A download that could not finish, or whose checksum does not match."""


class StoreError(GenrekitError):
    """The cache database is damaged or unusable; the message says which file and what to do."""


class ResultsError(GenrekitError):
    """A results file that cannot be opened or used (locked, newer schema, not writable...)."""


class TagError(GenrekitError):
    """A tag that cannot be read or written; the message says why."""


class JournalError(TagError):
    """A tag journal that cannot be written (the run stops, no file left changed without its entry)
    or read (not a journal genrekit kept, or damaged); the message names the journal and the problem."""


class SimilarityError(GenrekitError, ValueError):
    """A results store that cannot answer a similarity query; says which file and why."""


# --- models ------------------------------------------------------------------------------------------
class BundleError(GenrekitError):
    """A model bundle that cannot be loaded or written; names the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class TrainingError(GenrekitError, RuntimeError):
    """Training cannot start or finish (mismatched checkpoint, failed export...)."""


class ExplainError(GenrekitError):
    """An explanation that cannot be made (not a CNN bundle, no such layer...)."""


# --- jobs and verbs ----------------------------------------------------------------------------------
class EngineError(GenrekitError):
    """An engine cannot run the job at all (not installed, cluster unreachable, inputs unreadable).

    Not about one file: the command stops with this message (exit status 1).
    """


class ReportError(GenrekitError):
    """An input cannot be used for a report; the message names the file and the problem."""


class CommandError(GenrekitError):
    """A verb could not do its job (unreadable cache, unwritable output...): exit status 1."""
