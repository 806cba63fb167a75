"""``genrekit report`` and the ``/reports`` pages, on real runs made from the shared GTZAN table.

The runs (made once per test session by :func:`report_runs.report_runs`, also used by
``test_report_page.py``): a fault-filtered classical run (logreg, knn), a 3-fold
artist-grouped k-fold run, a leaky ``random-rows`` run, ``genrekit cluster`` on the
30-s table, and, when PyTorch is installed, a three-epoch CNN on synthesised clips.
The tests read the data embedded in the page and compare it with the runs' own files.
"""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
import time
from pathlib import Path

import pytest

from genrekit.cli import main
from own_genres_runs import trained_run
from report_runs import report_runs
from servers import Server, http_get, serve_reports

pytest.importorskip("plotly", reason="pip install 'genrekit[report]' (plotly)")

REPO = Path(__file__).resolve().parents[1]


# --- the runs ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(shared_data, tmp_path_factory) -> dict:
    return report_runs(tmp_path_factory.getbasetemp() / "report-runs", shared_data)


def _results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def embedded(page: str, element_id: str):
    """The JSON of ``<script type="application/json" id=element_id>`` in ``page``."""
    m = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', page, re.S)
    assert m, f"no {element_id} in the page"
    return json.loads(m.group(1))


def sections(page: str) -> dict[str, str]:
    """HTML of each ``<section ... id="...">`` by id."""
    out = {}
    for m in re.finditer(r'<section class="[^"]*" id="([^"]+)"[^>]*>(.*?)</section>', page, re.S):
        out[m.group(1)] = m.group(2)
    return out


