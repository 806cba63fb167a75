"""The public genre datasets genrekit knows by name: where each file comes from and its checksum.

Each :class:`Dataset` is a list of :class:`Resource` files (archives to unpack, or plain
files such as an index or a split list), each with the URL and checksum its publisher
gives. Nothing here is downloaded on import; :mod:`genrekit.datasets.install` does that.

Where the entries come from
---------------------------
- ``gtzan`` and ``ballroom``: the archive and index URLs and md5 checksums are those of
  mirdata 1.0.0 (``mirdata/datasets/gtzan_genre.py``, ``mirdata/datasets/ballroom.py``,
  ``REMOTES`` and ``INDEXES``); the per-file index (path and md5 of every clip) is
  mirdata's own JSON index, downloaded from Zenodo like the audio. A test checks these
  constants against the installed mirdata so that they cannot drift silently. GTZAN's
  index also ships in the package (:mod:`.shipped_indexes`, from mirdata 0.3.8's wheel,
  same md5), so that ``validate`` works offline; Ballroom's does not (no package has it).
- ``gtzan``'s split lists and artist index: files published by their authors
  (Kereliuk, Sturm & Larsen's fault-filtered lists in coreyker/dnn-mgr; Sturm's
  ``GTZANindex.txt``); their sha256 is genrekit's, computed from the published files.
- ``fma-*``: genrekit's index, from the archive names, URLs and sha1 sums published in
  the FMA repository's README (github.com/mdeff/fma, release rc1, 2017-05-09). Exact
  byte sizes are not published (only "342 MiB", "7.2 GiB"), so no size is enforced.
  Per-file: the ``checksums`` list (sha1 of every MP3) that the audio archives carry.

More entries (a lab's own data, a test's) can be added with a JSON catalogue named by
``$GENREKIT_CATALOGUE`` (see :func:`load_catalogue`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from genrekit.config import settings
from genrekit._io import read_json
from genrekit.datasets import gtzan
from genrekit.errors import DatasetError

#: Checksum algorithms accepted in ``"<algorithm>:<hex digest>"`` strings.
ALGORITHMS = {"md5": 32, "sha1": 40, "sha256": 64}

_CHECKSUM = re.compile(r"^(md5|sha1|sha256):([0-9a-f]+)$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True)
class Resource:
    """One file of a dataset as its publisher serves it.

    Attributes
    ----------
    name : str
        Short name within the dataset (``"audio"``, ``"index"``, ``"artists"``).
    filename : str
        The file's name on the server; ``--mirror BASE_URL`` fetches ``BASE_URL/filename``.
    url : str
        Where its publisher serves it.
    checksum : str or None
        ``"md5:<hex>"``, ``"sha1:<hex>"`` or ``"sha256:<hex>"`` as published; ``None``
        only where none is published (the download then records its own sha256 and says so).
    kind : {"archive", "file"}
        An archive (``.tar``, ``.tar.gz``, ``.zip``) is unpacked; a file is placed as is.
    target : str
        Archive: the folder, relative to the dataset folder, its members go to
        (``"."`` for the dataset folder itself). File: its path relative to the dataset folder.
    strip : str or None
        Archive: a leading folder whose contents (not itself) go to ``target``.
    provides : tuple of str
        Archive: the top-level paths (relative to the dataset folder) it creates, checked
        for clashes with the user's files before anything is downloaded.
    size : int or None
        Exact size in bytes where published.
    size_text : str
        Size as the publisher states it ("1.2 GB").
    origin : str
        Where the URL and checksum come from.
    """

    name: str
    filename: str
    url: str
    checksum: str | None
    kind: str = "file"
    target: str = "."
    strip: str | None = None
    provides: tuple[str, ...] = ()
    size: int | None = None
    size_text: str = ""
    origin: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("archive", "file"):
            raise DatasetError(f"resource {self.name!r}: kind must be 'archive' or 'file', not {self.kind!r}")
        if self.checksum is not None:
            m = _CHECKSUM.match(self.checksum.lower())
            if not m or len(m[2]) != ALGORITHMS[m[1]]:
                raise DatasetError(
                    f"resource {self.name!r}: checksum {self.checksum!r} is not '<md5|sha1|sha256>:<hex digest>'"
                )
            object.__setattr__(self, "checksum", self.checksum.lower())
        for path in (self.target, *self.provides, self.filename):
            _check_relative(path, f"resource {self.name!r}")
        if "/" in self.filename:
            raise DatasetError(f"resource {self.name!r}: filename {self.filename!r} must not name a folder")
        if self.kind == "archive" and not self.provides:
            first = self.target.split("/")[0]
            object.__setattr__(self, "provides", () if first == "." else (first,))
        object.__setattr__(self, "provides", tuple(self.provides))

    @property
    def algorithm(self) -> str | None:
        """``"md5"``, ``"sha1"``, ``"sha256"`` or ``None``."""
        return self.checksum.split(":", 1)[0] if self.checksum else None

    @property
    def digest(self) -> str | None:
        """The hex digest part of :attr:`checksum`."""
        return self.checksum.split(":", 1)[1] if self.checksum else None


@dataclass(frozen=True)
class Dataset:
    """A dataset by name: what it is, its files, and how its clips get their labels.

    Attributes
    ----------
    name : str
        What ``genrekit datasets download NAME`` and ``--data NAME`` take.
    title, summary : str
    folder : str
        Folder under the data root holding it (datasets that need each other share one).
    tracks : int or None
        Number of tracks (clips) the publisher states.
    genres : tuple of str
        The labels.
    size_text : str
        Download size, as published.
    licence, citation : str
    faults : tuple of str
        Known problems a user should know before reporting a result on it.
    sources : str
        Which parts of the entry come from where (mirdata, the publisher, genrekit).
    resources : tuple of Resource
    requires : tuple of str
        Datasets that must be downloaded too (FMA audio needs FMA's metadata for labels).
    index : str or None
        Name of the resource holding a mirdata-format JSON index (every file's path and md5).
    index_keys : tuple of str
        The index's file kinds that belong to the downloaded resources (``"audio"``).
    labels : {"folders", "fma"}
        ``folders``: a clip's label is the name of its folder under :attr:`audio_root`
        (mapped through :attr:`label_map`); ``fma``: the top-level genre of the track in
        FMA's ``tracks.csv``, for the tracks of :attr:`fma_subset`.
    audio_root : str
        Folder (relative to :attr:`folder`) holding the audio.
    label_map : dict
        Folder name → label, for folders whose label is not their name.
    fma_subset : str or None
        ``"small"`` or ``"medium"``.
    artists : str or None
        Name of the resource holding an artist index (``GTZANindex.txt`` format).
    splits : dict
        Split kind → folder (relative to :attr:`folder`) of its lists, e.g.
        ``{"fault-filtered": "splits/fault_filtered"}``.
    checksums_file : str or None
        A ``sha1sum``/``md5sum``/``sha256sum``-format list shipped inside the data
        (FMA's ``fma_small/checksums``), relative to :attr:`folder`; its paths are
        relative to its own folder. ``validate`` checks the files it lists.
    """

    name: str
    title: str
    folder: str
    resources: tuple[Resource, ...]
    summary: str = ""
    tracks: int | None = None
    genres: tuple[str, ...] = ()
    size_text: str = ""
    licence: str = ""
    citation: str = ""
    faults: tuple[str, ...] = ()
    sources: str = ""
    requires: tuple[str, ...] = ()
    index: str | None = None
    index_keys: tuple[str, ...] = ("audio",)
    labels: str = "folders"
    audio_root: str = "."
    label_map: dict = field(default_factory=dict)
    fma_subset: str | None = None
    artists: str | None = None
    splits: dict = field(default_factory=dict)
    checksums_file: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise DatasetError(f"dataset name {self.name!r}: use lower-case letters, digits, '.', '_' and '-'")
        _check_relative(self.folder, f"dataset {self.name!r}")
        _check_relative(self.audio_root, f"dataset {self.name!r}")
        if self.checksums_file is not None:
            _check_relative(self.checksums_file, f"dataset {self.name!r}")
        names = [r.name for r in self.resources]
        if len(set(names)) != len(names):
            raise DatasetError(f"dataset {self.name!r}: two resources share a name")
        for ref in (self.index, self.artists):
            if ref is not None and ref not in names:
                raise DatasetError(f"dataset {self.name!r}: no resource named {ref!r}")
        if self.labels not in ("folders", "fma"):
            raise DatasetError(f"dataset {self.name!r}: labels must be 'folders' or 'fma', not {self.labels!r}")
        for attr in ("resources", "genres", "faults", "requires", "index_keys"):
            object.__setattr__(self, attr, tuple(getattr(self, attr)))

    def resource(self, name: str) -> Resource:
        """The resource called ``name``."""
        for r in self.resources:
            if r.name == name:
                return r
        raise DatasetError(f"{self.name} has no resource {name!r}; it has {', '.join(r.name for r in self.resources)}")


def _check_relative(path: str, where: str) -> None:
    """Refuse absolute paths and ``..``: every entry stays inside the data root."""
    p = path.replace("\\", "/")
    if not p or p.startswith("/") or re.match(r"^[A-Za-z]:", p) or ".." in p.split("/"):
        raise DatasetError(f"{where}: path {path!r} must be relative and stay inside the dataset folder")


# --- the built-in entries --------------------------------------------------------------------------
_MIRDATA = "mirdata 1.0.0"
_DNN_MGR = "https://raw.githubusercontent.com/coreyker/dnn-mgr/master/gtzan/"
_FMA = "https://os.unil.cloud.switch.ch/fma/"
_FMA_README = "sha1 published in github.com/mdeff/fma README (release rc1, 2017-05-09)"


def _split_list(side: str, sha256: str) -> Resource:
    return Resource(
        f"split-{side}", f"{side}_filtered.txt", _DNN_MGR + f"{side}_filtered.txt", f"sha256:{sha256}",
        target=f"splits/fault_filtered/{side}_filtered.txt",
        origin="Kereliuk, Sturm & Larsen (2015), published in github.com/coreyker/dnn-mgr (gtzan/); "
               "sha256 computed by genrekit from that file",
    )


GTZAN = Dataset(
    name="gtzan",
    title="GTZAN Genre Collection",
    folder="gtzan",
    summary="1000 clips of 30 s, 100 per genre, 22050 Hz mono 16-bit; the most used genre benchmark.",
    tracks=1000,
    genres=gtzan.GENRES,
    size_text="1.2 GB",
    licence="None stated by its authors (mirdata: \"we couldn't find the license information\"); "
            "used in research as-is.",
    citation="G. Tzanetakis, P. Cook, \"Musical genre classification of audio signals\", IEEE Trans. "
             "Speech and Audio Processing 10(5), 2002.",
    faults=(
        "Sturm (2013, \"The GTZAN dataset: its contents, its faults, their effects on evaluation, and its "
        "future use\") documents exact repetitions (the same excerpt twice), recording repetitions (two "
        "excerpts of one recording), mislabellings, and distorted clips.",
        "Many artists have several clips in one genre: a random split puts one artist on both sides and "
        "rewards recognising the artist; use --split artist (GTZANindex.txt) or --split fault-filtered.",
        "The fault-filtered split of Kereliuk, Sturm & Larsen (2015) (443 train / 197 valid / 290 test "
        "clips) keeps artists apart and leaves out the faulty clips (70 clips are in no list).",
        "Some copies of jazz.00054 cannot be decoded; genrekit reports and skips it.",
        "The original host (opihi.cs.uvic.ca) has often been unreachable: use --mirror BASE_URL with a "
        "server holding genres.tar.gz (the checksum is still enforced).",
    ),
    sources="archive URL and md5, and the per-clip index (path + md5), from mirdata 1.0.0 (gtzan_genre); "
            "split lists from coreyker/dnn-mgr and the artist index (Sturm's GTZANindex.txt), with genrekit's "
            "sha256 of the published files",
    resources=(
        Resource("audio", "genres.tar.gz", "http://opihi.cs.uvic.ca/sound/genres.tar.gz",
                 "md5:5b3d6dddb579ab49814ab86dba69e7c7", kind="archive", target="gtzan_genre",
                 size_text="1.2 GB", origin=f"{_MIRDATA} gtzan_genre REMOTES['all']"),
        Resource("index", "gtzan_genre_index_1.0.json",
                 "https://zenodo.org/records/13993311/files/gtzan_genre_index_1.0.json?download=1",
                 "md5:533ca050855f22acf2feb283d9957fe3", target="mirdata_indexes/gtzan_genre_index_1.0.json",
                 origin=f"{_MIRDATA} gtzan_genre INDEXES['1.0']"),
        _split_list("train", "2b04966cef1486f1a7767b74271533fa23e220388db804a1937835e1fc4fa3fa"),
        _split_list("valid", "f8fbee7c52397a0e0f3a91dc54fedecb2e27f5bdc9a9daeab8cb10d077e26956"),
        _split_list("test", "09cafa6a89ce0a27f30ed250d56ecb4d03c22fffb5a693f96c7ae655ee02ac72"),
        Resource("artists", "GTZANindex.txt",
                 "https://raw.githubusercontent.com/seungheondoh/gtzan-bind/"
                 "3f05b847d73cc26623733369b52359975b2f1639/dataset/rhythm/marchand2015swing/GTZANindex.txt",
                 "sha256:7bc7140f082cccd72046ec7c6e9b9c211a7491f6e7ede38fddafc63058559833",
                 target="GTZANindex.txt",
                 origin="B. L. Sturm's artist/title index of GTZAN (2012), as republished with GTZAN-Rhythm "
                        "(Marchand & Peeters 2015) in github.com/seungheondoh/gtzan-bind; sha256 by genrekit"),
    ),
    index="index",
    audio_root="gtzan_genre/genres",
    artists="artists",
    splits={"fault-filtered": "splits/fault_filtered"},
)

BALLROOM = Dataset(
    name="ballroom",
    title="Ballroom (ISMIR 2004 tempo contest)",
    folder="ballroom",
    summary="698 excerpts of about 30 s from ballroomdancers.com, labelled with their dance style.",
    tracks=698,
    genres=("ChaChaCha", "Jive", "Quickstep", "Rumba", "Samba", "Tango", "VienneseWaltz", "Waltz"),
    size_text="not stated by its publishers",
    licence="mirdata states Creative Commons Attribution Non Commercial Share Alike 4.0 International "
            "(CC BY-NC-SA 4.0).",
    citation="F. Gouyon, A. Klapuri, S. Dixon, M. Alonso, G. Tzanetakis, C. Uhle, P. Cano, \"An experimental "
             "comparison of audio tempo induction algorithms\", IEEE TASLP 14(5), 2006; S. Dixon, F. Gouyon, "
             "G. Widmer, \"Towards characterisation of music via rhythmic patterns\", ISMIR 2004.",
    faults=(
        "The labels are dance styles, which tempo alone separates well: a high accuracy here says little "
        "about timbre or genre.",
        "The archive files Rumba under three folders (Rumba-American, Rumba-International, Rumba-Misc); "
        "genrekit labels all three 'Rumba' (mirdata's genre is the folder name).",
        "Beat and tempo annotations (mirdata's other remotes) are not downloaded: genre needs only the audio.",
    ),
    sources="archive URL and md5, and the per-file index (path + md5), from mirdata 1.0.0 (ballroom)",
    resources=(
        Resource("audio", "data1.tar.gz", "https://mtg.upf.edu/ismir2004/contest/tempoContest/data1.tar.gz",
                 "md5:2872a3e52070bc342a4510a95e2fa0b8", kind="archive", target="B_1.0/audio",
                 strip="BallroomData",
                 origin=f"{_MIRDATA} ballroom REMOTES['audio']"),
        Resource("index", "ballroom_full_index_1.0.json",
                 "https://zenodo.org/records/13993346/files/ballroom_full_index_1.0.json?download=1",
                 "md5:ca5a5c68e59c608ae8b73b23454d5707", target="mirdata_indexes/ballroom_full_index_1.0.json",
                 origin=f"{_MIRDATA} ballroom INDEXES['1.0']"),
    ),
    index="index",
    audio_root="B_1.0/audio",
    label_map={"Rumba-American": "Rumba", "Rumba-International": "Rumba", "Rumba-Misc": "Rumba"},
)

_FMA_CITATION = ("M. Defferrard, K. Benzi, P. Vandergheynst, X. Bresson, \"FMA: A Dataset for Music Analysis\", "
                 "ISMIR 2017 (arXiv:1612.01840).")
_FMA_FAULTS = (
    "A few MP3s are truncated or silent (reported in github.com/mdeff/fma issues); genrekit reports the "
    "files it cannot decode and goes on.",
    "Use FMA's own artist-filtered train/validation/test split (tracks.csv, set.split) for results "
    "comparable with the paper's.",
)

FMA_METADATA = Dataset(
    name="fma-metadata",
    title="FMA metadata (tracks.csv, genres.csv, features)",
    folder="fma",
    summary="Metadata of all 106,574 FMA tracks: tracks.csv (artist, album, genres, top-level genre, "
            "subset, split), genres.csv (163 genres with parents and top-level genres), features.csv.",
    tracks=106574,
    genres=(),
    size_text="342 MiB",
    licence="Metadata: CC BY 4.0.",
    citation=_FMA_CITATION,
    faults=("genres.csv's taxonomy has 163 genres under 16 top-level genres; a track's genre_top is empty "
            "when its genres span several top-level genres.",),
    sources=f"genrekit's index: archive name, URL and {_FMA_README}",
    resources=(
        Resource("metadata", "fma_metadata.zip", _FMA + "fma_metadata.zip",
                 "sha1:f0df49ffe5f2a6008d7dc83c6915b31835dfe733", kind="archive", target=".",
                 provides=("fma_metadata",), size_text="342 MiB", origin=_FMA_README),
    ),
    labels="fma",
    audio_root=".",
)


def _fma_audio(subset: str, tracks: int, genres: tuple[str, ...], sha1: str, size: str) -> Dataset:
    return Dataset(
        name=f"fma-{subset}",
        title=f"FMA {subset}",
        folder="fma",
        summary=f"{tracks:,} clips of 30 s (MP3), {len(genres)} top-level genres"
                + (", balanced (GTZAN-like)" if subset == "small" else ", unbalanced")
                + "; labels from fma-metadata's tracks.csv.",
        tracks=tracks,
        genres=genres,
        size_text=size,
        licence="Audio: each track under the Creative Commons licence its artist chose; metadata CC BY 4.0.",
        citation=_FMA_CITATION,
        faults=_FMA_FAULTS,
        sources=f"genrekit's index: archive name, URL and {_FMA_README}; labels: tracks.csv of fma-metadata",
        resources=(
            Resource("audio", f"fma_{subset}.zip", _FMA + f"fma_{subset}.zip", f"sha1:{sha1}", kind="archive",
                     target=".", provides=(f"fma_{subset}",), size_text=size, origin=_FMA_README),
        ),
        requires=("fma-metadata",),
        labels="fma",
        audio_root=f"fma_{subset}",
        fma_subset=subset,
        checksums_file=f"fma_{subset}/checksums",  # sha1 of every MP3, shipped in the archive
    )


FMA_SMALL = _fma_audio(
    "small", 8000,
    ("Electronic", "Experimental", "Folk", "Hip-Hop", "Instrumental", "International", "Pop", "Rock"),
    "ade154f733639d52e35e32f5593efe5be76c6d70", "7.2 GiB",
)
FMA_MEDIUM = _fma_audio(
    "medium", 25000,
    ("Blues", "Classical", "Country", "Easy Listening", "Electronic", "Experimental", "Folk", "Hip-Hop",
     "Instrumental", "International", "Jazz", "Old-Time / Historic", "Pop", "Rock", "Soul-RnB", "Spoken"),
    "c67b69ea232021025fca9231fc1c7c1a063ab50b", "22 GiB",
)

#: The built-in datasets, in the order ``genrekit datasets list`` shows them.
BUILTIN: tuple[Dataset, ...] = (GTZAN, FMA_METADATA, FMA_SMALL, FMA_MEDIUM, BALLROOM)


# --- lookup ------------------------------------------------------------------------------------------
def default_root() -> Path:
    """The data root: ``$GENREKIT_DATA`` if set, else ``~/genrekit-data`` (:class:`genrekit.config.Settings`)."""
    return settings().data_root


def load_catalogue(path: str | os.PathLike) -> list[Dataset]:
    """Extra datasets from a JSON catalogue: ``{"datasets": [{<Dataset fields>, "resources": [...]}]}``.

    Field names are those of :class:`Dataset` and :class:`Resource`.

    Raises
    ------
    DatasetError
        If the file is unreadable, not JSON, or an entry has unknown or invalid fields.
    """
    path = Path(path)
    data = read_json(path, "the dataset catalogue", DatasetError)
    entries = data.get("datasets") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise DatasetError(f"{path}: expected {{\"datasets\": [...]}}")
    known_d = {f.name for f in fields(Dataset)}
    known_r = {f.name for f in fields(Resource)}
    out = []
    for n, entry in enumerate(entries, start=1):
        where = f"{path}: dataset {n}"
        if not isinstance(entry, dict):
            raise DatasetError(f"{where}: not an object")
        unknown = set(entry) - known_d
        if unknown:
            raise DatasetError(f"{where}: unknown fields {', '.join(sorted(unknown))}")
        resources = []
        for r in entry.get("resources", []):
            if not isinstance(r, dict) or set(r) - known_r:
                raise DatasetError(f"{where}: a resource has unknown fields "
                                   f"{', '.join(sorted(set(r) - known_r)) if isinstance(r, dict) else r!r}")
            try:
                resources.append(Resource(**r))
            except TypeError as exc:
                raise DatasetError(f"{where}: {exc}") from None
        try:
            out.append(Dataset(**{**entry, "resources": tuple(resources)}))
        except TypeError as exc:
            raise DatasetError(f"{where}: {exc}") from None
        except DatasetError as exc:
            raise DatasetError(f"{path}: {exc}") from None
    return out


def all_datasets() -> dict[str, Dataset]:
    """Built-in datasets plus those of ``$GENREKIT_CATALOGUE`` (which may replace a built-in by name)."""
    found = {d.name: d for d in BUILTIN}
    catalogue = settings().catalogue
    if catalogue:
        found.update({d.name: d for d in load_catalogue(catalogue)})
    return found


def get_dataset(name: str) -> Dataset:
    """The dataset called ``name``.

    Raises
    ------
    DatasetError
        For an unknown name (the message lists the known ones).
    """
    datasets = all_datasets()
    if name not in datasets:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(datasets)} (genrekit datasets list)")
    return datasets[name]


def is_dataset_name(text: str) -> bool:
    """Whether ``text`` names a dataset (a catalogue error counts as no)."""
    try:
        return text in all_datasets()
    except DatasetError:
        return False
