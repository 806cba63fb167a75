"""Rules of the test suite itself: the shared-data switch works, tests share code only through support modules.

``GENREKIT_REQUIRE_SHARED_DATA=1`` (set by ``.ci/run``) turns "shared data missing" from a
skip into a failure: a tiny test file written here is run by pytest in a subprocess, with
this folder's ``conftest.py`` loaded as a plugin (its ``shared_data`` fixture) and
``GENREKIT_SHARED_DATA`` pointing at a folder that does not exist, or exists without the
file the test needs; without the switch and with it.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

TESTS = Path(__file__).resolve().parent
#: Markers pytest itself defines (``--strict-markers`` knows them).
BUILTIN_MARKERS = {"parametrize", "skip", "skipif", "xfail", "usefixtures", "filterwarnings"}

NEEDS_DATA = '''
from shared_data_policy import require, shared_data_dir


def test_through_the_fixture(shared_data):
    assert shared_data.is_dir()


def test_a_file_under_it():
    require(shared_data_dir() / "gtzan" / "features_30_sec.csv")
'''


def run_pytest(folder: Path, data: Path, require: str | None) -> tuple[int, dict[str, int], str]:
    """Run the tiny test file: (exit status, outcome counts of the summary line, output)."""
    env = {k: v for k, v in os.environ.items() if k != "GENREKIT_REQUIRE_SHARED_DATA"}
    env["GENREKIT_SHARED_DATA"] = str(data)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), str(TESTS.parent), env.get("PYTHONPATH")]))
    if require is not None:
        env["GENREKIT_REQUIRE_SHARED_DATA"] = require
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-rA",
                          "--rootdir", str(folder), str(folder / "test_needs_data.py")],
                         cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    out = run.stdout + run.stderr
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|skipped|failed|errors?)\b", out.splitlines()[-1])}
    return run.returncode, {("error" if k == "errors" else k): v for k, v in counts.items()}, out


def test_missing_shared_data_skips_without_the_switch_and_fails_with_it(tmp_path):
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "test_needs_data.py").write_text(NEEDS_DATA)
    nowhere = tmp_path / "no-such-data"

    code, counts, out = run_pytest(folder, nowhere, None)
    assert code == 0 and counts == {"skipped": 2}, out
    assert f"shared data not found at {nowhere}" in out

    code, counts, out = run_pytest(folder, nowhere, "0")  # "0" is off, like unset
    assert code == 0 and counts == {"skipped": 2}, out

    code, counts, out = run_pytest(folder, nowhere, "1")
    assert code == 1 and counts == {"failed": 1, "error": 1}, out  # the fixture errors, the direct check fails
    assert "GENREKIT_REQUIRE_SHARED_DATA is set" in out

    # The folder is there but not the file one test needs: only that one fails.
    nowhere.mkdir()
    code, counts, out = run_pytest(folder, nowhere, "1")
    assert code == 1 and counts == {"passed": 1, "failed": 1}, out
    assert f"shared data not found at {nowhere / 'gtzan' / 'features_30_sec.csv'}" in out


# --- the suite's shape ------------------------------------------------------------------------------
def test_no_test_module_imports_another():
    """Shared code lives in conftest.py (fixtures) and the support modules, not in other test files."""
    offenders = []
    for path in sorted(TESTS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            offenders += [f"{path.name}:{node.lineno} imports {n}" for n in names if n.split(".")[0].startswith("test_")]
    assert not offenders, offenders


def test_every_marker_used_is_declared():
    config = tomllib.loads((TESTS.parent / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "--strict-markers" in config["addopts"]
    declared = {m.split(":")[0].strip() for m in config["markers"]}
    used = {name for path in TESTS.glob("*.py")
            for name in re.findall(r"pytest\.mark\.([A-Za-z_]\w*)", path.read_text())}
    assert used - BUILTIN_MARKERS <= declared, used - BUILTIN_MARKERS - declared
