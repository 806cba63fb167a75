"""The package's shape stays a map: few modules at the root, no file too long to read, a short front door.

The limits are issue 26's: at most 12 modules directly in ``genrekit/`` (the public API, errors,
config, version and the one result/output convention; everything else lives in a folder named by
its job), no source file under ``genrekit/`` over 600 lines (a longer one holds several jobs), and a
README of at most 250 lines that links to ``docs/``.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "genrekit"


def test_the_package_root_holds_at_most_twelve_modules():
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert 0 < len(root) <= 12, f"{len(root)} modules at the root of genrekit/: {', '.join(root)}"


def test_no_source_file_is_over_600_lines():
    long = {str(p.relative_to(REPO)): n for p in sorted(PACKAGE.rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600}
    assert not long, f"split these by what their parts do: {long}"


def test_the_readme_is_a_front_door_that_links_to_the_docs():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    linked = {p.name for p in (REPO / "docs").glob("*.md") if f"docs/{p.name}" in readme}
    assert len(linked) >= 3, linked
