"""A training run's folder: the one home of its layout, read by the registry and the report.

Every trainer (:mod:`genrekit.training.base`) writes one run folder::

    RUN_DIR/
      results.json         every model's figures, the split, the model selected on validation
      <model>/             a classical model's bundle (the family's name: logreg, svm-rbf...);
                           own genres: own-genres/
      bundle.json ...      a CNN's bundle is the run folder itself (its entry's "bundle" is ".")
      history.csv          a CNN's epochs, one row each (:data:`HISTORY_COLUMNS`)
      checkpoint.pt        a CNN's resume state, replaced atomically after every epoch
      .done/<model>.json   a classical model finished, keyed by the run's settings (for resuming)
      tensorboard/         a CNN's TensorBoard logs, when TensorBoard is installed

``results.json`` names each model's bundle folder (relative to the run folder) in its
entry's ``"bundle"``, and the model chosen on validation in ``"selected"``: the registry
resolves ``--model RUN_DIR`` with them (:func:`selected_folder`), and the report reads the
figures and histories. This module imports nothing but the file writer, so that the model
registry and the report can read run folders without loading a trainer.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from genrekit._io import write_bytes_atomic, write_json_atomic

#: The file every run writes last, naming its models, their figures and bundles, and the selected one.
RESULTS_JSON = "results.json"
#: A CNN run's training history: one row per finished epoch.
HISTORY_CSV = "history.csv"
#: Columns of ``history.csv``. ``train_loss`` / ``train_acc``: cross-entropy and accuracy
#: of the augmented training crops (against the dominant class under mixup);
#: ``valid_loss``: mean cross-entropy of the validation windows; ``valid_acc``: track-level
#: accuracy (argmax of the mean window probability); ``lr``: the learning rate the epoch
#: used; ``seconds``: the epoch's wall time; ``finished``: Unix time its checkpoint was written.
HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "lr", "seconds", "finished")
#: A CNN run's resume state (model, optimizer, scheduler, random states, history).
CHECKPOINT = "checkpoint.pt"
#: Where a classical run keeps each finished model's entry, so that a rerun skips it.
DONE_DIR = ".done"
#: A CNN run's TensorBoard logs.
TENSORBOARD_DIR = "tensorboard"
#: A model entry's ``"bundle"`` when the bundle is the run folder itself (CNN runs).
RUN_ITSELF = "."


def results_path(run: str | os.PathLike) -> Path:
    """``run``'s ``results.json``."""
    return Path(run) / RESULTS_JSON


def write_results(run: str | os.PathLike, results: Mapping[str, Any]) -> None:
    """Write ``results.json`` atomically (a reader sees the old file or the new one, whole)."""
    write_json_atomic(results_path(run), results)


def read_results(run: str | os.PathLike) -> Any:
    """``run``'s ``results.json`` parsed, or ``None`` when it is missing, unreadable or not JSON.

    The value is whatever the file holds: callers check that it is an object before use.
    """
    try:
        return json.loads(results_path(run).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def selected_folder(run: str | os.PathLike, results: Any) -> Path | None:
    """The folder of the model ``results`` (the run's ``results.json``) selected, or ``None`` when it names none.

    The selected model's entry names its bundle folder (``"bundle"``, relative to the run
    folder; ``"."`` for the run folder itself); an entry without one stands for the folder
    of the model's name. Whether a bundle is there is the caller's to check.
    """
    if isinstance(results, dict) and isinstance(results.get("selected"), str):
        entry = (results.get("models") or {}).get(results["selected"]) or {}
        return Path(run) / str(entry.get("bundle") or results["selected"])
    return None


def model_folder(run: str | os.PathLike, model: str) -> Path:
    """Where the bundle of ``model`` goes in ``run`` (its entry's ``"bundle"`` is then ``model``)."""
    return Path(run) / model


def done_path(run: str | os.PathLike, model: str) -> Path:
    """Where a classical run keeps ``model``'s finished entry."""
    return Path(run) / DONE_DIR / f"{model}.json"


def write_history(run: str | os.PathLike, history: Sequence[Mapping[str, Any]]) -> None:
    """Rewrite ``history.csv`` atomically: one row per epoch, floats to 6 significant digits
    (``finished``, a Unix time, as it is)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    w.writeheader()
    for row in history:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) and k != "finished" else v) for k, v in row.items()})
    write_bytes_atomic(Path(run) / HISTORY_CSV, buf.getvalue().encode("utf-8"))
