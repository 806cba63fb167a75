"""``bundle.json``: the bundle format's names, and reading the file as untrusted data.

Every field is checked for type and range before anything uses it (:func:`read_bundle_meta`):
nesting and size are bounded before parsing, integers have a bounded number of digits, floats
must be finite, and no JSON constant (``NaN``, ``Infinity``) is accepted. The format itself is
described in :mod:`genrekit.models.bundle`.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path


from genrekit.errors import BundleError
from genrekit.features.sets import FeatureSet

FORMAT = "genrekit-bundle"
FORMAT_VERSION = 1
KINDS = ("classical", "cnn")
AGGREGATES = ("mean",)
BUNDLE_JSON = "bundle.json"
MODEL_CARD = "MODEL_CARD.md"
WEIGHTS_FILE = "model.onnx"
INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"
#: Opsets written by :func:`save_bundle`; pinned so a bundle loads on older onnxruntimes too.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
#: Largest |onnxruntime - scikit-learn| probability accepted when saving.
TOLERANCE = 1e-4

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


#: Deepest nesting of bundle.json accepted (the real ones need 6): deeper is refused before
#: parsing, so a hostile file cannot exhaust the parser's recursion.
MAX_JSON_DEPTH = 32
#: Largest bundle.json read (bytes); real ones are tens of kilobytes.
MAX_JSON_BYTES = 16 * 2**20
#: Bounds of a bundle's window and hop (seconds): a hop of 0.0001 s would cut a song
#: into millions of windows.
MIN_WINDOW, MAX_WINDOW, MIN_HOP = 0.1, 600.0, 0.25


def json_depth(raw: bytes) -> int:
    """Deepest nesting of arrays and objects in JSON text (strings skipped), without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def read_bundle_meta(path: str | os.PathLike) -> dict:
    """A bundle folder's ``bundle.json``, read and checked as :func:`load_bundle` does, weights not loaded.

    Raises :class:`BundleError` naming the file and the problem.
    """
    json_path = Path(path) / BUNDLE_JSON
    try:
        with open(json_path, "rb") as fh:
            raw = fh.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        raise BundleError(json_path, "missing: not a genrekit model bundle") from None
    except OSError as e:
        raise BundleError(json_path, f"cannot read: {e.strerror or e}") from None
    if len(raw) > MAX_JSON_BYTES:
        raise BundleError(json_path, f"larger than {MAX_JSON_BYTES // 2**20} MB: not a genrekit bundle.json")
    meta = parse_meta(json_path, raw)
    checked_weights_path(json_path.parent, json_path, meta["weights"]["file"])  # where load_bundle would read them
    return meta


#: Longest integer literal accepted in bundle.json (digits): real ones are counts and seeds.
MAX_INT_DIGITS = 30


class _HostileNumber(Exception):
    """A number in bundle.json no bundle holds (private: becomes a BundleError naming the file)."""


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _HostileNumber(f"an integer of {digits} digits; a bundle's integers have at most {MAX_INT_DIGITS}")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _HostileNumber(f"{text[:40]!r} is not a finite number (float overflow)")
    return value


def _no_constant(text: str):
    raise _HostileNumber(f"{text} is not a finite number (strict JSON has no NaN or Infinity)")


