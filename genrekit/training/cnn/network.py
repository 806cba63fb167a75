"""The network a CNN run trains and how: its input, the architecture, the optimiser and the fine-tuning stages.

From scratch, every architecture of :data:`genrekit.models.cnn.ARCHITECTURES` trains with
AdamW, its learning rate cosine-annealed to 0 over the epochs. ``arch="musicnn",
pretrained=True`` starts from the shipped MSD-musicnn weights with a new output layer and
trains in stages (:func:`fine_tuning_schedule`; see "Fine-tuning" in
:mod:`genrekit.training.cnn`).
"""

from __future__ import annotations

import numpy as np
import torch

from genrekit.errors import TrainingError
from genrekit.models import cnn
from genrekit.models.cnn_inputs import cnn_feature_set, window_frames


# --- inputs ----------------------------------------------------------------------------------------
def input_feature_set(arch: str, input: str, n_mels: int, n_mfcc: int):
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


def patch_frames(arch: str, fs, window: float) -> int:
    """Frames per crop and window: musicnn's fixed 187-frame patch, else ``window`` seconds."""
    if arch == "musicnn":
        from genrekit.backbones.msd_musicnn import PATCH_FRAMES

        return PATCH_FRAMES
    return window_frames(fs, window)


# --- the network, its optimiser and learning rates -------------------------------------------------
def build_network(arch: str, n_classes: int, bands: int, arch_options: dict, schedule: dict | None, *, lr: float,
                  weight_decay: float, epochs: int, dev: torch.device):
    """The network (on ``dev``), its optimiser and learning-rate scheduler.

    From scratch: :func:`genrekit.models.cnn.build` with AdamW at ``lr``, cosine-annealed
    to 0 over ``epochs``. With a fine-tuning ``schedule``: the shipped MSD-musicnn with a new
    output layer of ``n_classes`` (drawn from torch's seeded generator, so reproducible)
    and the stage-wise optimiser of :func:`fine_tuning_schedule`.
    """
    if schedule is not None:
        from genrekit.models.musicnn_architecture import pretrained as pretrained_musicnn

        model = pretrained_musicnn()
        model.replace_head(n_classes)  # drawn from the seeded generator: reproducible
        model = model.to(dev)
        optimizer, scheduler = _finetune_optimizer(model, schedule, weight_decay)
    else:
        model = cnn.build(arch, n_classes, bands, **arch_options).to(dev)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
    return model, optimizer, scheduler


def torch_device(device: str) -> torch.device:
    """``device`` for torch; a :class:`TrainingError` when it names CUDA and there is none."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"device {device!r} requested but CUDA is not available (torch {torch.__version__})")
    return dev


# --- fine-tuning ------------------------------------------------------------------------------------
#: Layers of each ``head`` choice of a fine-tuned musicnn (module names of MusiCNN).
HEAD_LAYERS = {"output": ("output",), "dense": ("dense", "dense_bn", "output")}


def fine_tuning_schedule(arch, epochs, lr, pretrained, unfreeze, head_epochs, unfreeze_lr, head) -> dict | None:
    """The fine-tuning schedule (see "Fine-tuning" in :mod:`genrekit.training.cnn`), or None to train from scratch."""
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


def frozen_modules(model, schedule: dict | None, epoch: int) -> list:
    """The modules frozen during ``epoch`` (their parameters get no gradient), [] when none."""
    if schedule is None:
        return []
    names = HEAD_LAYERS[schedule["head"]]
    unfrozen = schedule["unfreeze_lr"] is not None and epoch > schedule["head_epochs"]
    frozen = [] if unfrozen else [m for n, m in model.named_children() if n not in names and n != "dropout"]
    for n, p in model.named_parameters():
        p.requires_grad_(unfrozen or n.split(".")[0] in names)
    return frozen
