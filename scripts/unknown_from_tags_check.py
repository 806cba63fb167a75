"""Issue 28's two "trained from tags" done-when checks, run as a user runs them.

    python scripts/unknown_from_tags_check.py [--data ../shared/data] [--out docs/unknown_from_tags.json]
        [--work DIR] [--only gtzan|emotify]

Writes ``docs/unknown_from_tags.json`` (``scripts/make_results.py`` may render it into
``docs/RESULTS.md``). Every model is trained by ``genrekit train --data LIB --labels tags [--names FILE]``
in a subprocess, on tagged **copies** made in a temporary folder (FLAC for GTZAN's WAV files, the
MP3 files as they are for Emotify; genre, artist and album written with mutagen, as a tagger
would); nothing is written under ``--data``. One feature cache serves every run and every test
song, so each audio file is analysed once.

Songs of the test side are scored as ``genrekit classify`` scores them: the run's bundle on the
song's backbone rows (MSD-musicnn tag means of 30-s windows, through the cache): the genre is the
best of the mean calibrated probabilities, "unknown" the bundle's stored decision at its stored
rate. For GTZAN, ``genrekit classify --format json`` is also run on the held-out clips and its
labels and flags compared (``classify_agrees``).

**a. GTZAN** (``gtzan/genres`` clips, ``gtzan/excerpts``): held out, by a fixed rule, the 3
highest-numbered clips of each of the 10 genres (24 of 8 known genres, 6 of classical and
hip-hop), every excerpt cut from one of them (excerpt NNNNN comes from clip NNNNN) and every
clip or excerpt of an artist of a held-out clip of the same genre (Sturm's ``GTZANindex.txt``).
The library is the rest of the 8 known genres' clips and excerpts, tagged with their genre.

- ``absent``: classical and hip-hop are not in the library;
- ``exposure``: the library also holds the classical and hip-hop clips and excerpts that are not
  held out, tagged as such, and ``--names`` maps ``classical`` and ``hiphop`` to ``""``: they are
  the unknown decision's outlier exposure (``genrekit train``'s default for such songs).

Targets: ≥ 4 of the 6 classical/hip-hop clips flagged, ≤ 3 of the 24 others.

**b. Emotify** (``emotify/labels.csv``): the 70 artists split in two halves by a fixed rule
(genres in alphabetical order; within one, its not yet placed artists by most songs, then name,
each to the half with fewer songs of that genre so far, ties to A). A model is trained from tags
on the classical, pop and rock songs of one half and tested on the other half: flagged among its
electronic songs (target ≥ 60 %), flagged among its known-genre songs (≤ 10 %), named right among
its known-genre songs (≥ 75 %; over all of them and over the unflagged ones). Variants as for
GTZAN (``exposure``: the training half's electronic songs present, ``electronic = ""``), both
directions (A→B and B→A).

Shares come with 95 % Wilson score intervals (Wilson 1927).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

#: Clips held out per genre (the highest-numbered).
HELD_PER_GENRE = 3
#: GTZAN's genres left out of the chosen labels.
GTZAN_UNKNOWN = ("classical", "hiphop")
#: Emotify's genres: the known ones and the one left out.
EMOTIFY_KNOWN, EMOTIFY_UNKNOWN = ("classical", "pop", "rock"), "electronic"
Z95 = 1.959963984540054


def wilson(k: int, n: int) -> list[float] | None:
    """The 95 % Wilson score interval of ``k`` successes in ``n`` trials (``None`` for ``n = 0``)."""
    if n == 0:
        return None
    p, z2 = k / n, Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def share(k: int, n: int, target: str | None = None, met: bool | None = None) -> dict:
    out = {"n": n, "k": k, "rate": round(k / n, 4) if n else None, "ci95": wilson(k, n)}
    if target is not None:
        out.update(target=target, met=met)
    return out


def tag_copy(src: Path, dst: Path, genre: str, artist: str | None, album: str | None) -> Path:
    """A copy of ``src`` at ``dst`` (WAV → FLAC, same samples) with genre, artist and album tags."""
    import mutagen
    import soundfile
    from mutagen.easyid3 import EasyID3
    from mutagen.id3 import ID3

    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.suffix.lower() == ".wav":
        dst = dst.with_suffix(".flac")
        y, sr = soundfile.read(str(src), dtype="int16")
        soundfile.write(str(dst), y, sr, subtype="PCM_16", format="FLAC")
        f = mutagen.File(dst, easy=True)
        if f.tags is None:
            f.add_tags()
    else:
        shutil.copyfile(src, dst)
        try:
            ID3(dst).delete(dst)
        except Exception:  # noqa: BLE001 (no ID3 header yet)
            pass
        ID3().save(dst)
        f = EasyID3(dst)
    f["genre"] = [genre]
    if artist:
        f["artist"] = [artist]
    if album:
        f["album"] = [album]
    f.save(dst) if dst.suffix != ".mp3" else f.save(dst, v2_version=4)
    return dst


def link_library(folder: Path, copies: list[Path]) -> Path:
    """A library folder of hard links to ``copies`` (the tagged copies are made once)."""
    folder.mkdir(parents=True)
    for path in copies:
        target = folder / path.parent.name / path.name
        target.parent.mkdir(exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)
    return folder


def env() -> dict:
    out = dict(os.environ)
    out["PYTHONPATH"] = str(ROOT) + (os.pathsep + out["PYTHONPATH"] if out.get("PYTHONPATH") else "")
    return out


def genrekit(*args) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "genrekit", *map(str, args)], capture_output=True, text=True, env=env())
    if proc.returncode != 0:
        raise SystemExit(f"genrekit {' '.join(map(str, args[:1]))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def train(lib: Path, run: Path, cache: Path, names: Path | None, no_exposure: bool = False) -> dict:
    started = time.perf_counter()
    args = ["train", "--data", lib, "--labels", "tags", "--out", run, "--cache", cache]
    if names is not None:
        args += ["--names", names]
    if no_exposure:
        args.append("--no-exposure")
    genrekit(*args)
    results = json.loads((run / "results.json").read_text())
    labels = results["labels"]
    return {"command": "genrekit " + " ".join(str(a) if not isinstance(a, Path) else a.name for a in args),
            "labelled_files": labels["n_files"], "counts": labels["counts"], "grouped_by": labels["grouped_by"],
            "left_out_by_names": labels["left_out_dropped_genres"], "exposure_songs": labels["exposure"]["songs"],
            "split_test_accuracy": results["models"]["own-genres"]["figures"].get("track_accuracy"),
            "wall_s": round(time.perf_counter() - started, 1)}


def song_rows(paths: list[Path], cache: Path) -> dict[Path, np.ndarray]:
    """Each song's backbone window rows, as the trainer computes them (through ``cache``)."""
    from genrekit.datasets.tables import load_audio_files
    from genrekit.features.sets import feature_set
    from genrekit.training.own_genres import MAX_PATCHES, WINDOW

    fs = feature_set("msd_musicnn", window=WINDOW, max_patches=MAX_PATCHES)
    table = load_audio_files([(p, str(i)) for i, p in enumerate(paths)], "/", audio_feature_set=fs, cache=cache)
    ids = table.labels.astype(int)
    return {paths[i]: table.X[ids == i] for i in sorted(set(ids.tolist()))}


