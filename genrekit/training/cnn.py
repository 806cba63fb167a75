"""Training a CNN genre model: crops, checkpoints that survive SIGKILL, ONNX export, a bundle.

>>> from genrekit.training.cnn import train_cnn            # doctest: +SKIP
>>> train_cnn("genres/", "runs/shortres", arch="shortres", split="artist",
...           artists="GTZANindex.txt", epochs=30)
PosixPath('runs/shortres')

What happens
------------
1. Every track's log-mel spectrogram is computed once through the feature cache and
   held in memory (:func:`genrekit.models.cnn_data.load_tracks`).
2. The tracks are split by :func:`genrekit.datasets.splits.make_splits` (one row per track);
   when the split has no validation side, one is carved from the training tracks
   (stratified by genre, artist-disjoint when artists are known).
3. Each epoch draws ``crops_per_track`` random crops of every training track, with
   SpecAugment masks, a random gain and optional mixup; then every validation track is
   scored on its deterministic windows (mean probability per track).
4. After every epoch a checkpoint (model, optimizer, scheduler, RNG states, history,
   best-so-far weights) replaces ``checkpoint.pt`` atomically and ``history.csv`` is
   rewritten. ``resume=True`` continues after the last finished epoch.
5. At the end (``epochs`` reached, or ``patience`` epochs without improvement on the
   validation set) the best-on-validation weights are evaluated on the validation and
   test tracks (:func:`genrekit.evaluation.metrics.evaluate`), exported to ONNX, checked against
   PyTorch, and written as a model bundle in ``out_dir`` with ``results.json``.

Reproducibility
---------------
Weights are initialised after ``torch.manual_seed(seed)``; each epoch reseeds numpy
(crops, masks, mixup) and torch (dropout) from ``(seed, epoch)``, so an epoch is a
function of the weights it starts from and nothing else: a run resumed after a kill
ends with the same weights as one that never stopped (bit for bit on CPU with the same
thread count; GPUs add their own non-determinism).

Fine-tuning
-----------
``arch="musicnn", pretrained=True`` (``--arch musicnn --pretrained``) starts from the
shipped MSD-musicnn weights (:func:`genrekit.models.musicnn_architecture.pretrained`) with a new,
randomly initialised output layer for the user's genres, and trains in stages:

1. **head only**: the new output layer (``head="output"``; ``"dense"`` adds the
   200-unit dense layer and its batch norm) learns at ``lr``; the rest of the network is
   frozen — no gradients, and its batch norms keep the statistics learnt on the Million
   Song Dataset. Without ``unfreeze`` this is the whole run, ``lr`` cosine-annealed over
   ``epochs``.
2. with ``unfreeze`` (``--unfreeze``), after ``head_epochs`` epochs (default half of
   ``epochs``) at a constant ``lr``: **the whole network** at ``unfreeze_lr`` (default
   ``lr / 10``), cosine-annealed to 0 over the remaining epochs, so that the pretrained
   features move little while the new head has already settled.

The stage is a function of the epoch number, so ``--resume`` continues the same schedule.
Without ``pretrained`` the same architecture trains from scratch like the others.

Run folder
----------
``checkpoint.pt`` (resume state), ``history.csv``, ``bundle.json`` + ``model.onnx`` +
``MODEL_CARD.md`` (the bundle: ``genrekit classify --model RUN_DIR``), ``results.json``,
and ``tensorboard/`` when TensorBoard is installed.
"""

from __future__ import annotations

import argparse
import copy
import csv
import hashlib
import importlib.util
import io
import json
import logging
import os
import random
import sys
import tempfile
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from genrekit._version import __version__
from genrekit._io import write_bytes_atomic, write_json_atomic
from genrekit.errors import DatasetError, TrainingError
from genrekit.models import cnn
from genrekit.training.cnn_options import DEFAULTS, add_cnn_arguments  # noqa: F401  (re-exported; main uses it)
from genrekit.models.cnn_data import (
    DEFAULT_HOP,
    DEFAULT_WINDOW,
    Augment,
    TrackSet,
    cnn_feature_set,
    epoch_batches,
    input_bands,
    load_tracks,
    track_windows,
    window_frames,
)

__all__ = ["train_cnn", "export_onnx", "add_cnn_arguments", "run_from_args", "TrainingError", "HISTORY_COLUMNS"]

CHECKPOINT = "checkpoint.pt"
HISTORY = "history.csv"
RESULTS = "results.json"
#: Columns of ``history.csv``. ``train_loss`` / ``train_acc``: cross-entropy and accuracy
#: of the augmented training crops (against the dominant class under mixup);
#: ``valid_loss``: mean cross-entropy of the validation windows; ``valid_acc``: track-level
#: accuracy (argmax of the mean window probability); ``lr``: the learning rate the epoch
#: used; ``seconds``: the epoch's wall time; ``finished``: Unix time its checkpoint was written.
HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "lr", "seconds", "finished")
#: Largest |onnxruntime − PyTorch| probability accepted for an exported network.
ONNX_TOLERANCE = 1e-4
ONNX_OPSET = 18
INPUT_NAME = "logmel"
OUTPUT_NAME = "probabilities"
_CHECKPOINT_FORMAT = "genrekit-cnn-checkpoint"


