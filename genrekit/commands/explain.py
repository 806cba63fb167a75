"""``genrekit explain``: what a CNN's filters respond to (``filters``), where its evidence lies (``saliency``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import CommandError, add_model_argument, model_path, no_audio_error, positive_int, seconds


def explain_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``genrekit explain``'s sub-verbs and their arguments to ``p``."""
    sub = p.add_subparsers(dest="what", metavar="WHAT", required=True)
    f = sub.add_parser("filters", help="top dataset excerpts per filter of a conv layer: PNG crops, wavs, index.html",
                       description="For each filter of a convolution layer, find the dataset windows that activate "
                                   "it most (maximum over time and frequency) and write their log-mel crops, short "
                                   "wav excerpts and an index.html to look and listen.")
    add_model_argument(f, required=True, what="CNN")
    f.add_argument("--data", required=True, nargs="+", metavar="DIR", type=Path,
                   help="audio files and folders to search (folders recursively)")
    f.add_argument("--layer", metavar="N", type=int,
                   help="1-based convolution layer, in graph order (default: the last)")
    f.add_argument("--top", metavar="K", type=positive_int, default=8, help="excerpts per filter (default 8)")
    f.add_argument("--excerpt", metavar="SECONDS", type=seconds, default=3.0,
                   help="length of each wav excerpt, centred on the peak (default 3)")
    f.add_argument("--out", "-o", required=True, metavar="DIR", type=Path, help="output folder")
    f.set_defaults(parser=f)

    s = sub.add_parser("saliency", help="occlusion saliency of a song for its predicted genre, as a PNG",
                       description="Hide each region of the log-mel input in turn (a patch set to the window's "
                                   "mean dB) and draw how much the predicted genre's probability drops, under the "
                                   "song's mel-spectrogram; the genre and probabilities go to OUT.json.")
    s.add_argument("file", metavar="FILE", type=Path, help="an audio file")
    add_model_argument(s, required=True, what="CNN")
    s.add_argument("--out", "-o", required=True, metavar="PNG", type=Path,
                   help="the image to write (a JSON sidecar with the same stem goes beside it)")
    s.add_argument("--label", metavar="GENRE", help="explain this genre (default: the predicted one)")
    s.add_argument("--patch", nargs=2, metavar=("BANDS", "FRAMES"), type=positive_int, default=[16, 16],
                   help="occluding rectangle in mel bands and frames (default 16 16)")
    s.add_argument("--stride", nargs=2, metavar=("BANDS", "FRAMES"), type=positive_int, default=[8, 8],
                   help="grid step in mel bands and frames (default 8 8)")
    s.set_defaults(parser=s)


def explain_run(args: argparse.Namespace) -> int:
    from ..models.bundle import BundleError, load_bundle

    try:
        bundle = load_bundle(model_path(args.model))
    except BundleError as exc:
        raise CommandError(f"cannot load the model: {exc}") from exc
    return (_filters if args.what == "filters" else _saliency)(args, bundle)


def _filters(args, bundle) -> int:
    from ..explain import ExplainError, top_excerpts, write_filters
    from ..files import collect_audio_files, common_root

    paths = collect_audio_files(args.data)
    if not paths:
        raise no_audio_error(args.data)
    try:
        probe, excerpts, failed = top_excerpts(bundle, paths, layer=args.layer, top=args.top, excerpt=args.excerpt)
    except ExplainError as exc:
        raise CommandError(str(exc)) from exc
    for reason in failed:
        print(f"genrekit explain: skipped {reason}", file=sys.stderr)
    if not excerpts:
        raise CommandError("none of the files could be decoded")
    try:
        index = write_filters(args.out, bundle, probe, excerpts, excerpt=args.excerpt, root=common_root(args.data))
    except OSError as exc:
        raise CommandError(f"cannot write {args.out}: {exc}") from exc
    layer = probe.layer
    print(f"explain filters: conv layer {layer.number} of {len(probe.layers)} ({len(excerpts)} filters), "
          f"{len(paths) - len(failed)} files -> {index}", file=sys.stderr)
    return 1 if failed else 0


def _saliency(args, bundle) -> int:
    from .. import audio
    from .._io import write_bytes_atomic, write_json_atomic
    from ..explain import ExplainError, occlusion_saliency, saliency_png

    fs = bundle.feature_set
    try:
        y = audio.load(args.file, sr=fs.sample_rate, min_samples=fs.min_samples)
        result = occlusion_saliency(bundle, y, label=args.label, patch=tuple(args.patch), stride=tuple(args.stride))
    except (audio.AudioError, ExplainError) as exc:
        raise CommandError(str(exc)) from exc
    sidecar = args.out.with_suffix(".json")
    try:
        write_bytes_atomic(args.out, saliency_png(result))
        write_json_atomic(sidecar, {"file": str(args.file), "model": str(bundle.path), "image": args.out.name,
                                    "panels": ["log-mel spectrogram (dB)", "occlusion saliency (probability drop)"],
                                    **result.to_dict()})
    except OSError as exc:
        raise CommandError(f"cannot write {args.out}: {exc}") from exc
    print(f"explain saliency: {args.file}: {result.label} ({result.probabilities[result.label]:.2f}) "
          f"-> {args.out}, {sidecar.name}", file=sys.stderr)
    return 0
