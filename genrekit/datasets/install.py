"""Put a dataset in the data root, and check later that it is still whole.

Layout of ``<root>/<dataset folder>/`` (``<root>`` is ``--root``, ``$GENREKIT_DATA`` or
``~/genrekit-data``)::

    gtzan/
      gtzan_genre/genres/<genre>/<genre>.NNNNN.wav   the unpacked archive (mirdata's layout)
      mirdata_indexes/gtzan_genre_index_1.0.json     mirdata's per-clip index
      splits/fault_filtered/{train,valid,test}_filtered.txt
      GTZANindex.txt
      .genrekit/gtzan/state.json                     what was installed, from which checksum
      .genrekit/gtzan/audio.sha256                   sha256 of every unpacked file
      .genrekit/downloads/genres.tar.gz.part         a download in progress (resumed next time)

A resource is recorded in ``state.json`` only after its file was checked and placed, so
a half-downloaded or half-unpacked resource is never taken for a whole one: archives
are unpacked into ``.genrekit/tmp-*`` in the same folder and renamed into place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from genrekit._io import atomic_write, write_json_atomic
from genrekit.datasets.archive import unpack
from genrekit.datasets.download import fetch, file_checksum
from genrekit.datasets.registry import ALGORITHMS, Dataset, Resource, get_dataset
from genrekit.datasets.shipped_indexes import shipped_index
from genrekit.errors import DatasetError, DownloadError, UnsafeArchiveError

META = ".genrekit"


def dataset_folder(ds: Dataset, root: str | os.PathLike) -> Path:
    """``<root>/<ds.folder>``."""
    return Path(root).expanduser() / ds.folder


def _meta(ds: Dataset, root) -> Path:
    return dataset_folder(ds, root) / META / ds.name


def read_state(ds: Dataset, root) -> dict:
    """The dataset's ``state.json`` (``{"resources": {}}`` when nothing is installed)."""
    import json

    path = _meta(ds, root) / "state.json"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"dataset": ds.name, "resources": {}}
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: unreadable install record ({exc}); delete it and run validate") from None
    state.setdefault("resources", {})
    return state


def _write_state(ds: Dataset, root, state: dict) -> None:
    write_json_atomic(_meta(ds, root) / "state.json", state)


def _placed(r: Resource) -> list[str]:
    """Paths (relative to the dataset folder) a resource creates."""
    if r.kind == "file":
        return [r.target]
    return list(r.provides) if r.target == "." else [r.target]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --- download -------------------------------------------------------------------------------------
@dataclass
class Step:
    """What :func:`download` did with one resource."""

    dataset: str
    resource: str
    action: str  # "downloaded", "kept" (already installed)
    files: int = 0
    note: str = ""