# --- the training run ----------------------------------------------------------------
def train_cnn(
    data,
    out_dir: str | os.PathLike,
    *,
    arch: str = DEFAULTS["arch"],
    split: str = DEFAULTS["split"],
    epochs: int = DEFAULTS["epochs"],
    batch_size: int = DEFAULTS["batch_size"],
    lr: float = DEFAULTS["lr"],
    weight_decay: float = DEFAULTS["weight_decay"],
    device: str = DEFAULTS["device"],
    seed: int = DEFAULTS["seed"],
    resume: bool = False,
    patience: int = DEFAULTS["patience"],
    monitor: str = DEFAULTS["monitor"],
    artists=None,
    split_dir: str | os.PathLike | None = None,
    folds: int = DEFAULTS["folds"],
    fold: int | None = None,
    test_size: float = DEFAULTS["test_size"],
    valid_size: float = DEFAULTS["valid_size"],
    mixup: bool = False,
    mixup_alpha: float = DEFAULTS["mixup_alpha"],
    augment: Augment | None = None,
    crops_per_track: int = DEFAULTS["crops_per_track"],
    window: float = DEFAULT_WINDOW,
    hop: float = DEFAULT_HOP,
    n_mels: int = DEFAULTS["n_mels"],
    arch_options: dict | None = None,
    input: str = DEFAULTS["input"],
    n_mfcc: int = DEFAULTS["n_mfcc"],
    pretrained: bool = False,
    unfreeze: bool = False,
    head_epochs: int | None = None,
    unfreeze_lr: float | None = None,
    head: str = DEFAULTS["head"],
    cache=None,
    jobs: int = DEFAULTS["jobs"],
    threads: int | None = None,
    progress: bool = True,
    verbose: bool = True,
    command: str | None = None,
) -> Path:
    """Train a CNN on a dataset of labelled audio and write a model bundle.

    Parameters
    ----------
    data : str, path-like or TrackSet
        A ``<genre>/<file>`` folder or a ``path,label[,artist]`` CSV manifest
        (:func:`~genrekit.models.cnn_data.read_manifest`), or tracks already loaded with
        :func:`~genrekit.models.cnn_data.load_tracks`.
    out_dir : str or path-like
        Run folder (see the module docstring). A folder holding a checkpoint is only
        reused with ``resume=True``.
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
        Continue from ``out_dir/checkpoint.pt`` when it exists (its settings must match).
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
    augment : Augment, optional
        SpecAugment and gain settings (default :class:`~genrekit.models.cnn_data.Augment`).
    crops_per_track : int
        Random crops drawn from each training track per epoch.
    window, hop : float
        Seconds. The crop and evaluation window length, and the hop of evaluation windows.
    n_mels : int
        Mel bands of the log-mel features.
    arch_options : dict, optional
        Passed to the architecture (``{"width": 16}``...).
    input : {"logmel", "mfcc"}
        The input image of the from-scratch architectures (see
        :mod:`genrekit.models.cnn_data`); ``musicnn`` always takes ``musicnn_frontend``.
    n_mfcc : int
        Coefficients of ``input="mfcc"``.
    pretrained : bool
        ``arch="musicnn"`` only: start from the shipped MSD-musicnn weights with a new output
        layer; see "Fine-tuning" in the module docstring.
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
    progress : bool
        A tqdm bar per epoch when stderr is a terminal.
    verbose : bool
        One line per epoch on stderr.
    command : str, optional
        The command line, for the model card (default: ``sys.argv``).

    Returns
    -------
    Path
        ``out_dir``, holding the bundle, ``results.json`` and ``history.csv``.

    Raises
    ------
    TrainingError
        A checkpoint from different settings, an existing checkpoint without
        ``resume``, or an ONNX export that disagrees with PyTorch.
    genrekit.errors.DatasetError
        Unusable data or split settings.
    """
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        out_dir = Path(out_dir)
        ckpt_path = out_dir / CHECKPOINT
        if ckpt_path.exists() and not resume:
            raise TrainingError(
                f"{out_dir} already holds a training run ({CHECKPOINT}); resume it with resume=True "
                f"(--resume) or choose another output folder"
            )
        if split == "random-rows":
            raise TrainingError("split 'random-rows' puts crops of one track on both sides; use 'random'")
        if monitor not in ("accuracy", "loss"):
            raise ValueError(f"monitor must be 'accuracy' or 'loss', got {monitor!r}")
        dev = _device(device)
        log = _logger(verbose)
        augment = augment if augment is not None else Augment()
        if mixup:
            augment = Augment(**{**asdict(augment), "mixup": mixup_alpha})
        arch_options = dict(arch_options or {})
        schedule = _schedule(arch, epochs, lr, pretrained, unfreeze, head_epochs, unfreeze_lr, head)

        # --- data and split --------------------------------------------------------------
        fs = _input_feature_set(arch, input, n_mels, n_mfcc)
        if fs.name != "logmel" and augment.gain_db:
            # a dB offset is a gain only on a dB scale (not on MFCCs or musicnn's log10(1 + 10^4 x))
            augment = Augment(**{**asdict(augment), "gain_db": 0.0})
        if isinstance(data, TrackSet):
            tracks = data
            if tracks.fs.name != fs.name:
                raise TrainingError(f"--arch {arch} takes {fs.name} input; these tracks hold {tracks.fs.name}")
            if tracks.fs != fs:
                fs = tracks.fs
        else:
            tracks = load_tracks(data, fs, cache=cache, jobs=jobs, progress=progress)
        classes = tracks.classes
        y = tracks.y
        n_frames = _patch_frames(arch, fs, window)
        bands = input_bands(fs)
        parts, split_info = _split(tracks, split, test_size, valid_size, seed, artists, split_dir, folds, fold)
        log(f"data: {tracks.source}")
        log(f"split: {split_info['description']}")

        config = {
            "arch": arch, "arch_options": arch_options, "classes": classes, "epochs": epochs,
            "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "seed": seed,
            "monitor": monitor, "patience": patience, "augment": asdict(augment),
            "crops_per_track": crops_per_track, "window": window, "hop": hop, "n_frames": n_frames,
            "feature_set_key": fs.key, "split": split_info["name"], "fold": split_info["fold"],
            "data": _fingerprint(tracks, parts),
        }
        # Keys only where they differ from what older runs did, so their checkpoints still resume.
        if fs.name != "logmel":
            config["input"] = fs.key
        if schedule is not None:
            config["schedule"] = schedule

        # --- model, optimizer, state -----------------------------------------------------
        torch.manual_seed(seed)
        if schedule is not None:
            from genrekit.models.musicnn_architecture import pretrained as pretrained_musicnn

            model = pretrained_musicnn()
            model.replace_head(len(classes))  # drawn from the seeded generator: reproducible
            model = model.to(dev)
            optimizer, scheduler = _finetune_optimizer(model, schedule, weight_decay)
        else:
            model = cnn.build(arch, len(classes), bands, **arch_options).to(dev)
            optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
        state = {"epoch": 0, "history": [], "best": None, "stale": 0, "done": False}
        for stale in out_dir.glob(f".{CHECKPOINT}.*.tmp"):
            stale.unlink(missing_ok=True)  # a write cut short by a kill; checkpoint.pt itself is whole
        if ckpt_path.exists():
            state = _restore(ckpt_path, config, model, optimizer, scheduler, dev)
            log(f"resuming {out_dir} after epoch {state['epoch']}" + (" (training had finished)" if state["done"] else ""))

        writer = _tensorboard(out_dir, state["epoch"])
        try:
            for epoch in range(state["epoch"] + 1, epochs + 1):
                if state["done"]:
                    break
                t0 = time.perf_counter()
                # Why reseed per epoch: an epoch is then a function of (seed, epoch, weights),
                # so a resumed run replays exactly what the killed one would have done.
                rng = np.random.default_rng([seed, epoch])
                torch.manual_seed(seed * 100_003 + epoch)
                lr_now = max(g["lr"] for g in optimizer.param_groups)
                frozen = _frozen_modules(model, schedule, epoch)
                train_loss, train_acc = _train_epoch(
                    model, optimizer, tracks, y, parts["train"], rng, dev,
                    n_classes=len(classes), n_frames=n_frames, batch_size=batch_size,
                    crops_per_track=crops_per_track, augment=augment,
                    desc=f"epoch {epoch}/{epochs}", progress=progress, frozen=frozen,
                )
                scheduler.step()
                proba, owners = _predict_windows(model, tracks, parts["valid"], window, hop, n_frames, dev)
                valid_loss, valid_acc = _valid_figures(proba, owners, y)
                row = {
                    "epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
                    "valid_loss": valid_loss, "valid_acc": valid_acc, "lr": lr_now,
                    "seconds": round(time.perf_counter() - t0, 3),
                }
                if _improved(state["best"], valid_acc, valid_loss, monitor):
                    state["best"] = {
                        "epoch": epoch, "valid_acc": valid_acc, "valid_loss": valid_loss,
                        "model": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},
                    }
                    state["stale"] = 0
                else:
                    state["stale"] += 1
                state["epoch"] = epoch
                state["done"] = epoch >= epochs or state["stale"] >= patience
                row["finished"] = round(time.time(), 3)
                state["history"].append(row)
                _save_checkpoint(ckpt_path, config, model, optimizer, scheduler, state)
                _write_history(out_dir / HISTORY, state["history"])
                if writer is not None:
                    for key in ("train_loss", "train_acc", "valid_loss", "valid_acc", "lr"):
                        writer.add_scalar(key, row[key], epoch)
                    writer.flush()
                mark = " *" if state["best"]["epoch"] == epoch else ""
                log(
                    f"epoch {epoch:3d}/{epochs}: train loss {train_loss:.4f} acc {train_acc:.3f} | "
                    f"valid loss {valid_loss:.4f} acc {valid_acc:.3f} | {row['seconds']:.1f} s{mark}"
                )
                if state["stale"] >= patience:
                    log(f"stopping early: no improvement for {patience} epochs (best: epoch {state['best']['epoch']})")
        finally:
            if writer is not None:
                writer.close()
        if state["best"] is None:
            raise TrainingError(f"{out_dir}: no epoch was trained (epochs={epochs})")
        _write_history(out_dir / HISTORY, state["history"])

        # --- evaluation, export, bundle --------------------------------------------------------
        model.load_state_dict(state["best"]["model"])
        metrics, outputs = {}, {}
        for side in ("valid", "test"):
            idx = parts[side]
            if idx is not None and len(idx):
                outputs[side] = _predict_windows(model, tracks, idx, window, hop, n_frames, dev)
                metrics[side] = _evaluate(*outputs[side], tracks, classes, seed)
        unknown = _unknown_decision(*outputs["valid"], tracks, classes, artists, seed) if "valid" in outputs else None
        sample = next(track_windows(tracks, parts["valid"][:4], window, hop, n_frames, max_windows=16))[0]
        onnx_bytes = export_onnx(model, bands, n_frames, sample=sample[:16], seed=seed)

        params = {
            "arch": arch, **arch_options, "n_parameters": cnn.n_parameters(model), "epochs": epochs,
            "epochs_run": state["epoch"], "best_epoch": state["best"]["epoch"], "batch_size": batch_size,
            "lr": lr, "weight_decay": weight_decay, "optimizer": "AdamW, cosine annealing",
            "seed": seed, "monitor": monitor, "patience": patience, "crops_per_track": crops_per_track,
            "augment": asdict(augment), "device": str(dev), "input": fs.name,
            **({"n_mfcc": fs.n_mfcc} if fs.name == "mfcc" else {}),
            **({"fine_tuning": schedule} if schedule is not None else {}),
        }
        bundle_metrics = {**metrics, "leaky": split_info["leaky"]}
        card = {
            "model": f"cnn-{arch}" + ("-pretrained" if schedule is not None else ""),
            "params": params,
            "data": tracks.source,
            "split": split_info["description"],
            "figures": {},
            "command": command if command is not None else " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        }
        _write_bundle(out_dir, onnx_bytes, classes, fs, n_frames, window, hop, bundle_metrics, card, unknown)

        from genrekit.evaluation.metrics import model_entry, results_json

        entry = model_entry(
            valid=metrics.get("valid"), test=metrics.get("test"), params=params,
            n_tracks={side: (0 if idx is None else len(idx)) for side, idx in parts.items()},
            history=HISTORY, bundle=".",
        )
        results = results_json(split_info, {f"cnn-{arch}": entry})
        results["n_tracks"] = len(tracks)
        results["data"] = tracks.source
        write_json_atomic(out_dir / RESULTS, results)
        test = metrics.get("test") or metrics.get("valid")
        if test:
            which = "test" if "test" in metrics else "valid"
            log(
                f"{which}: track accuracy {test['track']['accuracy']:.3f} "
                f"({test['n_tracks']} tracks), window accuracy {test['window']['accuracy']:.3f}; "
                f"bundle in {out_dir}"
            )
        return out_dir
    finally:
        torch.set_num_threads(previous_threads)


# --- inputs and fine-tuning ------------------------------------------------------------------
def _input_feature_set(arch: str, input: str, n_mels: int, n_mfcc: int):
    """The feature set the network ``arch`` is fed (``--input``; fixed for ``musicnn``)."""
    if arch in cnn.FIXED_INPUT:
        if input != "logmel":
            raise TrainingError(f"--arch {arch} takes its own front end ({cnn.FIXED_INPUT[arch]}); "
                                f"--input {input} is for the other architectures")
        return cnn_feature_set(cnn.FIXED_INPUT[arch])
    if input == "mfcc":
        if not 1 <= n_mfcc <= n_mels:
            raise TrainingError(f"--n-mfcc must be between 1 and the {n_mels} mel bands, got {n_mfcc}")
        return cnn_feature_set("mfcc", n_mels=n_mels, n_mfcc=n_mfcc)
    if input != "logmel":
        raise TrainingError(f"unknown --input {input!r}; expected logmel or mfcc")
    return cnn_feature_set(n_mels=n_mels)


def _patch_frames(arch: str, fs, window: float) -> int:
    """Frames per crop and window: musicnn's fixed 187-frame patch, else ``window`` seconds."""
    if arch == "musicnn":
        from genrekit.backbones.msd_musicnn import PATCH_FRAMES

        return PATCH_FRAMES
    return window_frames(fs, window)


#: Layers of each ``head`` choice of a fine-tuned musicnn (module names of MusiCNN).
HEAD_LAYERS = {"output": ("output",), "dense": ("dense", "dense_bn", "output")}


def _schedule(arch, epochs, lr, pretrained, unfreeze, head_epochs, unfreeze_lr, head) -> dict | None:
    """The fine-tuning schedule (see "Fine-tuning" in the module docstring), or None to train from scratch."""
    if not pretrained:
        if unfreeze or head_epochs is not None or unfreeze_lr is not None:
            raise TrainingError("--unfreeze, --head-epochs and --unfreeze-lr need --pretrained")
        return None
    if arch != "musicnn":
        raise TrainingError(f"--pretrained needs --arch musicnn (the network genrekit has weights for), not {arch!r}")
    if head not in HEAD_LAYERS:
        raise TrainingError(f"--head must be one of {', '.join(HEAD_LAYERS)}, got {head!r}")
    if not unfreeze:
        if head_epochs is not None or unfreeze_lr is not None:
            raise TrainingError("--head-epochs and --unfreeze-lr need --unfreeze")
        return {"head": head, "head_epochs": epochs, "lr": lr, "unfreeze_lr": None}
    h = max(1, epochs // 2) if head_epochs is None else head_epochs
    if not 0 <= h < epochs:
        raise TrainingError(f"--head-epochs must be from 0 to --epochs - 1 ({epochs - 1}), got {h}")
    ulr = lr / 10 if unfreeze_lr is None else unfreeze_lr
    if not ulr > 0:
        raise TrainingError(f"--unfreeze-lr must be positive, got {ulr}")
    return {"head": head, "head_epochs": h, "lr": lr, "unfreeze_lr": ulr, "epochs": epochs}


class _StageFactor:
    """LambdaLR factor of one parameter group (picklable, unlike a lambda): ``before`` for
    the head-only epochs, then a cosine from ``after`` to 0 over the remaining epochs."""

    def __init__(self, head_epochs: int, epochs: int, before: float, after: float) -> None:
        self.h, self.n, self.before, self.after = head_epochs, epochs, before, after

    def __call__(self, e: int) -> float:  # e: epochs already done
        if e < self.h:
            return self.before
        t = (e - self.h) / max(1, self.n - self.h)
        return float(self.after * 0.5 * (1 + np.cos(np.pi * t)))  # a plain float: checkpoints load weights_only


def _finetune_optimizer(model, schedule: dict, weight_decay: float):
    """AdamW over two groups (head, body) and the stage-wise learning rates of ``schedule``."""
    names = HEAD_LAYERS[schedule["head"]]
    head = [p for n, p in model.named_parameters() if n.split(".")[0] in names]
    body = [p for n, p in model.named_parameters() if n.split(".")[0] not in names]
    lr = schedule["lr"]
    if schedule["unfreeze_lr"] is None:  # head only, all epochs: plain cosine annealing
        optimizer = torch.optim.AdamW(head, lr=lr, weight_decay=weight_decay)
        return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, schedule["head_epochs"]))
    ulr, h, n = schedule["unfreeze_lr"], schedule["head_epochs"], schedule["epochs"]
    optimizer = torch.optim.AdamW([{"params": head, "lr": lr}, {"params": body, "lr": ulr}],
                                  weight_decay=weight_decay)
    factors = [_StageFactor(h, n, 1.0, ulr / lr), _StageFactor(h, n, 0.0, 1.0)]
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factors)


