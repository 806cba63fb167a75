"""The epoch loop of CNN training: train on random crops, score the validation tracks, checkpoint, stop early.

Each epoch draws ``crops_per_track`` random crops of every training track (with the
augmentation of :mod:`genrekit.training.cnn.crops`), then scores every validation track on
its deterministic windows (mean probability per track). After every epoch the resume state
replaces ``checkpoint.pt`` atomically (:mod:`genrekit.training.cnn.checkpoint`) and
``history.csv`` is rewritten; the loop ends after ``epochs``, or ``patience`` epochs
without improvement on the validation set.

Why an epoch reseeds numpy and torch from ``(seed, epoch)``: an epoch is then a function of
the weights it starts from and nothing else, so a run resumed after a kill replays exactly
what the killed one would have done.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genrekit.training.cnn.checkpoint import save_checkpoint
from genrekit.training.cnn.crops import Augment, epoch_batches, track_windows
from genrekit.training.cnn.network import frozen_modules
from genrekit.training.cnn.options import CnnOptions
from genrekit.training.cnn.tracks import TrackSet
from genrekit.training.run_folder import CHECKPOINT, TENSORBOARD_DIR, write_history


@dataclass(frozen=True)
class EpochPlan:
    """What every epoch needs besides the network and its optimiser.

    Attributes
    ----------
    options : CnnOptions
        The run's options (epochs, seed, batch size, crops, window and hop, monitor, patience).
    tracks : TrackSet
    y : np.ndarray
        Each track's class index.
    parts : dict
        Track indices of the ``"train"``, ``"valid"`` and ``"test"`` sides.
    n_classes, n_frames : int
        Outputs of the network; frames per crop and window.
    augment : Augment
        The augmentation the crops get (``options.augment`` with mixup and the gain settled).
    schedule : dict or None
        The fine-tuning schedule (:func:`genrekit.training.cnn.network.fine_tuning_schedule`).
    config : dict
        The settings recorded in every checkpoint: a run resumes only with the same.
    """

    options: CnnOptions
    tracks: TrackSet
    y: np.ndarray
    parts: dict
    n_classes: int
    n_frames: int
    augment: Augment
    schedule: dict | None
    config: dict


def fresh_state() -> dict:
    """The loop's state before the first epoch."""
    return {"epoch": 0, "history": [], "best": None, "stale": 0, "done": False}


def run_epochs(model, optimizer, scheduler, state: dict, plan: EpochPlan, out_dir: Path, dev, log,
               progress: bool) -> dict:
    """Train from the epoch after ``state["epoch"]`` until the run is done; return the state.

    ``state`` (:func:`fresh_state`, or a restored checkpoint's) holds the finished epochs'
    history, the best-on-validation weights and the epochs without improvement. ``log``
    takes one line per epoch; ``progress`` shows a bar per epoch on a terminal.
    """
    epochs = plan.options.epochs
    writer = _tensorboard(out_dir, state["epoch"])
    try:
        for epoch in range(state["epoch"] + 1, epochs + 1):
            if state["done"]:
                break
            row = _one_epoch(model, optimizer, scheduler, plan, epoch, dev, progress)
            _record(state, row, model, plan.options)
            save_checkpoint(out_dir / CHECKPOINT, plan.config, model, optimizer, scheduler, state)
            write_history(out_dir, state["history"])
            if writer is not None:
                for key in ("train_loss", "train_acc", "valid_loss", "valid_acc", "lr"):
                    writer.add_scalar(key, row[key], epoch)
                writer.flush()
            mark = " *" if state["best"]["epoch"] == epoch else ""
            log(
                f"epoch {epoch:3d}/{epochs}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.3f} | "
                f"valid loss {row['valid_loss']:.4f} acc {row['valid_acc']:.3f} | {row['seconds']:.1f} s{mark}"
            )
            if state["stale"] >= plan.options.patience:
                log(f"stopping early: no improvement for {plan.options.patience} epochs "
                    f"(best: epoch {state['best']['epoch']})")
    finally:
        if writer is not None:
            writer.close()
    return state


