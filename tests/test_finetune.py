"""Fine-tuning MSD-musicnn and the CNNs' other inputs, on real GTZAN excerpts and clips.

- ``--arch musicnn --pretrained`` learns from a few dozen 2-3-s excerpts where the same
  architecture from scratch, on the same split and epochs, does not;
- ``--pretrained --unfreeze`` resumed after SIGKILL (in the whole-network stage) ends with
  the weights of an uninterrupted run, bit for bit;
- the exported bundle, served by onnxruntime without PyTorch, matches PyTorch within 1e-4
  on a 30-s clip and on a short excerpt (repeat-padded to one patch, the rule training used);
- ``--input mfcc`` trains a from-scratch network and its bundle records the MFCC recipe.
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

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from genrekit.audio import decode as audio
from genrekit.backbones.msd_musicnn import PATCH_FRAMES, _repeat_pad, log_mel  # noqa: E402
from genrekit.features.sets import feature_set  # noqa: E402
from genrekit.models.bundle import load_bundle  # noqa: E402
from genrekit.models.cnn_data import bundle_inputs, cnn_feature_set  # noqa: E402
from genrekit.training.cnn import CHECKPOINT, TrainingError, train_cnn  # noqa: E402
from shared_data_policy import require  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
GENRES = ("classical", "metal", "hiphop", "reggae")


def _child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def _manifest(path: Path, rows) -> Path:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([("path", "label"), *rows])
    return path


@pytest.fixture(scope="module")
def gtzan(shared_data, tmp_path_factory):
    """Excerpts of four genres: the first 8 of each to train on, 6 later ones held out."""
    excerpts = require(shared_data / "gtzan" / "excerpts")
    base = tmp_path_factory.mktemp("finetune")
    train, held = [], []
    for genre in GENRES:
        files = sorted((excerpts / genre).glob("*.wav"))
        train += [(str(f), genre) for f in files[:8]]
        held += [(f, genre) for f in files[-6:]]  # clips 00045-00050: not those trained on
    return {
        "base": base, "cache": base / "cache", "held": held,
        "train": _manifest(base / "train.csv", train),
        "tiny": _manifest(base / "tiny.csv",
                          [r for g in GENRES[:3] for r in [t for t in train if t[1] == g][:6]]),
        "clip": shared_data / "gtzan" / "genres" / "metal" / "metal.00002.wav",
    }


def _accuracy(run: Path, held) -> float:
    bundle = load_bundle(run)
    fs = bundle.feature_set
    hits = 0
    for path, genre in held:
        y = audio.load(path, sr=fs.sample_rate, min_samples=fs.min_samples)
        bounds = audio.window_bounds(len(y), fs.sample_rate, bundle.window, bundle.hop, cover_end=True)
        proba = bundle.predict_proba(bundle_inputs(bundle, y, bounds)).mean(axis=0)
        hits += bundle.labels[int(proba.argmax())] == genre
    return hits / len(held)


# --- fast checks ------------------------------------------------------------------------------------
def test_musicnn_input_is_the_backbone_front_end_and_short_excerpts_repeat(gtzan):
    fs = cnn_feature_set("musicnn_frontend")
    assert (fs.sample_rate, fs.hop_length, fs.n_mels) == (16000, 256, 96)
    path = gtzan["held"][0][0]
    y = audio.load(path, sr=16000)
    assert len(y) < 3 * 16000  # a 2-3-s excerpt: shorter than one patch
    np.testing.assert_array_equal(fs.compute(y), log_mel(y).T)

    class B:  # what bundle_inputs reads of a bundle
        feature_set, window, meta = fs, 3.0, {"input": {"shape": [None, 1, 96, PATCH_FRAMES]}}

    bounds = audio.window_bounds(len(y), 16000, 3.0, 1.5, cover_end=True)
    X = bundle_inputs(B, y, bounds)
    assert X.shape == (1, 1, 96, PATCH_FRAMES)
    # The backbone's own documented rule (repeat-pad to one patch), applied identically.
    np.testing.assert_array_equal(X[0, 0], _repeat_pad(log_mel(y)).T)


def test_option_combinations_that_make_no_sense_are_refused(gtzan, tmp_path):
    common = dict(epochs=1, cache=gtzan["cache"], progress=False, verbose=False)
    with pytest.raises(TrainingError, match="--pretrained needs --arch musicnn"):
        train_cnn(gtzan["tiny"], tmp_path / "a", arch="shortres", pretrained=True, **common)
    with pytest.raises(TrainingError, match="takes its own front end"):
        train_cnn(gtzan["tiny"], tmp_path / "b", arch="musicnn", input="mfcc", **common)
    with pytest.raises(TrainingError, match="need --pretrained"):
        train_cnn(gtzan["tiny"], tmp_path / "c", arch="musicnn", unfreeze=True, **common)
    with pytest.raises(TrainingError, match="--head-epochs must be"):
        train_cnn(gtzan["tiny"], tmp_path / "d", arch="musicnn", pretrained=True, unfreeze=True,
                  head_epochs=3, epochs=3, cache=gtzan["cache"], progress=False, verbose=False)


def test_mfcc_input_trains_and_the_bundle_records_it(gtzan, tmp_path):
    run = train_cnn(gtzan["tiny"], tmp_path / "mfcc", arch="seed3", arch_options={"width": 4}, input="mfcc",
                    n_mfcc=40, split="kfold", folds=3, epochs=1, batch_size=8, threads=1, cache=gtzan["cache"], progress=False,
                    verbose=False)
    bundle = load_bundle(run)
    assert bundle.feature_set == feature_set("mfcc", n_mfcc=40)
    assert bundle.meta["input"]["shape"] == [None, 1, 40, 130]
    assert bundle.card["params"]["input"] == "mfcc" and bundle.card["params"]["n_mfcc"] == 40
    assert bundle.card["params"]["augment"]["gain_db"] == 0.0  # a dB gain is not an MFCC gain
    y = audio.load(gtzan["clip"], sr=22050)
    bounds = audio.window_bounds(len(y), 22050, bundle.window, bundle.hop, cover_end=True)
    proba = bundle.predict_proba(bundle_inputs(bundle, y, bounds))
    assert proba.shape == (len(bounds), 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)


# --- fine-tuning learns ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_finetuning_learns_where_the_same_network_from_scratch_does_not(gtzan):
    settings = dict(arch="musicnn", epochs=3, batch_size=8, crops_per_track=2, lr=1e-2, split="random",
                    valid_size=0.15, threads=1, cache=gtzan["cache"], progress=False,
                    verbose=False)
    t0 = time.perf_counter()
    tuned = train_cnn(gtzan["train"], gtzan["base"] / "tuned", pretrained=True, **settings)
    t1 = time.perf_counter()
    scratch = train_cnn(gtzan["train"], gtzan["base"] / "scratch", **settings)
    t2 = time.perf_counter()
    a_tuned, a_scratch = _accuracy(tuned, gtzan["held"]), _accuracy(scratch, gtzan["held"])
    print(f"\nheld-out excerpts ({len(gtzan['held'])}, {len(GENRES)} genres): fine-tuned {a_tuned:.3f} "
          f"({t1 - t0:.0f} s), from scratch {a_scratch:.3f} ({t2 - t1:.0f} s)")
    assert load_bundle(tuned).card["model"] == "cnn-musicnn-pretrained"
    assert a_tuned >= 0.7
    assert a_tuned >= a_scratch + 0.25


# --- resume after SIGKILL, bit for bit ---------------------------------------------------------------------
def _command(data: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "genrekit.training.cnn", "--data", str(data), "--out", str(out),
            "--cache", str(cache), "--arch", "musicnn", "--pretrained", "--unfreeze", "--head-epochs", "2",
            "--epochs", "5", "--patience", "5", "--split", "kfold", "--folds", "3", "--crops-per-track", "1", "--batch-size", "4",
            "--lr", "0.01", "--threads", "1", *extra]


def _history(run: Path) -> list[dict]:
    if not (run / "history.csv").exists():
        return []
    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def resumed(gtzan):
    """A --pretrained --unfreeze run killed in its whole-network stage and resumed, and one never stopped."""
    killed, straight = gtzan["base"] / "killed", gtzan["base"] / "straight"
    proc = subprocess.Popen(_command(gtzan["tiny"], killed, gtzan["cache"]), env=_child_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while len(_history(killed)) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = _history(killed)
    again = subprocess.run(_command(gtzan["tiny"], killed, gtzan["cache"], "--resume"), env=_child_env(),
                           capture_output=True, text=True, timeout=600)
    once = subprocess.run(_command(gtzan["tiny"], straight, gtzan["cache"]), env=_child_env(),
                          capture_output=True, text=True, timeout=600)
    return {"killed": killed, "straight": straight, "proc": proc, "before": before, "again": again, "once": once}


@pytest.mark.slow
def test_resume_after_sigkill_in_the_unfreeze_stage_is_bit_identical(resumed):
    assert resumed["proc"].returncode == -signal.SIGKILL
    before = resumed["before"]
    assert 3 <= len(before) < 5, "killed after the unfreeze (epoch 3), before the last epoch"
    assert resumed["again"].returncode == 0, resumed["again"].stderr
    assert resumed["once"].returncode == 0, resumed["once"].stderr
    assert f"after epoch {len(before)}" in resumed["again"].stderr
    after = _history(resumed["killed"])
    assert [int(r["epoch"]) for r in after] == [1, 2, 3, 4, 5] and after[: len(before)] == before
    # the schedule: head at 1e-2 for two epochs, then the whole network from 1e-3 down
    assert [float(r["lr"]) for r in after[:3]] == [0.01, 0.01, 0.001]
    a = torch.load(resumed["killed"] / CHECKPOINT, weights_only=True)
    b = torch.load(resumed["straight"] / CHECKPOINT, weights_only=True)
    for sa, sb in ((a["model"], b["model"]), (a["best"]["model"], b["best"]["model"])):
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), [k for k in sa if not torch.equal(sa[k], sb[k])][:3]
    # the whole network moved in the last stage; the frozen epochs left the backbone as shipped
    from genrekit.models.musicnn_architecture import pretrained

    shipped = pretrained().state_dict()
    assert not torch.equal(a["model"]["timbral.0.conv.weight"], shipped["timbral.0.conv.weight"])


@pytest.mark.slow
def test_the_finetuned_bundle_matches_pytorch_without_torch(resumed, gtzan):
    run = resumed["killed"]
    clips = [str(gtzan["clip"]), str(gtzan["held"][0][0])]  # a 30-s clip and a 2-3-s excerpt
    code = textwrap.dedent(f"""
        import json, sys
        sys.modules["torch"] = None  # any "import torch" now raises ImportError
        from genrekit.audio import decode as audio
        from genrekit.models.bundle import load_bundle
        from genrekit.models.cnn_data import bundle_inputs
        b = load_bundle({str(run)!r})
        fs = b.feature_set
        out = []
        for path in {clips!r}:
            y = audio.load(path, sr=fs.sample_rate, min_samples=fs.min_samples)
            bounds = audio.window_bounds(len(y), fs.sample_rate, b.window, b.hop, cover_end=True)
            out.append(b.predict_proba(bundle_inputs(b, y, bounds)).tolist())
        print(json.dumps(out))
    """)
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_child_env(), timeout=120)
    assert child.returncode == 0, child.stderr
    got = json.loads(child.stdout.strip().splitlines()[-1])

    from genrekit.models.musicnn_architecture import MusiCNN

    model = MusiCNN(3)
    model.load_state_dict(torch.load(run / CHECKPOINT, weights_only=True)["best"]["model"])
    model.eval()
    bundle = load_bundle(run)
    assert bundle.feature_set.name == "musicnn_frontend" and bundle.meta["input"]["shape"] == [None, 1, 96, 187]
    for path, proba in zip(clips, got):
        y = audio.load(path, sr=16000)
        mel = log_mel(y)  # (frames, 96): the backbone's own front end and short-input rule
        last = max(0, len(mel) - 187)
        starts = [min(int(round(a / 256)), last) for a, _ in audio.window_bounds(len(y), 16000, 3.0, 1.5, cover_end=True)]
        X = np.stack([_repeat_pad(mel[s:s + 187]).T[None] for s in starts])
        with torch.no_grad():
            want = torch.softmax(model(torch.from_numpy(X.astype(np.float32))), dim=1).double().numpy()
        assert np.array(proba).shape == want.shape
        assert np.abs(np.array(proba) - want).max() <= 1e-4


@pytest.mark.slow
def test_classify_and_evaluate_use_the_same_front_end_as_training(resumed, gtzan, tmp_path):
    """The streamed path users take (classify_file, genrekit evaluate on audio) feeds the network
    musicnn's own front end too: equal to the whole-signal inputs the bundle was checked on.
    (Was: the streamed path computed a dB log-mel for musicnn_frontend bundles, and every song came out
    as one or two genres.)"""
    from genrekit.backbones.msd_musicnn import MelStream
    from genrekit.pipeline import load_model

    run = resumed["killed"]
    clf = load_model(run)
    bundle = clf.bundle
    for path in (gtzan["clip"], gtzan["held"][0][0]):
        y = audio.load(path, sr=16000)
        stream = MelStream()
        for at in range(0, len(y), 7919):
            stream.feed(y[at:at + 7919])
        # equal but for a few bins whose float16 rounding tips the other way (a float16 step: < 1e-3 in log10)
        np.testing.assert_allclose(stream.finish(), log_mel(y).T, atol=1e-3)
        bounds = audio.window_bounds(len(y), 16000, bundle.window, bundle.hop, cover_end=True)
        whole = bundle.predict_proba(bundle_inputs(bundle, y, bounds)).mean(axis=0)
        streamed = clf.classify_file(path)
        assert [streamed.probabilities[g] for g in bundle.labels] == pytest.approx(whole.tolist(), abs=1e-5)
    # genrekit evaluate --model RUN --data AUDIO_FOLDER: one row per file, scored with the model itself
    folder = tmp_path / "held"
    for path, genre in gtzan["held"]:
        if genre not in bundle.labels:
            continue
        (folder / genre).mkdir(parents=True, exist_ok=True)
        os.symlink(path, folder / genre / Path(path).name)
    out = tmp_path / "eval.json"
    run_eval = subprocess.run([sys.executable, "-m", "genrekit", "evaluate", "--model", str(run), "--data", str(folder),
                               "--out", str(out)], capture_output=True, text=True, env=_child_env(), timeout=300)
    assert run_eval.returncode == 0, run_eval.stderr
    figures = json.loads(out.read_text())
    assert figures["n_tracks"] == sum(1 for _, g in gtzan["held"] if g in bundle.labels)