def _frozen_modules(model, schedule: dict | None, epoch: int) -> list:
    """The modules frozen during ``epoch`` (their parameters get no gradient), [] when none."""
    if schedule is None:
        return []
    names = HEAD_LAYERS[schedule["head"]]
    unfrozen = schedule["unfreeze_lr"] is not None and epoch > schedule["head_epochs"]
    frozen = [] if unfrozen else [m for n, m in model.named_children() if n not in names and n != "dropout"]
    for n, p in model.named_parameters():
        p.requires_grad_(unfrozen or n.split(".")[0] in names)
    return frozen


# --- pieces of the loop ----------------------------------------------------------------------
def _device(device: str) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"device {device!r} requested but CUDA is not available (torch {torch.__version__})")
    return dev


def _logger(verbose: bool):
    def log(message: str) -> None:
        if verbose:
            print(message, file=sys.stderr, flush=True)

    return log


def _split(tracks: TrackSet, kind, test_size, valid_size, seed, artists, split_dir, folds, fold):
    """Track indices of each side, and the split's summary for results.json."""
    from genrekit.datasets.splits import make_splits
    from genrekit.evaluation.metrics import split_summary

    table = tracks.table()
    artists = artists if artists is not None else tracks.artists
    has_valid = kind in ("random", "artist")
    splits = make_splits(
        table, kind, test_size=test_size, valid_size=valid_size if has_valid else 0.0,
        seed=seed, artists=artists, split_dir=split_dir, folds=folds,
    )
    k = 0 if fold is None else fold
    if not 0 <= k < len(splits):
        raise TrainingError(f"fold {fold} does not exist: the {kind} split has {len(splits)} folds (0..{len(splits) - 1})")
    chosen = splits[k]
    train, valid, test = chosen.train, chosen.valid, chosen.test
    description = chosen.description
    if valid is None or not len(valid):
        train, valid, note = _carve_valid(tracks, train, valid_size or 0.1, seed, artists)
        description += f"; {note}"
    chosen = type(chosen)(np.sort(train), np.sort(valid), np.sort(test), chosen.name, description,
                          chosen.leaky, chosen.fold)
    info = split_summary(chosen, table)
    return {"train": chosen.train, "valid": chosen.valid, "test": chosen.test}, info


