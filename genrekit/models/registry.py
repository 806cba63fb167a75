"""Which model a name means, and loading it: the one home of model resolution.

- :func:`resolve_model`: a ``--model`` value (a shipped model's name, a bundle folder, a
  training run folder) to a bundle folder;
- :func:`find_bundles` and :func:`find_runs`: bundles and training runs below a folder
  (``genrekit models DIR``, ``serve --runs``, ``report``), found the same way everywhere;
- :func:`read_meta`: a bundle's checked ``bundle.json`` without loading its weights;
- :func:`load_model`: a bundle as the model kind that can classify audio with it
  (:data:`MODEL_KINDS`), loaded once per process;
- :class:`PackedModel`: a model's files as bytes for workers that do not share our files.

Used by every verb, the server, the engines and the report.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from genrekit.errors import BundleError
from genrekit.models.backbone_head import BackboneHeadModel
from genrekit.models.bundle import bundle_from_bytes, load_bundle
from genrekit.models.bundle_json import BUNDLE_JSON, read_bundle_meta
from genrekit.models.feature_table import FeatureTableModel
from genrekit.models.protocol import GenreClassifier
from genrekit.models.spectrogram_cnn import SpectrogramCNNModel
from genrekit.training.run_folder import DONE_DIR, RESULTS_JSON, TENSORBOARD_DIR, read_results, selected_folder

#: Bundles shipped inside the package, one folder per model name.
SHIPPED_MODELS = Path(__file__).resolve().parent / "shipped"
#: The shipped model used when no model is named: GTZAN's ten genres from the MSD-musicnn backbone.
DEFAULT_MODEL_NAME = "gtzan-musicnn"
#: Former names of shipped models, still accepted by ``--model``.
SHIPPED_ALIASES = {"musicnn": "gtzan-musicnn"}
DEFAULT_MODEL = SHIPPED_MODELS / DEFAULT_MODEL_NAME
#: Levels of sub-folders searched below a folder for bundles (a bundle, a run, a folder of runs, one more).
BUNDLE_DEPTH = 3
#: Folders never searched for bundles or runs (checkpoints, caches, VCS, TensorBoard logs); hidden ones neither.
SKIP_DIRS = frozenset({DONE_DIR, ".git", "__pycache__", TENSORBOARD_DIR, "node_modules"})
#: Model kinds, asked in this order which of them classifies audio with a bundle.
MODEL_KINDS: tuple[type[GenreClassifier], ...] = (BackboneHeadModel, SpectrogramCNNModel, FeatureTableModel)


def shipped_models() -> list[str]:
    """Names of the models shipped with genrekit (folders of :data:`SHIPPED_MODELS`)."""
    return sorted(p.parent.name for p in SHIPPED_MODELS.glob(f"*/{BUNDLE_JSON}"))


def model_name(folder: Path) -> str:
    """What outputs call the model in ``folder``: a shipped model's name, else the folder's name."""
    folder = Path(folder)
    try:
        if folder.resolve().parent == SHIPPED_MODELS:
            return folder.name
    except OSError:
        pass
    return folder.name or str(folder)


# --- finding ---------------------------------------------------------------------------------
def _walk(root: Path, max_depth: int, marker: str, limit: int | None = None) -> list[Path]:
    """Folders holding a file named ``marker``, ``root`` included and at most ``max_depth`` levels
    below it, sorted. Symbolic links to folders are not followed (no loops, nothing outside
    ``root``); hidden folders and :data:`SKIP_DIRS` are skipped."""
    found: list[Path] = []
    base = len(root.parts)
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        depth = len(here.parts) - base
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS) if depth < max_depth else []
        if marker in files and (here / marker).is_file():
            found.append(here)
            if limit is not None and len(found) >= limit:
                break
    return sorted(found)


def find_bundles(root: str | os.PathLike, *, max_depth: int = BUNDLE_DEPTH) -> list[Path]:
    """Bundle folders (holding ``bundle.json``) in ``root``, itself included, at most
    ``max_depth`` levels down, sorted."""
    return _walk(Path(root), max_depth, BUNDLE_JSON)


def find_runs(root: str | os.PathLike, *, max_depth: int = 6, limit: int = 10_000) -> list[Path]:
    """Training run folders (holding ``results.json``) in ``root``, itself included, sorted."""
    return _walk(Path(root), max_depth, RESULTS_JSON, limit)


def relative_name(folder: Path, root: Path) -> str:
    """``folder``'s name below ``root`` with ``/`` separators (``root`` itself: its own name)."""
    name = Path(folder).relative_to(root).as_posix()
    return (Path(root).resolve().name or str(root)) if name == "." else name


