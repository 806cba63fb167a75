"""Stores written before identities (keyed by whole-file hashes, :mod:`genrekit.audio.identity`):
re-keyed when a writer opens them, mapped in memory when a read-only opening reads them.

Used by the feature cache (:mod:`genrekit.features.cache`) and the results stores
(:mod:`genrekit.library.results`); a file counts only where it is still there with the size,
mtime and whole-file hash remembered for it, so no result moves to another file's identity.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from genrekit._io import name_from_sql, sql_name
from genrekit.audio.files import file_keys
from genrekit.audio.identity import is_legacy


def legacy_map(rows: Iterable[tuple[str, int, int, str]]) -> dict[str, tuple[str, list]]:
    """Today's keys of files remembered under legacy whole-file hashes.

    ``rows``: ``(path, size, mtime_ns, key)`` as the stores' ``file_hashes`` tables hold them. A file
    still there with the same size and mtime is read once; when its whole-file hash is the one
    remembered, the legacy key maps to its identity. Returns ``{legacy key: (identity, [(path,
    size, mtime_ns), ...])}`` (the files it was verified on); files gone or changed are left out.
    """
    out: dict[str, tuple[str, list]] = {}
    for path, size, mtime_ns, key in rows:
        if not isinstance(key, str) or not is_legacy(key) or not isinstance(path, str):
            continue
        try:
            st = os.stat(path)
            if (st.st_size, st.st_mtime_ns) != (size, mtime_ns) or not os.path.isfile(path):
                continue
            if key in out:
                out[key][1].append((path, size, mtime_ns))
                continue
            new, whole = file_keys(path)
        except OSError:
            continue
        if whole == key:
            out[key] = (new, [(path, size, mtime_ns)])
    return out


def identity_plan(sql) -> dict[str, tuple[str, list]]:
    """Legacy keys of a database's ``file_hashes`` table (:data:`genrekit.audio.files.FILE_HASHES_TABLE`)
    mapped to today's identities (:func:`legacy_map`), reading each file still
    there unchanged once.

    ``sql(query, params) -> rows`` runs a statement on the database; nothing is written.
    """



    if not sql("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'file_hashes'", ()):
        return {}
    rows = sql("SELECT path, size, mtime_ns, content_hash FROM file_hashes", ())
    return legacy_map((name_from_sql(p), s, m, h) for p, s, m, h in rows)


def apply_identity_plan(sql, plan: dict[str, tuple[str, list]], table: str, newest: str) -> None:
    """Re-key ``table``'s rows (column ``content_hash``) by ``plan``, inside the caller's transaction.

    Where two legacy keys become one identity (a file before and after a tag write), the row
    with the latest ``newest`` column wins. Legacy rows of files gone keep their keys (still
    readable); the remembered file hashes are replaced by the identities verified.
    """
    order = sql(f"SELECT content_hash, MAX({newest}) FROM {table} GROUP BY content_hash", ())
    for old, _ in sorted((r for r in order if r[0] in plan), key=lambda r: (r[1] is not None, r[1] or 0)):
        sql(f"UPDATE OR REPLACE {table} SET content_hash = ? WHERE content_hash = ?", (plan[old][0], old))
    sql("DELETE FROM file_hashes WHERE instr(content_hash, ':') = 0", ())
    for new, files in plan.values():
        for path, size, mtime_ns in files:
            sql("INSERT OR REPLACE INTO file_hashes (path, size, mtime_ns, content_hash) VALUES (?, ?, ?, ?)",
                (sql_name(path), size, mtime_ns, new))


class KeyMap:
    """Legacy keys -> identities, in memory only (a read-only opening changes no byte)."""

    def __init__(self, plan: dict[str, tuple[str, list]] | None = None) -> None:
        self.renamed = {old: new for old, (new, _) in (plan or {}).items()}

    def record(self, record: dict | None) -> dict | None:
        """``record`` with its key mapped (in place)."""
        if record is not None and record["content_hash"] in self.renamed:
            record["content_hash"] = self.renamed[record["content_hash"]]
        return record

    def keys(self, key: str) -> list[str]:
        """``key`` and the legacy keys that map to it."""
        return [key, *(old for old, new in self.renamed.items() if new == key)]

    def offsets(self, by_key: dict) -> None:
        """Re-key a JSON-lines index ``{(key, model_key): (offset, length)}`` in place; the latest line wins."""
        for (h, model), where in list(by_key.items()):
            if h in self.renamed:
                del by_key[(h, model)]
                new = (self.renamed[h], model)
                by_key[new] = max(where, by_key.get(new, where))


def legacy_lines(rows: list, recall, by_key: dict, read) -> list[tuple[dict, tuple]]:
    """What a JSON-lines store appends to migrate: ``[(record under its identity, (identity, file,
    size, mtime_ns)), ...]``, oldest first.

    ``rows``: ``(file, size, mtime_ns, legacy key)`` of its lines; ``recall(file, size, mtime_ns)``:
    the key remembered for a file (one already under an identity was migrated before and is not
    read again); ``by_key``/``read``: the store's index and line reader.
    """
    plan = legacy_map([row for row in rows if is_legacy(recall(*row[:3]) or "")])
    moved = [dict(read(where), content_hash=plan[h][0]) for (h, model), where in list(by_key.items())
             if h in plan and (plan[h][0], model) not in by_key]
    old = {new: files[0] for new, files in plan.values()}
    moved.sort(key=lambda r: str(r.get("time") or ""))
    return [(r, (r["content_hash"], *old[r["content_hash"]])) for r in moved]
