"""genrekit for beets: genres from the audio, written the way genrekit writes tags.

Enable it in beets' ``config.yaml`` (``pip install "genrekit[beets]"``)::

    plugins: genrekit
    genrekit:
        mode: fill        # fill (default): only items without a genre; merge; replace
        count: 1          # up to this many genres, best first
        min_score: 0.0    # only genres scoring at least this
        names: ~          # a TOML names file (see docs/tagging.md); default: the shipped names
        with_style: no    # yes: write a style with its genre (Rock; Alternative Rock), as --with-style
        auto: no          # yes: classify on `beet import`
        model: ~          # a genrekit model bundle; default: the shipped gtzan-musicnn
        unknown_rate: ~   # 0 < P < 1: call songs unknown more (0.2) or less (0.01) often; default: the model's
        results: ~        # genrekit's results store; default: genrekit.sqlite in beets' config folder

``beet genrekit [QUERY]`` classifies the matching items (``-w``/``-W`` write or not
the files' tags, as beets' own commands; default: beets' ``import.write``). Files are
written by genrekit's own plan and journal, so ``genrekit tags undo`` takes a run back. Results go
through genrekit's results store, keyed by the audio's content, so a rerun is instant.
Each item gets its genres (the list ``genres`` field where beets has it, else ``genre``
joined by ``separator``), with the same modes, count, threshold and name map as
``genrekit classify --write-tags``, and flexible attributes ``genrekit_genre`` (the
display names chosen), ``genrekit_genres`` (every genre the model gives, those from the
backbone's tags included, e.g. ``Disco + Electronic``; models that give ``genres`` only), ``genrekit_score`` (the best score), ``genrekit_unknown_score`` (how
unlike the model's training songs the song is, 0 to 1, where the model gives it), ``genrekit_model`` and
``genrekit`` (the provenance, also written to files as genrekit's own field: ID3
``TXXX:GENREKIT``, Vorbis ``GENREKIT``, MP4 ``----:org.genrekit:GENREKIT``).
"""

from __future__ import annotations

import os

from beets import config as beets_config
from beets import ui
from beets.library import Item
from beets.plugins import BeetsPlugin

#: The beets field that holds several genres (beets 2.x); older beets have a single ``genre``.
LIST_FIELD = "genres" if "genres" in Item._fields else None