def _one_epoch(model, optimizer, scheduler, plan: EpochPlan, epoch: int, dev, progress: bool) -> dict:
    """Train one epoch and score the validation tracks: the epoch's history row (without ``finished``)."""
    o = plan.options
    t0 = time.perf_counter()
    # Why reseed per epoch: an epoch is then a function of (seed, epoch, weights),
    # so a resumed run replays exactly what the killed one would have done.
    rng = np.random.default_rng([o.seed, epoch])
    torch.manual_seed(o.seed * 100_003 + epoch)
    lr_now = max(g["lr"] for g in optimizer.param_groups)
    frozen = frozen_modules(model, plan.schedule, epoch)
    train_loss, train_acc = _train_epoch(
        model, optimizer, plan.tracks, plan.y, plan.parts["train"], rng, dev,
        n_classes=plan.n_classes, n_frames=plan.n_frames, batch_size=o.batch_size,
        crops_per_track=o.crops_per_track, augment=plan.augment,
        desc=f"epoch {epoch}/{o.epochs}", progress=progress, frozen=frozen,
    )
    scheduler.step()
    proba, owners = predict_windows(model, plan.tracks, plan.parts["valid"], o.window, o.hop, plan.n_frames, dev)
    valid_loss, valid_acc = _valid_figures(proba, owners, plan.y)
    return {
        "epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
        "valid_loss": valid_loss, "valid_acc": valid_acc, "lr": lr_now,
        "seconds": round(time.perf_counter() - t0, 3),
    }


def _record(state: dict, row: dict, model, options: CnnOptions) -> None:
    """Enter a finished epoch in ``state``: the best weights so far, epochs without improvement, done or not."""
    epoch = row["epoch"]
    if _improved(state["best"], row["valid_acc"], row["valid_loss"], options.monitor):
        state["best"] = {
            "epoch": epoch, "valid_acc": row["valid_acc"], "valid_loss": row["valid_loss"],
            "model": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},
        }
        state["stale"] = 0
    else:
        state["stale"] += 1
    state["epoch"] = epoch
    state["done"] = epoch >= options.epochs or state["stale"] >= options.patience
    row["finished"] = round(time.time(), 3)
    state["history"].append(row)


# --- pieces of an epoch ----------------------------------------------------------------------------
def _soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against soft targets (mixup's), averaged over the batch."""
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def _train_epoch(model, optimizer, tracks, y, idx, rng, dev, *, n_classes, n_frames, batch_size,
                 crops_per_track, augment, desc, progress, frozen=()) -> tuple[float, float]:
    """One pass over ``crops_per_track`` random crops of every track ``idx``: mean loss and accuracy of the crops.

    Modules in ``frozen`` stay in evaluation mode (their batch norms keep their statistics).
    """
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
    """A tqdm bar of ``total`` batches when ``progress`` and stderr is a terminal, else None."""
    if not progress or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=False, file=sys.stderr)


@torch.no_grad()
def predict_windows(model, tracks, idx, window, hop, n_frames, dev) -> tuple[np.ndarray, np.ndarray]:
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
    """Whether an epoch's validation figures beat the best so far, by ``monitor``."""
    if best is None:
        return True
    if monitor == "loss":
        return loss < best["valid_loss"]
    # Small validation sets make accuracy coarse: equal accuracy with a lower loss counts.
    return acc > best["valid_acc"] or (acc == best["valid_acc"] and loss < best["valid_loss"])


def _tensorboard(out_dir: Path, start_epoch: int):
    """A SummaryWriter in ``out_dir/tensorboard`` when TensorBoard is installed, else None."""
    if importlib.util.find_spec("tensorboard") is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(out_dir / TENSORBOARD_DIR), purge_step=start_epoch + 1)
