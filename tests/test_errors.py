"""One error root: every error genrekit raises on purpose is a GenrekitError, and the CLI prints it as one line."""

import ast
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from genrekit import errors
from genrekit.cli import main
from genrekit.errors import GenrekitError

ROOT = Path(__file__).resolve().parents[1] / "genrekit"

def test_every_public_exception_class_is_defined_in_errors_py():
    """An exception class elsewhere would be one the CLI shows as a traceback; private ones are control flow."""
    elsewhere = []
    for path in sorted(ROOT.rglob("*.py")):
        if path.name == "errors.py" and path.parent == ROOT:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                bases = [ast.unparse(b) for b in node.bases]
                if any(b.endswith(("Error", "Exception")) for b in bases):
                    elsewhere.append(f"{path.relative_to(ROOT.parent)}: {node.name}({', '.join(bases)})")
    assert not elsewhere, "define these in genrekit/errors.py, on GenrekitError:\n" + "\n".join(elsewhere)


def test_every_class_derives_from_the_root_and_keeps_its_second_base():
    classes = [getattr(errors, name) for name in errors.__all__]
    assert all(issubclass(cls, GenrekitError) for cls in classes)
    assert {cls.__name__ for cls in classes if issubclass(cls, ValueError)} == {
        "ParameterError", "DatasetError", "DownloadError", "UnsafeArchiveError", "SimilarityError"}
    assert [cls.__name__ for cls in classes if issubclass(cls, RuntimeError)] == ["TrainingError"]


def test_a_callers_mistake_is_a_genrekit_error_and_a_value_error():
    # librosa's model: code that catches the built-in keeps working, the CLI prints it as one line.
    assert issubclass(errors.ParameterError, GenrekitError) and issubclass(errors.ParameterError, ValueError)
    from genrekit.features.sets import FeatureSet

    with pytest.raises(errors.ParameterError, match="unknown feature set 'nope'"):
        FeatureSet(name="nope")


#: Plain exceptions a module may still raise: at most this many in the package, each an internal
#: invariant whose comment says why it would be a bug (or one still to be named).
MAX_BARE_RAISES = 10
BARE = {"ValueError", "RuntimeError", "TypeError"}