@pytest.fixture(scope="module")
def page(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    args = ["report", str(runs["ff"]), str(runs["kfold"]), str(runs["leaky"])]
    if runs["cnn"]:
        args.append(str(runs["cnn"]))
    assert main(args + ["--cluster", str(runs["cluster"]), "--out", str(out)]) == 0
    return out.read_text(encoding="utf-8")


def _figures(page: str, run_id: str | None = None, kind: str | None = None) -> list[dict]:
    return [f for f in embedded(page, "genrekit-figures")
            if (run_id is None or f["run"] == run_id) and (kind is None or f["kind"] == kind)]


def _run_id(page: str, run: Path) -> str:
    for r in embedded(page, "genrekit-report")["runs"]:
        if Path(r["path"]) == run:
            return r["id"]
    raise AssertionError(f"{run} is not in the report")


# --- the page's content ------------------------------------------------------------------------------------
def test_single_split_figures_equal_results_json(page, runs):
    results = _results(runs["ff"])
    rid = _run_id(page, runs["ff"])
    (comparison,) = _figures(page, rid, "comparison")
    by_side = {t["meta"]["side"]: t for t in comparison["data"]}
    assert set(by_side) == {"valid", "test"}
    names = list(results["models"])
    for side, trace in by_side.items():
        assert trace["x"] == names
        for name, y, plus, minus in zip(names, trace["y"], trace["error_y"]["array"], trace["error_y"]["arrayminus"]):
            track = results["models"][name][side]["track"]
            assert y == track["accuracy"]
            assert y + plus == pytest.approx(track["accuracy_ci"][1])
            assert y - minus == pytest.approx(track["accuracy_ci"][0])
        assert f"{results['models'][names[0]][side]['n_tracks']} tracks" in trace["name"]

    confusions = _figures(page, rid, "confusion")
    assert len(confusions) == len(names)
    for name, conf in zip(names, confusions):
        test = results["models"][name]["test"]
        counts, normalised = conf["data"]
        assert counts["z"] == test["track"]["confusion"] and counts["visible"] and not normalised["visible"]
        assert counts["x"] == counts["y"] == test["labels"]
        for row, nrow in zip(test["track"]["confusion"], normalised["z"]):
            assert nrow == pytest.approx([v / sum(row) for v in row], abs=1e-6)
        assert [b["label"] for b in conf["layout"]["updatemenus"][0]["buttons"]] == ["counts", "row-normalised"]
    (bars,) = _figures(page, rid, "per-genre")  # one chart, a metric at a time, a bar per model
    assert sorted((t["meta"]["model"], t["meta"]["metric"]) for t in bars["data"]) == sorted(
        (m, k) for m in names for k in ("precision", "recall", "f1"))
    for trace in bars["data"]:
        test = results["models"][trace["meta"]["model"]]["test"]
        assert trace["x"] == test["labels"]
        assert trace["y"] == [test["track"]["per_genre"][g][trace["meta"]["metric"]] for g in test["labels"]]
        assert trace["visible"] == (trace["meta"]["metric"] == "f1")

    # the data model embedded for scripts carries the same numbers
    model = next(r for r in embedded(page, "genrekit-report")["runs"] if r["id"] == rid)
    assert [m["name"] for m in model["models"]] == names
    assert model["models"][0]["test"]["track"]["accuracy"] == results["models"][names[0]]["test"]["track"]["accuracy"]
    assert model["selected"] == results["selected"] and model["split"]["name"] == "fault-filtered"
    assert model["data"]["n_tracks"] == 1000
    # and the table says it in words
    section = sections(page)[rid]
    assert "fault-filtered" in section and "train 443 tracks; valid 197 tracks; test 290 tracks" in section


def test_kfold_figures_show_mean_std_folds_and_pooled_interval(page, runs):
    results = _results(runs["kfold"])
    cv = results["models"]["logreg"]["cv"]
    (comparison,) = _figures(page, _run_id(page, runs["kfold"]), "comparison")
    by_side = {t["meta"]["side"]: t for t in comparison["data"]}
    assert by_side["cv-mean"]["y"] == [cv["mean_track_accuracy"]]
    assert by_side["cv-mean"]["error_y"]["array"] == [cv["std_track_accuracy"]]
    assert by_side["fold"]["y"] == cv["fold_track_accuracy"] and len(cv["fold_track_accuracy"]) == 3
    pooled = by_side["pooled"]
    assert pooled["y"] == [cv["pooled"]["track"]["accuracy"]]
    assert pooled["y"][0] + pooled["error_y"]["array"][0] == pytest.approx(cv["pooled"]["track"]["accuracy_ci"][1])
    assert "1000 tracks" in pooled["name"]
    (conf,) = _figures(page, _run_id(page, runs["kfold"]), "confusion")
    assert conf["data"][0]["z"] == cv["pooled"]["track"]["confusion"]


def test_leaky_badge_marks_the_random_rows_run_and_only_it(page, runs):
    leaky_id = _run_id(page, runs["leaky"])
    badges = re.findall(r'<span class="badge badge-leaky" data-run="([^"]+)"', page)
    assert badges and set(badges) == {leaky_id}
    warning = _results(runs["leaky"])["warning"]
    by_id = sections(page)
    assert html.escape(warning) in by_id[leaky_id]
    # every figure of the leaky run carries the badge and the warning beside it, and the mark inside the plot
    leaky_figures = _figures(page, leaky_id)
    assert leaky_figures
    for fig in leaky_figures:
        m = re.search(rf'<div class="plot" id="{fig["id"]}".*?</figure>', page, re.S)
        assert "badge-leaky" in m.group(0) and html.escape(warning) in m.group(0)
        assert "LEAKY PROTOCOL" in fig["layout"]["title"]["text"]
    for rid, section in by_id.items():
        if rid.startswith("run-") and rid != leaky_id:
            assert "badge-leaky" not in section and "leaky protocol" not in section.lower()
    for fig in embedded(page, "genrekit-figures"):
        if fig["run"] not in (None, leaky_id):
            assert "title" not in fig["layout"]
    # the overview draws the leaky run's bars apart, in the leaky colour
    (overview,) = _figures(page, kind="overview")
    leaky_trace = next(t for t in overview["data"] if t["meta"]["leaky"])
    assert all(y.startswith("leaky") for y in leaky_trace["y"])


def test_cluster_scatter_has_every_row_coloured_by_genre_and_by_cluster(page, runs):
    clusters = json.loads(runs["cluster"].read_text())
    (pca,) = _figures(page, kind="pca")
    by_genre = [t for t in pca["data"] if t["meta"]["colour_by"] == "genre"]
    by_cluster = [t for t in pca["data"] if t["meta"]["colour_by"] == "cluster"]
    assert sum(len(t["x"]) for t in by_genre) == clusters["n_rows"] == 1000
    assert sum(len(t["x"]) for t in by_cluster) == clusters["n_rows"]
    assert [t["name"] for t in by_genre] == clusters["table"]["genres"]
    assert len(by_cluster) == clusters["k"]
    assert all(t["visible"] for t in by_genre) and not any(t["visible"] for t in by_cluster)
    sizes = {t["name"]: len(t["x"]) for t in by_cluster}
    assert [sizes[f"cluster {c}"] for c in clusters["table"]["clusters"]] == [
        sum(r) for r in clusters["table"]["counts"]]
    point = clusters["pca"]["points"][0]
    trace = next(t for t in by_genre if t["name"] == point["genre"])
    assert trace["x"][0] == pytest.approx(point["x"], abs=1e-5)
    buttons = pca["layout"]["updatemenus"][0]["buttons"]
    assert [b["label"] for b in buttons] == ["Colour by genre", "Colour by k-means cluster"]
    section = next(s for k, s in sections(page).items() if k.startswith("cluster-"))
    assert f"{clusters['ari']:.3f}" in section and f"{clusters['nmi']:.3f}" in section
    assert f"{clusters['purity']:.3f}" in section
    table = re.search(r'<table class="grid clusters">.*?</table>', section, re.S).group(0)
    first_row = re.findall(r"<td[^>]*>([^<]*)</td>", re.search(r"<tbody><tr>(.*?)</tr>", table).group(1))
    n_genres = len(clusters["table"]["genres"])
    assert [int(v) if v != "·" else 0 for v in first_row[1:1 + n_genres]] == clusters["table"]["counts"][0]


def test_cnn_run_shows_its_training_curves(page, runs):
    if runs["cnn"] is None:
        pytest.skip("PyTorch is not installed: no CNN run")
    with open(runs["cnn"] / "history.csv", newline="") as fh:
        history = list(csv.DictReader(fh))
    rid = _run_id(page, runs["cnn"])
    (curves,) = _figures(page, rid, "curves")
    traces = {t["name"]: t for t in curves["data"]}
    assert set(traces) == {"train loss", "valid loss", "train accuracy", "valid accuracy"}
    assert traces["train loss"]["x"] == [int(r["epoch"]) for r in history] == [1, 2, 3]
    assert traces["valid loss"]["y"] == pytest.approx([float(r["valid_loss"]) for r in history])
    assert traces["valid accuracy"]["y"] == pytest.approx([float(r["valid_acc"]) for r in history])
    results = _results(runs["cnn"])
    (comparison,) = _figures(page, rid, "comparison")
    (name,) = results["models"]
    assert comparison["data"][-1]["y"] == [results["models"][name]["test"]["track"]["accuracy"]]
    assert 'kind-cnn' in sections(page)[rid]


def test_reliability_diagrams_show_the_bins_and_ece_of_results_json(page, runs):
    results = _results(runs["ff"])
    rid = _run_id(page, runs["ff"])
    diagrams = _figures(page, rid, "reliability")
    assert len(diagrams) == len(results["models"]) == 2  # one per model, from its test set
    for name, fig in zip(results["models"], diagrams):
        track = results["models"][name]["test"]["track"]
        bins = track["reliability"]
        assert 0 < len(bins) <= 15 and sum(b["n"] for b in bins) == results["models"][name]["test"]["n_tracks"]
        series = {t["meta"]["series"]: t for t in fig["data"]}
        assert set(series) == {"accuracy", "confidence", "diagonal", "count"}
        assert series["accuracy"]["y"] == [b["accuracy"] for b in bins]
        assert series["accuracy"]["x"] == pytest.approx([(b["low"] + b["high"]) / 2 for b in bins], abs=1e-6)
        assert series["accuracy"]["width"] == pytest.approx([1 / 15] * len(bins), abs=1e-6)
        assert series["confidence"]["x"] == [b["confidence"] for b in bins]
        assert series["count"]["y"] == [b["n"] for b in bins]
        assert series["diagonal"]["x"] == series["diagonal"]["y"] == [0, 1]
    section = sections(page)[rid]
    assert "Calibration: reliability diagrams" in section
    for name in results["models"]:
        assert f"expected calibration error <strong>{results['models'][name]['test']['track']['ece']:.3f}</strong>" \
            in section
    # the k-fold run draws its pooled out-of-fold predictions
    kfold = _results(runs["kfold"])["models"]["logreg"]["cv"]["pooled"]["track"]
    (fig,) = _figures(page, _run_id(page, runs["kfold"]), "reliability")
    assert fig["data"][0]["y"] == [b["accuracy"] for b in kfold["reliability"]]


@pytest.mark.parametrize("damage", [
    lambda bins: bins[0].update(accuracy=1.5),
    lambda bins: bins[0].update(n=-3),
    lambda bins: bins[0].update(low=0.9, high=0.1),
    lambda bins: bins.append(dict(bins[0])),  # overlapping bins
    lambda bins: bins[0].update(confidence="high"),
    lambda bins: bins.__setitem__(0, "bin"),
])
def test_unsound_reliability_bins_are_not_drawn(runs, tmp_path, damage):
    from genrekit.report.build import load_run

    results = _results(runs["ff"])
    damage(results["models"]["logreg"]["test"]["track"]["reliability"])
    results["models"]["logreg"]["test"]["track"]["ece"] = float("nan")
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps(results))
    out = tmp_path / "report.html"
    assert main(["report", str(run), "--out", str(out)]) == 0
    loaded = load_run(run)
    logreg, knn = loaded["models"]
    assert logreg["test"]["track"]["reliability"] is None and logreg["test"]["track"]["ece"] is None
    assert knn["test"]["track"]["reliability"] == results["models"]["knn"]["test"]["track"]["reliability"]
    diagrams = _figures(out.read_text(encoding="utf-8"), kind="reliability")
    assert len(diagrams) == 1  # knn's only


