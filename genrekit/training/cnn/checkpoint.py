"""A CNN run's resume state: ``checkpoint.pt``, written atomically after every epoch, and read back.

The checkpoint holds the model, optimizer and scheduler states, every random generator's
state, the history and the best-so-far weights, with the settings that made them: a run
resumes only with the same settings and data (the message names what changed). It is
loaded with ``weights_only=True``, so it holds plain types and tensors only.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import numpy as np
import torch

from genrekit._io import write_bytes_atomic
from genrekit._version import __version__
from genrekit.errors import TrainingError

_CHECKPOINT_FORMAT = "genrekit-cnn-checkpoint"


def save_checkpoint(path: Path, config, model, optimizer, scheduler, state) -> None:
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


def restore_checkpoint(path: Path, config, model, optimizer, scheduler, dev) -> dict:
    """Load ``path`` into the model, optimizer, scheduler and random generators; return the loop's state.

    Raises :class:`TrainingError` when the file is not a genrekit CNN checkpoint or was made
    with other settings than ``config``.
    """
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


def _plain(value):
    """JSON round trip, so tuples and lists (and int/float spellings) compare equal."""
    return json.loads(json.dumps(value, sort_keys=True))