def _carve_valid(tracks: TrackSet, train: np.ndarray, fraction: float, seed: int, artists):
    """Hold out about ``fraction`` of the training tracks for validation.

    Whole artists are held out (clips without a known artist, or all clips when no
    artists are given, are groups of their own), so that validation accuracy is not
    inflated by an artist's other songs. Genres take turns (in an order shuffled by
    ``seed``), each giving up one random artist per turn, which stratifies the hold-out
    by genre; an artist is never taken when that would leave its genre with no artist
    in training. Why: in small data (GTZAN subsets) a genre is often one artist, and
    holding that artist out would teach the network nothing about the genre. When no
    artist can be spared, single tracks are held out instead and the note says so.
    """
    from genrekit.datasets.splits import artist_groups

    labels = tracks.labels[train]
    target = max(1, int(round(fraction * len(train))))
    if artists is not None:
        groups = artist_groups(tracks.table().subset(train), artists)
    else:
        groups = tracks.tracks[train]
    held = _hold_out_groups(labels, groups, target, seed)
    what = "whole artists" if artists is not None else "whole tracks"
    if not len(held) and artists is not None:
        held = _hold_out_groups(labels, tracks.tracks[train], target, seed)
        what = "single tracks, NOT artist-disjoint: no genre has an artist to spare"
    if not len(held):
        raise TrainingError(
            f"cannot hold out validation tracks from {len(train)} training tracks without removing a genre "
            f"from training; use a split with a validation side or more data"
        )
    keep = np.setdiff1d(np.arange(len(train)), held)
    note = (f"validation: {len(held)} of its {len(train)} training tracks held out "
            f"({what}, stratified by genre, every genre kept in training)")
    return train[keep], train[held], note