def download(ds: Dataset, root, *, mirror: str | None = None, force: bool = False,
             only: list[str] | None = None, retries: int = 3, progress: bool = False,
             log=None) -> list[Step]:
    """Download, check and place every resource of ``ds`` (and of the datasets it requires).

    Parameters
    ----------
    ds : Dataset
    root : path-like
        The data root.
    mirror : str, optional
        Base URL: each resource is fetched from ``<mirror>/<filename>`` instead of its URL.
    force : bool
        Replace files already in the dataset folder (the user's, or another version's).
        Without it such a clash stops the download before anything is fetched.
    only : list of str, optional
        Names of the resources to fetch (default all).
    retries : int
        Resumed attempts per file after a dropped connection.
    progress : bool
        Progress bars on stderr.
    log : callable, optional
        Called with one line per step.

    Returns
    -------
    list of Step

    Raises
    ------
    DatasetError
        On a clash without ``force``, a failed download (the ``.part`` is kept for the
        next run), a checksum mismatch, or an unsafe archive.
    """
    steps: list[Step] = []
    for name in ds.requires:
        steps += download(get_dataset(name), root, mirror=mirror, force=force, retries=retries,
                          progress=progress, log=log)
    folder = dataset_folder(ds, root)
    folder.mkdir(parents=True, exist_ok=True)
    _clean_stale_temp(folder)
    state = read_state(ds, root)
    resources = list(ds.resources) if only is None else [ds.resource(n) for n in only]

    # After a validate that found damage, fetch again what is recorded (the user's own files stay protected).
    damaged = bool((state.get("validated") or {}).get("corrupt"))
    todo = []
    for r in resources:
        rec = state["resources"].get(r.name)
        ours = rec is not None and rec.get("checksum") == r.checksum
        if ours and not force and not damaged and _complete(ds, root, r):
            steps.append(Step(ds.name, r.name, "kept", rec.get("files", 1), "already installed"))
            continue
        if not force:
            # Ours to replace only if every file there is one genrekit unpacked from this very file.
            clash = [p for p in _placed(r) if (folder / p).exists()] if not ours else _foreign(ds, root, r)
            if clash:
                raise DatasetError(
                    f"{folder / clash[0]} exists and was not installed by genrekit from {r.filename}"
                    + (" (an older version)" if rec and not ours else "")
                    + "; move it away or use --force to replace it"
                )
        todo.append(r)

    # Small plain files first: an index or a split list should not wait for (or fail with) a big archive.
    for r in sorted(todo, key=lambda r: r.kind == "archive"):
        url = f"{mirror.rstrip('/')}/{r.filename}" if mirror else r.url
        if log:
            log(f"{ds.name}: {r.name}: {url}" + (f" ({r.size_text})" if r.size_text else ""))
        part = folder / META / "downloads" / f"{r.filename}.part"
        sha256 = fetch(url, part, checksum=r.checksum, size=r.size, retries=retries, progress=progress,
                       label=r.filename)
        note = "" if r.checksum else f"no published checksum: recorded sha256 {sha256} of this download"
        if r.kind == "file":
            dest = folder / r.target
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(part, dest)
            n = 1
        else:
            try:
                n = _unpack_into_place(r, part, folder, ds, root)
            except UnsafeArchiveError:
                part.unlink()  # verified but unusable: fetching it again would not help
                raise
            part.unlink()
        state["resources"][r.name] = {
            "filename": r.filename, "checksum": r.checksum, "sha256": sha256, "url": url,
            "installed": _now(), "files": n,
        }
        state.pop("validated", None)  # a new file: the last validation no longer speaks for the whole
        _write_state(ds, root, state)
        steps.append(Step(ds.name, r.name, "downloaded", n, note))
        if log:
            log(f"{ds.name}: {r.name}: " + (f"{n} files unpacked" if r.kind == "archive" else "placed")
                + (f"; {note}" if note else ""))
    return steps


def _complete(ds: Dataset, root, r: Resource) -> bool:
    """Whether every file an installed resource put in place is still there (no checksums: see validate)."""
    folder = dataset_folder(ds, root)
    if r.kind == "file":
        return (folder / r.target).is_file()
    manifest = _meta(ds, root) / f"{r.name}.sha256"
    if not manifest.exists():
        return False
    return all((folder / line.partition("  ")[2]).is_file()
               for line in manifest.read_text(encoding="utf-8").splitlines() if line)


def _foreign(ds: Dataset, root, r: Resource) -> list[str]:
    """Files under an installed resource's paths that genrekit did not unpack (the user's own)."""
    if r.kind == "file":
        return []
    manifest = _meta(ds, root) / f"{r.name}.sha256"
    ours = set()
    if manifest.exists():
        ours = {line.partition("  ")[2] for line in manifest.read_text(encoding="utf-8").splitlines()}
    folder = dataset_folder(ds, root)
    found = []
    for p in _placed(r):
        top = folder / p
        files = [top] if top.is_file() else (x for x in top.rglob("*") if x.is_file() or x.is_symlink())
        found += [rel for x in files if (rel := x.relative_to(folder).as_posix()) not in ours]
    return sorted(found)


