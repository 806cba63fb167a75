"""Similar songs from the embeddings a library run stores (genrekit similar)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from genrekit.library.run import classify_library
from genrekit.library.similar import SimilarityIndex
from genrekit.errors import SimilarityError

REPO = Path(__file__).resolve().parents[1]


def _cli(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "genrekit", *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def library(shared_data, tmp_path_factory):
    """The 70 shared clips classified by the default model into a SQLite results file."""
    out = tmp_path_factory.mktemp("lib") / "results.sqlite"
    results, summary = classify_library([shared_data / "gtzan/genres"], out=out, jobs=2, progress=False)
    assert not summary.failed and len(results) == 70
    return out


@pytest.mark.slow
def test_the_nearest_other_clip_mostly_shares_the_genre(library):
    index = SimilarityIndex.from_results(library)
    assert len(index) == 70 and index.vectors.shape == (70, 200)
    same = 0
    for path, h in zip(index.paths, index.hashes):
        (nearest,) = index.query(index.vectors[index.hashes.index(h)], top=1, exclude_hash=h)
        assert nearest["path"] != path
        same += Path(nearest["path"]).parent.name == Path(path).parent.name
    assert same / 70 >= 0.70, f"only {same} of 70 nearest neighbours share the genre"


@pytest.mark.slow
def test_similar_cli_for_a_library_song_and_a_new_one(library, shared_data, tmp_path):
    clip = shared_data / "gtzan/genres/metal/metal.00002.wav"
    run = _cli("similar", clip, "--library", library, "--top", "3", "--format", "json")
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout)
    assert len(found) == 3 and all(f["path"] != str(clip) for f in found)
    assert found[0]["score"] >= found[1]["score"] >= found[2]["score"]
    # A copy under another name is the same song: found by content, not listed as similar to itself.
    copy = tmp_path / "renamed.wav"
    copy.write_bytes(clip.read_bytes())
    again = json.loads(_cli("similar", copy, "--library", library, "--top", "3", "--format", "json").stdout)
    assert again == found
    # A song the library has never seen is analysed first.
    y, sr = sf.read(clip, dtype="float32")
    new = tmp_path / "new.flac"
    sf.write(new, y[: 15 * sr] * 0.5, sr)
    table = _cli("similar", new, "--library", library, "--top", "5")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == ["path", "similarity", "genre"]
    assert len(table.stdout.splitlines()) == 6


def test_a_library_without_embeddings_is_refused_clearly(tmp_path):
    rng = np.random.default_rng(0)
    song = tmp_path / "song.wav"
    sf.write(song, (0.1 * rng.standard_normal(22050 * 4)).astype(np.float32), 22050)
    results = tmp_path / "gtzan57.sqlite"
    _, summary = classify_library([song], model="gtzan57", out=results, progress=False)
    assert not summary.failed
    with pytest.raises(SimilarityError, match="no song in it has an embedding"):
        SimilarityIndex.from_results(results)
    run = _cli("similar", song, "--library", results)
    assert run.returncode == 1
    assert run.stderr.startswith("genrekit similar: error:") and "Traceback" not in run.stderr
    missing = _cli("similar", song, "--library", tmp_path / "nope.sqlite")
    assert missing.returncode == 1 and "no such results file" in missing.stderr


def test_schema_1_results_databases_gain_the_new_columns(tmp_path):
    from genrekit.library.results import SqliteResults

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE results (content_hash TEXT NOT NULL, model_key TEXT NOT NULL, path TEXT NOT NULL,
            label TEXT, probabilities TEXT, duration REAL, timeline TEXT, model TEXT NOT NULL, error TEXT,
            time TEXT NOT NULL, PRIMARY KEY (content_hash, model_key));
        CREATE TABLE file_hashes (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
            content_hash TEXT NOT NULL);
        INSERT INTO results VALUES ('h', 'k', 'a.wav', 'rock', '{"rock": 1.0}', 30.0, NULL, 'm', NULL, 't');
        PRAGMA user_version = 1;
    """)
    db.close()
    store = SqliteResults(path)
    try:
        (record,) = store.records()
        assert record["label"] == "rock" and record["tags"] is None and record["embedding"] is None
        store.put(dict(record, content_hash="h2", tags=[{"label": "rock", "score": 0.5}], embedding=[0.25] * 200), None)
        new = [r for r in store.records() if r["content_hash"] == "h2"][0]
        assert new["tags"] == [{"label": "rock", "score": 0.5}] and new["embedding"] == [0.25] * 200
    finally:
        store.close()


