"""Command-line options of CNN training, kept free of PyTorch.

``genrekit``'s argument parser is built on every call (``genrekit classify``, ``serve``...);
importing the trainer there would load PyTorch (about 1.5 s and 190 MB) for nothing. The
architecture names are listed here and checked against :mod:`genrekit.models.cnn` by the
tests.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import MappingProxyType

#: Architectures of :data:`genrekit.models.cnn.ARCHITECTURES`, default first.
ARCH_NAMES = ("shortres", "choi", "seed6", "seed3", "musicnn")
DEFAULT_ARCH = "shortres"

#: The defaults of CNN training, in one place: the command's options,
#: :func:`genrekit.training.cnn.train_cnn`'s keywords and ``run_from_args`` all read them here.
DEFAULTS = MappingProxyType({
    "arch": DEFAULT_ARCH, "split": "random", "folds": 5, "test_size": 0.2, "valid_size": 0.1,
    "epochs": 30, "batch_size": 32, "lr": 1e-3, "weight_decay": 1e-4, "patience": 10, "monitor": "accuracy",
    "crops_per_track": 8, "mixup_alpha": 0.2, "n_mels": 128, "input": "logmel", "n_mfcc": 40, "head": "output",
    "device": "cpu", "seed": 0, "jobs": 1,
})


def add_cnn_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the CNN training options to ``parser``.

    Options the parser already has (``--data``, ``--out``, ``--split``... shared with
    another trainer) are left as they are; :func:`run_from_args` reads them by name.
    """
    have = set(parser._option_string_actions)

    def add(*names, **kw):
        if not have.intersection(names):
            parser.add_argument(*names, **kw)

    add("--data", metavar="DIR_OR_CSV", type=Path, required=True,
        help="a <genre>/<file> folder or a CSV manifest (path,label[,artist]; paths relative to the CSV)")
    add("--out", metavar="RUN_DIR", type=Path, required=True,
        help="run folder: checkpoint, history.csv, results.json and the model bundle")
    add("--arch", choices=list(ARCH_NAMES), default=DEFAULTS["arch"],
        help=f"network (default {DEFAULT_ARCH})")
    add("--split", default=DEFAULTS["split"],
        choices=["random", "artist", "fault-filtered", "kfold", "folds"],
        help="how tracks are split (default random)")
    add("--artists", metavar="FILE", type=Path,
        help="artist index (GTZANindex.txt or CSV filename,artist), for artist-aware splits")
    add("--split-dir", metavar="DIR", type=Path, help="folder of split lists (fault-filtered, folds)")
    add("--folds", metavar="K", type=int, default=DEFAULTS["folds"], help="folds of --split kfold (default 5)")
    add("--fold", metavar="I", type=int, default=None, help="fold to train, from 0 (default 0)")
    add("--epochs", metavar="N", type=int, default=DEFAULTS["epochs"], help="most epochs (default 30)")
    add("--batch-size", metavar="B", type=int, default=DEFAULTS["batch_size"], help="crops per step (default 32)")
    add("--lr", metavar="RATE", type=float, default=DEFAULTS["lr"], help="AdamW learning rate (default 1e-3)")
    add("--patience", metavar="N", type=int, default=DEFAULTS["patience"],
        help="stop after N epochs without validation improvement (default 10)")
    add("--crops-per-track", metavar="N", type=int, default=DEFAULTS["crops_per_track"], help="random crops per track and epoch (default 8)")
    add("--mixup", action="store_true", help="mixup augmentation (Zhang et al. 2018; default off)")
    add("--input", dest="cnn_input", choices=["logmel", "mfcc"], default=DEFAULTS["input"],
        help="input image of the from-scratch architectures: 128-band log-mel in dB, or its first "
             "--n-mfcc MFCCs (default logmel; --arch musicnn always takes musicnn's own front end)")
    add("--n-mfcc", metavar="N", type=int, default=DEFAULTS["n_mfcc"], help="MFCCs of --input mfcc (default 40; the seeds used 40 and 128)")
    add("--pretrained", action="store_true",
        help="--arch musicnn: start from the shipped MSD-musicnn weights with a new output layer for "
             "your genres, and train only that layer (the head) unless --unfreeze")
    add("--unfreeze", action="store_true",
        help="--pretrained: after --head-epochs epochs on the head, train the whole network at --unfreeze-lr")
    add("--head-epochs", metavar="N", type=int, default=None,
        help="--unfreeze: epochs that train the head only (default: half of --epochs)")
    add("--unfreeze-lr", metavar="RATE", type=float, default=None,
        help="--unfreeze: learning rate of the whole network (default --lr / 10), cosine-annealed to 0")
    add("--head", choices=["output", "dense"], default=DEFAULTS["head"],
        help="--pretrained: the head is the new output layer alone, or also the 200-unit dense layer "
             "before it (default output)")
    add("--width", metavar="C", type=int, default=None, help="channels of the first layers (architecture default)")
    add("--device", metavar="DEVICE", default=DEFAULTS["device"], help="cpu, cuda, cuda:1... (default cpu)")
    add("--seed", metavar="N", type=int, default=DEFAULTS["seed"], help="random seed (default 0)")
    add("--resume", action="store_true", help="continue the run in --out after its last finished epoch (default: start afresh)")
    add("--cache", metavar="DIR", type=Path, help="feature cache folder (default $GENREKIT_CACHE or ~/.cache/genrekit)")
    add("--jobs", "-j", metavar="N", type=int, default=DEFAULTS["jobs"], help="processes computing features (default 1)")
    add("--threads", metavar="N", type=int, default=None,
        help="torch threads (default: one per core; 1 is faster on a busy machine)")
