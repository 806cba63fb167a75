"""The command-line options of CNN training (``genrekit train --model cnn``, ``python -m genrekit.training.cnn``).

Parsing only: the options become a :class:`~genrekit.training.cnn.options.CnnOptions`
(:func:`cnn_options`), which :class:`~genrekit.training.cnn.trainer.CnnTrainer` takes. Nothing
here imports PyTorch, so that ``genrekit``'s parser, built on every call, stays light.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from genrekit.training.cnn.options import ARCH_NAMES, DEFAULT_ARCH, CnnOptions

#: The defaults the options show and fall back on.
_DEFAULT = CnnOptions()
#: :class:`CnnOptions` fields read from the parsed options, by the option's ``dest``.
_FIELDS = {
    "arch": "arch", "split": "split", "epochs": "epochs", "test_size": "test_size", "valid_size": "valid_size",
    "batch_size": "batch_size", "lr": "lr", "device": "device", "seed": "seed", "resume": "resume",
    "patience": "patience", "artists": "artists", "split_dir": "split_dir", "folds": "folds", "fold": "fold",
    "mixup": "mixup", "crops_per_track": "crops_per_track", "input": "cnn_input", "n_mfcc": "n_mfcc",
    "pretrained": "pretrained", "unfreeze": "unfreeze", "head_epochs": "head_epochs", "unfreeze_lr": "unfreeze_lr",
    "head": "head", "cache": "cache", "jobs": "jobs", "threads": "threads",
}


def add_cnn_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the CNN training options to ``parser``.

    Options the parser already has (``--data``, ``--out``, ``--split``... shared with
    another trainer) are left as they are; :func:`cnn_options` reads them by name.
    """
    have = set(parser._option_string_actions)

    def add(*names, **kw):
        if not have.intersection(names):
            parser.add_argument(*names, **kw)

    add("--data", metavar="DIR_OR_CSV", type=Path, required=True,
        help="a <genre>/<file> folder or a CSV manifest (path,label[,artist]; paths relative to the CSV)")
    add("--out", metavar="RUN_DIR", type=Path, required=True,
        help="run folder: checkpoint, history.csv, results.json and the model bundle")
    add("--arch", choices=list(ARCH_NAMES), default=_DEFAULT.arch,
        help=f"network (default {DEFAULT_ARCH})")
    add("--split", default=_DEFAULT.split,
        choices=["random", "artist", "fault-filtered", "kfold", "folds"],
        help="how tracks are split (default random)")
    add("--artists", metavar="FILE", type=Path,
        help="artist index (GTZANindex.txt or CSV filename,artist), for artist-aware splits")
    add("--split-dir", metavar="DIR", type=Path, help="folder of split lists (fault-filtered, folds)")
    add("--folds", metavar="K", type=int, default=_DEFAULT.folds, help="folds of --split kfold (default 5)")
    add("--fold", metavar="I", type=int, default=None, help="fold to train, from 0 (default 0)")
    add("--epochs", metavar="N", type=int, default=_DEFAULT.epochs, help="most epochs (default 30)")
    add("--batch-size", metavar="B", type=int, default=_DEFAULT.batch_size, help="crops per step (default 32)")
    add("--lr", metavar="RATE", type=float, default=_DEFAULT.lr, help="AdamW learning rate (default 1e-3)")
    add("--patience", metavar="N", type=int, default=_DEFAULT.patience,
        help="stop after N epochs without validation improvement (default 10)")
    add("--crops-per-track", metavar="N", type=int, default=_DEFAULT.crops_per_track, help="random crops per track and epoch (default 8)")
    add("--mixup", action="store_true", help="mixup augmentation (Zhang et al. 2018; default off)")
    add("--input", dest="cnn_input", choices=["logmel", "mfcc"], default=_DEFAULT.input,
        help="input image of the from-scratch architectures: 128-band log-mel in dB, or its first "
             "--n-mfcc MFCCs (default logmel; --arch musicnn always takes musicnn's own front end)")
    add("--n-mfcc", metavar="N", type=int, default=_DEFAULT.n_mfcc, help="MFCCs of --input mfcc (default 40; the seeds used 40 and 128)")
    add("--pretrained", action="store_true",
        help="--arch musicnn: start from the shipped MSD-musicnn weights with a new output layer for "
             "your genres, and train only that layer (the head) unless --unfreeze")
    add("--unfreeze", action="store_true",
        help="--pretrained: after --head-epochs epochs on the head, train the whole network at --unfreeze-lr")
    add("--head-epochs", metavar="N", type=int, default=None,
        help="--unfreeze: epochs that train the head only (default: half of --epochs)")
    add("--unfreeze-lr", metavar="RATE", type=float, default=None,
        help="--unfreeze: learning rate of the whole network (default --lr / 10), cosine-annealed to 0")
    add("--head", choices=["output", "dense"], default=_DEFAULT.head,
        help="--pretrained: the head is the new output layer alone, or also the 200-unit dense layer "
             "before it (default output)")
    add("--width", metavar="C", type=int, default=None, help="channels of the first layers (architecture default)")
    add("--device", metavar="DEVICE", default=_DEFAULT.device, help="cpu, cuda, cuda:1... (default cpu)")
    add("--seed", metavar="N", type=int, default=_DEFAULT.seed, help="random seed (default 0)")
    add("--resume", action="store_true", help="continue the run in --out after its last finished epoch (default: start afresh)")
    add("--cache", metavar="DIR", type=Path, help="feature cache folder (default $GENREKIT_CACHE or ~/.cache/genrekit)")
    add("--jobs", "-j", metavar="N", type=int, default=_DEFAULT.jobs, help="processes computing features (default 1)")
    add("--threads", metavar="N", type=int, default=None,
        help="torch threads (default: one per core; 1 is faster on a busy machine)")


def cnn_options(args: argparse.Namespace) -> CnnOptions:
    """The :class:`CnnOptions` parsed :func:`add_cnn_arguments` options ask for.

    An option the parser lacks (or left ``None``) keeps :class:`CnnOptions`'s default;
    ``--width`` becomes the architecture option ``width``.
    """
    given = {field: getattr(args, dest, None) for field, dest in _FIELDS.items()}
    width = getattr(args, "width", None)
    return CnnOptions(**{field: value for field, value in given.items() if value is not None},
                      arch_options={} if width is None else {"width": width})


def main(argv: list[str] | None = None) -> int:
    """``python -m genrekit.training.cnn``: parse the options, train, return exit status 0."""
    parser = argparse.ArgumentParser(
        prog="python -m genrekit.training.cnn", description="Train a CNN genre model on log-mel crops."
    )
    add_cnn_arguments(parser)
    args = parser.parse_args(argv)
    from genrekit.training.cnn.trainer import CnnTrainer  # PyTorch, once the options are known to be sound

    CnnTrainer(args.data, cnn_options(args)).train(args.out)
    return 0