def _hold_out_groups(labels: np.ndarray, groups: np.ndarray, target: int, seed: int) -> np.ndarray:
    """Positions of about ``target`` items making up whole groups, genres taking turns (see :func:`_carve_valid`)."""
    rng = np.random.default_rng(seed)
    genres = rng.permutation(np.unique(labels))
    members = {g: np.flatnonzero(groups == g) for g in np.unique(groups)}
    # Per genre, its groups in random order; a group spanning genres is listed under each.
    queue = {genre: list(rng.permutation(np.unique(groups[labels == genre]))) for genre in genres}
    left = {genre: len(queue[genre]) for genre in genres}  # groups of each genre still in training
    taken: list[np.ndarray] = []
    n_taken, progress = 0, True
    while n_taken < target and progress:
        progress = False
        for genre in genres:
            while queue[genre]:
                group = queue[genre].pop(0)
                spans = np.unique(labels[members[group]])
                if any(left[s] <= 1 for s in spans):  # the last artist of a genre stays in training
                    continue
                taken.append(members[group])
                n_taken += len(members[group])
                for s in spans:
                    left[s] -= 1
                    if s != genre and group in queue[s]:
                        queue[s].remove(group)
                progress = True
                break
            if n_taken >= target:
                break
    return np.sort(np.concatenate(taken)) if taken else np.zeros(0, dtype=int)


