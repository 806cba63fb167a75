"""CNN genre models: architectures, crops and windows, training that survives SIGKILL, ONNX bundles without torch.

Every test works on real audio files synthesised here: four "genres" that differ in
rhythm (noise bursts at 60, 96, 132 or 176 BPM, ±5 % per track), in the colour of the
bursts, and in the register of a harmonic tone (random pitch within the register).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from genrekit.audio import decode as audio
from genrekit.models import cnn  # noqa: E402
from genrekit.errors import BundleError  # noqa: E402
from genrekit.models.bundle import load_bundle  # noqa: E402
from genrekit.models.registry import load_model  # noqa: E402
from genrekit.models.cnn_data import (  # noqa: E402
    Augment,
    bundle_inputs,
    epoch_batches,
    frame_starts,
    load_tracks,
    patches,
    read_manifest,
    signal_windows,
    window_frames,
)
from genrekit.training.cnn import (  # noqa: E402
    CHECKPOINT,
    HISTORY_COLUMNS,
    TrainingError,
    export_onnx,
    train_cnn,
)

from synthetic_songs import OTHER_KINDS, write_song  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SR = 22050

# register of the tone (Hz), tempo of the bursts (BPM), colour of the bursts
GENRES = {
    "low": ((80.0, 120.0), 60.0, "dark"),
    "mid": ((300.0, 420.0), 96.0, "warm"),
    "high": ((1100.0, 1500.0), 132.0, "white"),
    "bright": ((3000.0, 4000.0), 176.0, "bright"),
}


def _colour(noise: np.ndarray, colour: str, rng: np.random.Generator) -> np.ndarray:
    if colour in ("dark", "warm"):  # moving-average low-pass, longer for darker
        k = int(rng.integers(10, 15) if colour == "dark" else rng.integers(4, 7))
        return np.convolve(noise, np.ones(k) / k, mode="same") * np.sqrt(k)
    if colour == "bright":  # first difference: a high-pass tilt
        return np.diff(noise, prepend=0.0) / np.sqrt(2)
    return noise


def synth(genre: str, rng: np.random.Generator, seconds: float = 6.0) -> np.ndarray:
    (f_lo, f_hi), bpm, colour = GENRES[genre]
    n = int(seconds * SR)
    t = np.arange(n) / SR
    f0 = rng.uniform(f_lo, f_hi)
    tone = sum(rng.uniform(0.3, 1.0) / k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) for k in (1, 2, 3))
    tone *= 1 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.2, 2.0) * t)  # tremolo
    period = 60.0 / (bpm * rng.uniform(0.95, 1.05))
    envelope = np.exp(-((t - rng.uniform(0, period)) % period) / rng.uniform(0.03, 0.07))
    bursts = envelope * _colour(rng.standard_normal(n), colour, rng)
    y = rng.uniform(0.4, 0.6) * tone / 2 + rng.uniform(0.2, 0.4) * bursts + 0.01 * rng.standard_normal(n)
    return (rng.uniform(0.2, 0.8) * y / np.abs(y).max()).astype(np.float32)


def make_dataset(root: Path, per_genre: int, seed: int, seconds: float = 6.0) -> Path:
    rng = np.random.default_rng(seed)
    for genre in GENRES:
        (root / genre).mkdir(parents=True, exist_ok=True)
        for i in range(per_genre):
            sf.write(root / genre / f"{genre}.{seed:02d}{i:03d}.wav", synth(genre, rng, seconds), SR, subtype="PCM_16")
    return root


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A training folder (20 tracks per genre), a held-out folder (8 per genre), a feature cache."""
    base = tmp_path_factory.mktemp("cnn")
    train = make_dataset(base / "train", 20, seed=1)
    held = make_dataset(base / "held", 8, seed=2)
    cache = base / "cache"
    load_tracks(train, cache=cache, progress=False)  # fill the cache once for every test
    return {"base": base, "train": train, "held": held, "cache": cache}


#: A network small enough for tests that exercise the machinery rather than the learning.
#: One torch thread: on a machine shared with other jobs two threads can be several times slower.
TINY = {"arch": "seed3", "arch_options": {"width": 4}, "crops_per_track": 2, "batch_size": 16, "threads": 1}