def _bare_raises() -> list[str]:
    """``path:line`` of every ``raise ValueError/RuntimeError/TypeError`` (called or not) in genrekit/."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and node.exc is not None:
                raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(raised, ast.Name) and raised.id in BARE:
                    found.append((path.relative_to(ROOT.parent).as_posix(), node.lineno, raised.id))
    return [f"{path}:{line}: {name}" for path, line, name in sorted(found)]


def test_callers_mistakes_and_bad_data_raise_named_errors():
    """A bare ValueError is a bug by errors.py's rule: a caller's mistake is a ParameterError, a bad file
    its own GenrekitError. The few left are invariants that only a genrekit bug can break."""
    bare = _bare_raises()
    assert len(bare) <= MAX_BARE_RAISES, (
        f"{len(bare)} bare raises (at most {MAX_BARE_RAISES}); raise ParameterError or the fitting class "
        "of genrekit/errors.py:\n" + "\n".join(bare))


def test_every_error_class_is_imported_from_its_one_home():
    """Error classes are imported from genrekit.errors (or the public API), never through a module that
    happens to use one: an internal module may move (CHANGELOG.md), errors.py stays."""
    repo = ROOT.parent
    through = []
    for path in sorted(p for folder in ("genrekit", "tests", "scripts", "bench", "beetsplug")
                       for p in (repo / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("genrekit.") \
                    and node.module != "genrekit.errors":
                names = [a.name for a in node.names if a.name in errors.__all__]
                if names:
                    through.append(f"{path.relative_to(repo)}:{node.lineno}: {', '.join(names)} from {node.module}")
    assert not through, "import these from genrekit.errors:\n" + "\n".join(through)


def test_errors_keep_their_messages_and_attributes(tmp_path):
    exc = errors.TooLongError(tmp_path / "a.wav", seconds=3600, limit=1800, declared=True)
    assert (exc.path, exc.seconds, exc.limit) == (str(tmp_path / "a.wav"), 3600, 1800)
    assert str(exc) == f"{tmp_path / 'a.wav'}: too long: its header declares 60.0 min; the limit is 30 min of audio"
    bundle = errors.BundleError(tmp_path, "no bundle.json")
    assert (bundle.path, bundle.problem, str(bundle)) == (str(tmp_path), "no bundle.json", f"{tmp_path}: no bundle.json")


def test_the_cli_prints_a_genrekit_error_a_verb_lets_through_as_one_line(tmp_path, capsys):
    # A damaged cache raises StoreError, which the features verb does not reword.
    song = tmp_path / "a.wav"
    sf.write(song, np.full(22050, 0.01, dtype=np.float32), 22050)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "features.sqlite").write_bytes(np.random.default_rng(0).bytes(5000))
    assert main(["features", str(song), "--cache", str(tmp_path / "cache")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("genrekit features: error: the feature cache ") and "is damaged" in err
    assert err.count("\n") == 1 and "Traceback" not in err


# --- where a verb turns a named error into its one line ----------------------------------------------
def _song(path):
    sf.write(path, np.full(22050, 0.01, dtype=np.float32), 22050)
    return path


def test_a_k_the_table_cannot_give_is_one_line(tmp_path, capsys):
    table = tmp_path / "t.csv"
    table.write_text("filename,length,f1,f2,label\n"
                     + "".join(f"s{i}.wav,66149,{i},{i % 2},{'ab'[i % 2]}\n" for i in range(4)))
    assert main(["cluster", "--features", str(table), "--k", "9"]) == 1
    assert capsys.readouterr().err == (
        "genrekit cluster: error: k must be between 2 and the number of rows (4), got 9\n")


def test_feature_set_parameters_out_of_range_are_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["features", str(_song(tmp_path / "a.wav")), "--set", "logmel", "--n-fft", "8", "--no-cache",
              "--out", str(tmp_path / "arrays")])
    assert exit_info.value.code == 2
    assert "error: n_fft must be between 16 and 65536 samples, got 8\n" in capsys.readouterr().err


def test_a_folder_of_another_feature_set_is_one_line(tmp_path, capsys):
    out = tmp_path / "arrays"
    out.mkdir()
    (out / "feature_set.json").write_text('{"key": "0000"}')
    assert main(["features", str(_song(tmp_path / "a.wav")), "--set", "logmel", "--no-cache",
                 "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"genrekit features: error: {out} already holds features of another feature set "
                          f"(key 0000, this run ")
    assert err.endswith("); choose a new folder\n") and err.count("\n") == 1


def test_a_cache_of_a_newer_genrekit_is_a_store_error_the_cli_names_as_a_cache_option(tmp_path, capsys):
    import sqlite3

    from genrekit.features.cache import SCHEMA_VERSION, FeatureStore

    cache = tmp_path / "cache"
    cache.mkdir()
    with sqlite3.connect(cache / "features.sqlite") as db:
        db.execute("PRAGMA user_version = 99")
    newer = (f"{cache / 'features.sqlite'} was written by a newer genrekit (schema 99, this version reads {SCHEMA_VERSION}); "
             f"use another --cache folder")
    with pytest.raises(errors.StoreError) as caught:
        FeatureStore(cache)
    assert str(caught.value) == newer
    assert main(["features", str(_song(tmp_path / "a.wav")), "--cache", str(cache)]) == 1
    assert capsys.readouterr().err == (
        f"genrekit features: error: cannot open the feature cache in {cache}: {newer} (use --cache DIR or --no-cache)\n")


def test_a_results_file_of_another_kind_cannot_answer_a_similarity_query(tmp_path):
    from genrekit.library.similar import SimilarityIndex

    path = tmp_path / "results.txt"
    path.write_text("{}\n")
    with pytest.raises(errors.SimilarityError) as caught:
        SimilarityIndex.from_results(path)
    assert str(caught.value) == (f"{path}: cannot read the results: {path}: a results store is a "
                                 f".db, .jsonl, .sqlite, .sqlite3 file")
