"""310 corrupted files (bit flips, truncations, header edits of wav/flac/mp3/ogg/m4a) and the second
round's hostile inputs (absurd rates, odd stream formats, concat lists and playlists, 1-byte atoms,
names that are not UTF-8 or hold control characters) at the CLI and the API; and device/FIFO
``--out`` targets and hostile bundles at every verb that takes them.

Every file must get a result or an error that names its problem in words: no traceback,
no 500, no internal exception passed off as a reason.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fuzz_corpus import make_corpus, make_hostile, nan_bundle
from genrekit.models.registry import DEFAULT_MODEL
from cli_helpers import cli_env
from servers import Server

pytestmark = pytest.mark.slow

#: A reason that is an internal exception's repr ("ValueError: ...") rather than a named problem.
INTERNAL = re.compile(r"^[A-Za-z_.]*(Error|Exception|Warning)\b")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("fuzz")
    paths = make_corpus(folder)
    assert len(paths) >= 248  # 310 with PyAV (m4a), 248 without
    hostile = make_hostile(folder / "corpus")
    assert len(hostile) >= 19  # 22 with PyAV
    return paths + hostile


def test_classify_gives_every_corrupted_file_a_result_or_a_named_error(corpus):
    run = subprocess.run([sys.executable, "-m", "genrekit", "classify", str(corpus[0].parent), "--format", "json",
                          "--jobs", "2"], env=cli_env(), capture_output=True, text=True, timeout=600)
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert run.returncode in (0, 1)
    results = json.loads(run.stdout)
    assert sorted(Path(r["path"]).name for r in results) == sorted(p.name for p in corpus)
    internal = []
    for r in results:
        assert (r["label"] is None) != (r["error"] is None), r
        if r["error"] is not None:
            assert r["error"].strip()
            if INTERNAL.match(r["error"]):
                internal.append(f"{r['path']}: {r['error']}")
    assert not internal, "\n".join(internal)
    for line in run.stderr.splitlines():  # decoder chatter only as warnings naming a file
        assert line.startswith(("warning: ", "  failed: ", "  unknown: ", "classify: ")), line
    failed = sum(r["error"] is not None for r in results)
    print(f"classify: {len(results)} corrupted files, {len(results) - failed} classified, {failed} named errors")


def test_the_api_gives_every_corrupted_file_a_result_or_a_named_error(corpus, tmp_path):
    srv = Server(DEFAULT_MODEL, tmp_path, "--workers", "2")
    try:
        def post(item):
            i, path = item
            # Names that are not UTF-8 or hold a newline cannot go in a multipart header as they are.
            name = path.name if path.name.isprintable() and path.name.isascii() else f"renamed-{i}{path.suffix}"
            status, out = srv.upload(name, path.read_bytes())
            return name, status, out

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(post, enumerate(corpus)))
        assert srv.get("/api/health")[0] == 200
        assert srv.leftovers() == []  # no upload left behind (in its folder under the state folder)
    finally:
        srv.stop()
    statuses = {}
    for name, status, out in answers:
        statuses[status] = statuses.get(status, 0) + 1
        assert status in (200, 413, 422), (name, status, out)
        if status == 200:
            assert out["label"] in out["probabilities"]
        else:
            assert out["error"].startswith(f"{name}: ") and not INTERNAL.match(out["error"][len(name) + 2 :]), out
    print(f"POST /api/classify: {len(answers)} corrupted files, statuses {dict(sorted(statuses.items()))}")


def _cli(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "genrekit", *map(str, args)], env=cli_env(), capture_output=True,
                          text=True, timeout=timeout)


def test_special_out_targets_and_hostile_bundles_give_named_errors(bundle_dir, tmp_path):
    """Each verb's --out at a FIFO, a socket, a link to a device, a folder and a missing folder; and
    bundles with 1e400, a 5,000-digit integer, NaN, or a graph that outputs NaN: exit 1, one line."""
    import os
    import socket

    from synthetic_songs import write_song

    song = write_song(tmp_path / "music" / "classical" / "classical.00000.wav", "classical", seconds=3.0)
    os.mkfifo(tmp_path / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    sock.close()
    (tmp_path / "to-null").symlink_to(os.devnull)
    (tmp_path / "folder.csv").mkdir()
    targets = ["fifo", "sock", "to-null", "folder.csv", "missing/out.csv"]
    lines = {
        "classify": ["classify", song, "--model", bundle_dir, "--out"],
        "features": ["features", song, "--out"],
        "evaluate": ["evaluate", "--model", bundle_dir, "--data", song.parent.parent, "--out"],
    }
    tracebacks = internal = 0
    for verb, line in lines.items():
        for target in targets:
            run = _cli(*line, tmp_path / target)
            tracebacks += "Traceback" in run.stderr
            assert run.returncode == 1 and run.stderr.count("\n") == 1, (verb, target, run.stderr)
    assert os.path.exists(os.devnull) and not (tmp_path / "missing").exists()
    import json

    meta = json.loads((bundle_dir / "bundle.json").read_text())
    hostile = {"1e400": ('"top_db": 80.0', '"top_db": 1e400'), "digits": ('"n_mfcc": 20', '"n_mfcc": ' + "7" * 5000),
               "nan": ('"top_db": 80.0', '"top_db": NaN')}
    assert meta["feature_set"]["top_db"] == 80.0
    import shutil

    for name, (old, new) in hostile.items():
        folder = tmp_path / "bundles" / name
        shutil.copytree(bundle_dir, folder)
        text = (folder / "bundle.json").read_text()
        (folder / "bundle.json").write_text(text.replace(old, new))
        for line in (["classify", song, "--model", folder], ["models", tmp_path / "bundles"]):
            run = _cli(*line)
            tracebacks += "Traceback" in run.stderr
            internal += bool(INTERNAL.search(run.stderr.split("error: ")[-1]))
            assert run.returncode in (0, 1) and "Traceback" not in run.stderr, run.stderr
    nan = nan_bundle(bundle_dir, tmp_path / "bundles" / "outputs-nan")
    run = _cli("classify", song, "--model", nan, "--format", "json")
    tracebacks += "Traceback" in run.stderr
    assert run.returncode == 1 and "not finite probabilities" in run.stdout + run.stderr, run.stdout + run.stderr
    internal += "BundleError" in run.stdout + run.stderr
    assert tracebacks == 0 and internal == 0
    print(f"special --out targets and hostile bundles: {len(lines) * len(targets) + 2 * len(hostile) + 1} runs, "
          f"{tracebacks} tracebacks, {internal} internal errors")
