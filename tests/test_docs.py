"""The docs tell the truth: every page's Python runs as written, every ``genrekit`` command line
they show is one genrekit's parser accepts, every relative link leads somewhere, ``dir(genrekit)``
lists the public API, and docs/RESULTS.md is what scripts/make_results.py renders from the
recorded runs.

Pages are README.md and every ``docs/*.md``. A ```python block runs in a folder holding
``song.mp3`` and ``song.wav`` (the fixture below), each page's blocks in order in one namespace.
A block that needs data or a network says so on the line before its fence, with
``<!-- skip: the reason -->``; it is compiled, not run. :data:`EXAMPLES` says how many blocks each
page runs and skips, so that a page cannot lose its examples silently.
"""

import ast
import contextlib
import io
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from script_modules import import_script

REPO = Path(__file__).resolve().parents[1]
PUBLIC = ["classify", "load_model", "load_audio", "resolve_model", "Prediction", "GenreClassifier",
          "GenreNote", "classify_library", "AudioError", "__version__", "LibraryRun", "open_results", "TagPlan",
          "load_names", "read_genres", "PROVENANCE_FIELDS", "GenrekitError"]

#: Each page's ```python blocks: (run, skipped on purpose). Adding, removing or skipping an
#: example means changing this line too.
EXAMPLES = {
    "README.md": (1, 0),
    "docs/RESULTS.md": (0, 0),
    "docs/architecture.md": (0, 0),
    "docs/benchmarks.md": (0, 0),
    "docs/cli.md": (2, 0),
    "docs/cluster.md": (0, 0),
    "docs/datasets.md": (0, 0),
    "docs/evaluation.md": (0, 0),
    "docs/features.md": (1, 0),
    "docs/models.md": (1, 0),
    "docs/own-genres.md": (0, 0),
    "docs/reliability.md": (0, 0),
    "docs/tagging.md": (2, 0),
    "docs/training.md": (0, 0),
    "docs/web.md": (0, 1),
}
#: Fences whose lines are commands to type; ```text holds usage synopses (``[--top K]``), not commands.
SHELL = {"sh", "bash", "console", "shell"}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.S | re.M)
_SKIP = re.compile(r"<!--\s*skip:\s*(?P<reason>.+?)\s*-->\s*$")


