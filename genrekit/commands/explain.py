"""``genrekit explain``: what conv filters respond to (``filters``), where a model's evidence lies (``saliency``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genrekit.explain import BANDS, SECONDS
from genrekit.commands.common import (add_model_argument, add_names_argument, model_path, no_audio_error, output_option,
                                     positive_int, seconds)
from genrekit.errors import CommandError
from genrekit.output import printable


class _SongOrVerb(argparse._SubParsersAction):
    """``explain``'s sub-verbs, where a first word that names none is the song to explain:
    ``genrekit explain SONG`` is ``genrekit explain saliency SONG``."""

    class _AnyWord(dict):
        """The sub-verbs (a live view, for help and listing) that argparse's choice check lets any word through."""

        def __init__(self, verbs: dict) -> None:
            super().__init__()
            self.verbs = verbs

        def __contains__(self, word) -> bool:
            return True

        def __iter__(self):
            return iter(self.verbs)

        def __len__(self) -> int:
            return len(self.verbs)

        def __getitem__(self, word):
            return self.verbs[word]

        def keys(self):
            return self.verbs.keys()

        def items(self):
            return self.verbs.items()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.choices = self._AnyWord(self._name_parser_map)

    def __call__(self, parser, namespace, values, option_string=None):
        if values and values[0] not in self._name_parser_map:
            values = ["saliency", *values]
        super().__call__(parser, namespace, values, option_string)


def explain_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``genrekit explain``'s sub-verbs and their arguments to ``p``."""
    p.usage = "%(prog)s [SONG | saliency SONG | filters SONGS] ..."
    p.description = ("Where in a song the evidence for its genre lies (`genrekit explain SONG`: occlusion "
                     "saliency, any model), and what the conv filters of a CNN or of the default model's "
                     "backbone respond to (`genrekit explain filters`).")
    sub = p.add_subparsers(dest="what", metavar="WHAT", required=True, action=_SongOrVerb, prog=p.prog)
    f = sub.add_parser("filters", help="top dataset excerpts per filter of a conv layer: PNG crops, wavs, index.html",
                       description="For each filter of a convolution layer, find the dataset windows that activate "
                                   "it most (maximum over time and frequency) and write their log-mel crops, short "
                                   "wav excerpts and an index.html to look and listen. Works with CNN bundles and "
                                   "with heads on the MSD-musicnn backbone (the default model), whose backbone's "
                                   "filters are probed.")
    f.add_argument("songs", nargs="*", metavar="SONGS", type=Path,
                   help="audio files and folders to search (folders recursively)")
    add_model_argument(f, what="model: a CNN bundle, or a head on the backbone")
    f.add_argument("--data", nargs="+", default=[], metavar="DIR", type=Path,
                   help="more audio files and folders to search, as SONGS (default: none)")
    f.add_argument("--layer", metavar="N", type=int,
                   help="1-based convolution layer, in graph order (default: a CNN's last; the backbone's first, "
                        "/timbral.0, which reads the mel spectrogram directly)")
    f.add_argument("--top", metavar="K", type=positive_int, default=8, help="excerpts per filter (default 8)")
    f.add_argument("--excerpt", metavar="SECONDS", type=seconds, default=3.0,
                   help="length of each wav excerpt, centred on the peak (default 3)")
    output_option(f, "--out", "-o", kind="folder", required=True, metavar="DIR", help="output folder")
    f.set_defaults(parser=f)

    s = sub.add_parser("saliency", help="occlusion saliency of a song for its genre, as a PNG (the default: "
                                        "`genrekit explain SONG`)",
                       description="Silence each cell of a grid over the song's time-frequency plane in turn "
                                   "and draw how much the genre's probability drops, under the song's "
                                   "spectrogram; works with every model (no PyTorch). The numbers go to a JSON "
                                   "file beside the image.")
    s.add_argument("file", metavar="SONG", type=Path, help="an audio file")
    add_model_argument(s)
    output_option(s, "--out", "-o", metavar="PNG",
                   help="the image to write, a JSON file with the same stem beside it "
                        "(default: SONG's name + .saliency.png in the current folder)")
    s.add_argument("--label", metavar="GENRE", help="explain this genre, by its label or its name as tables show it "
                                                    "(Country, hip hop; case and punctuation do not count; "
                                                    "default: the model's top genre for the song)")
    s.add_argument("--bands", metavar="N", type=positive_int, default=BANDS,
                   help=f"rows of the grid: equal runs of mel bands (default {BANDS})")
    s.add_argument("--seconds", metavar="S", type=seconds, default=SECONDS,
                   help=f"length of a grid cell in seconds (default {SECONDS:g})")
    add_names_argument(s, "--label accepts these names, and the summary line shows them")
    s.set_defaults(parser=s)


