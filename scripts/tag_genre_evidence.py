"""Which genres beyond a head's own the backbone's tags give evidence for, measured (issue 27, item 3).

    python scripts/tag_genre_evidence.py [--data ../shared/data] [--report docs/tag_genres.json]
                                         [--models broad-musicnn]

Writes ``docs/tag_genres.json`` (rendered into RESULTS by ``scripts/make_results.py``) and stores
the offered rules in each named shipped bundle's ``tag_genres`` (:mod:`genrekit.models.tag_genres`;
weights, calibration and the unknown decision are not touched).

**Candidates**, fixed before anything was measured (:data:`CANDIDATES`): the genres the issue names
(folk, soul/R&B, punk, ambient, funk, house) and those the shared data can label, each with the
MSD-musicnn tags that name it; a rule's score is the strongest of its tags (the song's mean
probability over its patches).

**Evidence**: the 200 shared Emotify songs (Magnatune), rows from genrekit's own analysis of the audio
(``scripts/broad_model_data.py``). A song is a positive when its Emotify genre is the candidate
(Electronic) or its original ID3 genre is (Alternative Rock, Hard Rock, Ambient); every other song
is a negative. A candidate no shared song is labelled with is *not measured here*.

- AUROC, with a 95 % bootstrap interval over artists (artists resampled, 2000 times);
- the threshold: the one maximising Youden's J (recall minus false-positive rate) on training
  folds; precision and recall are those of held-out folds (5-fold, grouped by artist, stratified),
  pooled, with 95 % Wilson intervals; the stored threshold is Youden's on all 200 songs;
- for a style (a genre under another in the FMA tree), its AUROC among the songs of its parent's
  neighbourhood too (Emotify's pop and rock songs), since most of its evidence may only be "rock-ish";
- how often the rule fires on GTZAN's 733 fault-filtered clips, per GTZAN genre (the musicnn
  authors' taggrams; none of these clips is labelled with the candidate).

**Offered** (rule fixed in advance): measured on at least 20 positive songs by at least 5 artists,
with the AUROC interval's lower end at least 0.80; a candidate whose genre is one of a bundle's own
genres is not added to that bundle.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from broad_model_data import emotify_rows, gtzan_rows  # noqa: E402
from refit_unknown import wilson  # noqa: E402

from genrekit.backbones.msd_musicnn import TAGS  # noqa: E402
from genrekit.evaluation.open_set import auroc  # noqa: E402
from genrekit.models.bundle import load_bundle  # noqa: E402
from genrekit.models.bundle_save import add_calibration  # noqa: E402

SHIPPED = ROOT / "genrekit/models/shipped"
#: ``(genre, tags, how the shared data labels it)``: ``("genre", x)`` Emotify's genre, ``("id3", x)``
#: the song's original ID3 genre, ``None`` no shared song is labelled with it.
CANDIDATES = (
    ("Electronic", ["electronic", "electronica", "electro"], ("genre", "electronic")),
    ("Alternative Rock", ["alternative rock", "alternative"], ("id3", "Alternative Rock")),
    ("Hard Rock", ["hard rock"], ("id3", "Hard Rock")),
    ("Ambient", ["ambient"], ("id3", "Ambient")),
    ("Folk", ["folk"], None),
    ("Soul-RnB", ["soul", "rnb"], None),
    ("Punk", ["punk"], None),
    ("Funk", ["funk"], None),
    ("House", ["House"], None),
)
#: Styles and the Emotify genres of their parent's neighbourhood (measured among those songs too).
STYLE_OF = {"Alternative Rock": ("pop", "rock"), "Hard Rock": ("pop", "rock")}
MIN_POSITIVE, MIN_ARTISTS, MIN_AUROC_LOW = 20, 5, 0.80
FOLDS, BOOT = 5, 2000


def youden(scores: np.ndarray, positive: np.ndarray) -> float:
    """The threshold maximising recall minus false-positive rate (ties: the higher threshold)."""
    best, at = -np.inf, float(scores.max())
    for t in np.unique(scores)[::-1]:
        j = np.mean(scores[positive] >= t) - np.mean(scores[~positive] >= t)
        if j > best:
            best, at = j, float(t)
    return at


def artist_bootstrap(scores, positive, groups, seed=0) -> list[float]:
    """95 % interval of the AUROC with artists resampled."""
    rng = np.random.default_rng(seed)
    artists = np.unique(groups)
    rows = {a: np.flatnonzero(groups == a) for a in artists}
    values = []
    for _ in range(BOOT):
        take = np.concatenate([rows[a] for a in rng.choice(artists, len(artists))])
        p = positive[take]
        if p.any() and (~p).any():
            values.append(auroc(scores[take][~p], scores[take][p]))
    return [round(float(np.percentile(values, 2.5)), 4), round(float(np.percentile(values, 97.5)), 4)]


def held_out(scores, positive, groups, seed=0) -> tuple[int, int, int]:
    """``(true positives, fired, positives)`` of held-out folds, each with Youden's threshold of its training folds."""
    from sklearn.model_selection import StratifiedGroupKFold

    tp = fired = 0
    for tr, te in StratifiedGroupKFold(FOLDS, shuffle=True, random_state=seed).split(scores, positive, groups):
        hit = scores[te] >= youden(scores[tr], positive[tr])
        tp, fired = tp + int((hit & positive[te]).sum()), fired + int(hit.sum())
    return tp, fired, int(positive.sum())


