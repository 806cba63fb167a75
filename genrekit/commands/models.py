"""``genrekit models [DIR]``: the models a user has, with what they learned from and how well they did.

Lists the models shipped with genrekit and, given a folder, every bundle found in it
(three levels deep: a bundle, a run folder, a folder of runs). Each entry says the
value to give ``--model``, the data and split from the bundle's card, and its honest
accuracy: the first figure measured on tracks the model did not learn from or choose
by (a test set, or a cross-validation of the whole procedure), never the validation
figure a model was selected on unless that is all there is (then it says so).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genrekit.errors import CommandError

#: Evaluations that did not choose the model, preferred in this order; then any other, then validation.
HONEST_FIRST = ("test",)
NOT_HONEST = ("valid", "train")


def models_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``genrekit models``'s arguments to ``p``."""
    p.add_argument("folder", nargs="?", metavar="DIR", type=Path,
                   help="also list the bundles in this folder (a bundle, a run folder or a folder of runs; "
                        "default: only the shipped models)")
    p.add_argument("--format", "-f", choices=("text", "json"), default="text",
                   help="output format (default text)")


def honest_accuracy(metrics: dict) -> dict | None:
    """The track accuracy a bundle's ``metrics`` report on data that did not choose the model.

    Returns
    -------
    dict or None
        ``{"evaluation", "accuracy", "ci", "n_tracks", "chose_model"}``; ``chose_model``
        is true only when the figure is a validation score (the one the model was
        selected by, so optimistic). ``None`` when the bundle carries no figure.
    """
    def figure(name):
        ev = metrics.get(name)
        track = ev.get("track") if isinstance(ev, dict) else None
        if not isinstance(track, dict) or not isinstance(track.get("accuracy"), (int, float)):
            return None
        return {"evaluation": name, "accuracy": float(track["accuracy"]), "ci": track.get("accuracy_ci"),
                "n_tracks": ev.get("n_tracks"), "chose_model": name in NOT_HONEST}

    order = [*HONEST_FIRST, *(k for k in metrics if k not in HONEST_FIRST and k not in NOT_HONEST), "valid"]
    for name in order:
        found = figure(name)
        if found is not None:
            return found
    return None


def describe(folder: Path, name: str, *, shipped: bool = False, default: bool = False,
             selected: bool = False) -> dict:
    """One model's entry: what ``--model`` takes, kind, genres, windows, data, split, honest accuracy."""
    from genrekit.models.registry import read_meta

    meta = read_meta(folder)
    card, metrics = meta.get("card") or {}, meta.get("metrics") or {}
    return {
        "model": name, "shipped": shipped, "default": default, "selected": selected,
        "kind": meta.get("kind", "classical"), "family": card.get("model"),
        "genres": len(meta.get("labels") or []), "window": meta.get("window"),
        "data": card.get("data"), "split": card.get("split"),
        "leaky": bool(metrics.get("leaky")),
        "accuracy": honest_accuracy(metrics),
    }


def list_models(folder: Path | None = None) -> tuple[list[dict], list[str]]:
    """Entries for the shipped models and those in ``folder``, and the bundles that could not be read."""
    from genrekit.errors import BundleError
    from genrekit.models.registry import DEFAULT_MODEL_NAME, SHIPPED_MODELS, find_bundles, selected_bundle, shipped_models

    entries, broken = [], []
    for name in shipped_models():
        entries.append(describe(SHIPPED_MODELS / name, name, shipped=True, default=name == DEFAULT_MODEL_NAME))
    if folder is not None:
        if not folder.is_dir():
            raise CommandError(f"{folder}: not a folder")
        chosen = {}
        for bundle in find_bundles(folder):
            run = bundle.parent
            if run not in chosen:
                chosen[run] = selected_bundle(run)
            try:
                entries.append(describe(bundle, str(bundle), selected=chosen[run] == bundle))
            except BundleError as exc:
                broken.append(f"{bundle}: {exc.problem}")
    return entries, broken


def _accuracy_text(acc: dict | None) -> str:
    if acc is None:
        return "no figure in the bundle"
    ci = acc.get("ci")
    text = f"{acc['accuracy']:.3f}"
    if isinstance(ci, list) and len(ci) == 2 and None not in ci:
        text += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
    text += f" track accuracy, {acc['evaluation']}"
    if acc.get("n_tracks"):
        text += f", {acc['n_tracks']} tracks"
    if acc["chose_model"]:
        text += " (the validation set it was chosen on: optimistic)"
    return text


def render_text(entries: list[dict]) -> str:
    lines = []
    for e in entries:
        marks = [m for m, on in (("shipped", e["shipped"]), ("default", e["default"]),
                                 ("selected in its run", e["selected"]), ("LEAKY split", e["leaky"])) if on]
        window = f", {e['window']:g}-s windows" if isinstance(e.get("window"), (int, float)) else ""
        lines.append(f"{e['model']}" + (f"  ({', '.join(marks)})" if marks else ""))
        lines.append(f"    {e['family'] or '?'} ({e['kind']}), {e['genres']} genres{window}")
        lines.append(f"    accuracy: {_accuracy_text(e['accuracy'])}")
        for key in ("data", "split"):
            if e.get(key):
                lines.append(f"    {key}: {e[key]}")
    return "\n".join(lines) + "\n"


def models_run(args: argparse.Namespace) -> int:
    """Run ``genrekit models``; return the exit status."""
    from genrekit._io import dumps

    entries, broken = list_models(args.folder)
    if args.folder is not None and not any(not e["shipped"] for e in entries):
        print(f"genrekit models: no bundle in {args.folder} (looked three levels down for bundle.json)",
              file=sys.stderr)
    sys.stdout.write(dumps(entries) if args.format == "json" else render_text(entries))
    for line in broken:
        print(f"genrekit models: {line}", file=sys.stderr)
    print("use one with --model MODEL (classify, evaluate, explain, serve)", file=sys.stderr)
    return 1 if broken else 0
