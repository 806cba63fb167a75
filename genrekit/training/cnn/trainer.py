"""The CNN trainer: data and :class:`~genrekit.training.cnn.options.CnnOptions` in, a run folder with a bundle out.

>>> from genrekit.training.cnn.trainer import train_cnn            # doctest: +SKIP
>>> train_cnn("genres/", "runs/shortres", arch="shortres", split="artist",
...           artists="GTZANindex.txt", epochs=30)
PosixPath('runs/shortres')

:class:`CnnTrainer` keeps the trainers' contract (:class:`genrekit.training.base.Trainer`);
:func:`train_cnn` is the same with the options as keywords. What a run does, step by step,
is told in :mod:`genrekit.training.cnn`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import torch

from genrekit.errors import ParameterError, TrainingError
from genrekit.models import cnn
from genrekit.models.cnn_inputs import input_bands
from genrekit.training.base import RunSummary, Trainer
from genrekit.training.cnn.checkpoint import restore_checkpoint
from genrekit.training.cnn.crops import Augment, track_windows
from genrekit.training.cnn.export import export_onnx, fit_unknown_decision, write_bundle
from genrekit.training.cnn.loop import EpochPlan, fresh_state, predict_windows, run_epochs
from genrekit.training.cnn.network import (build_network, fine_tuning_schedule, input_feature_set, patch_frames,
                                           torch_device)
from genrekit.training.cnn.options import CnnOptions
from genrekit.training.cnn.split import fingerprint, split_tracks
from genrekit.training.cnn.tracks import TrackSet, load_tracks
from genrekit.training.run_folder import CHECKPOINT, HISTORY_CSV, RUN_ITSELF, write_history, write_results


class CnnTrainer(Trainer):
    """Trains one CNN on labelled audio and writes its run folder (see :mod:`genrekit.training.cnn`).

    Parameters
    ----------
    data : str, path-like or TrackSet
        A ``<genre>/<file>`` folder or a ``path,label[,artist]`` CSV manifest
        (:func:`~genrekit.training.cnn.tracks.read_manifest`), or tracks already loaded with
        :func:`~genrekit.training.cnn.tracks.load_tracks`.
    options : CnnOptions, optional
        What to train and how (default: ``CnnOptions()``).
    progress : bool
        A tqdm bar per epoch when stderr is a terminal.
    verbose : bool
        One line per epoch on stderr.
    command : str, optional
        The command line, for the model card (default: ``sys.argv``).

    :meth:`train` returns the run's :class:`~genrekit.training.base.RunSummary`. A run folder
    holding a checkpoint is only reused with ``options.resume``. Raises
    :class:`~genrekit.errors.TrainingError` for a checkpoint from different settings, an existing
    checkpoint without ``resume``, or an ONNX export that disagrees with PyTorch;
    :class:`~genrekit.errors.DatasetError` for unusable data or split settings.
    """

    name = "cnn"

    def __init__(self, data, options: CnnOptions | None = None, *, progress: bool = True, verbose: bool = True,
                 command: str | None = None) -> None:
        self.data = data
        self.options = options if options is not None else CnnOptions()
        self.progress, self.verbose, self.command = progress, verbose, command

    def train(self, out: str | os.PathLike) -> RunSummary:
        """Train into the run folder ``out`` (torch's thread count set for the run, then restored)."""
        previous_threads = torch.get_num_threads()
        if self.options.threads:
            torch.set_num_threads(self.options.threads)
        try:
            out_dir = Path(out)
            return RunSummary(out_dir, self._train(out_dir))
        finally:
            torch.set_num_threads(previous_threads)

    def _log(self, message: str) -> None:
        if self.verbose:
            print(message, file=sys.stderr, flush=True)

    def _train(self, out_dir: Path) -> dict:
        o = self.options
        if (out_dir / CHECKPOINT).exists() and not o.resume:
            raise TrainingError(
                f"{out_dir} already holds a training run ({CHECKPOINT}); resume it with resume=True "
                f"(--resume) or choose another output folder"
            )
        if o.split == "random-rows":
            raise TrainingError("split 'random-rows' puts crops of one track on both sides; use 'random'")
        if o.monitor not in ("accuracy", "loss"):
            raise ParameterError(f"monitor must be 'accuracy' or 'loss', got {o.monitor!r}")
        dev = torch_device(o.device)
        plan, fs, split_info = self._plan()

        torch.manual_seed(o.seed)
        model, optimizer, scheduler = build_network(
            o.arch, plan.n_classes, input_bands(fs), dict(o.arch_options or {}), plan.schedule, lr=o.lr,
            weight_decay=o.weight_decay, epochs=o.epochs, dev=dev,
        )
        state = fresh_state()
        for stale in out_dir.glob(f".{CHECKPOINT}.*.tmp"):
            stale.unlink(missing_ok=True)  # a write cut short by a kill; checkpoint.pt itself is whole
        if (out_dir / CHECKPOINT).exists():
            state = restore_checkpoint(out_dir / CHECKPOINT, plan.config, model, optimizer, scheduler, dev)
            self._log(f"resuming {out_dir} after epoch {state['epoch']}"
                      + (" (training had finished)" if state["done"] else ""))

        state = run_epochs(model, optimizer, scheduler, state, plan, out_dir, dev, self._log, self.progress)
        if state["best"] is None:
            raise TrainingError(f"{out_dir}: no epoch was trained (epochs={o.epochs})")
        write_history(out_dir, state["history"])
        model.load_state_dict(state["best"]["model"])
        return self._finish(out_dir, model, state, plan, fs, split_info, dev)

    def _plan(self) -> tuple[EpochPlan, object, dict]:
        """The tracks, their split and everything the epochs need; the input feature set; the split's summary."""
        o = self.options
        augment = o.augment if o.augment is not None else Augment()
        if o.mixup:
            augment = Augment(**{**asdict(augment), "mixup": o.mixup_alpha})
        schedule = fine_tuning_schedule(o.arch, o.epochs, o.lr, o.pretrained, o.unfreeze, o.head_epochs,
                                        o.unfreeze_lr, o.head)
        fs = input_feature_set(o.arch, o.input, o.n_mels, o.n_mfcc)
        if fs.name != "logmel" and augment.gain_db:
            # a dB offset is a gain only on a dB scale (not on MFCCs or musicnn's log10(1 + 10^4 x))
            augment = Augment(**{**asdict(augment), "gain_db": 0.0})
        if isinstance(self.data, TrackSet):
            tracks = self.data
            if tracks.fs.name != fs.name:
                raise TrainingError(f"--arch {o.arch} takes {fs.name} input; these tracks hold {tracks.fs.name}")
            if tracks.fs != fs:
                fs = tracks.fs
        else:
            tracks = load_tracks(self.data, fs, cache=o.cache, jobs=o.jobs, progress=self.progress)
        n_frames = patch_frames(o.arch, fs, o.window)
        parts, split_info = split_tracks(tracks, o.split, o.test_size, o.valid_size, o.seed, o.artists, o.split_dir,
                                         o.folds, o.fold)
        self._log(f"data: {tracks.source}")
        self._log(f"split: {split_info['description']}")

        config = {
            "arch": o.arch, "arch_options": dict(o.arch_options or {}), "classes": tracks.classes,
            "epochs": o.epochs, "batch_size": o.batch_size, "lr": o.lr, "weight_decay": o.weight_decay,
            "seed": o.seed, "monitor": o.monitor, "patience": o.patience, "augment": asdict(augment),
            "crops_per_track": o.crops_per_track, "window": o.window, "hop": o.hop, "n_frames": n_frames,
            "feature_set_key": fs.key, "split": split_info["name"], "fold": split_info["fold"],
            "data": fingerprint(tracks, parts),
        }
        # Keys only where they differ from what older runs did, so their checkpoints still resume.
        if fs.name != "logmel":
            config["input"] = fs.key
        if schedule is not None:
            config["schedule"] = schedule
        plan = EpochPlan(options=o, tracks=tracks, y=tracks.y, parts=parts, n_classes=len(tracks.classes),
                         n_frames=n_frames, augment=augment, schedule=schedule, config=config)
        return plan, fs, split_info

    def _finish(self, out_dir: Path, model, state: dict, plan: EpochPlan, fs, split_info: dict, dev) -> dict:
        """Evaluate the best weights, write the bundle, then ``results.json``; return its content."""
        o, tracks, parts, classes = self.options, plan.tracks, plan.parts, plan.tracks.classes
        metrics, outputs = {}, {}
        for side in ("valid", "test"):
            idx = parts[side]
            if idx is not None and len(idx):
                outputs[side] = predict_windows(model, tracks, idx, o.window, o.hop, plan.n_frames, dev)
                metrics[side] = _evaluate(*outputs[side], tracks, classes, o.seed)
        unknown = (fit_unknown_decision(*outputs["valid"], tracks, classes, o.artists, o.seed)
                   if "valid" in outputs else None)
        sample = next(track_windows(tracks, parts["valid"][:4], o.window, o.hop, plan.n_frames, max_windows=16))[0]
        onnx_bytes = export_onnx(model, input_bands(fs), plan.n_frames, sample=sample[:16], seed=o.seed)

        params = self._params(model, state, plan, fs, dev)
        card = {
            "model": f"cnn-{o.arch}" + ("-pretrained" if plan.schedule is not None else ""),
            "params": params,
            "data": tracks.source,
            "split": split_info["description"],
            "figures": {},
            "command": (self.command if self.command is not None
                        else " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])),
        }
        write_bundle(out_dir, onnx_bytes, classes, fs, plan.n_frames, o.window, o.hop,
                     {**metrics, "leaky": split_info["leaky"]}, card, unknown)

        from genrekit.evaluation.metrics import model_entry, results_json

        entry = model_entry(
            valid=metrics.get("valid"), test=metrics.get("test"), params=params,
            n_tracks={side: (0 if idx is None else len(idx)) for side, idx in parts.items()},
            history=HISTORY_CSV, bundle=RUN_ITSELF,
        )
        results = results_json(split_info, {f"cnn-{o.arch}": entry})
        results["n_tracks"] = len(tracks)
        results["data"] = tracks.source
        write_results(out_dir, results)
        test = metrics.get("test") or metrics.get("valid")
        if test:
            which = "test" if "test" in metrics else "valid"
            self._log(
                f"{which}: track accuracy {test['track']['accuracy']:.3f} "
                f"({test['n_tracks']} tracks), window accuracy {test['window']['accuracy']:.3f}; "
                f"bundle in {out_dir}"
            )
        return results

    def _params(self, model, state: dict, plan: EpochPlan, fs, dev) -> dict:
        """The model card's and results.json's record of how the network was trained."""
        o = self.options
        return {
            "arch": o.arch, **dict(o.arch_options or {}), "n_parameters": cnn.n_parameters(model), "epochs": o.epochs,
            "epochs_run": state["epoch"], "best_epoch": state["best"]["epoch"], "batch_size": o.batch_size,
            "lr": o.lr, "weight_decay": o.weight_decay, "optimizer": "AdamW, cosine annealing",
            "seed": o.seed, "monitor": o.monitor, "patience": o.patience, "crops_per_track": o.crops_per_track,
            "augment": asdict(plan.augment), "device": str(dev), "input": fs.name,
            **({"n_mfcc": fs.n_mfcc} if fs.name == "mfcc" else {}),
            **({"fine_tuning": plan.schedule} if plan.schedule is not None else {}),
        }


def _evaluate(proba, owners, tracks: TrackSet, classes, seed) -> dict:
    """:func:`genrekit.evaluation.metrics.evaluate` of window probabilities, at window and track level."""
    from genrekit.evaluation.metrics import evaluate

    windows = SimpleNamespace(labels=tracks.labels[owners], tracks=tracks.tracks[owners])
    return evaluate(proba, windows, classes, seed=seed)


def train_cnn(data, out_dir: str | os.PathLike, *, progress: bool = True, verbose: bool = True,
              command: str | None = None, **options) -> Path:
    """Train a CNN on a dataset of labelled audio and write a model bundle: :class:`CnnTrainer` in one call.

    Parameters
    ----------
    data : str, path-like or TrackSet
        As :class:`CnnTrainer` takes it.
    out_dir : str or path-like
        Run folder (see :mod:`genrekit.training.cnn`).
    progress, verbose : bool
        A bar per epoch on a terminal; one line per epoch on stderr.
    command : str, optional
        The command line, for the model card (default: ``sys.argv``).
    **options
        Fields of :class:`~genrekit.training.cnn.options.CnnOptions` (``arch``, ``epochs``, ``split``...).

    Returns
    -------
    Path
        ``out_dir``, holding the bundle, ``results.json`` and ``history.csv``.
    """
    trainer = CnnTrainer(data, CnnOptions(**options), progress=progress, verbose=verbose, command=command)
    return trainer.train(out_dir).folder