def judge(run: Path, songs: list[tuple[Path, str]], rows: dict[Path, np.ndarray]) -> list[dict]:
    """Each test song's genre, unknown flag and unknown score under the run's bundle."""
    from genrekit.models.bundle import load_bundle
    from genrekit.tagging.names import name_key

    bundle = load_bundle(run / "own-genres")
    detector = bundle.unknown_detector()
    out = []
    for path, truth in songs:
        r = rows[path]
        label = bundle.labels[int(np.argmax(bundle.predict_proba(r).mean(axis=0)))]
        unknown, score = detector.assess(r)
        out.append({"song": f"{path.parent.name}/{path.name}", "truth": truth, "label": label,
                    "right": name_key(label) == name_key(truth), "unknown": bool(unknown),
                    "unknown_score": None if score is None else round(score, 4)})
    return out


def figures(judged: list[dict], unknown_genres, *, flag_target, known_flag_target, named_target) -> dict:
    """Flagged among the unknown genres' songs and the known ones; named right among the known."""
    novel = [j for j in judged if j["truth"] in unknown_genres]
    known = [j for j in judged if j["truth"] not in unknown_genres]
    unflagged = [j for j in known if not j["unknown"]]
    k_novel, k_known = sum(j["unknown"] for j in novel), sum(j["unknown"] for j in known)
    right, right_unflagged = sum(j["right"] for j in known), sum(j["right"] for j in unflagged)
    return {
        "flagged_unknown_genres": share(k_novel, len(novel), flag_target[0], flag_target[1](k_novel, len(novel))),
        "flagged_known": share(k_known, len(known), known_flag_target[0], known_flag_target[1](k_known, len(known))),
        "named_right_known": share(right, len(known), named_target[0], named_target[1](right, len(known))),
        "named_right_unflagged": share(right_unflagged, len(unflagged)),
    }


