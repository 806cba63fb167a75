"""What a new user meets in the first hour: help, errors, --model, serve, the demo, one output convention.

Every test runs the real command (``python -m genrekit``) or a real server on 127.0.0.1.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import re
import shutil
import socket
import subprocess
import sys
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, needs_chromium
from cli_helpers import cli_env
from servers import Server
from synthetic_songs import song_folder, write_song

REPO = Path(__file__).resolve().parents[1]


def genrekit(*args, cwd=None, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "genrekit", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or REPO, env=env or cli_env(), timeout=timeout)


@pytest.fixture(scope="module")
def bundle(bundle_dir) -> Path:
    return bundle_dir


# --- 1. a command line that explains itself ---------------------------------------------------------
def test_bare_commands_print_their_help_and_bad_options_the_verbs_usage():
    from genrekit.cli import VERBS

    bare = genrekit()
    assert bare.returncode == 2
    for verb in VERBS:
        assert re.search(rf"^\s+{verb.name}\s+\S", bare.stderr, re.M), verb.name  # each verb, with its line
    explain = genrekit("explain")
    assert explain.returncode == 2 and "filters" in explain.stderr and "saliency" in explain.stderr
    train = genrekit("train")
    assert train.returncode == 2 and "--data" in train.stderr and "--seed N" in train.stderr

    wrong = genrekit("classify", "--no-cache", ".")
    assert wrong.returncode == 2
    assert wrong.stderr.startswith("usage: genrekit classify")
    assert "genrekit classify: error: unrecognized arguments: --no-cache" in wrong.stderr

    typo = genrekit("clasify", "song.ogg")
    assert typo.returncode == 2 and typo.stderr.rstrip().endswith("did you mean 'classify'?")

    failed = genrekit("classify", "song.ogg", "--model", "no-such-model")
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert failed.stderr.startswith("genrekit classify: error: no-such-model: no such model")


def _all_parsers(parser):
    import argparse

    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _all_parsers(sub)


def test_every_option_has_help_its_default_and_a_chosen_metavar():
    import argparse

    from genrekit.cli import build_parser

    problems = []
    for parser in _all_parsers(build_parser()):
        for a in parser._actions:
            if isinstance(a, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            name = f"{parser.prog} {'/'.join(a.option_strings) or a.dest}"
            if not a.help:
                problems.append(f"{name}: no help")
            takes_value = a.nargs != 0
            if a.option_strings and takes_value and not a.required and "default" not in (a.help or ""):
                problems.append(f"{name}: help does not say the default")
            if takes_value and a.choices is None and a.metavar is None and a.option_strings:
                problems.append(f"{name}: argparse's metavar {a.dest.upper()}")
    assert problems == []


# --- 2. --model: a bundle, a run folder or a shipped name; genrekit models --------------------------
def _run_folder(root: Path, bundle: Path, selected: str | None) -> Path:
    """A run folder as `genrekit train` writes it: results.json and one bundle per model."""
    for name in ("logreg", "knn"):
        shutil.copytree(bundle, root / name)
    results = {"selected": selected, "models": {"logreg": {"bundle": "logreg"}, "knn": {"bundle": "knn"}}}
    (root / "results.json").write_text(json.dumps(results))
    return root


def test_model_takes_a_run_folder_or_a_shipped_name_and_models_lists_them(bundle, tmp_path):
    from genrekit.models.registry import DEFAULT_MODEL_NAME, shipped_models

    song = write_song(tmp_path / "song.wav", "metal", seed=1)
    run = _run_folder(tmp_path / "runs" / "ff", bundle, selected="knn")
    out = genrekit("classify", song, "--model", run, "--format", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["model"] == "knn"  # the run's selected model

    unselected = _run_folder(tmp_path / "runs" / "none", bundle, selected=None)
    for verb in (["classify", song], ["evaluate", "--data", tmp_path], ["serve", "--port", "1"]):
        out = genrekit(*verb, "--model", unselected)
        assert out.returncode == 1, out.stderr
        assert "2 models (knn, logreg) and none selected" in out.stderr and "--model" in out.stderr

    out = genrekit("classify", song, "--model", DEFAULT_MODEL_NAME, "--format", "json")
    assert out.returncode == 0 and json.loads(out.stdout)[0]["model"] == DEFAULT_MODEL_NAME

    listing = genrekit("models", tmp_path / "runs", "--format", "json")
    assert listing.returncode == 0, listing.stderr
    entries = {e["model"]: e for e in json.loads(listing.stdout)}
    assert set(shipped_models()) <= set(entries) and entries[DEFAULT_MODEL_NAME]["default"]
    meta = json.loads((Path(__import__("genrekit").__file__).parent / "models" / "shipped" / DEFAULT_MODEL_NAME
                       / "bundle.json").read_text())
    shipped = entries[DEFAULT_MODEL_NAME]
    assert shipped["data"] == meta["card"]["data"] and shipped["split"] == meta["card"]["split"]
    assert shipped["accuracy"]["accuracy"] > 0.3 and not shipped["accuracy"]["chose_model"]
    assert entries[str(run / "knn")]["selected"] and not entries[str(run / "logreg")]["selected"]
    text = genrekit("models", tmp_path / "runs").stdout
    assert f"{DEFAULT_MODEL_NAME}  (shipped, default)" in text and "accuracy: " in text


# --- 3. serve: the port first; /docs offline ------------------------------------------------------------
def test_a_busy_port_is_named_before_anything_is_announced(bundle):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        out = genrekit("serve", "--port", port, "--model", bundle, timeout=60)
    assert out.returncode == 1
    assert f"genrekit serve: error: port {port} on 127.0.0.1 is busy" in out.stderr
    assert "--port" in out.stderr and "page:" not in out.stderr and "Errno" not in out.stderr


class _Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


def test_docs_and_every_asset_they_load_come_from_this_server(tmp_path):
    srv = Server("gtzan57", tmp_path)  # a shipped model's name, as --model takes it
    try:
        status, _, page = srv.get("/")
        assert status == 200 and b'href="/docs"' in page  # the page links to the docs
        for docs in ("/docs", "/redoc"):
            status, _, html = srv.get(docs)
            assert status == 200
            text = html.decode()
            parser = _Assets()
            parser.feed(text)
            urls = parser.urls + re.findall(r"""url: ?['"]([^'"]+)['"]""", text) + re.findall(
                r"""spec-url=['"]([^'"]+)""", text)
            assert any(u.endswith(".js") for u in urls), urls
            for url in urls:
                assert url.startswith("/") and not url.startswith("//"), f"{docs} loads {url} from elsewhere"
                status, _, body = srv.get(url)
                assert status == 200 and len(body) > 100, url
            assert "cdn" not in text.lower()
        models = srv.json("/api/models")["models"]
        assert models[0]["name"] == "gtzan57" and models[0]["default"]
    finally:
        srv.stop()


