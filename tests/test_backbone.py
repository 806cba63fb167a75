"""MSD-musicnn as genrekit's backbone: front end, ONNX graph, fidelity to the musicnn authors' taggrams."""

from __future__ import annotations

import numpy as np
import pytest

from genrekit.audio import decode as audio
from genrekit.backbones import msd_musicnn as m
from genrekit.features.sets import feature_set


def _tone(seconds: float, sr: int = m.SAMPLE_RATE, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(0)
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def test_patches_follow_musicnn_and_outputs_are_probabilities():
    y = _tone(10.0)
    tg = m.load_backbone().taggram(y)
    total = m.n_frames(len(y))
    # musicnn: range(0, total - 187 + 1, 61)
    assert list(tg.starts * m.SAMPLE_RATE / m.HOP_LENGTH) == list(range(0, total - m.PATCH_FRAMES + 1, 61))
    assert tg.tags.shape == (len(tg), 50) and tg.embeddings.shape == (len(tg), 200)
    assert (tg.tags >= 0).all() and (tg.tags <= 1).all()
    assert np.isfinite(tg.embeddings).all()


def test_block_wise_spectrogram_equals_whole_song():
    y = _tone(20.0)
    whole = m.log_mel(y)
    parts = np.concatenate([m.log_mel(y, a, b) for a, b in ((0, 400), (400, 777), (777, None))])
    np.testing.assert_array_equal(whole, parts)


@pytest.mark.parametrize("seconds, max_patches", [(70.0, None), (200.0, 20), (2.5, None)])
def test_a_taggram_streamed_block_by_block_equals_the_whole_signal_s(seconds, max_patches):
    y = _tone(seconds)
    whole = m.load_backbone().taggram(y, max_patches=max_patches, cover_end=True)
    stream = m.TaggramStream(m.load_backbone(), max_patches=max_patches, expected_samples=len(y), cover_end=True)
    rng = np.random.default_rng(3)
    at = 0
    while at < len(y):  # blocks of uneven sizes, as decoders give them
        size = int(rng.integers(1, 40_000))
        stream.feed(y[at:at + size])
        at += size
        assert len(stream._buf) <= 40_000 + stream._KEEP + 512  # only the samples still needed are kept
    streamed = stream.finish()
    np.testing.assert_array_equal(streamed.starts, whole.starts)
    np.testing.assert_allclose(streamed.tags, whole.tags, atol=1e-6)
    np.testing.assert_allclose(streamed.embeddings, whole.embeddings, atol=1e-5)


def test_short_signals_are_repeat_padded_to_one_patch():
    y = _tone(1.0)
    tg = m.load_backbone().taggram(y)
    assert len(tg) == 1
    mel = m.log_mel(y)
    padded = np.tile(mel, (-(-m.PATCH_FRAMES // len(mel)), 1))[: m.PATCH_FRAMES]
    tags, _ = m.load_backbone().run(padded[None])
    np.testing.assert_allclose(tg.tags[0], tags[0], atol=1e-6)


def test_max_patches_spreads_patches_over_a_long_song():
    y = _tone(240.0)
    tg = m.load_backbone().taggram(y, max_patches=20, cover_end=True)
    assert 20 <= len(tg) <= 21
    assert tg.starts[-1] + m.PATCH_SECONDS == pytest.approx(240.0, abs=0.05)


def test_the_feature_set_names_its_weights_and_keeps_older_keys():
    fs = feature_set("msd_musicnn")
    assert fs.sample_rate == 16000 and fs.step == 61 and fs.columns[:2] == ["tag_rock", "tag_pop"]
    assert len(fs.columns) == 250
    assert "step" not in feature_set("gtzan57").to_dict()  # new parameters leave old recipes' keys alone
    rows = fs.compute(_tone(8.0))
    assert rows.shape == (len(range(0, m.n_frames(8 * 16000) - m.PATCH_FRAMES + 1, 61)), 250)
    windowed = feature_set("msd_musicnn", window=4.0).compute(_tone(8.0))
    assert windowed.shape == (2, 250)


def test_pytorch_module_with_the_shipped_weights_matches_the_onnx_graph():
    torch = pytest.importorskip("torch")
    from genrekit.models.musicnn_architecture import pretrained

    x = np.random.default_rng(1).random((4, m.PATCH_FRAMES, m.N_MELS), dtype=np.float32) * 3
    tags, emb = m.load_backbone().run(x)
    with torch.no_grad():
        out = pretrained().features(torch.from_numpy(x))
    np.testing.assert_allclose(out["tags"].numpy(), tags, atol=1e-5)
    np.testing.assert_allclose(out["penultimate"].numpy(), emb, atol=1e-4, rtol=1e-4)


def test_inference_pools_before_the_norm_with_the_same_values_as_the_original_order():
    # Eval mode takes the max over frequency before ReLU and batch norm (negating the filters whose
    # norm scale is negative); the original order is conv → ReLU → norm → max. The shipped weights
    # have both signs of scale, so both branches of the trick are exercised.
    torch = pytest.importorskip("torch")
    from genrekit.models.musicnn_architecture import pretrained

    net = pretrained()
    x = torch.from_numpy(np.random.default_rng(2).random((3, 1, m.PATCH_FRAMES, m.N_MELS), dtype=np.float32) * 3)
    for block in (*net.timbral, *net.temporal):
        assert (block.bn.weight < 0).any() and (block.bn.weight > 0).any()
        with torch.no_grad():
            fast = block(x)
            original = block.bn(torch.relu(block.conv(torch.nn.functional.pad(x, (0, 0, *block.time_pad))))).amax(dim=3)
        assert fast.shape == original.shape
        np.testing.assert_allclose(fast.numpy(), original.numpy(), atol=1e-5, rtol=1e-5)


def test_the_weights_identity_is_the_graphs_parameters_as_recorded_at_conversion():
    # Feature-set keys hash the weights, not the graph file: a faster export of the same weights
    # keeps users' caches and trained heads valid. The record must describe the shipped graph.
    recorded = m.weights_sha256()
    assert len(recorded) == 64 and recorded == m.parameters_sha256(m.FOLDER / m.ONNX_FILE)


# --- fidelity to the musicnn authors' own taggrams of GTZAN -----------------------------------------
def _npz_clips(shared_data):
    """(clip wav path, npz patches, genre) for every shared clip that the npz files hold."""
    out = []
    for part in ("training", "evaluation"):
        with np.load(shared_data / f"gtzan/musicnn/{part}_data_GTZAN_MSDmusicnn_taggram.npz", allow_pickle=False) as z:
            X, Y, ids = z["X"], z["Y"], z["IDS"]
        for clip in sorted(set(ids)):
            genre, name = clip.split("/")
            wav = shared_data / "gtzan/genres" / genre / name.replace(".au", ".wav")
            if wav.exists():
                out.append((wav, X[ids == clip], genre))
    return out


@pytest.mark.slow
def test_taggrams_from_audio_reproduce_the_authors_own(shared_data):
    from genrekit.datasets.tables import load_table
    from genrekit.models.classical import make_model

    clips = _npz_clips(shared_data)
    assert len(clips) == 32
    ours = []
    for wav, ref, _ in clips:
        tg = m.load_backbone().taggram(audio.load(wav, sr=m.SAMPLE_RATE))
        assert len(tg) == len(ref), wav
        worst = np.abs(tg.tags.mean(axis=0) - ref.mean(axis=0)).max()
        assert worst < 0.1, f"{wav.name}: a tag's mean is {worst:.3f} from the npz's"
        ours.append(tg.tags.mean(axis=0))
    train = load_table(shared_data / "gtzan/musicnn/training_data_GTZAN_MSDmusicnn_taggram.npz")
    head = make_model("logreg", C=0.03).fit(train.X, train.labels)
    from_npz = head.predict(np.array([ref.mean(axis=0) for _, ref, _ in clips]))
    from_audio = head.predict(np.array(ours))
    assert np.sum(from_npz == from_audio) >= 31


def test_taggram_archives_load_as_tables(shared_data, tmp_path):
    from genrekit.datasets.tables import load_table
    from genrekit.errors import DatasetError

    t = load_table(shared_data / "gtzan/musicnn/evaluation_data_GTZAN_MSDmusicnn_taggram.npz")
    assert t.n_tracks == 290 and len(t) == 290 and t.feature_names[0] == "tag_rock"
    assert set(t.labels) == {"blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop",
                             "reggae", "rock"}
    assert t.feature_set["name"] == "msd_musicnn"
    bad = tmp_path / "bad.npz"
    np.savez(bad, X=np.ones((3, 7)), Y=np.zeros(3, int), IDS=np.array(["a", "a", "b"]))
    with pytest.raises(DatasetError, match="expected X of shape"):
        load_table(bad)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="cannot read the archive"):
        load_table(tmp_path / "junk.npz")


def _cli(*args, cwd=None):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "genrekit", *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def test_features_cli_gives_patches_or_window_means(tmp_path):
    import soundfile as sf

    song = tmp_path / "songs" / "tone.wav"
    song.parent.mkdir()
    sf.write(song, _tone(12.0), m.SAMPLE_RATE)
    cache = tmp_path / "cache"
    run = _cli("features", song.parent, "--set", "msd_musicnn", "--out", tmp_path / "f.npz", "--cache", cache)
    assert run.returncode == 0, run.stderr
    with np.load(tmp_path / "f.npz", allow_pickle=False) as z:
        (name,) = [k for k in z.files if k.endswith("tone.wav")]
        patches = z[name]
    assert patches.shape == (len(range(0, m.n_frames(12 * m.SAMPLE_RATE) - m.PATCH_FRAMES + 1, 61)), 250)
    table = _cli("features", song.parent, "--set", "musicnn", "--window", "6", "--out", tmp_path / "t.csv",
                 "--cache", cache)
    assert table.returncode == 0, table.stderr
    import csv

    rows = list(csv.DictReader(open(tmp_path / "t.csv")))
    assert len(rows) == 2 and "tag_rock" in rows[0] and "emb_199" in rows[0]
    decoded = audio.load(song, sr=m.SAMPLE_RATE)  # 16-bit PCM: not exactly the float tone
    first = m.window_rows(m.load_backbone().taggram(decoded), [(0.0, 6.0)])[0]
    assert float(rows[0]["tag_rock"]) == pytest.approx(float(first[0]), abs=1e-6)
    bad = _cli("features", song.parent, "--set", "musicnn", "--n-mels", "64", "--out", tmp_path / "x.npz")
    assert bad.returncode == 2 and "fixed by its weights" in bad.stderr


def test_train_and_evaluate_read_taggram_archives(shared_data, tmp_path):
    import json

    npz = shared_data / "gtzan/musicnn"
    run = _cli("train", "--data", npz / "training_data_GTZAN_MSDmusicnn_taggram.npz", "--model", "logreg",
               "--split", "random", "--out", tmp_path / "run")
    assert run.returncode == 0, run.stderr
    scored = _cli("evaluate", "--model", tmp_path / "run" / "logreg",
                  "--data", npz / "evaluation_data_GTZAN_MSDmusicnn_taggram.npz", "--out", tmp_path / "r.json")
    assert scored.returncode == 0, scored.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    text = json.dumps(result)
    assert '"n_tracks": 290' in text
    # a head on the tags, fitted on three quarters of the training clips, is far above chance on the test clips
    accs = [v for k, v in _walk(result) if k == "accuracy"]
    assert accs and max(accs) > 0.6
    # and the bundle classifies audio through the backbone
    from genrekit.models.registry import load_model

    clf = load_model(tmp_path / "run" / "logreg")
    assert clf.has_backbone
    pred = clf.classify_file(shared_data / "gtzan/genres/metal/metal.00002.wav")
    assert pred.tags and len(pred.embedding) == 200


def _walk(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                yield k, v
            else:
                yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)