@pytest.mark.slow
def test_the_api_and_the_page_show_tags_and_similar_songs(library, shared_data, tmp_path):
    """`genrekit serve --library`: the JSON has tags and similar songs, and the page shows both."""
    from browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, needs_chromium  # noqa: F401
    from servers import Server

    from genrekit.models.registry import DEFAULT_MODEL

    clip = shared_data / "gtzan/genres/reggae/reggae.00001.wav"
    server = Server(DEFAULT_MODEL, tmp_path, "--library", str(library))
    try:
        status, body = server.upload("reggae.wav", clip.read_bytes())
        assert status == 200, body
        assert len(body["tags"]) == 10 and body["tags"][0]["score"] >= body["tags"][-1]["score"]
        assert len(body["similar"]) == 5
        # the upload is reggae.00001 itself: the library's copy is that song, not a similar one (issue 29:
        # the page listed it, three times at 1.00)
        assert not any(s["path"].endswith("reggae.00001.wav") for s in body["similar"]), body["similar"]
        assert len({s["path"] for s in body["similar"]}) == 5
        # named below the library's folder: the server's absolute paths stay on the server
        assert all(not s["path"].startswith("/") and str(shared_data) not in s["path"] for s in body["similar"])
        if not Path(CHROMIUM).exists():
            pytest.skip(f"no browser at {CHROMIUM} for the page half (bash .ci/install-browser)")
        sync_api = pytest.importorskip("playwright.sync_api")
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"http://127.0.0.1:{server.port}/")
            page.set_input_files("#file", str(clip))
            page.wait_for_selector("#similar-card:not([hidden])", timeout=120_000)
            tags = page.locator("#tags .tag-name").all_inner_texts()
            similar = page.locator("#similar .similar-path").all_inner_texts()
            assert tags == [t["label"] for t in body["tags"]]
            assert len(similar) == 5 and not any(x.endswith("reggae.00001.wav") for x in similar)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "web-page-tags-similar.png"), full_page=True)
            browser.close()
    finally:
        server.stop()


@pytest.mark.parametrize("kind", ["notes.jsonl", "library.db"])
def test_the_servers_library_is_opened_read_only(tmp_path, kind):
    # serve --library loads its index through SimilarityIndex.from_results, i.e. open_results(path, mode="r")
    from genrekit.errors import SimilarityError
    from genrekit.web.library_index import LibraryIndex
    from results_files import fingerprint

    path = tmp_path / kind
    if kind == "notes.jsonl":
        path.write_bytes(b'{"a": 1}\nmy last line')
    else:
        db = sqlite3.connect(path)
        db.executescript("CREATE TABLE items (id INTEGER PRIMARY KEY, path BLOB); PRAGMA user_version = 7;")
        db.close()
    before = fingerprint(path)
    with pytest.raises(SimilarityError, match="not a genrekit results file"):
        LibraryIndex(path)
    assert fingerprint(path) == before


def test_the_similar_table_shows_genres_by_their_display_names(tmp_path):
    """Issue 29 item 7: the genre column says "Hip-Hop" and "Metal", as every other table, not the labels."""
    from genrekit.tagging.names import NameMap

    from synthetic_songs import write_song

    music = tmp_path / "music"
    for i, kind in enumerate(("metal", "hiphop", "classical", "metal")):
        write_song(music / f"{kind}{i}.flac", kind, seconds=6.0, seed=i)
    out = tmp_path / "r.sqlite"
    run = _cli("classify", music, "--out", out, "--format", "json")
    assert run.returncode == 0, run.stderr
    song = music / "metal0.flac"
    found = json.loads(_cli("similar", song, "--library", out, "--format", "json").stdout)
    assert found and all(f["name"] == NameMap.default().display(f["label"]) for f in found)
    table = _cli("similar", song, "--library", out)
    assert table.returncode == 0, table.stderr
    rows = [line.rsplit(None, 1)[-1] for line in table.stdout.splitlines()[1:]]
    assert rows == [f["name"] for f in found] and all(r[0].isupper() for r in rows)
    names = tmp_path / "names.toml"
    names.write_text("".join(f'{g} = "{g.upper()}!"\n' for g in {f["label"] for f in found}))
    named = _cli("similar", song, "--library", out, "--names", names)
    assert [line.rsplit(None, 1)[-1] for line in named.stdout.splitlines()[1:]] == [f["label"].upper() + "!" for f in found]