def read_meta(folder: str | os.PathLike) -> dict:
    """A bundle's ``bundle.json``, parsed and checked (no weights loaded); raises :class:`BundleError`."""
    return read_bundle_meta(folder)


# --- resolving ---------------------------------------------------------------------------------
def resolve_model(spec: str | os.PathLike | None = None) -> Path:
    """The bundle folder a ``--model`` value names; the one place model names are resolved.

    Parameters
    ----------
    spec : str, path or None
        ``None``: the default shipped model (:data:`DEFAULT_MODEL_NAME`). A path that
        exists: a bundle folder (holding ``bundle.json``), or a training run folder,
        which stands for the model its ``results.json`` selected on validation, or for
        its only bundle. Otherwise the name of a shipped model (:func:`shipped_models`).

    Raises
    ------
    genrekit.errors.BundleError
        When ``spec`` names nothing, or a run folder holding several models none of
        which is selected (the message lists them).
    """
    if spec is None:
        return DEFAULT_MODEL
    path = Path(spec).expanduser()
    if not path.exists():
        name = SHIPPED_ALIASES.get(str(spec), str(spec))
        if name in shipped_models():
            return SHIPPED_MODELS / name
        raise BundleError(spec, f"no such model: not a bundle or run folder, nor a shipped model "
                          f"({', '.join(shipped_models()) or 'none installed'}); `genrekit models DIR` "
                          f"lists the models in a folder")
    if (path / BUNDLE_JSON).exists() or not path.is_dir():
        return path  # load_bundle says what is wrong with it, if anything
    selected = selected_bundle(path)
    if selected is not None:
        return selected
    found = find_bundles(path, max_depth=1)
    found = [p for p in found if p != path]
    if len(found) == 1:
        return found[0]
    if found:
        names = ", ".join(p.name for p in found)
        raise BundleError(path, f"a run folder holding {len(found)} models ({names}) and none selected "
                          f"(a run selects one when trained with --valid-size); name one, "
                          f"e.g. --model {found[0]}")
    deeper = find_bundles(path, max_depth=2)
    if deeper:
        raise BundleError(path, f"a folder of runs, not one model; name one, e.g. --model {deeper[0]} "
                          f"(`genrekit models {path}` lists them)")
    raise BundleError(path, "no bundle.json in it or in its subfolders "
                      "(is it a model bundle or a training run folder?)")


def selected_bundle(run: Path) -> Path | None:
    """The bundle a run folder's results.json selected, if it names one that exists."""
    folder = selected_folder(run, read_results(run))
    if folder is not None and (folder / BUNDLE_JSON).exists():
        return folder
    legacy = Path(run) / "selected"
    return legacy if (legacy / BUNDLE_JSON).exists() else None


# --- loading ---------------------------------------------------------------------------------
def model_kind(bundle) -> type[GenreClassifier]:
    """The model kind (:data:`MODEL_KINDS`) that classifies audio with ``bundle``.

    Raises :class:`BundleError` for a bundle no kind can use on audio (a classical model on
    a feature table that cannot be computed per window of a song).
    """
    for kind in MODEL_KINDS:
        if kind.accepts(bundle):
            return kind
    raise BundleError(bundle.path, f"a {bundle.kind} model on '{bundle.feature_set.name}' features cannot "
                      f"classify audio (only gtzan57 rows and the backbone's outputs can be computed per window "
                      f"of a song); use it with `genrekit evaluate` on a feature table")


