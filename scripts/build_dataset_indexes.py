"""Build the per-file dataset indexes shipped in ``genrekit/datasets/indexes/``.

    python scripts/build_dataset_indexes.py [--out genrekit/datasets/indexes] [--wheel mirdata-0.3.8-...whl]

What it does:

1. ``pip download --no-deps mirdata==0.3.8`` into a temporary folder (or takes ``--wheel``):
   mirdata 1.0 no longer carries its indexes (it fetches them from Zenodo), 0.3.8 is the
   last release whose wheel does.
2. Reads ``mirdata/datasets/indexes/gtzan_genre_index_1.0.json`` from the wheel and checks
   that its md5 is the one the ``gtzan`` entry of ``genrekit/datasets/registry.py`` names
   for its index resource (so the shipped copy is the very file a download would fetch).
3. Keeps the ``audio`` item of every track (path and md5; mirdata gives no sizes) and writes
   ``gtzan.json`` in genrekit's compact form (:mod:`genrekit.datasets.shipped_indexes`),
   and ``NOTICE`` with mirdata's BSD-3-Clause licence text from the same wheel.

Ballroom is not built: no release of mirdata on PyPI carries ``ballroom_full_index_1.0.json``
(0.3.9 and later fetch it from Zenodo), so ``datasets validate ballroom`` on a copy genrekit
did not unpack needs that file downloaded (``genrekit datasets download ballroom --only index``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genrekit.datasets.registry import get_dataset  # noqa: E402
from genrekit.datasets.shipped_indexes import FileIndex, read_index, write_index  # noqa: E402

MIRDATA = "mirdata==0.3.8"
#: (genrekit dataset, file inside the wheel, index items kept)
SOURCES = [("gtzan", "mirdata/datasets/indexes/gtzan_genre_index_1.0.json", ("audio",))]

NOTICE_HEAD = """\
Files in this folder and where they come from
=============================================

gtzan.json
    The path and md5 of each of the 1000 GTZAN clips, converted (audio entries only,
    reformatted) by scripts/build_dataset_indexes.py from
    mirdata/datasets/indexes/gtzan_genre_index_1.0.json (md5 {gtzan_md5})
    in the wheel of {package} on PyPI ({wheel}),
    https://github.com/mir-dataset-loaders/mirdata. mirdata's licence follows.

The GTZAN audio itself is not here and is not covered by this notice.

---------------------------------------------------------------------------
mirdata licence (BSD-3-Clause), from {wheel}:{license_path}
---------------------------------------------------------------------------
"""


def fetch_wheel(into: Path) -> Path:
    """``pip download`` the mirdata wheel (the registry's ordinary client; no dependencies)."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                    "-d", str(into), MIRDATA], check=True)
    wheels = sorted(into.glob("mirdata-*.whl"))
    if not wheels:
        sys.exit(f"pip download {MIRDATA} left no wheel in {into}")
    return wheels[0]


def convert(wheel: zipfile.ZipFile, member: str, dataset: str, keys: tuple[str, ...]) -> tuple[FileIndex, str]:
    raw = wheel.read(member)
    md5 = hashlib.md5(raw).hexdigest()
    expected = get_dataset(dataset).resource(get_dataset(dataset).index).checksum
    if f"md5:{md5}" != expected:
        sys.exit(f"{member}: md5 {md5}, but the {dataset} entry names {expected}: not the same index")
    files = {}
    for track in json.loads(raw)["tracks"].values():
        for key in keys:
            path, digest = track[key]
            if path and digest:
                files[path] = digest
    source = {"checksum": f"md5:{md5}", "package": MIRDATA, "file": member, "licence": "BSD-3-Clause",
              "url": "https://github.com/mir-dataset-loaders/mirdata"}
    return FileIndex(dataset, "md5", files, source), md5


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "genrekit/datasets/indexes")
    ap.add_argument("--wheel", type=Path, help="a mirdata 0.3.8 wheel already here (default: pip download it)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheel_path = args.wheel or fetch_wheel(Path(tmp))
        with zipfile.ZipFile(wheel_path) as wheel:
            licence = next(n for n in wheel.namelist() if n.endswith(".dist-info/LICENSE"))
            md5s = {}
            for dataset, member, keys in SOURCES:
                index, md5s[dataset] = convert(wheel, member, dataset, keys)
                out = args.out / f"{dataset}.json"
                write_index(out, index)
                assert read_index(out).files == index.files  # what the validator will read
                print(f"{out}: {len(index.files)} files, {out.stat().st_size:,} bytes")
            notice = NOTICE_HEAD.format(gtzan_md5=md5s["gtzan"], package=MIRDATA, wheel=wheel_path.name,
                                        license_path=licence)
            (args.out / "NOTICE").write_text(notice + wheel.read(licence).decode("utf-8"), encoding="utf-8")
    print(f"{args.out / 'NOTICE'}: sources and mirdata's licence")
    return 0


if __name__ == "__main__":
    sys.exit(main())