def _fingerprint(tracks: TrackSet, parts: dict) -> str:
    """A hash of the tracks, labels and split sides: a checkpoint resumes only the same data."""
    h = hashlib.sha256()
    for side in ("train", "valid", "test"):
        idx = parts[side]
        h.update(side.encode())
        for i in [] if idx is None else idx:
            h.update(f"{tracks.tracks[i]}\t{tracks.labels[i]}\n".encode())
    return h.hexdigest()[:16]


def _soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def _train_epoch(model, optimizer, tracks, y, idx, rng, dev, *, n_classes, n_frames, batch_size,
                 crops_per_track, augment, desc, progress, frozen=()) -> tuple[float, float]:
    model.train()
    for module in frozen:  # a frozen backbone keeps its batch-norm statistics
        module.eval()
    n_batches = max(0, -(-len(idx) * crops_per_track // batch_size))
    bar = _bar(n_batches, desc, progress)
    total = correct = 0
    loss_sum = 0.0
    try:
        for X, T in epoch_batches(
            tracks.specs, y, idx, n_classes=n_classes, n_frames=n_frames, batch_size=batch_size,
            crops_per_track=crops_per_track, augment=augment, rng=rng,
        ):
            x = torch.from_numpy(X).to(dev, non_blocking=True)
            t = torch.from_numpy(T).to(dev, non_blocking=True)
            logits = model(x)
            loss = _soft_cross_entropy(logits, t)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            n = len(X)
            loss_sum += loss.item() * n
            correct += int((logits.argmax(1) == t.argmax(1)).sum())
            total += n
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / total:.3f}")
    finally:
        if bar is not None:
            bar.close()
    return loss_sum / max(total, 1), correct / max(total, 1)


def _bar(total: int, desc: str, progress: bool):
    if not progress or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=False, file=sys.stderr)


@torch.no_grad()
def _predict_windows(model, tracks, idx, window, hop, n_frames, dev) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities of every evaluation window of tracks ``idx``, and each window's track."""
    model.eval()
    probas, owners = [], []
    for X, owner in track_windows(tracks, idx, window, hop, n_frames):
        probas.append(torch.softmax(model(torch.from_numpy(X).to(dev)), dim=1).double().cpu().numpy())
        owners.append(owner)
    return np.concatenate(probas), np.concatenate(owners)


