"""The one contract every trainer keeps: data and frozen options in, a run folder out.

>>> from genrekit.training.classical import ClassicalTrainer, ExperimentConfig   # doctest: +SKIP
>>> summary = ClassicalTrainer(table, ExperimentConfig(models=["logreg"])).train(Path("runs/a"))
>>> summary.results["selected"], summary.folder
('logreg', PosixPath('runs/a'))

Three trainers keep it:

- :class:`genrekit.training.classical.ClassicalTrainer`: classical models on a feature table
  (``genrekit train``), configured by :class:`~genrekit.training.classical.ExperimentConfig`;
- :class:`genrekit.training.own_genres.OwnGenresTrainer`: a head on the backbone from a
  library's own genre labels (``genrekit train --labels tags``), configured by
  :class:`~genrekit.training.own_genres.OwnGenresOptions`;
- :class:`genrekit.training.cnn.trainer.CnnTrainer`: a CNN on spectrograms
  (``genrekit train --model cnn``), configured by :class:`~genrekit.training.cnn.options.CnnOptions`.

A command builds the trainer its options ask for and calls :meth:`Trainer.train`; what a
run folder holds is :mod:`genrekit.training.run_folder`'s.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any



@dataclass(frozen=True)
class RunSummary:
    """What a finished training run says about itself.

    Attributes
    ----------
    folder : Path or None
        The run folder (:mod:`genrekit.training.run_folder`); ``None`` for a run kept in
        memory (:class:`~genrekit.training.classical.ClassicalTrainer` only).
    results : dict
        The content of its ``results.json``: the split, every model's entry (figures,
        parameters, bundle folder), the selected model.
    """

    folder: Path | None
    results: dict[str, Any]



class Trainer(ABC):
    """Trains models of one kind and writes a run folder.

    A trainer is built with its data and a frozen dataclass of its options (what decides
    the numbers), plus how it reports progress; :meth:`train` does the work. Contract of
    :meth:`train`, which every trainer keeps so that commands and scripts treat them alike:

    - everything goes into the folder ``out`` (created where needed): one bundle per model
      that can classify audio, and ``results.json`` last, so a folder holding it is a
      finished run (:mod:`genrekit.training.run_folder`);
    - it returns a :class:`RunSummary` holding ``results.json``'s content;
    - data or settings it cannot use raise a :class:`~genrekit.errors.GenrekitError`
      (:class:`~genrekit.errors.DatasetError`, :class:`~genrekit.errors.TrainingError`,
      :class:`~genrekit.errors.ParameterError`) whose message names the problem.

    Attributes
    ----------
    name : str
        The kind of trainer, in messages.
    """

    name = "trainer"

    @abstractmethod
    def train(self, out: str | Path) -> RunSummary:
        """Train, write the run folder ``out``, and return its summary."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