@pytest.mark.slow
@needs_chromium
def test_docs_render_in_a_browser_with_no_network(tmp_path):
    from urllib.parse import urlparse

    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    srv = Server("gtzan57", tmp_path)
    blocked, errors = [], []

    def route(r):
        if urlparse(r.request.url).hostname == "127.0.0.1":
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            context = browser.new_context()
            context.route("**/*", route)
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"http://127.0.0.1:{srv.port}/docs")
            page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
            assert "genrekit" in page.inner_text(".swagger-ui .info .title")
            page.wait_for_selector('[data-path="/api/classify"]', timeout=30_000)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "docs-offline.png"), full_page=False)
            browser.close()
    finally:
        srv.stop()
    assert blocked == [] and errors == []


# --- 4. the demo changes genre, and --keep keeps it ------------------------------------------------------
def test_the_demo_changes_genre_in_the_middle_and_keep_keeps_it(tmp_path):
    from genrekit.audio.demo import DEMO_GENRES
    from genrekit.models.registry import DEFAULT_MODEL_NAME

    kept = tmp_path / "demo.flac"
    out = genrekit("classify", "--demo", "--keep", kept, "--timeline", "--format", "json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (result,) = json.loads(out.stdout)
    assert result["path"] == str(kept) and kept.stat().st_size > 100_000
    first, last = (next(iter(w["probabilities"])) for w in (result["timeline"][0], result["timeline"][-1]))
    assert first != last, result["timeline"]
    if DEFAULT_MODEL_NAME == "musicnn":  # the model the halves were tuned on
        assert (first, last) == DEMO_GENRES

    table = genrekit("classify", "--demo", "--timeline", cwd=tmp_path)
    assert table.returncode == 0 and "(demo song)" in table.stdout and "/tmp" not in table.stdout
    assert "--keep: only with --demo" in genrekit("classify", "x.wav", "--keep", kept).stderr


# --- 5. one output convention ----------------------------------------------------------------------------------
def _decimals(x: float) -> int:
    text = repr(x)
    return len(text.split(".")[1]) if "." in text and "e" not in text else 0


def _check_ordered(probabilities: dict, digits: int) -> None:
    items = list(probabilities.items())
    assert items == sorted(items, key=lambda kv: (-kv[1], kv[0]))
    assert all(_decimals(v) <= digits for v in probabilities.values())


def test_every_format_orders_rounds_and_names_alike(bundle, tmp_path):
    music = tmp_path / "music"
    write_song(music / "a" / "x.wav", "metal", seed=1)
    write_song(music / "b" / "x.wav", "classical", seed=2)
    out = genrekit("classify", music, "--model", bundle, "--format", "json", "--timeline")
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    assert [r["path"] for r in results] == ["a/x.wav", "b/x.wav"]  # relative to the folder given
    for r in results:
        _check_ordered(r["probabilities"], 4)
        assert _decimals(r["duration"]) <= 3
        for w in r["timeline"]:
            _check_ordered(w["probabilities"], 4)
    lines = genrekit("classify", music, "--model", bundle, "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line)["probabilities"] for line in lines] == [r["probabilities"] for r in results]
    rows = list(csv.DictReader(io.StringIO(genrekit("classify", music, "--model", bundle, "--format", "csv").stdout)))
    assert [row["path"] for row in rows] == ["a/x.wav", "b/x.wav"]
    assert all(_decimals(float(row[g])) <= 4 for row in rows for g in results[0]["probabilities"])
    precise = json.loads(genrekit("classify", music, "--model", bundle, "--format", "json", "--precision", "7").stdout)
    assert max(_decimals(v) for r in precise for v in r["probabilities"].values()) > 4

    features = genrekit("features", music / "a", music / "b", "--no-cache")
    assert features.returncode == 0, features.stderr
    names = [row["filename"] for row in csv.DictReader(io.StringIO(features.stdout))]
    assert names == ["a/x.wav", "b/x.wav"]  # two x.wav, told apart

    from genrekit import classify

    scores = classify(music / "a" / "x.wav", model=bundle)
    assert all(_decimals(s["score"]) <= 4 for s in scores)
    from genrekit.pipeline import GenreNote

    with pytest.warns(GenreNote, match="short input: 5.0 s"):
        classify(music / "a" / "x.wav")  # 5 s for the default model's 30-s window
    srv = Server(bundle, tmp_path)
    try:
        status, api = srv.upload("x.wav", (music / "a" / "x.wav").read_bytes())
        assert status == 200 and api["probabilities"] == results[0]["probabilities"]
        assert api["duration"] == results[0]["duration"] and api["notes"] == results[0]["notes"]
        assert [w["probabilities"] for w in api["timeline"]] == [w["probabilities"] for w in results[0]["timeline"]]
        # 7. the audio sent under another field name: the error says so
        status, err = srv.upload("x.wav", (music / "a" / "x.wav").read_bytes() * 2, field="audio")
        assert status == 400 and "'audio' (a file)" in err["error"] and "field 'file'" in err["error"]
    finally:
        srv.stop()


def test_the_order_rule_and_the_note_thresholds():
    from genrekit.output import LOW_SCORE, SMALL_MARGIN, prediction_notes, ranked

    # Equal after rounding: by name, A to Z, whatever order they came in.
    assert list(ranked({"rock": 0.250001, "blues": 0.24999, "jazz": 0.5})) == ["jazz", "blues", "rock"]
    assert ranked({"a": 1 / 3}) == {"a": 0.3333} and ranked({"a": 1 / 3}, 6) == {"a": 0.333333}
    flat = {"rock": LOW_SCORE - 0.01, "metal": 0.3, "pop": 1 - LOW_SCORE - 0.29}
    assert prediction_notes({"probabilities": flat, "duration": 30.0}) == [
        f"uncertain: the top score, Rock {LOW_SCORE - 0.01:.2f}, is below {LOW_SCORE:g}"]  # display names
    close = {"rock": 0.5, "metal": 0.5 - SMALL_MARGIN / 2}
    assert prediction_notes({"probabilities": close, "duration": 30.0})[0].startswith("close call: Rock 0.50 against Metal")
    assert prediction_notes({"probabilities": {"rock": 0.9, "metal": 0.1}, "duration": 30.0}) == []


# --- 6. --min-score, and notes for short and uncertain inputs --------------------------------------------
def test_min_score_skips_uncertain_files_and_short_inputs_carry_a_note(bundle, tmp_path):
    from genrekit.tagging.formats import read_genres

    music = tmp_path / "music"
    songs = [write_song(music / f"{i}.flac", kind, seed=i) for i, kind in enumerate(("metal", "hiphop"))]
    out = genrekit("classify", music, "--model", bundle, "--write-tags", "--min-score", "1")
    assert out.returncode == 0, out.stderr
    assert all(read_genres(p) == [] for p in songs)
    assert out.stderr.count("tags not written, uncertain: top score") == 2
    assert "2 skipped (uncertain)" in out.stderr
    out = genrekit("classify", music, "--model", bundle, "--write-tags", "--min-score", "0.01")
    assert out.returncode == 0 and all(read_genres(p) for p in songs)

    loop = write_song(tmp_path / "loop.wav", "classical", seconds=5.0, seed=3)
    for fmt in ("json", "table", "csv"):
        out = genrekit("classify", loop, "--format", fmt)  # the default model learned from 30-s clips
        assert out.returncode == 0, out.stderr
        assert "short input: 5.0 s, while the model" in out.stdout, fmt


# --- 7. the PyTorch hint is the README's ---------------------------------------------------------------------
def test_the_pytorch_hint_is_the_pinned_install(tmp_path):
    from genrekit.commands.common import TORCH_HINT

    blocked = tmp_path / "no-torch" / "torch"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('No module named torch (hidden by the test)')\n")
    env = cli_env()
    env["PYTHONPATH"] = f"{blocked.parent}:{env['PYTHONPATH']}"
    out = genrekit("train", "--model", "cnn", "--data", tmp_path, "--out", tmp_path / "run", env=env)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert 'pip install torch==2.13.0 "genrekit[train]"' in out.stderr
    assert TORCH_HINT in (REPO / "README.md").read_text()


# --- 8. README and packaging say what is true ------------------------------------------------------------------
def test_readme_test_command_is_cis_and_genrekit_all_exists():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    ci_pytest = [line.strip() for line in ci.splitlines() if line.strip().startswith("python -m pytest")]
    assert len(ci_pytest) == 1
    assert f"&& {ci_pytest[0]}\n" in readme
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (everything,) = extras["all"]
    assert set(re.search(r"\[(.*)\]", everything).group(1).split(",")) == set(extras) - {"all", "test", "bench"}
    section = readme.split("## Troubleshooting", 1)[1].split("\n## ", 1)[0]
    for topic in ("m4a", "PyAV", "port", "--port", "chromium", ".ci/install-browser"):
        assert topic in section, topic
    help_text = genrekit("--help").stdout
    assert "models" in help_text


# --- the walk: help, classify a file and a folder, train, classify with the run ---------------------------------
@pytest.mark.slow
def test_a_new_users_walk_has_no_traceback_and_no_misleading_line(tmp_path):
    music = tmp_path / "music"
    song_folder(music, per_genre=4)
    song = next(music.rglob("*.wav"))
    cache = ["--cache", tmp_path / "cache"]
    steps = [genrekit("--help"), genrekit("classify", "--help"), genrekit("classify", song),
             genrekit("classify", music)]
    train = genrekit("train", "--data", music, "--model", "logreg", "--out", tmp_path / "run", *cache)
    assert train.returncode == 0, train.stderr
    assert f"genrekit classify SONG --model {tmp_path / 'run'}" in train.stderr  # the next step, literally
    with_run = genrekit("classify", song, "--model", tmp_path / "run", "--format", "json")
    steps += [train, with_run]
    for step in steps:
        assert step.returncode == 0, (step.args, step.stderr)
        assert "Traceback" not in step.stderr and "Errno" not in step.stderr, step.args
    assert json.loads(with_run.stdout)[0]["model"] == "logreg"
    listing = genrekit("models", tmp_path / "run")
    assert str(tmp_path / "run" / "logreg") in listing.stdout and "accuracy: " in listing.stdout


# --- 9. commands import shared things from commands/common.py ------------------------------------------------
def test_commands_do_not_import_the_cli():
    offenders = []
    for path in sorted((REPO / "genrekit" / "commands").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in ("cli", "genrekit.cli") or (
                    isinstance(node, ast.ImportFrom) and node.level == 2 and node.module == "cli"):
                offenders.append(path.name)
    assert offenders == []
    out = genrekit("report", "--out", "x.html")  # a verb's own usage error, through commands/common.Parser
    assert out.returncode == 2 and "genrekit report: error: give at least one RUN_DIR" in out.stderr
