"""The options of CNN training: one frozen value, its defaults in one place, free of PyTorch.

``genrekit``'s argument parser (:mod:`genrekit.commands.train_cnn`) reads its defaults here
on every call (``genrekit classify``, ``serve``...); importing the trainer there would load
PyTorch (about 1.5 s and 190 MB) for nothing. The architecture names are listed here and
checked against :mod:`genrekit.models.cnn` by the tests.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from genrekit.features.defaults import CNN_HOP, CNN_WINDOW

if TYPE_CHECKING:
    from genrekit.training.cnn.crops import Augment

#: Architectures of :data:`genrekit.models.cnn.ARCHITECTURES`, default first.
ARCH_NAMES = ("shortres", "choi", "seed6", "seed3", "musicnn")
DEFAULT_ARCH = "shortres"


@dataclass(frozen=True)
class CnnOptions:
    """Everything a CNN training run is told (``genrekit train --model cnn``'s options).

    Parameters
    ----------
    arch : str
        A key of :data:`genrekit.models.cnn.ARCHITECTURES`.
    split : str
        A kind of :func:`genrekit.datasets.splits.make_splits`: ``random``, ``artist``,
        ``fault-filtered``, ``kfold``, ``folds`` (``random-rows`` is refused: a track's
        crops would land on both sides).
    epochs : int
        Most epochs to train.
    batch_size : int
        Crops per optimisation step.
    lr, weight_decay : float
        AdamW's learning rate (cosine-annealed to 0 over ``epochs``) and weight decay.
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    seed : int
        Seeds the split, the initial weights and every epoch's random draws.
    resume : bool
        Continue from the run folder's ``checkpoint.pt`` when it exists (its settings must match).
    patience : int
        Stop after this many epochs without improvement on the validation set.
    monitor : {"accuracy", "loss"}
        What "improvement" means: higher track-level validation accuracy (ties: lower
        validation loss), or lower validation loss.
    artists : path or mapping, optional
        Artist of each track (``GTZANindex.txt`` or ``{track_id: artist}``); defaults to
        the manifest's artist column. Needed for ``split="artist"``; makes ``kfold``
        folds and a carved validation set artist-disjoint.
    split_dir : path, optional
        Folder of split lists (``fault-filtered``, ``folds``).
    folds : int
        Folds of ``kfold``.
    fold : int, optional
        Fold (from 0) to train for ``kfold`` / ``folds`` (default 0).
    test_size, valid_size : float
        Fractions of tracks for ``random`` / ``artist`` splits; ``valid_size`` is also
        the fraction carved from training tracks when a split has no validation side.
    mixup : bool
        Mix pairs of crops (Zhang et al. 2018) with Beta(``mixup_alpha``, ``mixup_alpha``).
    mixup_alpha : float
        Mixup's Beta parameter.
    augment : Augment, optional
        SpecAugment and gain settings (default :class:`~genrekit.training.cnn.crops.Augment`).
    crops_per_track : int
        Random crops drawn from each training track per epoch.
    window, hop : float
        Seconds. The crop and evaluation window length, and the hop of evaluation windows.
    n_mels : int
        Mel bands of the log-mel features.
    arch_options : mapping, optional
        Passed to the architecture (``{"width": 16}``...).
    input : {"logmel", "mfcc"}
        The input image of the from-scratch architectures (see
        :mod:`genrekit.models.cnn_inputs`); ``musicnn`` always takes ``musicnn_frontend``.
    n_mfcc : int
        Coefficients of ``input="mfcc"``.
    pretrained : bool
        ``arch="musicnn"`` only: start from the shipped MSD-musicnn weights with a new output
        layer; see "Fine-tuning" in :mod:`genrekit.training.cnn`.
    unfreeze : bool
        With ``pretrained``: after ``head_epochs`` epochs, train the whole network.
    head_epochs : int, optional
        Epochs of the head-only stage under ``unfreeze`` (default ``epochs // 2``, at least 1).
    unfreeze_lr : float, optional
        Learning rate of the whole-network stage (default ``lr / 10``).
    head : {"output", "dense"}
        With ``pretrained``: the layers trained from the start — the new output layer, or
        also the dense layer (and its batch norm) before it.
    cache : FeatureStore, path, None or False
        Feature cache (``None``: the default one; ``False``: none).
    jobs : int
        Processes computing features not yet cached.
    threads : int, optional
        torch's intra-op threads during the run (restored afterwards); ``None`` keeps
        torch's default (one per core). On a machine shared with other jobs, ``1`` can be
        several times faster than oversubscribed cores.
    """

    arch: str = DEFAULT_ARCH
    split: str = "random"
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    device: str = "cpu"
    seed: int = 0
    resume: bool = False
    patience: int = 10
    monitor: str = "accuracy"
    artists: Any = None
    split_dir: str | os.PathLike | None = None
    folds: int = 5
    fold: int | None = None
    test_size: float = 0.2
    valid_size: float = 0.1
    mixup: bool = False
    mixup_alpha: float = 0.2
    augment: Augment | None = None
    crops_per_track: int = 8
    window: float = CNN_WINDOW
    hop: float = CNN_HOP
    n_mels: int = 128
    arch_options: Mapping[str, Any] | None = None
    input: str = "logmel"
    n_mfcc: int = 40
    pretrained: bool = False
    unfreeze: bool = False
    head_epochs: int | None = None
    unfreeze_lr: float | None = None
    head: str = "output"
    cache: Any = None
    jobs: int = 1
    threads: int | None = None