def pages() -> list[str]:
    """README.md and every docs page, as paths relative to the repository."""
    return ["README.md", *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md"))]


def fences(markdown: str) -> list[dict]:
    """Every fenced block: its language, code (indentation removed) and skip reason (or ``None``)."""
    blocks = []
    for m in _FENCE.finditer(markdown):
        indent = len(m["indent"])
        code = "".join(line[indent:] for line in m["body"].splitlines(keepends=True))
        before = markdown[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = _SKIP.search(before)
        blocks.append({"lang": m["info"].strip().split(" ")[0], "code": code,
                       "skip": skip["reason"] if skip else None,
                       "line": markdown.count("\n", 0, m.start()) + 1})
    return blocks


def python_blocks(markdown: str, *, skipped: bool = False) -> list[str]:
    """The ```python blocks to run (or, with ``skipped``, those marked to skip)."""
    return [b["code"] for b in fences(markdown) if b["lang"] == "python" and (b["skip"] is not None) == skipped]


def run_block(code: str, namespace: dict, filename: str = "README.md") -> dict[str, object]:
    """Run ``code`` statement by statement; the value of each bare expression, keyed by its source."""
    values = {}
    for node in ast.parse(code).body:
        source = ast.get_source_segment(code, node)
        if isinstance(node, ast.Expr):
            values[source] = eval(compile(ast.Expression(node.value), filename, "eval"), namespace)
        else:
            exec(compile(ast.Module([node], []), filename, "exec"), namespace)
    return values


def run_page(page: str) -> tuple[dict, dict]:
    """Run a page's Python blocks in order in one namespace: (namespace, values of bare expressions)."""
    namespace, values = {}, {}
    for code in python_blocks((REPO / page).read_text()):
        values.update(run_block(code, namespace, page))
    return namespace, values


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> Path:
    """song.mp3 and song.wav (40 s: a synthesised beat, then piano), made once."""
    import soundfile as sf

    from genrekit.audio.demo import demo_signal

    folder = tmp_path_factory.mktemp("songs")
    y = demo_signal(sr=22050, seconds=40.0)
    sf.write(folder / "song.wav", y, 22050)
    sf.write(folder / "song.mp3", y, 22050, format="MP3")
    return folder


@pytest.fixture
def song_dir(songs, tmp_path, monkeypatch):
    """A fresh folder holding copies of song.mp3 and song.wav, made the cwd."""
    for song in songs.iterdir():
        shutil.copy2(song, tmp_path / song.name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_readme_python_example_runs_as_written(song_dir):
    blocks = python_blocks((REPO / "README.md").read_text())
    assert blocks, "the README has no Python example"
    namespace = {}
    values = {}
    for code in blocks:
        values.update(run_block(code, namespace))

    ranked = values['classify("song.mp3")']
    assert [r["score"] for r in ranked] == sorted((r["score"] for r in ranked), reverse=True)
    assert sum(r["score"] for r in ranked) == pytest.approx(1.0, abs=1e-3)
    y, sr = namespace["y"], namespace["sr"]
    assert y.dtype == np.float32 and y.ndim == 1 and sr == 22050
    assert len(y) / sr == pytest.approx(40.0, abs=0.1)  # mp3 adds at most a frame or two
    model = namespace["model"]
    proba = values["model.predict_proba(y, sr)"]
    assert proba.shape == (len(model.labels),) and proba.sum() == pytest.approx(1.0, abs=1e-4)
    timeline = values["model.timeline(y, sr)"]
    assert timeline[0]["start"] == 0.0 and timeline[-1]["end"] == pytest.approx(len(y) / sr, abs=1e-3)


# --- every page's examples -------------------------------------------------------------------------
def test_every_page_says_how_many_examples_it_runs_and_skips():
    assert sorted(EXAMPLES) == pages(), "a page was added or removed: list it in EXAMPLES"
    found = {}
    for page in pages():
        markdown = (REPO / page).read_text()
        found[page] = (len(python_blocks(markdown)), len(python_blocks(markdown, skipped=True)))
    assert found == EXAMPLES
    assert sum(run > 0 for page, (run, _) in EXAMPLES.items() if page.startswith("docs/")) >= 3


def test_skipped_examples_still_compile():
    for page in pages():
        for code in python_blocks((REPO / page).read_text(), skipped=True):
            compile(code, page, "exec")


def _check_cli(namespace, values):
    from genrekit import classify

    assert values["classify(pcm, sr=sr)"] == classify("song.wav")  # the PCM convention, as a decoder
    public = values["prediction.to_dict()"]
    assert public["path"] == "song.mp3" and public["timeline"] and "probabilities" in public
    assert sorted(name for name, _ in values["[(r.path.name, r.prediction.label) for r in results]"]) == [
        "song.mp3", "song.wav"]
    (nearest,) = values['SimilarityIndex.from_results("results.sqlite").query_file("song.wav", top=1)']
    assert Path(nearest["path"]).name == "song.mp3"  # itself excluded: found by content


def _check_models(namespace, values):
    model = namespace["model"]
    assert values["model.labels"] == model.labels and len(model.labels) == 10
    label, unknown = values["prediction.label, prediction.unknown"]
    assert label in model.labels and unknown in (True, False)
    assert len(values["prediction.tags[:3]"]) == 3


def _check_features(namespace, values):
    assert values["fs.compute(y).shape"][0] == 96 and namespace["sr"] == 22050
    assert values["fs.key"] == namespace["fs"].key and len(values["fs.key"]) >= 8
    assert values['feature_set("gtzan57", window=3.0).compute(y).shape'] == (13, 57)


def _check_tagging(namespace, values):
    assert values['read_genres("song.mp3")'] == []
    assert values['names.display("hiphop")'] == "Hip Hop"
    assert values['names.tag_names("rock")'] == ["Rock"]
    assert values['names.canonical("rap")'] == "hiphop"
    rows, names = namespace["rows"], namespace["names"]
    assert sorted(r[0] for r in rows) == ["song.mp3", "song.wav"]
    allowed = {n for label in namespace["run"].labels for n in names.tag_names(label)}
    for _, tag_values, field in rows:
        assert len(tag_values) <= 2 and set(tag_values) <= allowed
        assert field.endswith("(gtzan-musicnn)") and all(v in field for v in tag_values)
    assert values["rows[0][1]"] == rows[0][1]
    assert Path("library.sqlite").stat().st_size > 0


#: What the comments of a page's examples promise, checked after they ran.
PROMISES = {"docs/cli.md": _check_cli, "docs/models.md": _check_models, "docs/features.md": _check_features,
            "docs/tagging.md": _check_tagging}


@pytest.mark.parametrize("page", [p for p, (run, _) in EXAMPLES.items() if run and p != "README.md"])
def test_a_docs_pages_python_examples_run_as_written(page, song_dir):
    namespace, values = run_page(page)
    assert values, f"{page}: no example ran"
    PROMISES[page](namespace, values)


# --- command lines -----------------------------------------------------------------------------------
def command_lines(code: str) -> list[list[str]]:
    """The ``genrekit`` commands of a shell block, as argv lists: continuation lines joined, comments
    and a ``$ `` prompt removed, and ``cmd && genrekit ...`` split at ``&&``, ``||``, ``|`` and ``;``."""
    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        line = line.strip().removeprefix("$ ")
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words, command = list(lexer), []
        for word in [*words, ";"]:
            if word in ("&&", "||", "|", ";"):
                if command[:1] == ["genrekit"]:
                    commands.append(command[1:])
                command = []
            else:
                command.append(word)
    return commands


def test_every_command_line_in_the_docs_parses():
    from genrekit.cli import build_parser

    problems, checked = [], 0
    for page in pages():
        for block in fences((REPO / page).read_text()):
            if block["lang"] not in SHELL:
                continue
            for argv in command_lines(block["code"]):
                checked += 1
                err = io.StringIO()
                try:
                    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                        build_parser().parse_args(argv)
                except SystemExit as exc:
                    if exc.code:
                        problems.append(f"{page}:{block['line']}: genrekit {shlex.join(argv)}\n{err.getvalue()}")
    assert problems == []
    assert checked >= 40  # the docs show commands, and this test finds them
    readme = [argv for b in fences((REPO / "README.md").read_text()) if b["lang"] in SHELL
              for argv in command_lines(b["code"])]
    assert ["classify", "--demo", "--timeline"] in readme  # the quick start's


def test_command_lines_are_found_after_prompts_continuations_and_pipes():
    code = ("$ genrekit classify a.mp3 --top 2   # a comment\n"
            "pip install . && genrekit classify --demo \\\n    --timeline\n"
            "ray start --head\n"
            "genrekit models | head -3\n")
    assert command_lines(code) == [["classify", "a.mp3", "--top", "2"], ["classify", "--demo", "--timeline"],
                                   ["models"]]


# --- links ---------------------------------------------------------------------------------------------
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a page's headings (lower case, punctuation dropped, spaces as dashes)."""
    seen, found = {}, set()
    for m in re.finditer(r"^#{1,6} +(.+?) *#*$", _FENCE.sub("", markdown), re.M):
        slug = re.sub(r"[^\w\- ]", "", m[1].lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def test_every_relative_link_leads_to_a_file_and_heading_that_exist():
    problems = []
    for page in pages():
        path = REPO / page
        prose = re.sub(r"`[^`\n]*`", "", _FENCE.sub("", path.read_text()))
        for target in _LINK.findall(prose):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            file, _, anchor = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            if not linked.exists():
                problems.append(f"{page}: {target}: no such file")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text()):
                problems.append(f"{page}: {target}: no such heading in {linked.name}")
    assert problems == []


# --- the API and RESULTS.md ----------------------------------------------------------------------------
def test_load_audio_keeps_or_converts_the_rate_and_mixes_to_mono(tmp_path):
    import soundfile as sf

    from genrekit import load_audio

    t = np.arange(44100 * 2) / 44100
    left, right = 0.5 * np.sin(2 * np.pi * 440 * t), 0.1 * np.sin(2 * np.pi * 440 * t)
    sf.write(tmp_path / "stereo.flac", np.stack([left, right], axis=1), 44100)
    y, sr = load_audio(tmp_path / "stereo.flac")
    assert sr == 44100 and y.dtype == np.float32 and y.shape == (len(t),)
    assert np.abs(y - (left + right) / 2).max() < 1e-3  # 16-bit FLAC
    y16, sr16 = load_audio(tmp_path / "stereo.flac", sr=16000)
    assert sr16 == 16000 and len(y16) == 32000


def test_dir_lists_the_public_api_without_importing_it():
    code = ("import sys, genrekit; names = dir(genrekit); "
            "print(' '.join(names)); print(' '.join(m for m in ('numpy', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    names, heavy = out.stdout.split("\n")[:2]
    assert set(PUBLIC) <= set(names.split())
    assert heavy == ""  # still lazy: `import genrekit` stays light for the CLI's start-up

    import genrekit

    assert set(PUBLIC) <= set(genrekit.__all__)
    for name in genrekit.__all__:
        assert getattr(genrekit, name) is not None, name


def test_results_md_is_what_make_results_renders():
    make_results = import_script("make_results")
    assert (REPO / "docs/RESULTS.md").read_text() == make_results.render(REPO / "docs"), \
        "docs/RESULTS.md is stale: run python scripts/make_results.py --render-only"
