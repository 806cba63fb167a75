"""Import one of the repository's ``scripts/`` as a module (they are not a package), leaving
``sys.path`` as it was."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def import_script(name: str):
    """The module of ``scripts/<name>.py``."""
    sys.path.insert(0, str(SCRIPTS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(SCRIPTS))
