"""Reading a results store (``.jsonl`` or SQLite) from outside, while a run may still be writing it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path


def jsonl_records(path: Path) -> list[dict]:
    """Every record of a JSON-lines results file."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def sqlite_count(path: Path) -> int:
    """Rows in a SQLite results store (0 before it exists), opened read-only."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:  # not created yet
        return 0


def stored(path: Path) -> int:
    """How many results are stored so far (whole lines only for ``.jsonl``)."""
    if path.suffix == ".jsonl":
        return len(path.read_bytes().split(b"\n")) - 1 if path.exists() else 0  # whole lines only
    return sqlite_count(path)


def hand_made(path, label: str = "metal", **fields) -> dict:
    """A results-store record made by hand for ``path`` (fields as a library run writes them)."""
    import hashlib

    record = {"content_hash": hashlib.blake2b(str(path).encode("utf-8", "surrogateescape"), digest_size=32).hexdigest(), "model_key": "k" * 16,
              "path": str(path), "label": label, "probabilities": {label: 0.9, "other": 0.1}, "duration": 5.0,
              "timeline": None, "tags": None, "embedding": None, "model": "hand-made", "error": None,
              "unknown": False, "notes": [], "genres": None, "time": "2026-01-01T00:00:00Z"}
    record.update(fields)
    return record


def write_jsonl(path: Path, records) -> Path:
    """A JSON-lines results file of ``records`` (dicts, or raw lines as str)."""
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def fingerprint(path: Path) -> tuple:
    """What a read must not change: the file's sha256, mtime and size, and its folder's names."""
    import hashlib
    import os

    st = os.stat(path)
    return hashlib.sha256(path.read_bytes()).hexdigest(), st.st_mtime_ns, st.st_size, sorted(os.listdir(path.parent))