# --- a. GTZAN ------------------------------------------------------------------------------------------
def gtzan_artists(data: Path) -> dict[str, str]:
    """``genre.NNNNN`` → artist, from Sturm's ``GTZANindex.txt`` (clips without one are absent)."""
    out = {}
    for line in (data / "gtzan/GTZANindex.txt").read_text(encoding="utf-8", errors="replace").splitlines():
        parts = [p.strip() for p in line.split(":::")]
        if len(parts) >= 2 and parts[1]:
            out[re.sub(r"\.(wav|au)$", "", parts[0])] = parts[1]
    return out


def gtzan_plan(data: Path) -> dict:
    artists = gtzan_artists(data)
    genres = sorted(p.name for p in (data / "gtzan/genres").iterdir() if p.is_dir())
    held, library, left = [], [], {}
    for genre in genres:
        clips = sorted((data / "gtzan/genres" / genre).glob("*.wav"))
        out = clips[-HELD_PER_GENRE:]
        out_ids = {p.stem for p in out}
        out_artists = {artists[i] for i in out_ids if i in artists}
        held += [(p, genre) for p in out]
        excerpts = sorted((data / "gtzan/excerpts" / genre).glob("*.wav"))
        keep = [(p, kind) for kind, group in (("clip", clips[:-HELD_PER_GENRE]), ("excerpt", excerpts)) for p in group
                if p.stem not in out_ids and artists.get(p.stem) not in out_artists]
        left[genre] = {"held_out_clips": sorted(out_ids), "held_out_artists": sorted(out_artists),
                       "library_clips": sum(k == "clip" for _, k in keep),
                       "library_excerpts": sum(k == "excerpt" for _, k in keep),
                       "left_out_same_clip_or_artist": len(clips) - HELD_PER_GENRE + len(excerpts) - len(keep)}
        library += [(p, genre, kind) for p, kind in keep]
    return {"held": held, "library": library, "per_genre": left, "artists": artists}


#: The two variants of each check (see the module's docstring).
VARIANTS = ("absent", "exposure")


def gtzan_check(data: Path, work: Path, cache: Path, variants=VARIANTS, cross_check: bool = True) -> dict:
    """Check a. (``variants``: which to run; ``cross_check``: also run ``genrekit classify`` on the held-out clips.)"""
    plan = gtzan_plan(data)
    copies = {}
    for path, genre, kind in plan["library"]:
        copies[(path, genre)] = tag_copy(path, work / "gtzan-copies" / genre / f"{kind}-{path.stem}.wav", genre,
                                         plan["artists"].get(path.stem), None)
    held = plan["held"]
    rows = song_rows([p for p, _ in held], cache)
    results = {}
    for variant in variants:
        chosen = [c for (p, g), c in copies.items() if variant == "exposure" or g not in GTZAN_UNKNOWN]
        lib = link_library(work / f"gtzan-{variant}", chosen)
        names = None
        if variant == "exposure":
            names = work / "gtzan-names.toml"
            names.write_text("".join(f'{g} = ""\n' for g in GTZAN_UNKNOWN))
        run = work / f"gtzan-{variant}-run"
        trained = train(lib, run, cache, names)
        judged = judge(run, held, rows)
        figs = figures(judged, GTZAN_UNKNOWN, flag_target=(">= 4 of 6", lambda k, n: k >= 4),
                       known_flag_target=("<= 3 of 24", lambda k, n: k <= 3),
                       named_target=("reported", lambda k, n: None))
        if cross_check:
            figs["classify_agrees"] = classify_agrees(run, held, judged)
        results[variant] = {"train": trained, **figs, "songs": judged}
    return {"held_out_rule": f"the {HELD_PER_GENRE} highest-numbered clips of each genre; excerpts of them and "
                             f"clips/excerpts of their artists (GTZANindex.txt) left out of the library",
            "unknown_genres": list(GTZAN_UNKNOWN), "per_genre": plan["per_genre"],
            "library_files": {"absent": sum(g not in GTZAN_UNKNOWN for _, g, _ in plan["library"]),
                              "exposure": len(plan["library"])},
            "variants": results}