def classifier(bundle, name: str) -> GenreClassifier:
    """``bundle`` as its model kind, called ``name`` in outputs."""
    return model_kind(bundle)(bundle, name)


_MODELS: dict[tuple[str, int], GenreClassifier] = {}
_PACKED: dict[str, GenreClassifier] = {}
_LOCK = threading.Lock()


def load_model(path: str | os.PathLike | None = None) -> GenreClassifier:
    """Load a model once per process (``None``: the shipped default model).

    ``path`` is anything :func:`resolve_model` accepts: a shipped model's name, a
    bundle folder, or a run folder. Raises :class:`genrekit.errors.BundleError`
    for anything that is not a valid bundle.
    """
    folder = resolve_model(path)
    key = (str(folder.resolve()), _mtime(folder))
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = classifier(load_bundle(folder), model_name(folder))
        return _MODELS[key]


def _mtime(folder: Path) -> int:
    try:
        return (folder / BUNDLE_JSON).stat().st_mtime_ns
    except OSError:
        return 0


class PackedModel:
    """A model bundle's files as bytes, to send to workers that may not see this machine's files.

    Pickled once per job and sent to each worker once (the Ray engine puts it in Ray's
    object store); :meth:`load` rebuilds the model from the bytes, once per process.
    Loading checks everything :func:`genrekit.models.bundle.load_bundle` checks
    (checksum, signature): the bytes are trusted no more than a folder would be.

    Parameters
    ----------
    files : dict of str to bytes
        ``bundle.json`` and the weights file, by name.
    name : str
        The model's name (:attr:`GenreClassifier.name`).
    """

    def __init__(self, files: dict[str, bytes], name: str) -> None:
        self.files = dict(files)
        self.name = name
        digest = hashlib.sha256()
        for file_name in sorted(self.files):
            digest.update(file_name.encode() + b"\0" + hashlib.sha256(self.files[file_name]).digest())
        self.digest = digest.hexdigest()

    @classmethod
    def of(cls, clf: GenreClassifier) -> "PackedModel":
        """Pack the files of a loaded model; raises ``BundleError`` if they changed since it was loaded."""
        folder = Path(clf.bundle.path)
        weights_name = clf.bundle.meta["weights"]["file"]
        try:
            files = {BUNDLE_JSON: (folder / BUNDLE_JSON).read_bytes(), weights_name: (folder / weights_name).read_bytes()}
        except OSError as exc:
            raise BundleError(folder, f"cannot read the bundle to send it to workers: {exc.strerror or exc}") from None
        if hashlib.sha256(files[weights_name]).hexdigest() != clf.bundle.sha256:
            raise BundleError(folder, "the model bundle changed on disk since it was loaded")
        return cls(files, clf.name)

    def load(self) -> GenreClassifier:
        """The model, rebuilt from the bytes once per process (in memory: nothing is written to disk,
        so a worker killed while loading leaves nothing behind)."""
        with _LOCK:
            clf = _PACKED.get(self.digest)
        if clf is not None:
            return clf
        bundle = bundle_from_bytes(self.files, f"model {self.name} sent to this worker")
        with _LOCK:
            return _PACKED.setdefault(self.digest, classifier(bundle, self.name))

    def __repr__(self) -> str:
        return f"PackedModel({self.name!r}, {sum(map(len, self.files.values()))} bytes)"


def worker_model(model):
    """A worker's model from what a job sent it: a :class:`PackedModel`, or a bundle path
    (``None``: the default) loaded by :func:`load_model`. Kept for the life of the process."""
    return model.load() if isinstance(model, PackedModel) else load_model(model)