def _unpack_into_place(r: Resource, archive: Path, folder: Path, ds: Dataset, root) -> int:
    """Unpack into a temporary folder beside the dataset, then rename the result into place."""
    tmp = folder / META / f"tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    manifest: list[tuple[str, str]] = []
    try:
        unpack(archive, tmp, on_file=lambda rel, sha, size: manifest.append((rel, sha)))
        if r.strip:
            inner = tmp / r.strip
            if not inner.is_dir():
                raise DatasetError(f"{archive}: has no folder {r.strip}/ to unpack (is it the right archive?)")
            # The strip folder's entries move up one level; the other top-level entries stay.
            for entry in list(inner.iterdir()):
                if (tmp / entry.name).exists():
                    raise DatasetError(f"{archive}: {r.strip}/{entry.name} clashes with {entry.name} at the top")
                entry.rename(tmp / entry.name)
            inner.rmdir()
            prefix = r.strip + "/"
            manifest = [(rel[len(prefix):] if rel.startswith(prefix) else rel, sha) for rel, sha in manifest]
        if r.target != ".":
            manifest = [(f"{r.target}/{rel}", sha) for rel, sha in manifest]
        # The file list first: a crash after the rename leaves files the record does not yet vouch for.
        meta = _meta(ds, root)
        meta.mkdir(parents=True, exist_ok=True)
        with atomic_write(meta / f"{r.name}.sha256", "w") as f:
            for rel, sha in sorted(manifest):
                f.write(f"{sha}  {rel}\n")
        if r.target == ".":
            pairs = [(entry, folder / entry.name) for entry in sorted(tmp.iterdir())]
        else:
            pairs = [(tmp, folder / r.target)]
        for src, dest in pairs:
            _replace(src, dest, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return len(manifest)


def _replace(src: Path, dest: Path, folder: Path) -> None:
    """Rename ``src`` onto ``dest``; an existing ``dest`` (clash already allowed) is moved aside first."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() or dest.is_symlink():
        trash = folder / META / f"old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        dest.rename(trash)
        src.rename(dest)
        if trash.is_dir() and not trash.is_symlink():
            shutil.rmtree(trash, ignore_errors=True)
        else:
            trash.unlink()
    else:
        src.rename(dest)


def _clean_stale_temp(folder: Path) -> None:
    """Remove ``tmp-<pid>-*`` / ``old-<pid>-*`` folders left by processes that no longer run."""
    meta = folder / META
    if not meta.is_dir():
        return
    for entry in meta.iterdir():
        kind, _, rest = entry.name.partition("-")
        pid = rest.split("-", 1)[0]
        if kind in ("tmp", "old") and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- validate -------------------------------------------------------------------------------------
#: The detail of a path that is there but could not be checked file by file (no index, not ours).
UNCHECKED = "there, but not checked file by file: no per-file index and not unpacked by genrekit"


@dataclass
class Check:
    """The state of one file: ``present`` (and intact), ``missing`` or ``corrupt``.

    A ``present`` check with the detail :data:`UNCHECKED` is a folder that is there but
    whose files nothing could vouch for (see :attr:`Validation.unchecked`).
    """

    path: str
    status: str
    resource: str
    detail: str = ""


@dataclass
class Validation:
    """The result of :func:`validate`."""

    dataset: str
    folder: Path
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Resource name → why it was not checked (an index genrekit ships a copy of).
    skipped: dict[str, str] = field(default_factory=dict)

    def counts(self, resource: str | None = None) -> dict[str, int]:
        c = Counter(ch.status for ch in self.checks if resource is None or ch.resource == resource)
        return {s: c.get(s, 0) for s in ("present", "missing", "corrupt")}

    @property
    def unchecked(self) -> list[Check]:
        """Paths that are there but could not be checked file by file (no per-file index)."""
        return [ch for ch in self.checks if ch.status == "present" and ch.detail == UNCHECKED]

    @property
    def ok(self) -> bool:
        c = self.counts()
        return c["missing"] == 0 and c["corrupt"] == 0

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "folder": str(self.folder), "when": _now(), **self.counts()}


def validate(ds: Dataset, root, *, progress: bool = False, use_mirdata: bool | None = None) -> Validation:
    """Check every file of ``ds`` in the data root against its checksum.

    Files are known from, in this order: the dataset's mirdata index (each clip's path
    and md5, checked with mirdata's own ``validate`` when mirdata is installed), or,
    where that index is not downloaded, the copy of it genrekit ships
    (:mod:`.shipped_indexes`: GTZAN); the list of files genrekit unpacked (sha256); and
    each plain resource's published checksum. A resource never installed counts as one
    missing path; a partial copy (some files deleted or never copied, or a copy made by
    hand) is reported file by file wherever an index is known. Where none is (Ballroom
    copied by hand, its index not downloaded), a note says so and what to run.

    Parameters
    ----------
    ds : Dataset
    root : path-like
    progress : bool
        Progress bar over the files on stderr.
    use_mirdata : bool or None
        ``None``: use mirdata's checker when it can be imported; ``False``: genrekit's own
        (same result; for comparison).

    Returns
    -------
    Validation
        Also recorded in the dataset's ``state.json``.
    """
    folder = dataset_folder(ds, root)
    state = read_state(ds, root)
    result = Validation(ds.name, folder)
    md5_check = _md5_checker(use_mirdata)
    from_index = _index_entries(ds, folder, result)
    index_files = {**_shipped_checksums(ds, folder), **from_index}
    if ds.index is not None and not from_index and any(r.kind == "archive" and r.name in state["resources"]
                                                       for r in ds.resources):
        result.notes.append(f"no {ds.resource(ds.index).filename}: files are checked against the list genrekit "
                            "made when it unpacked them")

    jobs: list[tuple[str, str, str | None, str]] = []  # (path, resource, "algo:digest" or None, detail)
    for r in ds.resources:
        rec = state["resources"].get(r.name)
        if r.name in result.skipped:
            continue
        if r.kind == "file":
            expected = r.checksum or (f"sha256:{rec['sha256']}" if rec else None)
            jobs.append((r.target, r.name, expected, ""))
            continue
        entries: dict[str, str | None] = {}
        manifest = _meta(ds, root) / f"{r.name}.sha256"
        if rec is not None and manifest.exists():
            for line in manifest.read_text(encoding="utf-8").splitlines():
                digest, _, rel = line.partition("  ")
                if rel:
                    entries[rel] = f"sha256:{digest}"
        prefix = "" if r.target == "." else r.target.rstrip("/") + "/"
        for rel, checksum in index_files.items():
            if rel.startswith(prefix):
                entries[rel] = checksum
        if not entries:
            if ds.index is not None and not from_index and any((folder / p).exists() for p in _placed(r)):
                _no_index_note(ds, root, r, result)
            for p in _placed(r):
                jobs.append((p, r.name, None, f"not downloaded ({r.filename})"))
            continue
        jobs += [(rel, r.name, checksum, "") for rel, checksum in sorted(entries.items())]

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), unit="file", desc=f"validate {ds.name}", file=sys.stderr)
    for rel, resource, checksum, detail in jobs:
        path = folder / rel
        if detail:
            status = "present" if path.exists() else "missing"
            if status == "present":
                detail = UNCHECKED
        elif not path.is_file():
            status = "missing"
        elif checksum is None:
            status = "present"
        else:
            algo, _, digest = checksum.partition(":")
            good = md5_check(path, digest) if algo == "md5" else file_checksum(path, algo) == digest
            status = "present" if good else "corrupt"
            detail = "" if good else f"{algo} differs from {digest}"
        result.checks.append(Check(rel, status, resource, detail if status != "present" or detail == UNCHECKED
                                   else ""))
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()

    if state["resources"] or result.counts()["present"]:
        state["validated"] = result.to_dict()
        with contextlib.suppress(OSError):
            _write_state(ds, root, state)
    return result


def _index_entries(ds: Dataset, folder: Path, result: Validation) -> dict[str, str]:
    """``{relative path: "md5:<hex>"}`` of the files the dataset's index lists (empty without one).

    The downloaded mirdata index when it is there and intact, else genrekit's shipped copy
    of the same file (the index resource is then not needed and is not checked).
    """
    if ds.index is None:
        return {}
    r = ds.resource(ds.index)
    path = folder / r.target
    problem = None
    if not path.is_file():
        problem = f"{r.target} is not downloaded"
    elif r.checksum and file_checksum(path, r.algorithm) != r.digest:
        problem = f"{r.target} does not match its checksum"
    else:
        try:
            entries = _read_mirdata_index(path, ds.index_keys)
        except (ValueError, AttributeError, TypeError, IndexError, UnicodeDecodeError) as exc:
            problem = f"{r.target} is not a mirdata index ({exc})"
        else:
            return entries
    shipped = shipped_index(r.checksum)
    if shipped is None:
        if path.exists():  # a damaged or foreign index: say so (a missing one is the audio note's business)
            result.notes.append(f"{problem}: not used")
        return {}
    result.notes.append(f"{problem}: using the copy genrekit ships of the same index ({shipped.describe()})")
    if not path.exists():
        result.skipped[r.name] = "not needed: genrekit ships a copy of this index"
    return shipped.checksums()


def _read_mirdata_index(path: Path, keys: tuple[str, ...]) -> dict[str, str]:
    import json

    index = json.loads(path.read_text(encoding="utf-8"))
    entries = {}
    for track in (index.get("tracks") or {}).values():
        for key in keys:
            item = track.get(key)
            if item and item[0]:
                entries[item[0]] = f"md5:{item[1]}"
    return entries


def _no_index_note(ds: Dataset, root, r: Resource, result: Validation) -> None:
    """Say that a copy genrekit did not unpack cannot be checked file by file, and what to do."""
    from genrekit.datasets.registry import default_root

    index = ds.resource(ds.index)
    hint = f" --root {root}" if Path(root).expanduser() != default_root() else ""
    result.notes.append(
        f"no per-file index for {ds.name}: {index.target} is not downloaded and genrekit ships no copy of it "
        f"(no installable package carries it), and genrekit did not unpack {r.filename} here, so "
        f"{', '.join(_placed(r)) or r.target} is checked only for being there, not file by file. "
        f"To check every file: genrekit datasets download {ds.name} --only {index.name}{hint} "
        f"(fetches {index.filename} from {index.url.split('/')[2]}), or put that file at "
        f"{dataset_folder(ds, root) / index.target} yourself; then validate again"
    )


def _shipped_checksums(ds: Dataset, folder: Path) -> dict[str, str]:
    """``{relative path: "<algorithm>:<hex>"}`` from a checksum list shipped with the data (FMA's ``checksums``)."""
    if ds.checksums_file is None:
        return {}
    path = folder / ds.checksums_file
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return {}
    base = Path(ds.checksums_file).parent.as_posix()
    by_length = {n: a for a, n in ALGORITHMS.items()}
    out = {}
    for line in lines:
        digest, _, name = line.strip().partition("  ")
        name = name.lstrip("*")  # sha1sum's binary-mode marker
        algo = by_length.get(len(digest))
        if algo and name and ".." not in name.split("/") and not name.startswith("/"):
            out[f"{base}/{name}" if base not in ("", ".") else name] = f"{algo}:{digest.lower()}"
    return out


def _md5_checker(use_mirdata: bool | None):
    """``check(path, md5) -> bool``: mirdata's validator when available (and not refused), else ours."""
    if use_mirdata is not False:
        try:
            from mirdata.validate import validate as mirdata_validate
        except ImportError:
            if use_mirdata:
                raise DatasetError("use_mirdata=True but mirdata is not installed: pip install 'genrekit[datasets]'")
        else:
            return lambda path, md5: all(mirdata_validate(str(path), md5))
    return lambda path, md5: file_checksum(path, "md5") == md5


def installed(ds: Dataset, root) -> bool:
    """Whether every archive of ``ds`` is recorded as installed and its top-level paths exist."""
    state = read_state(ds, root)
    folder = dataset_folder(ds, root)
    return all(
        r.name in state["resources"] and all((folder / p).exists() for p in _placed(r))
        for r in ds.resources if r.kind == "archive"
    )


__all__ = ["META", "UNCHECKED", "Check", "DownloadError", "Step", "Validation", "dataset_folder", "download", "installed",
           "read_state", "validate"]