def measure(genre, tags, label, emotify, gtzan) -> dict:
    cols = [TAGS.index(t) for t in tags]
    entry = {"genre": genre, "tags": tags}
    if label is None:
        entry.update(offered=False, evidence={"measured": False, "why": f"no shared song is labelled {genre}"})
        return entry
    scores = emotify.X[:, cols].max(axis=1)
    source = emotify.y if label[0] == "genre" else emotify.id3
    positive = source == label[1]
    n_pos, artists = int(positive.sum()), len(set(emotify.groups[positive]))
    value = auroc(scores[~positive], scores[positive])
    ci = artist_bootstrap(scores, positive, emotify.groups)
    tp, fired, _ = held_out(scores, positive, emotify.groups)
    threshold = youden(scores, positive)
    evidence = {"measured": True, "data": f"Emotify (200 Magnatune songs), {label[0] == 'id3' and 'ID3 genre' or 'genre'} "
                                           f"{label[1]!r}",
                "n_positive": n_pos, "n_negative": int((~positive).sum()), "artists": artists,
                "auroc": [round(value, 4), *ci],
                "precision": round(tp / fired, 4) if fired else None, "precision_ci": wilson(tp, fired),
                "recall": round(tp / n_pos, 4), "recall_ci": wilson(tp, n_pos),
                "protocol": f"threshold by Youden's J on training folds; {FOLDS}-fold CV grouped by artist"}
    if genre in STYLE_OF:
        near = np.isin(emotify.y, STYLE_OF[genre])
        p = positive & near
        if p.any() and (near & ~positive).any():
            evidence["note"] = (f"among Emotify's {' and '.join(STYLE_OF[genre])} songs alone ({int(p.sum())} "
                                f"{genre} of {int(near.sum())}): AUROC {auroc(scores[near & ~positive], scores[p]):.3f}")
    X = np.vstack([gtzan["train"].X, gtzan["test"].X])
    y = np.concatenate([gtzan["train"].y, gtzan["test"].y])
    fires = {g: round(float(np.mean(X[y == g][:, cols].max(axis=1) >= threshold)), 4) for g in sorted(set(y))}
    offered = n_pos >= MIN_POSITIVE and artists >= MIN_ARTISTS and ci[0] >= MIN_AUROC_LOW
    entry.update(threshold=round(threshold, 4), offered=bool(offered), evidence=evidence, gtzan_fires=fires)
    return entry