@pytest.fixture(scope="module")
def several_genres_run(tmp_path_factory) -> Path:
    """A run of several genres per song, trained by `genrekit train --labels tags` (shared with test_multilabel)."""
    return trained_run(tmp_path_factory.getbasetemp() / "multilabel-run", several=True)["run"]


@pytest.mark.slow  # the backbone analyses the library's songs
def test_several_genres_run_shows_per_genre_f1_subset_accuracy_and_map(several_genres_run, tmp_path):
    test = _results(several_genres_run)["models"]["own-genres"]["test"]
    out = tmp_path / "report.html"
    assert main(["report", str(several_genres_run), "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    (fig,) = _figures(page, kind="multilabel")
    (bars,) = fig["data"]
    assert bars["x"] == list(test["per_genre"]) == ["Noise", "classical", "hiphop", "metal"]
    assert bars["y"] == [g["f1"] for g in test["per_genre"].values()]
    assert bars["customdata"] == [g["support"] for g in test["per_genre"].values()]
    section = sections(page)[_run_id(page, several_genres_run)]
    assert "This run holds no evaluated models" not in section and "Several genres per song" in section
    assert (f"subset accuracy <strong>{100 * test['subset_accuracy']:.1f}%</strong>, mean average precision "
            f"<strong>{test['mean_average_precision']:.3f}</strong>, macro-F1 {test['macro_f1']:.3f} over "
            f"{test['n_tracks']} songs") in section
    assert test["n_tracks"] == 6


@pytest.mark.slow
@pytest.mark.parametrize("damage", [
    lambda t: t["per_genre"]["metal"].update(f1=1.5),
    lambda t: t["per_genre"]["metal"].update(support=-1),
    lambda t: t["per_genre"].__setitem__("metal", "good"),
    lambda t: t.update(subset_accuracy="most"),
    lambda t: t.update(n_tracks=0),
    lambda t: t.update(per_genre=[]),
])
def test_unsound_several_genre_figures_are_not_drawn(several_genres_run, tmp_path, damage):
    results = _results(several_genres_run)
    damage(results["models"]["own-genres"]["test"])
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps(results))
    out = tmp_path / "report.html"
    assert main(["report", str(run), "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert _figures(page, kind="multilabel") == []
    assert "This run holds no evaluated models yet." in page


def test_page_is_self_contained(page):
    outside_scripts = re.sub(r"<script\b[^>]*>.*?</script>", "", page, flags=re.S)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", outside_scripts)
    assert not re.search(r"<script[^>]+src=", page)
    assert "Plotly.newPlot" in page and len(page) > 1_000_000  # plotly.js is inside
    assert page.count("<script") == page.count("</script>") == 4


# --- safety, determinism, the command line ---------------------------------------------------------------
def _hostile_run(folder: Path, source_run: Path) -> tuple[Path, str]:
    """A copy of a real run whose texts try to break out of the page."""
    evil = '</script><script>alert("x")</script><img src=x onerror=alert(1)>'
    results = _results(source_run)
    results["models"] = {evil: results["models"]["logreg"]}
    results["command"] = evil
    results["data"]["source"] = evil + "\u2028"
    results["selected"] = evil
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(results))
    return folder, evil


def test_texts_from_files_are_escaped(runs, tmp_path):
    run, evil = _hostile_run(tmp_path / "evil", runs["ff"])
    out = tmp_path / "evil.html"
    assert main(["report", str(run), "--title", evil, "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert evil not in page and "<img src=x" not in page
    assert page.count("<script") == 4 and page.count("</script>") == 4
    assert html.escape(evil) in page  # shown as text
    data = embedded(page, "genrekit-report")
    assert data["title"] == evil and data["runs"][0]["models"][0]["name"] == evil  # the JSON round-trips
    assert embedded(page, "genrekit-figures")[0]["data"][0]["x"] == [html.escape(evil, quote=False)]


def test_same_inputs_give_the_same_bytes(runs, tmp_path):
    from genrekit.report.page import write_report

    args = ([runs["ff"], runs["leaky"]], [runs["cluster"]])
    first = write_report(*args, tmp_path / "a.html")
    second = write_report(*args, tmp_path / "b.html")
    assert first == second and (tmp_path / "a.html").read_bytes() == (tmp_path / "b.html").read_bytes()


def test_a_folder_of_runs_expands_and_bad_inputs_are_reported(runs, tmp_path, capsys):
    out = tmp_path / "all.html"
    root = runs["ff"].parent
    assert main(["report", str(root), "--out", str(out)]) == 0
    names = [r["name"] for r in embedded(out.read_text(encoding="utf-8"), "genrekit-report")["runs"]]
    assert names == (["runs/cnn/tiny"] if runs["cnn"] else []) + ["runs/cv/kfold", "runs/ff", "runs/leaky"]

    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "x.html")]) == 1
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.json").write_text("{not json")
    assert main(["report", str(bad), "--out", str(tmp_path / "x.html")]) == 1
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["report", "--cluster", str(runs["ff"] / "results.json"), "--out", str(tmp_path / "x.html")]) == 1
    assert "not a genrekit cluster file" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()
    with pytest.raises(SystemExit) as exc:
        main(["report", "--out", str(tmp_path / "x.html")])
    assert exc.value.code == 2


def test_history_outside_the_run_folder_is_not_read(runs, tmp_path):
    from genrekit.report.build import load_run

    secret = tmp_path / "secret.csv"
    secret.write_text("epoch,train_loss\n1,0.5\n")
    run = tmp_path / "run"
    run.mkdir()
    results = _results(runs["ff"])
    results["models"]["logreg"]["history"] = str(secret)
    results["models"]["knn"]["history"] = "../secret.csv"
    (run / "results.json").write_text(json.dumps(results))
    loaded = load_run(run)
    assert [m["history"] for m in loaded["models"]] == [None, None]


# --- /reports on a real server ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs_root(runs, tmp_path_factory) -> Path:
    """A runs folder of copies (the tests change files in it), with a nested run and a broken one."""
    root = tmp_path_factory.mktemp("served-runs")
    shutil.copytree(runs["ff"], root / "ff")
    shutil.copytree(runs["leaky"], root / "nested" / "leaky")
    shutil.copytree(runs["kfold"], root / "nested" / "deeper" / "kfold")
    (root / "broken").mkdir()
    (root / "broken" / "results.json").write_text('{"models": 1}')
    (root / "not-a-run").mkdir()
    return root


@pytest.fixture(scope="module")
def server(runs_root):
    srv = serve_reports(runs_root)
    yield srv
    srv.stop()


def test_reports_lists_the_runs_found_below_the_folder(server, runs_root):
    status, headers, body = server.get("/api/reports")
    assert status == 200
    listed = {r["name"]: r for r in json.loads(body)}
    assert set(listed) == {"ff", "nested/leaky", "nested/deeper/kfold", "broken"}
    assert listed["ff"]["models"] == ["logreg", "knn"] and listed["ff"]["split"] == "fault-filtered"
    assert listed["nested/leaky"]["leaky"] and not listed["ff"]["leaky"]
    assert listed["nested/deeper/kfold"]["url"] == "/reports/nested/deeper/kfold"
    assert "not a genrekit results.json" in listed["broken"]["error"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", listed["ff"]["date"])

    status, headers, body = server.get("/reports")
    text = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "script-src" not in headers["content-security-policy"]  # the list runs no script
    for name in listed:
        assert html.escape(name) in text
    assert text.count('class="badge badge-leaky"') == 1 and '<a href="/reports/nested/leaky">' in text


def test_a_run_report_is_served_with_plotly_from_this_server(server, runs_root):
    status, headers, body = server.get("/reports/nested/leaky")
    page = body.decode()
    assert status == 200 and "badge-leaky" in page
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp
    assert "'unsafe-inline'" not in csp.split("style-src")[0]  # scripts: this server's and the page's own, by hash
    src = re.search(r'<script src="(/report-assets/plotly-[0-9a-f]+\.min\.js)">', page).group(1)
    status, headers, js = server.get(src)
    assert status == 200 and headers["content-type"].startswith("text/javascript") and b"plotly" in js[:500]
    assert "immutable" in headers["cache-control"]
    assert server.get("/report-assets/other.js")[0] == 404
    ff = _results(runs_root / "ff")
    figures = embedded(server.get("/reports/ff")[2].decode(), "genrekit-figures")
    assert figures[0]["data"][1]["y"] == [m["test"]["track"]["accuracy"] for m in ff["models"].values()]


@pytest.mark.parametrize("path", [
    "/reports/../../etc/passwd",
    "/reports/..%2F..%2Fetc%2Fpasswd",
    "/reports/%2Fetc%2Fpasswd",
    "/reports//etc/passwd",
    "/reports/ff/../../../etc/passwd",
    "/reports/nested",
    "/reports/not-a-run",
    "/reports/ff/results.json",
    "/reports/ff%00",
])
def test_names_not_in_the_list_are_404(server, path):
    status, headers, body = server.get(path)
    assert status == 404, (path, status)
    assert b"root:" not in body


def test_a_report_is_rebuilt_when_its_run_changes_and_unreadable_runs_say_why(server, runs_root):
    first = server.get("/reports/ff")[2]
    assert server.get("/reports/ff")[2] == first  # the cached page
    results = _results(runs_root / "ff")
    results["models"]["logreg"]["test"]["track"]["accuracy"] = 0.123456789
    (runs_root / "ff" / "results.json").write_text(json.dumps(results))
    page = server.get("/reports/ff")[2].decode()
    assert embedded(page, "genrekit-figures")[0]["data"][1]["y"][0] == 0.123456789
    status, _, body = server.get("/reports/broken")
    assert status == 500 and b"not a genrekit results.json" in body
    # a run that appears after the server started is found
    shutil.copytree(runs_root / "ff", runs_root / "later")
    time.sleep(1.1)
    assert server.get("/reports/later")[0] == 200


@pytest.mark.slow
def test_genrekit_serve_runs_offers_the_reports(runs_root, tmp_path):
    """The real verb: ``genrekit serve --runs DIR`` in a subprocess."""
    server = Server(runs_root / "ff" / "logreg", tmp_path, "--runs", str(runs_root))
    port = server.port
    try:
        status, _, body = http_get(port, "/api/reports")
        assert status == 200 and "nested/leaky" in {r["name"] for r in json.loads(body)}
        status, headers, body = http_get(port, "/reports")
        assert status == 200 and b'href="/reports/ff"' in body
        status, headers, body = http_get(port, "/reports/nested/deeper/kfold")
        assert status == 200 and b"genrekit-figures" in body
        assert "script-src 'self'" in headers["content-security-policy"]
        assert http_get(port, "/reports/../../etc/passwd")[0] == 404
        assert http_get(port, "/reports/..%2F..%2Fetc%2Fpasswd")[0] == 404
    finally:
        server.stop()