@pytest.fixture(scope="module")
def tiny_run(synthetic):
    out = synthetic["base"] / "tiny-run"
    train_cnn(synthetic["train"], out, epochs=2, cache=synthetic["cache"], progress=False, verbose=False, **TINY)
    return out


def _child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


# --- (e) architectures ------------------------------------------------------------------------
@pytest.mark.parametrize("arch", list(cnn.ARCHITECTURES))
def test_every_architecture_trains_a_step_on_the_default_input(arch):
    torch.manual_seed(0)
    model = cnn.build(arch, n_classes=10, n_mels=128)
    x = torch.randn(8, 1, 128, 130) * 15 - 40  # a batch of 3-s log-mel patches, dB-like values
    logits = model(x)
    assert logits.shape == (8, 10)
    torch.nn.functional.cross_entropy(logits, torch.arange(8) % 10).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert sum(float(p.grad.abs().sum()) for p in model.parameters()) > 0
    # Global pooling: other window lengths work too.
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 128, 64)).shape == (2, 10)
        assert model(torch.randn(2, 1, 128, 431)).shape == (2, 10)


def test_build_refuses_unknown_names_and_single_class():
    with pytest.raises(ValueError, match="unknown architecture 'vgg'"):
        cnn.build("vgg", 10)
    with pytest.raises(ValueError, match="at least 2 classes"):
        cnn.build("seed3", 1)


# --- (c) ONNX export ------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", list(cnn.ARCHITECTURES))
def test_onnx_export_matches_pytorch(arch):
    import onnxruntime as ort

    torch.manual_seed(1)
    model = cnn.build(arch, n_classes=5, n_mels=128)
    # A few training steps so batch-norm statistics are not the identity.
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 1, 128, 130) * 15 - 40), torch.arange(4))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    onnx_bytes = export_onnx(model, 128, 130)
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name) == ("logmel", "probabilities")
    assert inp.shape[1:] == [1, 128, 130] and not isinstance(inp.shape[0], int)  # dynamic batch
    X = (torch.randn(7, 1, 128, 130, generator=torch.Generator().manual_seed(2)) * 15 - 40).numpy()
    (got,) = session.run(None, {"logmel": X})
    with torch.no_grad():
        want = torch.softmax(model(torch.from_numpy(X)), dim=1).numpy()
    assert np.abs(got - want).max() <= 1e-4
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


# --- data: manifests, windows, crops --------------------------------------------------------------
def test_manifest_csv_paths_are_relative_to_it_and_artists_are_read(synthetic, tmp_path):
    manifest = tmp_path / "m.csv"
    rel = os.path.relpath(synthetic["train"], tmp_path)
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "artist"])
        w.writerow([f"{rel}/low/low.01000.wav", "low", "Ann"])
        w.writerow([f"{rel}/mid/mid.01000.wav", "mid", ""])
    refs = read_manifest(manifest)
    assert [r.label for r in refs] == ["low", "mid"] and refs[0].path.exists()
    assert [r.artist for r in refs] == ["Ann", None]
    ts = load_tracks(manifest, cache=synthetic["cache"], progress=False)
    assert ts.artists == {"low.01000": "Ann", "mid.01000": "?mid.01000"}
    assert ts.classes == ["low", "mid"] and list(ts.y) == [0, 1]


def test_folder_labels_come_from_the_top_level_folder(synthetic):
    refs = read_manifest(synthetic["train"])
    assert len(refs) == 80 and {r.label for r in refs} == set(GENRES)
    assert all(r.path.parent.name == r.label for r in refs)