def classify_agrees(run: Path, songs, judged) -> dict:
    """``genrekit classify``'s labels and flags on ``songs`` against the cached rows' ones."""
    proc = genrekit("classify", *[p for p, _ in songs], "--model", run, "--format", "json")
    records = json.loads(proc.stdout)
    same = sum(r["label"] == j["label"] and bool(r["unknown"]) == j["unknown"] for r, j in zip(records, judged))
    return {"n": len(records), "same_label_and_flag": same}


# --- b. Emotify ----------------------------------------------------------------------------------------
def emotify_halves(rows: list[dict]) -> dict[str, str]:
    """Artist → ``"A"`` or ``"B"`` (the fixed rule in the module's docstring)."""
    half, songs = {}, {}
    for genre in sorted({r["genre"] for r in rows}):
        count = {"A": 0, "B": 0}
        of_genre = [r["artist"] for r in rows if r["genre"] == genre]
        for artist in of_genre:
            if artist in half:
                count[half[artist]] += 1
        for artist in sorted(set(of_genre) - set(half), key=lambda a: (-of_genre.count(a), a)):
            side = "A" if count["A"] <= count["B"] else "B"
            half[artist] = side
            count[side] += of_genre.count(artist)
        songs[genre] = count
    return half


def emotify_check(data: Path, work: Path, cache: Path) -> dict:
    with open(data / "emotify/labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    half = emotify_halves(rows)
    sizes = {side: {g: sum(1 for r in rows if r["genre"] == g and half[r["artist"]] == side)
                    for g in (*EMOTIFY_KNOWN, EMOTIFY_UNKNOWN)} for side in "AB"}
    copies = {}
    for r in rows:
        src = data / "emotify" / r["path"]
        copies[r["path"]] = tag_copy(src, work / "emotify-copies" / r["genre"] / src.name, r["genre"],
                                     r["artist"], r["album"] or None)
    paths = {r["path"]: data / "emotify" / r["path"] for r in rows}
    test_rows = song_rows(list(paths.values()), cache)
    names = work / "emotify-names.toml"
    names.write_text(f'{EMOTIFY_UNKNOWN} = ""\n')
    directions = {}
    for train_side, test_side in (("A", "B"), ("B", "A")):
        test = [(paths[r["path"]], r["genre"]) for r in rows if half[r["artist"]] == test_side]
        out = {}
        for variant in VARIANTS:
            chosen = [copies[r["path"]] for r in rows if half[r["artist"]] == train_side
                      and (r["genre"] in EMOTIFY_KNOWN or variant == "exposure")]
            lib = link_library(work / f"emotify-{train_side}-{variant}", chosen)
            run = work / f"emotify-{train_side}-{variant}-run"
            trained = train(lib, run, cache, names if variant == "exposure" else None)
            judged = judge(run, test, test_rows)
            figs = figures(judged, (EMOTIFY_UNKNOWN,), flag_target=(">= 60%", lambda k, n: k >= 0.6 * n),
                           known_flag_target=("<= 10%", lambda k, n: k <= 0.1 * n),
                           named_target=(">= 75%", lambda k, n: k >= 0.75 * n))
            out[variant] = {"train": trained, **figs, "songs": judged}
        directions[f"{train_side}->{test_side}"] = out
    return {"halves_rule": "genres alphabetically; within one, unplaced artists by most songs then name, each to the "
                           "half with fewer songs of that genre so far (ties to A)",
            "artists": {side: sum(1 for v in half.values() if v == side) for side in "AB"}, "songs": sizes,
            "unknown_genre": EMOTIFY_UNKNOWN, "directions": directions}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path(os.environ.get("GENREKIT_SHARED_DATA", ROOT.parent / "shared/data")))
    p.add_argument("--out", type=Path, default=ROOT / "docs/unknown_from_tags.json")
    p.add_argument("--work", type=Path, default=None, help="folder for the copies, runs and cache (default: a temporary one)")
    p.add_argument("--only", choices=("gtzan", "emotify"), default=None)
    args = p.parse_args(argv)
    started = time.perf_counter()
    work = args.work or Path(tempfile.mkdtemp(prefix="unknown-from-tags-"))
    work.mkdir(parents=True, exist_ok=True)
    cache = work / "cache"
    out = json.loads(args.out.read_text()) if args.out.is_file() and args.only else {}
    if not isinstance(out.get("commit"), dict):
        out.pop("commit", None)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    timings, commits = out.get("wall_s", {}), out.get("commit", {})
    for name, check in (("gtzan", gtzan_check), ("emotify", emotify_check)):
        if args.only in (None, name):
            t = time.perf_counter()
            out[name] = check(args.data, work / name, cache)
            timings[name] = round(time.perf_counter() - t, 1)
            commits[name] = commit.stdout.strip()
            print(f"{name}: done in {timings[name]:.0f} s", file=sys.stderr)
    out.update({"script": "scripts/unknown_from_tags_check.py", "commit": commits,
                "wall_s": timings, "cpu_threads": os.cpu_count(),
                "note": "flagged = the bundle's stored unknown decision at its stored 5% false-unknown rate; "
                        "ci95 = Wilson score interval"})
    from genrekit._io import jsonable, write_bytes_atomic

    write_bytes_atomic(args.out, (json.dumps(jsonable(out), indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _cell(f: dict) -> str:
    ci = f.get("ci95") or [0.0, 1.0]
    return f"{f['k']} of {f['n']} [{100 * ci[0]:.0f}, {100 * ci[1]:.0f}]%"


def section(report) -> list[str]:
    """The RESULTS.md lines of ``docs/unknown_from_tags.json``."""
    if not report:
        return []
    lines = ["**Trained from tags, as a user does** (`python scripts/unknown_from_tags_check.py`: `genrekit train "
             "--labels tags` on tagged copies; flagged = unknown at the bundle's stored 5% rate; [95% Wilson "
             "interval]). *absent*: the unknown genres are not in the library; *exposure*: their songs are, tagged, "
             "and `--names` maps them to `\"\"` (outlier exposure).", "",
             "| check | library | unknown-genre songs flagged | known songs flagged | known songs named right |",
             "|---|---|---|---|---|"]
    g = report.get("gtzan")
    if g:
        for name, v in g["variants"].items():
            lines.append(f"| GTZAN, 8 genres (classical, hip-hop left out); 30 held-out clips | {name} "
                         f"| {_cell(v['flagged_unknown_genres'])} | {_cell(v['flagged_known'])} "
                         f"| {_cell(v['named_right_known'])} |")
    e = report.get("emotify")
    if e:
        for direction, variants in e["directions"].items():
            for name, v in variants.items():
                lines.append(f"| Emotify classical/pop/rock, artists {direction}; electronic unknown | {name} "
                             f"| {_cell(v['flagged_unknown_genres'])} | {_cell(v['flagged_known'])} "
                             f"| {_cell(v['named_right_known'])} |")
    return lines + ["", f"GTZAN held-out rule: {g['held_out_rule']}." if g else "",
                    f"Emotify halves: {e['halves_rule']}." if e else "", ""]


if __name__ == "__main__":
    raise SystemExit(main())