def explain_run(args: argparse.Namespace) -> int:
    if args.what == "saliency":
        return _saliency(args)
    return _filters(args)


def _filters(args) -> int:
    from genrekit.errors import BundleError, ExplainError
    from genrekit.explain.filters.folder import write_filters
    from genrekit.explain.filters.search import top_excerpts
    from genrekit.audio.files import collect_audio_files, common_root
    from genrekit.models.registry import load_model

    inputs = [*args.songs, *args.data]
    if not inputs:
        raise CommandError("name the songs to search (files or folders)")
    try:
        model = load_model(model_path(args.model))
    except BundleError as exc:
        raise CommandError(f"cannot load the model: {exc}") from exc
    paths = collect_audio_files(inputs)
    if not paths:
        raise no_audio_error(inputs)
    try:
        probe, excerpts, failed = top_excerpts(model, paths, layer=args.layer, top=args.top, excerpt=args.excerpt)
    except ExplainError as exc:
        raise CommandError(str(exc)) from exc
    for reason in failed:
        print(f"genrekit explain: skipped {printable(str(reason))}", file=sys.stderr)
    if not excerpts:
        raise CommandError("none of the files could be decoded")
    try:
        index = write_filters(args.out, probe.source, probe, excerpts, excerpt=args.excerpt, root=common_root(inputs))
    except OSError as exc:
        raise CommandError(f"cannot write {args.out}: {exc}") from exc
    layer = probe.layer
    flat = sum(1 for chosen in excerpts if not chosen)
    print(f"explain filters: conv layer {layer.number} of {len(probe.layers)} ({len(excerpts)} filters"
          f"{f', {flat} of them the same in every window' if flat else ''}), "
          f"{len(paths) - len(failed)} files -> {index}", file=sys.stderr)
    return 1 if failed else 0


def _saliency(args) -> int:
    from genrekit.audio import decode as audio
    from genrekit._io import write_bytes_atomic, write_json_atomic
    from genrekit.errors import AudioError, BundleError, ExplainError
    from genrekit.explain.figure import saliency_png
    from genrekit.explain.saliency import occlusion_saliency
    from genrekit.models.registry import load_model

    from genrekit.errors import TagError
    from genrekit.tagging.names import load_names

    try:
        names = load_names(args.names)
    except TagError as exc:
        raise CommandError(str(exc)) from exc
    try:
        model = load_model(model_path(args.model))
    except BundleError as exc:
        raise CommandError(f"cannot load the model: {exc}") from exc
    label = None
    if args.label is not None:  # a label, or its display name as every table prints it
        label = names.label_among(args.label, model.labels)
        if label is None:
            raise CommandError(f"--label: unknown genre {printable(args.label)!r}; the model knows "
                               + ", ".join(printable(names.display(g)) for g in model.labels))
    try:
        y = audio.load(args.file, sr=model.sample_rate, min_samples=model.min_samples)
        result = occlusion_saliency(model, y, label=label, bands=args.bands, seconds=args.seconds)
    except (AudioError, ExplainError) as exc:
        raise CommandError(str(exc)) from exc
    out = args.out or Path(f"{args.file.stem}.saliency.png")
    sidecar = out.with_suffix(".json")
    try:
        write_bytes_atomic(out, saliency_png(result, title=args.file.name))
        write_json_atomic(sidecar, {"file": str(args.file), "image": out.name,
                                    "panels": [f"spectrogram ({result.plane.unit})",
                                               "occlusion saliency (drop in the label's probability)"],
                                    **result.to_dict()})
    except OSError as exc:
        raise CommandError(f"cannot write {out}: {exc}") from exc
    print(f"explain: {printable(args.file)}: {printable(names.display(result.label))} "
          f"({result.probabilities[result.label]:.2f}, model {result.model}) "
          f"-> {out}, {sidecar.name}", file=sys.stderr)
    return 0