class GenrekitPlugin(BeetsPlugin):
    """``beet genrekit`` and the ``auto`` import stage."""

    def __init__(self) -> None:
        super().__init__()
        self.config.add({"mode": "fill", "count": 1, "min_score": 0.0, "names": None, "auto": False,
                         "model": None, "results": None, "separator": ", ", "unknown_rate": None,
                         "with_style": False})
        if self.config["auto"].get(bool):
            self.import_stages = [self.imported]
            self.register_listener("import_task_files", self._write_as_is)
        self._pending: set[int] = set()  # ids of items imported as-is whose files get the new genres
        self._add_provenance_field()

    def _add_provenance_field(self) -> None:
        from mediafile import MediaField, MP3DescStorageStyle, MP4StorageStyle, StorageStyle

        from genrekit import PROVENANCE_FIELDS as FIELDS

        self.add_media_field("genrekit", MediaField(MP3DescStorageStyle(FIELDS["id3"]), MP4StorageStyle(FIELDS["mp4"]),
                                                    StorageStyle(FIELDS["vorbis"])))

    # --- beets hooks ------------------------------------------------------------------------
    def commands(self):
        cmd = ui.Subcommand("genrekit", help="set genres from the audio with genrekit")
        cmd.parser.add_option("-w", "--write", dest="write", action="store_true", default=None,
                              help="write the new genres to the files' tags")
        cmd.parser.add_option("-W", "--nowrite", dest="write", action="store_false",
                              help="change the library only, not the files")
        cmd.parser.add_option("-m", "--mode", dest="mode", choices=("fill", "merge", "replace"),
                              help="fill, merge or replace (default: the config's mode)")

        def func(lib, opts, args):
            if opts.mode:
                self.config["mode"].set(opts.mode)
            self.tag_items(list(lib.items(args)), write=ui.should_write(opts.write))

        cmd.func = func
        return [cmd]

    def imported(self, session, task) -> None:
        # Stored only: files are written once the importer has moved or copied them. It writes
        # them itself when it applied metadata; items imported as they are (-A) are ours to write.
        items = task.imported_items()
        self.tag_items(items, write=False)
        if ui.should_write() and not getattr(task, "apply", False):
            self._pending.update(item.id for item in items)

    def _write_as_is(self, session, task) -> None:
        # Written by genrekit's plan and journal, as `beet genrekit -w` (the results store answers at once).
        items = [item for item in task.imported_items() if item.id in self._pending]
        self._pending.difference_update(item.id for item in items)
        self.tag_items(items, write=True)

    # --- the work --------------------------------------------------------------------------
    def _plan(self, write: bool = False):
        """genrekit's tag plan; with ``write``, with a journal in genrekit's own folder (created now,
        before any file is touched), so that `genrekit tags undo` takes the files' changes back."""
        from genrekit import TagJournal, TagPlan, load_names

        names = self.config["names"].get()
        mode = self.config["mode"].as_choice(["fill", "merge", "replace"])
        journal = None
        if write:
            journal = TagJournal({"command": "beet genrekit", "mode": mode,
                                  "model": self.config["model"].get() or "gtzan-musicnn"})
        import dataclasses

        names = load_names(os.path.expanduser(names) if names else None)
        if self.config["with_style"].get(bool):
            names = dataclasses.replace(names, styles=True)
        return TagPlan(names,
                       count=self.config["count"].get(int), min_score=float(self.config["min_score"].get()),
                       mode=mode, journal=journal)

    def _store(self):
        from genrekit import open_results

        path = self.config["results"].get()
        path = os.path.expanduser(path) if path else os.path.join(beets_config.config_dir(), "genrekit.sqlite")
        return open_results(path)

    def tag_items(self, items, write: bool) -> None:
        """Classify ``items`` (through the results store) and set their genres and genrekit's fields."""
        from genrekit import GenrekitError, LibraryRun

        if not items:
            return
        plan = None
        try:
            plan = self._plan(write)
            model = self._model()
            by_path = {os.fsdecode(item.path): item for item in items}
            with self._store() as store:
                run = LibraryRun(list(by_path), model, store=store, progress=False)
                for result in run:
                    self._apply(plan, run, by_path[str(result.path)], result, write)
        except GenrekitError as exc:
            raise ui.UserError(f"genrekit: {exc}") from exc
        finally:
            if plan is not None and plan.journal is not None:
                plan.journal.discard()  # a run that changed no file keeps no journal
                if plan.journal.count:
                    self._log.info("tag changes journalled in {}; `genrekit tags undo` restores them",
                                   plan.journal.path)

    def _model(self):
        """The model, deciding "none of these" at ``unknown_rate`` where that is set."""
        from genrekit import GenrekitError, load_model

        model, rate = self.config["model"].get(), self.config["unknown_rate"].get()
        clf = load_model(os.path.expanduser(model) if model else None)
        if rate is None:
            return clf
        try:
            return clf.at_unknown_rate(rate if isinstance(rate, (int, float)) else float(str(rate)))
        except ValueError as exc:  # genrekit's ParameterError is one, as is float("many")
            problem = exc if isinstance(exc, GenrekitError) else "not a number strictly between 0 and 1"
            raise ui.UserError(f"genrekit: unknown_rate {rate}: {problem}") from None

    def _apply(self, plan, run, item, result, write: bool) -> None:
        pred = result.prediction
        if not pred.ok:
            self._log.warning("{}: not classified: {}", _shown(item), pred.error)
            return
        chosen = plan.choose(pred)  # none for a song the model calls unknown
        names = plan.tag_names(chosen)
        names = names + plan.styles_from_tags(pred, names) if names else names
        item["genrekit_genre"] = "; ".join(plan.names.display(label) for label, _ in chosen)
        if pred.genres is not None:
            item["genrekit_genres"] = " + ".join(plan.names.display(g) for g in pred.genres)
        item["genrekit_score"] = round(float(pred.probabilities[pred.label]), 4)
        item["genrekit_model"] = pred.model
        if pred.unknown_score is not None:
            item["genrekit_unknown_score"] = pred.unknown_score
        if write:
            from genrekit import printable

            # The file is written by genrekit's own plan (modes, unknown songs, read-only files refused)
            # and journalled; the library gets what the file got.
            change = plan.apply(os.fsdecode(item.path), pred)
            self._log.info("{}", change.describe(printable))
            if change.changed:
                self._set_genres(item, change.new)
                item["genrekit"] = plan.provenance(chosen, pred.model)
                item["mtime"] = item.current_mtime()
                run.refile(result)  # new bytes, same audio: filed under the new content too
            elif not change.ok:
                self._log.warning("{}", change.describe(printable))
            item.store()
            return
        old = self._genres(item)
        if names:
            outcome, new = plan.new_values(old, names)
        elif pred.unknown:
            outcome, new = f"skipped (unknown: none of the model's genres; closest {plan.names.display(pred.label)})", old
        else:
            outcome, new = "skipped (uncertain)", old
        if new != old:
            self._set_genres(item, new)
            item["genrekit"] = plan.provenance(chosen, pred.model)
        elif names and outcome != "kept":
            outcome = "unchanged"
        if not names:  # nothing chosen: say so, and what the genre stays
            self._log.info("{}: {}; genre stays {}", _shown(item), outcome, "; ".join(old) or "none")
        else:
            self._log.info("{}: {} ({} -> {})", _shown(item), outcome, "; ".join(old) or "none", "; ".join(new) or "none")
        item.store()  # the library only: files are written by genrekit's plan above

    def _genres(self, item) -> list[str]:
        if LIST_FIELD:
            return [g for g in (item.get(LIST_FIELD) or []) if g]
        value = item.get("genre") or ""
        sep = self.config["separator"].as_str()
        return [g.strip() for g in value.split(sep.strip() or sep) if g.strip()] if value else []

    def _set_genres(self, item, values: list[str]) -> None:
        if LIST_FIELD:
            item[LIST_FIELD] = values
        else:
            item["genre"] = self.config["separator"].as_str().join(values)


def _shown(item) -> str:
    """An item named by its file (its artist - album - title may all be empty), escaped to one line."""
    from genrekit import printable

    return printable(os.fsdecode(item.path))