def parse_meta(json_path: Path, raw: bytes) -> dict:
    def fail(problem: str):
        raise BundleError(json_path, problem)

    depth = json_depth(raw)
    if depth > MAX_JSON_DEPTH:
        fail(f"JSON nested {depth} levels deep; a bundle needs at most {MAX_JSON_DEPTH}")
    try:
        meta = json.loads(raw.decode("utf-8"), parse_int=_bounded_int, parse_float=_finite_float,
                          parse_constant=_no_constant)
    except _HostileNumber as e:
        fail(str(e))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        fail(f"malformed JSON: {e}")
    if not isinstance(meta, dict):
        fail(f"expected a JSON object, found {type(meta).__name__}")
    if meta.get("format") != FORMAT:
        fail(f"not a genrekit model bundle (format is {meta.get('format')!r}, expected {FORMAT!r})")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        fail(f"format_version must be an integer, found {version!r}")
    if version != FORMAT_VERSION:
        newer = " (made by a newer genrekit)" if version > FORMAT_VERSION else ""
        fail(f"format_version {version}{newer}; this genrekit reads version {FORMAT_VERSION}")
    for field in ("kind", "labels", "feature_set", "feature_set_key", "input", "output",
                  "window", "hop", "aggregate", "weights", "metrics", "card"):
        if field not in meta:
            fail(f"missing field {field!r}")
    if meta["kind"] not in KINDS:
        fail(f"unknown kind {meta['kind']!r}; expected one of {', '.join(KINDS)}")

    labels = meta["labels"]
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
        fail("labels must be a non-empty list of non-empty strings")
    if len(set(labels)) != len(labels):
        fail("labels contain duplicates")

    if not isinstance(meta["feature_set"], dict):
        fail("feature_set must be an object")
    try:
        fs = FeatureSet.from_dict(meta["feature_set"])
    except (TypeError, ValueError, OverflowError) as e:
        fail(f"invalid feature_set: {e}")
    if meta["feature_set_key"] != fs.key:
        fail(
            f"feature_set_key {meta['feature_set_key']!r} does not match this genrekit's key "
            f"{fs.key!r} for the same recipe: the features would be computed differently now"
        )

    inp = meta["input"]
    if not isinstance(inp, dict):
        fail("input must be an object")
    feats = inp.get("features")
    if not isinstance(inp.get("name"), str) or not inp["name"]:
        fail("input.name must be a non-empty string")
    if inp.get("dtype") != "float32":
        fail(f"input.dtype must be 'float32', found {inp.get('dtype')!r}")
    if meta["kind"] == "cnn":
        # spectrogram patches: [null, 1, bands, n_frames], no named feature columns
        from genrekit.models.cnn_inputs import CNN_INPUTS, input_bands

        shape = inp.get("shape")
        ok = (isinstance(shape, list) and len(shape) == 4 and shape[0] is None and shape[1] == 1
              and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape[2:]))
        if fs.name not in CNN_INPUTS or not ok or shape[2] != input_bands(fs):
            fail(f"a cnn bundle needs a {'/'.join(CNN_INPUTS)} feature set and input.shape "
                 f"[null, 1, bands={input_bands(fs)}, n_frames], found {fs.name!r} and {shape!r}")
        feats = []
    elif not isinstance(feats, list) or not feats or not all(isinstance(c, str) for c in feats):
        fail("input.features must be a non-empty list of column names")
    elif inp.get("shape") != [None, len(feats)]:
        fail(f"input.shape must be [null, {len(feats)}] (one row per window), found {inp.get('shape')!r}")
    unknown = [c for c in feats if fs.columns and c not in fs.columns]
    if unknown:
        fail(f"input.features not produced by feature set {fs.name!r}: {', '.join(unknown[:5])}")
    out = meta["output"]
    if not isinstance(out, dict) or not isinstance(out.get("name"), str) or not out["name"]:
        fail("output.name must be a non-empty string")

    for field in ("window", "hop"):
        value = meta[field]
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0
        ):
            fail(f"{field} must be positive seconds or null, found {value!r}")
    if meta["window"] is not None and not MIN_WINDOW <= meta["window"] <= MAX_WINDOW:
        fail(f"window must be between {MIN_WINDOW:g} and {MAX_WINDOW:g} seconds, found {meta['window']!r}")
    if meta["hop"] is not None and not MIN_HOP <= meta["hop"] <= MAX_WINDOW:
        fail(f"hop must be between {MIN_HOP:g} and {MAX_WINDOW:g} seconds (it sets how many windows a "
             f"song is cut into), found {meta['hop']!r}")
    if fs.window is not None and meta["window"] != fs.window:
        fail(f"window {meta['window']!r} differs from the feature set's analysis window {fs.window!r}")
    if meta["aggregate"] not in AGGREGATES:
        fail(f"aggregate must be one of {', '.join(AGGREGATES)}, found {meta['aggregate']!r}")

    weights = meta["weights"]
    if not isinstance(weights, dict) or not isinstance(weights.get("file"), str):
        fail("weights.file must be a file name")
    if not isinstance(weights.get("sha256"), str) or not _SHA256.match(weights["sha256"]):
        fail("weights.sha256 must be 64 lower-case hex digits")
    for field in ("metrics", "card"):
        if not isinstance(meta[field], dict):
            fail(f"{field} must be an object")
    multilabel = meta.get("multilabel")
    if multilabel is not None:
        thresholds = multilabel.get("thresholds") if isinstance(multilabel, dict) else None
        if (not isinstance(thresholds, list) or len(thresholds) != len(labels)
                or not all(isinstance(t, (int, float)) and not isinstance(t, bool) and 0 <= t <= 1 for t in thresholds)):
            fail(f"multilabel.thresholds must be {len(labels)} numbers between 0 and 1, one per label")
    if meta.get("tag_genres") is not None:
        if fs.name != "msd_musicnn":
            fail(f"tag_genres needs a bundle on MSD-musicnn's tags, not on {fs.name!r}")
        from genrekit.backbones.msd_musicnn import TAGS
        from genrekit.models.tag_genres import check_tag_genres

        problem = check_tag_genres(meta["tag_genres"], TAGS, labels)
        if problem:
            fail(problem)
    if meta.get("calibration") is not None or meta.get("unknown") is not None:
        from genrekit.models.calibration import check_meta

        problem = check_meta(meta.get("calibration"), meta.get("unknown"), len(labels), len(feats),
                             rows="log_probabilities" if meta["kind"] == "cnn" else "features")
        if problem:
            fail(problem)
    return meta


def checked_weights_path(folder: Path, json_path: Path, name: str) -> Path:
    """The weights file, which must be a plain file name inside ``folder`` (no escape by path or link)."""
    plain = (
        name not in ("", ".", "..")
        and "/" not in name and "\\" not in name and "\x00" not in name
        and not os.path.isabs(name)
    )
    if not plain:
        raise BundleError(json_path, f"weights.file {name!r} must be a plain file name inside the bundle folder")
    target = folder / name
    if os.path.islink(target) or os.path.dirname(os.path.realpath(target)) != os.path.realpath(folder):
        raise BundleError(
            target, "weights file is a link; a bundle's weights must be a regular file inside its folder"
        )
    if not target.is_file():
        problem = "weights file missing" if not target.exists() else "weights path is not a regular file"
        raise BundleError(target, problem)
    return target