def test_windows_follow_window_bounds_and_short_clips_repeat(synthetic):
    ts = load_tracks(synthetic["held"], cache=synthetic["cache"], progress=False)
    fs, spec, n = ts.fs, ts.specs[0], int(ts.n_samples[0])
    n_frames = window_frames(fs, 3.0)
    assert n_frames == 130
    bounds, X = signal_windows(spec, n, fs, 3.0, 1.5)
    assert bounds == audio.window_bounds(n, SR, 3.0, 1.5, cover_end=True)
    assert X.shape == (len(bounds), 1, fs.n_mels, 130) and X.dtype == np.float32
    for (start, _), x in zip(bounds, X):
        f0 = min(round(start / fs.hop_length), spec.shape[1] - 130)
        np.testing.assert_array_equal(x[0], spec[:, f0 : f0 + 130])
    assert X[-1, 0, :, -1].tolist() == spec[:, -1].tolist()  # the last window reaches the end

    # A 1-s spectrogram (44 frames) is repeated in time to fill the 130-frame window.
    short = spec[:, :44]
    (x,) = patches(short, frame_starts([(0, SR)], fs.hop_length, 44, 130), 130)
    np.testing.assert_array_equal(x[0], np.concatenate([short, short, short[:, :42]], axis=1))


def test_epoch_batches_are_a_function_of_the_generator(synthetic):
    ts = load_tracks(synthetic["train"], cache=synthetic["cache"], progress=False)
    idx = np.arange(10)

    def epoch(seed, augment):
        return list(epoch_batches(ts.specs, ts.y, idx, n_classes=4, n_frames=130, batch_size=8,
                                  crops_per_track=2, augment=augment, rng=np.random.default_rng(seed)))

    a, b, c = epoch(5, Augment(mixup=0.2)), epoch(5, Augment(mixup=0.2)), epoch(6, Augment(mixup=0.2))
    assert [x.shape for x, _ in a] == [(8, 1, 128, 130), (8, 1, 128, 130), (4, 1, 128, 130)]
    assert all(np.array_equal(x1, x2) and np.array_equal(t1, t2) for (x1, t1), (x2, t2) in zip(a, b))
    assert not np.array_equal(a[0][0], c[0][0])
    targets = np.concatenate([t for _, t in a])
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)  # mixup: soft, still distributions
    plain = np.concatenate([t for _, t in epoch(5, Augment.none())])
    assert set(np.unique(plain)) == {0.0, 1.0}


