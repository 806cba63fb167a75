"""What genrekit writes into one file's tags: the genres chosen, the mode, and the outcome.

- **Choice** (:meth:`TagPlan.choose`): the model's labels by score, best first, those
  at or above ``min_score`` whose names may be written (a label mapped to ``""`` never
  is), the first ``count`` of them; each becomes its names (:class:`~genrekit.tagging.names.NameMap`).
- **Modes**: ``fill`` (the default) writes only files without a genre and lists the
  others as *kept*; ``merge`` keeps the file's values and appends the names not already
  there (compared through the name map, case and punctuation aside); ``replace``
  overwrites them.
- **Provenance**: genrekit's field records the names with their scores and the model,
  ``Hip-Hop 0.81; Pop 0.12 (gtzan-musicnn)``.
- **Undo**: every change is recorded in a :class:`~genrekit.tagging.journal.Journal` before the
  file is replaced (a journal that cannot be written raises :class:`~genrekit.errors.JournalError`
  and leaves the file as it was).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from genrekit.errors import JournalError, ParameterError, TagError
from genrekit.tagging.safe_write import read_only_reason
from genrekit.tagging.formats import ID3V23_SEP, TagState, encode_genres, genre_values, open_state, write_state
from genrekit.tagging.names import NameMap

#: Tag modes (``--tag-mode``); the first is the default.
MODES = ("fill", "merge", "replace")
#: Outcomes of :meth:`TagPlan.apply`.
WRITTEN, MERGED, REPLACED, KEPT, UNCHANGED = "written", "merged", "replaced", "kept", "unchanged"
UNCERTAIN, UNSUPPORTED, READ_ONLY, FAILED = "skipped (uncertain)", "not supported", "read-only", "failed"
#: A tag value shown on a line is cut after this many characters, and a list after this many
#: values: a 10 MB genre or a TCON frame of 100,000 values must not flood the terminal.
SHOWN_CHARS, SHOWN_VALUES = 200, 20
#: Order of the summary line.
OUTCOMES = (WRITTEN, MERGED, REPLACED, KEPT, UNCHANGED, UNCERTAIN, UNSUPPORTED, READ_ONLY, FAILED)


@dataclass(frozen=True)
class TagChange:
    """What :meth:`TagPlan.apply` did (or, in a dry run, would do) to one file.

    Attributes
    ----------
    path : str
    old : list of str
        The file's genres before (by its format's rules).
    new : list of str
        Its genres after (the same as ``old`` when nothing was written).
    status : str
        One of :data:`OUTCOMES`: :data:`WRITTEN` (the file had no genre), :data:`MERGED`,
        :data:`REPLACED`, :data:`KEPT` (``fill``: it has a genre), :data:`UNCHANGED`,
        :data:`UNCERTAIN` (no genre reached the minimum score), :data:`UNSUPPORTED`,
        :data:`READ_ONLY`, :data:`FAILED`.
    reason : str or None
    dry_run : bool
        Nothing was written (the status says what would have been).
    """

    path: str
    old: list = field(default_factory=list)
    new: list = field(default_factory=list)
    status: str = UNCHANGED
    reason: str | None = None
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        """Nothing went wrong (an unsupported format or a kept file is not an error)."""
        return self.status not in (READ_ONLY, FAILED)

    @property
    def changed(self) -> bool:
        """The file's bytes were replaced."""
        return self.status in (WRITTEN, MERGED, REPLACED) and not self.dry_run

    def label(self) -> str:
        """The status as the summary counts it (``would write`` in a dry run)."""
        if self.dry_run and self.status in (WRITTEN, MERGED, REPLACED):
            return "would " + {WRITTEN: "write", MERGED: "merge", REPLACED: "replace"}[self.status]
        return self.status

    def describe(self, printable=str) -> str:
        """The line a command shows; ``printable`` (:func:`genrekit.output.printable`) escapes and
        bounds each value from the file (its name, its tags)."""
        def one(value: str) -> str:
            cut = len(value) - SHOWN_CHARS
            return printable(value[:SHOWN_CHARS] + (f"… ({cut} more characters)" if cut > 0 else ""))

        def show(values):
            more = len(values) - SHOWN_VALUES
            return "(none)" if not values else "; ".join(one(v) for v in values[:SHOWN_VALUES]) + (
                f"; … ({more} more values)" if more > 0 else "")

        path = printable(self.path)
        if self.status in (WRITTEN, MERGED, REPLACED):
            return f"{path}: genre {show(self.old)} -> {show(self.new)} ({self.label()})"
        if self.status == KEPT:
            return f"{path}: kept its genre {show(self.old)} (fill mode; --tag-mode merge or replace to change it)"
        if self.status == UNCHANGED:
            return f"{path}: genre already {show(self.old)}"
        if self.status == UNCERTAIN:
            return f"{path}: tags not written, uncertain: {printable(self.reason)}"
        return f"{path}: tags not written: {printable(self.reason)}"

    def __str__(self) -> str:
        return self.describe()