def rules_for(entries: list[dict], labels) -> list[dict]:
    """The offered candidates as a bundle's ``tag_genres`` (none that is already one of its genres)."""
    own = {str(g).casefold() for g in labels}
    return [{"genre": e["genre"], "tags": e["tags"], "threshold": e["threshold"], "evidence": e["evidence"]}
            for e in entries if e["offered"] and e["genre"].casefold() not in own]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "../shared/data")
    parser.add_argument("--report", type=Path, default=ROOT / "docs/tag_genres.json")
    parser.add_argument("--models", nargs="*", default=["broad-musicnn"], help="shipped bundles to store the rules in")
    args = parser.parse_args(argv)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    emotify, gtzan = emotify_rows(args.data, log), gtzan_rows(args.data)
    entries = [measure(g, t, label, emotify, gtzan) for g, t, label in CANDIDATES]
    for e in entries:
        ev = e["evidence"]
        log(f"{e['genre']}: " + (f"AUROC {ev['auroc']}, threshold {e['threshold']}, precision {ev['precision']}, "
                                 f"recall {ev['recall']}, offered {e['offered']}" if ev["measured"] else ev["why"]))
    report = {"offer_rule": {"min_positive": MIN_POSITIVE, "min_artists": MIN_ARTISTS, "min_auroc_low": MIN_AUROC_LOW},
              "candidates": entries, "models": {}}
    for name in args.models:
        rules = rules_for(entries, load_bundle(SHIPPED / name).labels)
        add_calibration(SHIPPED / name, {"tag_genres": rules})
        report["models"][name] = [r["genre"] for r in rules]
    args.report.write_text(json.dumps(report, indent=1) + "\n")
    return 0


def section(report) -> list[str]:
    """The RESULTS.md lines of ``docs/tag_genres.json``."""
    if not report:
        return []
    rule = report["offer_rule"]
    lines = ["", "## Genres from the backbone's tags", "",
             "`python scripts/tag_genre_evidence.py`. Each candidate genre beyond a head's own is a rule on "
             "MSD-musicnn's tags (the strongest of the named tags); it is measured on the 200 shared Emotify "
             "songs (genrekit's own analysis of the audio; positives by Emotify genre or original ID3 genre), "
             "threshold by Youden's J on training folds, precision and recall of held-out folds (5-fold, grouped "
             f"by artist). Offered when measured on ≥ {rule['min_positive']} positive songs by ≥ "
             f"{rule['min_artists']} artists with the AUROC interval's lower end ≥ {rule['min_auroc_low']:.2f} "
             "(rule fixed in advance). \"Fires on GTZAN\": share of GTZAN's 733 fault-filtered clips per genre "
             "(authors' taggrams) reaching the threshold, where no clip carries the candidate's label.", "",
             "| genre | tags | positives / others (artists) | AUROC [95% CI, artists resampled] | threshold | "
             "precision [95% CI] | recall [95% CI] | fires on GTZAN | offered |",
             "|---|---|---|---|---|---|---|---|---|"]
    for e in report["candidates"]:
        ev, tags = e["evidence"], ", ".join(e["tags"])
        if not ev["measured"]:
            lines.append(f"| {e['genre']} | {tags} | not measured here: {ev['why']} | | | | | | no |")
            continue
        a, p, r = ev["auroc"], ev["precision_ci"], ev["recall_ci"]
        top = sorted(e["gtzan_fires"].items(), key=lambda kv: -kv[1])[:3]
        prec = "–" if ev["precision"] is None else f"{ev['precision']:.2f} [{p[0]:.2f}, {p[1]:.2f}]"
        lines.append(f"| {e['genre']} | {tags} | {ev['n_positive']} / {ev['n_negative']} ({ev['artists']}) | "
                     f"{a[0]:.3f} [{a[1]:.3f}, {a[2]:.3f}] | {e['threshold']:.3f} | {prec} | "
                     f"{ev['recall']:.2f} [{r[0]:.2f}, {r[1]:.2f}] | "
                     + ", ".join(f"{g} {100 * v:.0f}%" for g, v in top) + f" | {'yes' if e['offered'] else 'no'} |")
    notes = [f"- {e['genre']}: {e['evidence']['note']}" for e in report["candidates"] if e["evidence"].get("note")]
    lines += ([""] + notes if notes else [])
    lines += ["", "Stored in: " + "; ".join(f"`{m}`: {', '.join(g) or 'none'}" for m, g in report["models"].items())
              + ". They are added to a song's `genres` after the head's genres, never in their place "
              "(`genrekit/models/tag_genres.py`).", ""]
    return lines


if __name__ == "__main__":
    sys.exit(main())