# --- the run folder, refusals ---------------------------------------------------------------------
def test_run_folder_holds_a_loadable_cnn_bundle_and_results(tiny_run):
    meta = json.loads((tiny_run / "bundle.json").read_text())
    assert meta["kind"] == "cnn" and meta["labels"] == sorted(GENRES)
    assert meta["input"] == {"name": "logmel", "dtype": "float32", "shape": [None, 1, 128, 130]}
    assert (meta["window"], meta["hop"], meta["aggregate"]) == (3.0, 1.5, "mean")
    assert meta["feature_set"]["name"] == "logmel" and meta["card"]["model"] == "cnn-seed3"
    bundle = load_bundle(tiny_run)
    assert bundle.kind == "cnn" and bundle.input_shape == [None, 1, 128, 130]
    assert "cnn" in (tiny_run / "MODEL_CARD.md").read_text()
    results = json.loads((tiny_run / "results.json").read_text())
    entry = results["models"]["cnn-seed3"]
    assert results["n_tracks"] == 80 and entry["test"]["n_tracks"] + entry["valid"]["n_tracks"] > 0
    assert {"track", "window"} <= set(entry["test"])
    with open(tiny_run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == HISTORY_COLUMNS and [r["epoch"] for r in rows] == ["1", "2"]


def test_an_existing_run_is_not_overwritten_and_resume_checks_settings(synthetic, tiny_run):
    with pytest.raises(TrainingError, match="resume"):
        train_cnn(synthetic["train"], tiny_run, epochs=2, cache=synthetic["cache"], verbose=False, **TINY)
    with pytest.raises(TrainingError, match="other settings.*lr"):
        train_cnn(synthetic["train"], tiny_run, epochs=2, lr=0.5, resume=True, cache=synthetic["cache"],
                  verbose=False, **TINY)


def test_a_cnn_bundle_says_which_songs_are_none_of_its_genres(synthetic, tiny_run, tmp_path):
    """The decision measures the network's output (mean log-probability over a song's windows), fitted
    on the 8 validation tracks only: the 32 held-out songs of the four genres are mostly known, songs
    of kinds never trained on (plucks, sweeps, a drone) mostly unknown, even for this 2-epoch network."""
    meta = json.loads((tiny_run / "bundle.json").read_text())
    unknown = meta["unknown"]
    assert unknown["rows"] == "log_probabilities" and unknown["false_unknown_rate"] == 0.05
    assert "on the 8 validation tracks" in unknown["fitted_on"] and np.array(unknown["means"]).shape == (4, 4)
    assert "mean log-probability over its windows" in (tiny_run / "MODEL_CARD.md").read_text()
    model = load_model(tiny_run)
    held = [model.classify_file(p) for p in sorted(synthetic["held"].glob("*/*.wav"))]
    assert len(held) == 32 and sum(p.unknown for p in held) <= 10
    others = [write_song(tmp_path / f"{kind}{i}.wav", kind, seconds=6.0, seed=3000 + i)
              for i, kind in enumerate(OTHER_KINDS * 3)]
    assert sum(model.classify_file(p).unknown for p in others) >= 8
    # a CNN bundle's decision must measure its output: one over input rows is refused on loading
    (tmp_path / "bad").mkdir()
    for name in ("model.onnx", "MODEL_CARD.md"):
        (tmp_path / "bad" / name).write_bytes((tiny_run / name).read_bytes())
    meta["unknown"].pop("rows")
    (tmp_path / "bad/bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="unknown.rows must be 'log_probabilities'"):
        load_bundle(tmp_path / "bad")


# --- (d) prediction without torch --------------------------------------------------------------------
def test_a_cnn_bundle_predicts_without_torch(synthetic, tiny_run, tmp_path):
    clips = [synthetic["held"] / "mid" / "mid.02000.wav", tmp_path / "short.wav"]
    sf.write(clips[1], synth("high", np.random.default_rng(9), seconds=1.0), SR)  # shorter than a window
    code = textwrap.dedent(f"""
        import json, sys
        sys.modules["torch"] = None  # any "import torch" now raises ImportError
        from genrekit.audio import decode as audio
        from genrekit.models.bundle import load_bundle
        from genrekit.models.cnn_data import bundle_inputs
        b = load_bundle({str(tiny_run)!r})
        out = []
        for path in {[str(c) for c in clips]!r}:
            y = audio.load(path, sr=b.feature_set.sample_rate, min_samples=b.feature_set.min_samples)
            bounds = audio.window_bounds(len(y), b.feature_set.sample_rate, b.window, b.hop, cover_end=True)
            out.append(b.predict_proba(bundle_inputs(b, y, bounds)).tolist())
        try:
            import torch
        except ImportError:
            blocked = True
        else:
            blocked = False
        print(json.dumps({{"proba": out, "blocked": blocked}}))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_child_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    child = json.loads(done.stdout.strip().splitlines()[-1])
    assert child["blocked"]

    # In process, with PyTorch and the best weights of the checkpoint.
    ckpt = torch.load(tiny_run / CHECKPOINT, weights_only=True)
    model = cnn.build("seed3", 4, 128, width=4)
    model.load_state_dict(ckpt["best"]["model"])
    model.eval()
    bundle = load_bundle(tiny_run)
    for path, got in zip(clips, child["proba"]):
        y = audio.load(path, sr=SR, min_samples=2048)
        spec = bundle.feature_set.compute(y)
        _, X = signal_windows(spec, len(y), bundle.feature_set, 3.0, 1.5)
        with torch.no_grad():
            want = torch.softmax(model(torch.from_numpy(X)), dim=1).double().numpy()
        assert np.array(got).shape == want.shape
        assert np.abs(np.array(got) - want).max() <= 1e-4


# --- (a) the default network learns ------------------------------------------------------------------
@pytest.mark.slow
def test_default_architecture_learns_rhythm_and_timbre(synthetic, tmp_path):
    # Speed is bench/bench_cnn.py's business: a timed assertion here fails on a busy machine.
    out = train_cnn(
        synthetic["train"], tmp_path / "run", epochs=6, crops_per_track=5, test_size=0.1, valid_size=0.15,
        threads=1, cache=synthetic["cache"], progress=False, verbose=False,
    )
    bundle = load_bundle(out)
    assert bundle.card["model"] == f"cnn-{cnn.DEFAULT_ARCH}"
    hits = total = 0
    for path in sorted(synthetic["held"].glob("*/*.wav")):
        y = audio.load(path, sr=SR, min_samples=2048)
        bounds = audio.window_bounds(len(y), SR, bundle.window, bundle.hop, cover_end=True)
        proba = bundle.predict_proba(bundle_inputs(bundle, y, bounds)).mean(axis=0)
        hits += bundle.labels[int(proba.argmax())] == path.parent.name
        total += 1
    accuracy = hits / total
    print(f"\nshortres on synthetic genres: held-out track accuracy {accuracy:.3f} ({total} tracks)")
    assert accuracy >= 0.95


# --- (b) SIGKILL and resume -------------------------------------------------------------------------
def _train_command(data: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "genrekit.training.cnn", "--data", str(data), "--out", str(out),
        "--cache", str(cache), "--arch", "seed3", "--width", "4", "--epochs", "8", "--patience", "8",
        "--crops-per-track", "4", "--batch-size", "16", "--threads", "1", *extra,
    ]


def _history(run: Path) -> list[dict]:
    path = run / "history.csv"
    if not path.exists():
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_resume_after_sigkill_gives_the_uninterrupted_weights(synthetic, tmp_path):
    data, cache = synthetic["train"], synthetic["cache"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_train_command(data, killed, cache), env=_child_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600  # a hang guard; the asserts below say what went wrong
        while len(_history(killed)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    before = _history(killed)
    assert 2 <= len(before) < 8, "the run must be killed mid-way (after two epochs, before the last)"
    assert not (killed / "bundle.json").exists()
    k = torch.load(killed / CHECKPOINT, weights_only=True)["epoch"]  # the last finished epoch
    assert len(before) <= k < 8

    resumed = subprocess.run(_train_command(data, killed, cache, "--resume"), env=_child_env(),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {killed} after epoch {k}" in resumed.stderr
    after = _history(killed)
    assert [int(r["epoch"]) for r in after] == list(range(1, 9))  # every epoch once
    assert after[: len(before)] == before  # finished epochs kept as they were, not recomputed
    assert all(float(r["finished"]) > float(before[-1]["finished"]) for r in after[len(before):])
    assert load_bundle(killed).kind == "cnn"

    straight = tmp_path / "straight"
    done = subprocess.run(_train_command(data, straight, cache), env=_child_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    a = torch.load(killed / CHECKPOINT, weights_only=True)
    b = torch.load(straight / CHECKPOINT, weights_only=True)
    for key in ("model", "best"):
        sa = a[key] if key == "model" else a[key]["model"]
        sb = b[key] if key == "model" else b[key]["model"]
        assert sa.keys() == sb.keys()
        worst = max(float((sa[n].double() - sb[n].double()).abs().max()) for n in sa if sa[n].numel())
        assert worst <= 1e-6, (key, worst)
    assert [r["train_loss"] for r in _history(straight)] == [r["train_loss"] for r in after]


def test_validation_takes_whole_artists_and_never_a_genre_s_last_artist():
    from genrekit.training.cnn import _hold_out_groups

    labels = np.array(["a"] * 7 + ["b"] * 7 + ["c"] * 7)
    groups = np.array(["A"] * 7 + ["B1", "B1", "B2", "B2", "B3", "B4", "B5"] + [f"C{i}" for i in range(7)])
    for target in (2, 5, 21):
        held = _hold_out_groups(labels, groups, target, seed=3)
        kept = np.setdiff1d(np.arange(21), held)
        assert set(labels[kept]) == {"a", "b", "c"}  # every genre still has training tracks
        assert "a" not in labels[held]  # a one-artist genre stays whole in training
        assert not set(groups[held]) & set(groups[kept])  # artists are not split
        assert len(held) >= min(target, 11)
    assert list(_hold_out_groups(labels, groups, 4, seed=3)) == list(_hold_out_groups(labels, groups, 4, seed=3))