def provenance(chosen: list[tuple[str, float]], names: NameMap, model: str | None) -> str:
    """genrekit's field: ``"Hip-Hop 0.81; Pop 0.12 (gtzan-musicnn)"``."""
    parts = [f"{name} {score:.2f}" for label, score in chosen for name in names.tag_names(label)]
    return "; ".join(parts) + (f" ({model})" if model else "")


@dataclass
class TagPlan:
    """How a run writes genres into tags.

    Parameters
    ----------
    names : NameMap
    count : int
        At most this many genres (labels) per file (``--genres``).
    min_score : float
        Only genres scoring at least this (``--min-score``).
    mode : str
        One of :data:`MODES`.
    id3v23_sep : str
        How ID3v2.3 tags join several genres (reading and writing).
    dry_run : bool
        Say what would change; write nothing, keep no journal.
    journal : genrekit.tagging.journal.Journal or None
        Where changes are recorded for undo (``None``: not recorded).
    """

    names: NameMap = field(default_factory=NameMap.default)
    count: int = 1
    min_score: float = 0.0
    mode: str = "fill"
    id3v23_sep: str = ID3V23_SEP
    dry_run: bool = False
    journal: object = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ParameterError(f"tag mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.count < 1:
            raise ParameterError("count must be at least 1")

    def choose(self, prediction) -> list[tuple[str, float]]:
        """``[(label, score), ...]``: the labels to write for ``prediction``, best first; none for a
        song the model calls unknown ("none of these": nothing is written)."""
        if getattr(prediction, "unknown", None):
            return []
        probabilities = prediction.probabilities or {}
        ranked = sorted(((str(k), float(v)) for k, v in probabilities.items()), key=lambda kv: (-kv[1], kv[0]))
        keep = [(label, score) for label, score in ranked
                if score >= self.min_score and self.names.tag_names(label)]
        return keep[:self.count]

    def tag_names(self, chosen: list[tuple[str, float]]) -> list[str]:
        """The genre values to write for the ``chosen`` labels (:meth:`choose`), each once, best first."""
        return list(dict.fromkeys(n for label, _ in chosen for n in self.names.tag_names(label)))

    def styles_from_tags(self, prediction, written: list[str]) -> list[str]:
        """With ``--with-style``: the genres the song's tags add (:mod:`genrekit.models.tag_genres`)
        that the genre tree knows as styles of a genre being ``written`` (``Alternative Rock`` after
        ``Rock``); none otherwise. A genre from tags is never written on its own."""
        if not self.names.styles:
            return []
        from genrekit.taxonomy.tree import GenreTree, genre_key

        tree, own = GenreTree.fma(), prediction.probabilities or {}
        tops = {genre_key(t) for t in (tree.top(n) for n in written) if t}
        have = {genre_key(n) for n in written}
        return [g for g in getattr(prediction, "genres", None) or [] if g not in own
                and len(tree.chain(g)) >= 2 and genre_key(tree.top(g)) in tops and genre_key(g) not in have]

    def provenance(self, chosen: list[tuple[str, float]], model: str | None) -> str:
        """genrekit's own field for the ``chosen`` labels: ``"Hip-Hop 0.81; Pop 0.12 (gtzan-musicnn)"``."""
        return provenance(chosen, self.names, model)

    def new_values(self, old: list[str], names: list[str]) -> tuple[str, list[str]]:
        """The mode's outcome and the genres the file should hold."""
        if self.mode == "fill":
            return (KEPT, old) if old else (WRITTEN, names)
        if self.mode == "merge":
            added = [n for n in names if not any(self.names.same(n, o) for o in old)]
            return (MERGED, old + added) if old else (WRITTEN, names)
        return (REPLACED, names) if old else (WRITTEN, names)

    def apply(self, path, prediction) -> TagChange:
        """Write the genres of ``prediction`` (a :class:`~genrekit.prediction.Prediction`) into ``path``.

        Never raises for a file that cannot be tagged: the outcome says why.
        """
        path = str(path)
        dry = self.dry_run
        chosen = self.choose(prediction)
        try:
            state, cls = open_state(os.path.realpath(path))
        except TagError as exc:
            status = UNSUPPORTED if "not supported" in str(exc) else FAILED
            return TagChange(path, status=status, reason=str(exc), dry_run=dry)
        except OSError as exc:
            return TagChange(path, status=FAILED, reason=f"cannot read: {exc.strerror or exc}", dry_run=dry)
        old = genre_values(state, self.id3v23_sep)
        if not chosen:
            label = prediction.label
            score = (prediction.probabilities or {}).get(label, 0.0)
            if getattr(prediction, "unknown", None):
                shown = getattr(prediction, "unknown_score", None)
                shown = "" if shown is None else f"; unknown score {round(float(shown), 4):g}"
                why = f"unknown: fits none of the model's genres (closest: {self.names.display(label)}{shown})"
            elif score < self.min_score:
                why = f"top score {label} {score:.2f} < --min-score {self.min_score:g}"
            else:
                why = "no genre the names file lets genrekit write"
            return TagChange(path, old, old, UNCERTAIN, why, dry)
        names = self.tag_names(chosen)
        status, new = self.new_values(old, names + self.styles_from_tags(prediction, names))
        if status == KEPT or new == old:
            return TagChange(path, old, old, KEPT if status == KEPT else UNCHANGED, dry_run=dry)
        blocked = read_only_reason(os.path.realpath(path))
        if blocked:
            return TagChange(path, old, old, READ_ONLY, blocked, dry)
        if dry:
            return TagChange(path, old, new, status, dry_run=True)
        after = TagState(state.kind, encode_genres(state, new, self.id3v23_sep),
                         self.provenance(chosen, prediction.model), None, state.id3_version)
        def record(tmp):  # the journal's entry, written before the file is replaced
            self.journal.record_replacement(os.path.realpath(path), tmp, state, after)

        try:
            write_state(path, after, cls, record if self.journal is not None else None)
        except JournalError:
            raise  # no entry, no change: the run stops
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the original was not replaced
            reason = str(exc) if isinstance(exc, TagError) else (
                exc.strerror or str(exc) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}")
            return TagChange(path, old, old, FAILED, f"{reason}; the file was left unchanged")
        return TagChange(path, old, new, status)


def summary_line(changes, dry_run: bool) -> str:
    """``tags: 2 written, 1 merged, 0 replaced, 3 kept, ...`` (outcomes with none left out, but
    written and kept)."""
    counts: dict[str, int] = {}
    for c in changes:
        counts[c.label()] = counts.get(c.label(), 0) + 1
    order = [("would " + s.split()[0].replace("written", "write").replace("merged", "merge")
              .replace("replaced", "replace")) if dry_run and s in (WRITTEN, MERGED, REPLACED) else s
             for s in OUTCOMES]
    shown = [s for s in order if counts.get(s) or s in (order[0], KEPT, UNCHANGED)]
    head = "tags (dry run, nothing written)" if dry_run else "tags"
    return f"{head}: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in shown)
