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