def _valid_figures(proba: np.ndarray, owners: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Window-level cross-entropy, and track-level accuracy (argmax of the mean window probability)."""
    loss = float(-np.mean(np.log(np.clip(proba[np.arange(len(owners)), y[owners]], 1e-12, None))))
    tracks, inverse = np.unique(owners, return_inverse=True)
    sums = np.zeros((len(tracks), proba.shape[1]))
    np.add.at(sums, inverse, proba)
    acc = float(np.mean(sums.argmax(1) == y[tracks]))
    return loss, acc


def _improved(best: dict | None, acc: float, loss: float, monitor: str) -> bool:
    if best is None:
        return True
    if monitor == "loss":
        return loss < best["valid_loss"]
    # Small validation sets make accuracy coarse: equal accuracy with a lower loss counts.
    return acc > best["valid_acc"] or (acc == best["valid_acc"] and loss < best["valid_loss"])


def _evaluate(proba, owners, tracks: TrackSet, classes, seed) -> dict:
    from genrekit.evaluation.metrics import evaluate

    windows = SimpleNamespace(labels=tracks.labels[owners], tracks=tracks.tracks[owners])
    return evaluate(proba, windows, classes, seed=seed)


# --- checkpoints ------------------------------------------------------------------------------
def _rng_states() -> dict:
    np_state = np.random.get_state(legacy=False)
    np_state["state"]["key"] = np_state["state"]["key"].tolist()  # weights_only loads plain types only
    states = {"python": random.getstate(), "numpy": np_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict) -> None:
    random.setstate(_tuples(states["python"]))
    np_state = dict(states["numpy"])
    np_state["state"] = dict(np_state["state"], key=np.array(np_state["state"]["key"], dtype=np.uint32))
    np.random.set_state(np_state)
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def _save_checkpoint(path: Path, config, model, optimizer, scheduler, state) -> None:
    """Write the resume state atomically: a reader (or a resumed run) sees the old file or the new one."""
    payload = {
        "format": _CHECKPOINT_FORMAT,
        "version": 1,
        "config": config,
        "epoch": state["epoch"],
        "done": state["done"],
        "stale": state["stale"],
        "history": state["history"],
        "best": state["best"],
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": _rng_states(),
        "genrekit_version": __version__,
        "torch_version": str(torch.__version__),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    write_bytes_atomic(path, buf.getvalue())


def _restore(path: Path, config, model, optimizer, scheduler, dev) -> dict:
    try:
        ckpt = torch.load(path, map_location=dev, weights_only=True)
    except Exception as exc:  # a truncated or foreign file; atomic writes make this unlikely
        raise TrainingError(f"{path}: cannot read the checkpoint ({exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != _CHECKPOINT_FORMAT:
        raise TrainingError(f"{path}: not a genrekit CNN checkpoint")
    old = ckpt["config"]
    changed = sorted(k for k in set(old) | set(config) if _plain(old.get(k)) != _plain(config.get(k)))
    if changed:
        details = "; ".join(f"{k}: {old.get(k)!r} then, {config.get(k)!r} now" for k in changed[:4])
        raise TrainingError(
            f"{path}: the checkpoint was made with other settings ({details}); resume with the same "
            f"settings or train into another folder"
        )
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    _set_rng_states(ckpt["rng"])
    best = ckpt["best"]
    if best is not None:
        best = dict(best, model={k: v.to("cpu") for k, v in best["model"].items()})
    return {"epoch": ckpt["epoch"], "history": list(ckpt["history"]), "best": best,
            "stale": ckpt["stale"], "done": ckpt["done"]}


def _plain(value):
    """JSON round trip, so tuples and lists (and int/float spellings) compare equal."""
    return json.loads(json.dumps(value, sort_keys=True))


def _write_history(path: Path, history: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    w.writeheader()
    for row in history:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) and k != "finished" else v) for k, v in row.items()})
    write_bytes_atomic(path, buf.getvalue().encode("utf-8"))


def _tensorboard(out_dir: Path, start_epoch: int):
    """A SummaryWriter in ``out_dir/tensorboard`` when TensorBoard is installed, else None."""
    if importlib.util.find_spec("tensorboard") is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(out_dir / "tensorboard"), purge_step=start_epoch + 1)


# --- export --------------------------------------------------------------------------------------
def export_onnx(
    model: torch.nn.Module, n_mels: int, n_frames: int, *, sample: np.ndarray | None = None, seed: int = 0
) -> bytes:
    """The network followed by a softmax as ONNX bytes, checked against PyTorch.

    Input ``logmel`` float32 ``[batch, 1, n_mels, n_frames]`` (dynamic batch axis),
    output ``probabilities`` ``[batch, n_classes]``, opset 18. The torch.export-based
    exporter is used when ``onnxscript`` is installed, the TorchScript one otherwise.

    Parameters
    ----------
    model : torch.nn.Module
        Logits network (see :mod:`genrekit.models.cnn`); it is not modified.
    n_mels, n_frames : int
        Input patch size.
    sample : np.ndarray, optional
        Real patches to check the export on, besides a random batch.
    seed : int
        Seed of the random check batch.

    Raises
    ------
    TrainingError
        If onnxruntime's probabilities differ from PyTorch's by more than
        :data:`ONNX_TOLERANCE` on the check batches.
    """
    import onnxruntime as ort

    net = cnn.with_softmax(copy.deepcopy(model).to("cpu")).eval()
    example = torch.zeros(2, 1, n_mels, n_frames)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation chatter from the exporters
        target = os.path.join(tmp, "model.onnx")
        if importlib.util.find_spec("onnxscript") is not None:
            level = logging.getLogger("torch.onnx").level
            logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed"
            try:
                program = torch.onnx.export(
                    net, (example,), None, dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                    dynamic_shapes=({0: torch.export.Dim("batch")},), opset_version=ONNX_OPSET, verbose=False,
                )
            finally:
                logging.getLogger("torch.onnx").setLevel(level)
            onnx_bytes = program.model_proto.SerializeToString()
        else:
            torch.onnx.export(
                net, (example,), target, dynamo=False, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, opset_version=ONNX_OPSET,
            )
            with open(target, "rb") as f:
                onnx_bytes = f.read()

    from genrekit.onnx_sessions import session_options

    session = ort.InferenceSession(onnx_bytes, session_options(), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(seed)
    # Random patches at a log-mel's level (dB below the peak), 5 windows: not the batch size exported with.
    checks = [(torch.randn(5, 1, n_mels, n_frames, generator=g) * 15 - 40).numpy()]
    if sample is not None and len(sample):
        checks.append(np.ascontiguousarray(sample, dtype=np.float32))
    for X in checks:
        (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: X})
        with torch.no_grad():
            want = net(torch.from_numpy(X)).numpy()
        worst = float(np.max(np.abs(got - want)))
        if not worst <= ONNX_TOLERANCE:
            raise TrainingError(
                f"ONNX export disagrees with PyTorch: probabilities differ by up to {worst:.2g} "
                f"(tolerance {ONNX_TOLERANCE:g})"
            )
    return onnx_bytes


def _unknown_decision(proba, owners, tracks: TrackSet, classes, artists, seed) -> dict | None:
    """The bundle's "none of these" decision, fitted on the validation tracks only (never the test's).

    A CNN's input is a spectrogram, not a table row, so the decision measures its output: the mean
    over a song's windows of the log of the network's probabilities
    (:func:`genrekit.models.calibration.log_rows`), Mahalanobis distance to the nearest genre's mean
    (:func:`genrekit.models.calibration.unknown_decision`; threshold at 5% of the validation tracks'
    out-of-fold distances, folds grouped by artist where artists are known). Training tracks are
    not used: the network has fitted them, so their outputs are more confident than a new song's.
    ``None`` when the validation tracks do not cover two genres.
    """
    from genrekit.models.calibration import log_rows, song_means, unknown_decision

    idx, rows, _ = song_means(log_rows(proba), owners)
    y = tracks.labels[idx]
    if len(set(y.tolist())) < 2 or len(idx) < 3:
        return None
    artists = artists if artists is not None else tracks.artists
    groups, grouped_by = tracks.tracks[idx], "track"
    if artists is not None:
        from genrekit.datasets.splits import artist_groups

        try:
            groups, grouped_by = artist_groups(tracks.table().subset(idx), artists), "artist"
        except DatasetError:  # a track without an artist: grouped by track, as the validation carve does
            pass
    return unknown_decision(rows, y, list(classes), groups=groups, grouped_by=grouped_by, seed=seed,
                            rows="log_probabilities", songs="validation tracks")


def _write_bundle(out_dir: Path, onnx_bytes: bytes, classes, fs, n_frames, window, hop, metrics, card,
                  unknown: dict | None = None) -> None:
    """Write ``model.onnx``, ``MODEL_CARD.md`` and, last, ``bundle.json`` (which names the weights' checksum)."""
    from genrekit.models.bundle import load_bundle
    from genrekit.models.model_card import model_card_markdown
    from genrekit.models.bundle_save import bundle_meta_text
    from genrekit.models.bundle_json import BUNDLE_JSON, MODEL_CARD, WEIGHTS_FILE

    text = bundle_meta_text(
        out_dir, onnx_bytes, kind="cnn", labels=classes, feature_set=fs,
        input={"name": INPUT_NAME, "dtype": "float32", "shape": [None, 1, input_bands(fs), n_frames]},
        window=window, hop=hop, metrics=metrics, card=card, extra={"unknown": unknown},
    )
    for name, data in (
        (WEIGHTS_FILE, onnx_bytes),
        (MODEL_CARD, model_card_markdown(json.loads(text)).encode("utf-8")),
        (BUNDLE_JSON, text.encode("utf-8")),
    ):
        write_bytes_atomic(out_dir / name, data)
        os.chmod(out_dir / name, 0o644)  # temporary files are 0600; a bundle is meant to be shared
    load_bundle(out_dir)  # never leave a bundle that would be refused


# --- command line -------------------------------------------------------------------------------
def run_from_args(args: argparse.Namespace) -> int:
    """Run :func:`train_cnn` with parsed :func:`add_cnn_arguments` options; returns exit status 0.

    An option the parser lacks (or left ``None``) takes its :data:`~genrekit.training.cnn_options.DEFAULTS` value.
    """
    def get(name, key=None):
        value = getattr(args, name, None)
        return DEFAULTS[key or name] if value is None and (key or name) in DEFAULTS else value

    width = get("width")
    train_cnn(
        args.data, args.out,
        arch=get("arch"), split=get("split"), epochs=get("epochs"), test_size=get("test_size"),
        valid_size=get("valid_size"), batch_size=get("batch_size"), lr=get("lr"), device=get("device"),
        seed=get("seed"), resume=bool(get("resume")), patience=get("patience"),
        artists=get("artists"), split_dir=get("split_dir"), folds=get("folds"), fold=get("fold"),
        mixup=bool(get("mixup")), crops_per_track=get("crops_per_track"),
        arch_options={} if width is None else {"width": width},
        input=get("cnn_input", "input"), n_mfcc=get("n_mfcc"), pretrained=bool(get("pretrained")),
        unfreeze=bool(get("unfreeze")), head_epochs=get("head_epochs"), unfreeze_lr=get("unfreeze_lr"),
        head=get("head"), cache=False if get("no_cache") else get("cache"), jobs=get("jobs"),
        threads=get("threads"),
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m genrekit.training.cnn", description="Train a CNN genre model on log-mel crops."
    )
    add_cnn_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
