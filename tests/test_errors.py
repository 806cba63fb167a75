"""One error root: every error genrekit raises on purpose is a GenrekitError, and the CLI prints it as one line."""

import ast
import importlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from genrekit import errors
from genrekit.cli import main
from genrekit.errors import GenrekitError

ROOT = Path(__file__).resolve().parents[1] / "genrekit"

#: Where each class was defined before errors.py: these import paths keep working.
OLD_HOMES = {
    "genrekit.audio.decode": ["AudioError", "TooLongError"], "genrekit.engines.base": ["EngineError"],
    "genrekit.engines": ["EngineError"], "genrekit.report.build": ["ReportError"], "genrekit.report": ["ReportError"],
    "genrekit.explain.filters.sources": ["ExplainError"], "genrekit.explain": ["ExplainError"],
    "genrekit.library.run": ["ResultsError"], "genrekit.datasets.tables": ["DatasetError"],
    "genrekit.datasets": ["DatasetError"], "genrekit.datasets.archive": ["UnsafeArchiveError"],
    "genrekit.datasets.download": ["DownloadError"], "genrekit.training.cnn.trainer": ["TrainingError"],
    "genrekit.models.bundle": ["BundleError"], "genrekit.models": ["BundleError"], "genrekit.tagging.safe_write": ["TagError"],
    "genrekit.library.similar": ["SimilarityError"], "genrekit.features.cache": ["StoreError"],
    "genrekit.commands.common": ["CommandError"],
}


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
        "DatasetError", "DownloadError", "UnsafeArchiveError", "SimilarityError"}
    assert [cls.__name__ for cls in classes if issubclass(cls, RuntimeError)] == ["TrainingError"]


@pytest.mark.parametrize("module", sorted(OLD_HOMES))
def test_old_import_paths_still_work(module):
    if module == "genrekit.training.cnn.trainer":
        pytest.importorskip("torch")
    loaded = importlib.import_module(module)
    for name in OLD_HOMES[module]:
        assert getattr(loaded, name) is getattr(errors, name)


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
