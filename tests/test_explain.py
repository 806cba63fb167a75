"""``genrekit explain``: top dataset excerpts per conv filter, occlusion saliency of every model kind; all without torch.

A tiny CNN (seed3, width 8, 2 epochs) is trained once on real files synthesised here:
two "genres", noise bursts (4 per second) and sustained harmonic tones, 4 s each.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from genrekit.audio import decode as audio
from genrekit.cli import main  # noqa: E402
from genrekit.explain.filters.probe import LayerProbe
from genrekit.explain.saliency import occlusion_saliency
from genrekit.models.bundle import load_bundle  # noqa: E402
from genrekit.models.registry import load_model  # noqa: E402
from genrekit.report.images import png_size  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SR = 22050
WIDTH = 8  # seed3 channels: 8, 16, 32


def clip(kind: str, rng: np.random.Generator, seconds: float = 4.0) -> np.ndarray:
    n = int(seconds * SR)
    t = np.arange(n) / SR
    if kind == "bursts":
        period = 0.25
        y = np.exp(-((t - rng.uniform(0, period)) % period) / 0.03) * rng.standard_normal(n)
    else:
        f0 = rng.uniform(200, 400)
        y = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in (1, 2, 3))
    y = y + 0.005 * rng.standard_normal(n)
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A folder of 2 × 8 clips and a CNN bundle trained on it."""
    pytest.importorskip("torch")
    from genrekit.training.cnn.trainer import train_cnn

    base = tmp_path_factory.mktemp("explain")
    rng = np.random.default_rng(0)
    for kind in ("bursts", "tones"):
        (base / "data" / kind).mkdir(parents=True)
        for i in range(8):
            sf.write(base / "data" / kind / f"{kind}{i}.wav", clip(kind, rng), SR, subtype="PCM_16")
    run = train_cnn(base / "data", base / "run", arch="seed3", arch_options={"width": WIDTH}, epochs=2, lr=5e-3,
                    crops_per_track=16, batch_size=16, threads=1, cache=False, progress=False, verbose=False)
    return {"base": base, "data": base / "data", "run": Path(run)}


def _child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def test_the_probe_lists_conv_layers_after_their_relu(tiny):
    bundle = load_bundle(tiny["run"])
    probe = LayerProbe(bundle)
    assert [(l.number, l.n_filters, l.activation) for l in probe.layers] == [
        (1, WIDTH, "Relu"), (2, 2 * WIDTH, "Relu"), (3, 4 * WIDTH, "Relu")]
    assert probe.layer.number == 3
    maps = LayerProbe(bundle, layer=1)(np.zeros((3, 1, 128, 130), dtype=np.float32) - 40)
    assert maps.shape == (3, WIDTH, 128, 130) and (maps >= 0).all()  # after ReLU, before pooling


def test_filters_writes_crops_wavs_and_an_index(tiny, tmp_path):
    out = tmp_path / "filters"
    assert main(["explain", "filters", "--model", str(tiny["run"]), "--data", str(tiny["data"]),
                 "--top", "3", "--out", str(out)]) == 0
    page = (out / "index.html").read_text(encoding="utf-8")
    images = re.findall(r"<img src='([^']+)'", page)
    sounds = re.findall(r"<audio controls preload='none' src='([^']+)'", page)
    n_filters = 4 * WIDTH  # the last layer by default
    assert page.count("<section ") == n_filters
    assert len(images) == len(sounds) == 3 * n_filters
    for link in images + sounds:
        assert not link.startswith(("/", "http")) and (out / link).is_file(), link
    for f in range(n_filters):
        assert len(list((out / f"filter_{f:03d}").glob("*.png"))) == 3
        assert len(list((out / f"filter_{f:03d}").glob("*.wav"))) == 3
    for link in images[:6]:
        data = (out / link).read_bytes()
        assert png_size(data) == (130, 128) and data.endswith(b"IEND\xaeB`\x82")
    y, sr = sf.read(out / sounds[0])
    assert sr == SR and len(y) == 3 * SR

    table = json.loads((out / "filters.json").read_text())
    assert table["layer"] == 3 and table["n_layers"] == 3 and len(table["filters"]) == n_filters
    for rows in table["filters"]:
        acts = [r["activation"] for r in rows]
        assert acts == sorted(acts, reverse=True) and [r["rank"] for r in rows] == [1, 2, 3]
        for r in rows:
            assert r["file"].split("/")[0] in ("bursts", "tones") and 0 <= r["start"] <= r["peak"] <= 4.0
            assert r["file"] in page and f"{r['start']:.2f} s" in page
        # two excerpts of one file are distinct moments (overlapping windows would repeat one)
        same = [(a, b) for a in rows for b in rows if a is not b and a["file"] == b["file"]]
        assert all(abs(a["peak"] - b["peak"]) >= 3.0 for a, b in same)


@pytest.mark.parametrize("layer", ["0", "4"])
def test_a_layer_out_of_range_is_a_clear_error(tiny, tmp_path, capsys, layer):
    code = main(["explain", "filters", "--model", str(tiny["run"]), "--data", str(tiny["data"]),
                 "--layer", layer, "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 1 and f"--layer {layer} is out of range" in err and "3 convolution layers (1..3" in err
    assert not (tmp_path / "x").exists()


def test_filters_runs_without_torch(tiny, tmp_path):
    out = tmp_path / "first"
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # any "import torch" now raises ImportError
        from genrekit.cli import main
        rc = main(["explain", "filters", "--model", {str(tiny["run"])!r}, "--data", {str(tiny["data"])!r},
                   "--layer", "1", "--top", "2", "--out", {str(out)!r}])
        assert "torch" not in [m.split(".")[0] for m, v in sys.modules.items() if v is not None]
        sys.exit(rc)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_child_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "conv layer 1 of 3" in proc.stderr
    folders = sorted(p.name for p in out.glob("filter_*"))
    assert folders == [f"filter_{f:03d}" for f in range(WIDTH)]
    assert json.loads((out / "filters.json").read_text())["tensor"] in (out / "index.html").read_text()


# --- filters of the default model: its MSD-musicnn backbone ----------------------------------------
BACKBONE_SR = 16000
#: Synthetic songs (seconds): a low and a high harmonic tone, noise bursts, and one shorter than a 3-s patch.
SONGS = {"low": 6.0, "high": 5.0, "bursts": 4.0, "short": 2.0}


def synth(kind: str, seconds: float, sr: int = BACKBONE_SR) -> np.ndarray:
    rng = np.random.default_rng(len(kind))
    t = np.arange(int(seconds * sr)) / sr
    if kind == "bursts":
        y = np.exp(-(t % 0.25) / 0.03) * rng.standard_normal(len(t))
    else:
        f0 = {"low": 110.0, "high": 1800.0, "short": 440.0}[kind]
        y = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in (1, 2, 3) if k * f0 < sr / 2)
    y = y + 0.005 * rng.standard_normal(len(t))  # a noise floor: no song has exactly empty bands
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("songs")
    for kind, seconds in SONGS.items():
        sf.write(folder / f"{kind}.wav", synth(kind, seconds), BACKBONE_SR, subtype="PCM_16")
    return folder


@pytest.fixture(scope="module")
def default_filters(songs, tmp_path_factory):
    """`genrekit explain filters SONGS` with the default model, its output folder and what it printed."""
    out = tmp_path_factory.mktemp("filters") / "out"
    proc = subprocess.run([sys.executable, "-m", "genrekit", "explain", "filters", str(songs), "--top", "2",
                           "--out", str(out)], capture_output=True, text=True, env=_child_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out, proc.stderr


def test_filters_of_the_default_model_are_its_backbones_first_layer(default_filters):
    out, err = default_filters
    table = json.loads((out / "filters.json").read_text())
    assert (table["layer"], table["n_layers"], table["n_filters"]) == (1, 8, 204)
    assert table["node"] == "/timbral.0/Conv" and table["activation"] == "Relu"
    assert table["model"].endswith("gtzan-musicnn") and table["network"].endswith("msd_musicnn.onnx")
    silent = [f for f, rows in enumerate(table["filters"]) if not rows]
    assert f"conv layer 1 of 8 (204 filters, {len(silent)} of them the same in every window), 4 files" in err
    # most of MSD-musicnn's first-layer filters are dead (weights ~1e-30), but not all
    assert 100 < len(silent) < 204 - 10
    page = (out / "index.html").read_text(encoding="utf-8")
    assert page.count("<section ") == 204 and "MSD-musicnn backbone" in page
    assert page.count("No excerpt: its activation is the same in every window") == len(silent)
    images = re.findall(r"<img src='([^']+)'", page)
    sounds = re.findall(r"<audio controls preload='none' src='([^']+)'", page)
    assert len(images) == len(sounds) == 2 * (204 - len(silent))
    for link in images + sounds:
        assert (out / link).is_file(), link
    assert len(list(out.glob("filter_*/*.png"))) == len(images)
    for rows in table["filters"]:
        assert [r["rank"] for r in rows] in ([], [1, 2])
        for r in rows:
            song = r["file"].removesuffix(".wav")
            assert song in SONGS and 0 <= r["start"] <= r["peak"] <= SONGS[song]
            assert r["file"] in page and f"{r['start']:.2f} s" in page
            # the crop is the backbone's own input patch: 187 frames (3 s) by 96 mel bands
            assert png_size((out / r["image"]).read_bytes()) == (187, 96)
            y, sr = sf.read(out / r["audio"])
            assert sr == BACKBONE_SR and len(y) == int(min(3.0, SONGS[song]) * sr)


def test_backbone_filter_maps_are_what_the_network_pools():
    # The backbone's graph takes the max over frequency first, on sign-flipped filters; the probe
    # shows each filter's map as trained, ReLU(conv). Its batch norm and max over frequency must give
    # the branch output the network itself computes, for filters of either sign of norm scale.
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    from genrekit.backbones.msd_musicnn import FOLDER, ONNX_FILE, N_MELS, PATCH_FRAMES
    from genrekit.explain.filters.onnx_layers import cut_graph

    network_graph = onnx.load(str(FOLDER / ONNX_FILE))
    init = {t.name: numpy_helper.to_array(t) for t in network_graph.graph.initializer}
    x = (np.random.default_rng(4).random((2, PATCH_FRAMES, N_MELS)) * 3).astype(np.float32)
    for number, branch in ((1, "timbral.0"), (5, "temporal.2")):
        probe = LayerProbe(load_model(), layer=number)
        maps = probe(x)  # (n, filters, time, freq)
        assert probe.layer.unsigned == (f"net.{branch}.conv.weight", f"net.{branch}.conv.bias") and maps.min() >= 0
        gamma, beta, mean, var = (init[f"net.{branch}.bn.{k}"] for k in ("weight", "bias", "running_mean", "running_var"))
        assert (gamma < 0).any() and (gamma > 0).any()
        scale = (gamma / np.sqrt(var + 1e-3))[None, :, None, None]
        pooled = (scale * (maps - mean[None, :, None, None]) + beta[None, :, None, None]).max(axis=3)
        norm = next(n.output[0] for n in network_graph.graph.node
                    if n.op_type == "BatchNormalization" and n.name.startswith(f"/{branch}/"))
        (network,) = ort.InferenceSession(cut_graph(network_graph, norm).SerializeToString()).run(None, {"patches": x})
        np.testing.assert_allclose(pooled, network, rtol=1e-4, atol=1e-4)


def test_each_filters_top_excerpt_is_where_its_activation_is_highest(songs, default_filters):
    from genrekit.backbones.msd_musicnn import HOP_LENGTH, load_backbone
    from genrekit.explain.filters.sources import BackboneSource
    from genrekit.models.registry import load_model

    model = load_model()
    probe = LayerProbe(model)
    source = probe.source
    assert isinstance(source, BackboneSource) and probe.layer.output == "/timbral.0/Conv_output_0/unsigned/Relu"
    best, when, per_patch = {}, {}, []
    for kind in SONGS:
        y = audio.load(songs / f"{kind}.wav", sr=BACKBONE_SR)
        starts = source.starts(len(y))
        X = source.inputs(y, starts)
        # the patches are those prediction cuts: the whole network on them gives the model's taggram
        assert np.allclose(load_backbone().run(X)[0], model.taggram(y).tags, atol=1e-6)
        maps = probe(X)  # (patches, 204, time, freq): the full feature maps, reduced here on their own
        assert maps.shape[:3] == (len(starts), 204, 187) and (maps >= 0).all()
        per_patch.append(maps.max(axis=(2, 3)))
        best[kind] = maps.max(axis=(0, 2, 3))
        patch, frame, _ = np.unravel_index(maps.transpose(1, 0, 2, 3).reshape(204, -1).argmax(axis=1),
                                           (len(starts), 187, maps.shape[3]))
        when[kind] = (starts[patch] + frame + 0.5) * HOP_LENGTH / BACKBONE_SR  # seconds of each filter's maximum
    per_patch = np.concatenate(per_patch)
    strongest = np.array([best[k] for k in SONGS])  # (songs, filters)
    rows = json.loads((default_filters[0] / "filters.json").read_text())["filters"]
    unique = 0
    for f, chosen in enumerate(rows):
        if per_patch[:, f].max() - per_patch[:, f].min() < 1e-6:  # a dead filter: nothing to rank
            assert chosen == [], f
            continue
        first = chosen[0]
        kind = first["file"].removesuffix(".wav")
        # the top excerpt's song holds the filter's highest activation over all songs
        assert np.isclose(first["activation"], strongest[:, f].max(), rtol=1e-5), f
        assert np.isclose(best[kind][f], strongest[:, f].max(), rtol=1e-5), f
        ranked = np.sort(strongest[:, f])
        if ranked[-1] - ranked[-2] > 1e-3 * ranked[-1]:  # one song alone holds it: also when it fired
            unique += 1
            assert kind == list(SONGS)[int(strongest[:, f].argmax())], f
            assert abs(first["peak"] - min(when[kind][f], SONGS[kind])) < 2e-3, f
    assert unique >= 10  # the songs differ, and the live filters tell them apart


def test_filter_sources_follow_the_models_kind(tiny):
    from genrekit.errors import ExplainError
    from genrekit.explain.filters.sources import BackboneSource, CNNBundleSource, filter_source
    from genrekit.models.registry import classifier, load_model

    assert isinstance(filter_source(load_model()), BackboneSource)
    cnn = load_bundle(tiny["run"])
    assert isinstance(filter_source(cnn), CNNBundleSource)
    assert isinstance(filter_source(classifier(cnn, "tiny")), CNNBundleSource)
    with pytest.raises(ExplainError, match="needs a CNN bundle .* or a head on the MSD-musicnn backbone"):
        filter_source(load_model("gtzan57"))


# --- occlusion saliency: every model kind ---------------------------------------------------------
def read_png(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Palette indices ``(height, width)`` and palette ``(n, 3)`` of an 8-bit indexed PNG (any row filter)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        n = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + n]
        assert zlib.crc32(kind + body) == int.from_bytes(data[pos + 8 + n : pos + 12 + n], "big")
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + n
    width, height, depth, colour = int.from_bytes(chunks[b"IHDR"][:4], "big"), \
        int.from_bytes(chunks[b"IHDR"][4:8], "big"), chunks[b"IHDR"][8], chunks[b"IHDR"][9]
    assert (depth, colour) == (8, 3) and b"IEND" in chunks
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8).reshape(height, width + 1)
    out = np.zeros((height, width), dtype=np.int64)
    for r in range(height):
        f, line = raw[r, 0], raw[r, 1:].astype(np.int64)
        up = out[r - 1] if r else np.zeros(width, dtype=np.int64)
        row = np.zeros(width, dtype=np.int64)
        for c in range(width):
            left = row[c - 1] if c else 0
            upleft = up[c - 1] if c else 0
            pred = {0: 0, 1: left, 2: up[c], 3: (left + up[c]) // 2}.get(f)
            if pred is None:  # Paeth
                p = left + up[c] - upleft
                pa, pb, pc = abs(p - left), abs(p - up[c]), abs(p - upleft)
                pred = left if pa <= pb and pa <= pc else (up[c] if pb <= pc else upleft)
            row[c] = (line[c] + pred) % 256
        out[r] = row
    return out, np.frombuffer(chunks[b"PLTE"], dtype=np.uint8).reshape(-1, 3)


def half_silent(kind: str, sr: int, seed: int, seconds: float = 8.0) -> np.ndarray:
    """Silence for the first half, then ``kind`` music: the evidence can only lie in the second half."""
    rng = np.random.default_rng(seed)
    y = clip(kind, rng, seconds / 2)
    if sr != SR:
        import soxr

        y = soxr.resample(y, SR, sr)
    return np.concatenate([np.zeros_like(y), y]).astype(np.float32)


def check_saliency(result, model, y, silent_seconds: float, label: str | None = None) -> None:
    """The song's own probabilities, the genre asked (default the top one), a grid over the whole
    plane, exactly 0 where all was silence."""
    assert np.allclose([result.probabilities[g] for g in model.labels], model.predict_proba(y), atol=1e-5)
    assert result.label == (label or max(result.probabilities, key=result.probabilities.get))
    assert result.grid.shape == (len(result.band_edges) - 1, len(result.frame_edges) - 1)
    assert result.frame_edges[-1] == result.plane.n_frames and result.band_edges[-1] == result.plane.n_bands
    ends = result.frame_edges[1:] * result.seconds_per_frame
    # silencing silence changes nothing: the cells wholly inside the silent half score exactly 0
    silent = ends <= silent_seconds - 0.1
    assert silent.any() and np.abs(result.grid[:, silent]).max() < 1e-6
    assert np.abs(result.grid[:, ~silent]).max() > 1e-4  # and the music does matter


def test_saliency_of_the_default_model_lies_in_the_music():
    from genrekit.explain.occlusion import occlusion_target
    from genrekit.models.registry import load_model

    model = load_model()
    assert model.has_backbone and occlusion_target(model).kind == "backbone + head"
    y = half_silent("tones", model.sample_rate, 1)
    result = occlusion_saliency(model, y, bands=3, seconds=1.0)
    check_saliency(result, model, y, 4.0)
    other = next(g for g in model.labels if g != result.label)
    assert occlusion_saliency(model, y, label=other, bands=3, seconds=1.0).label == other


def test_saliency_of_a_feature_table_model_silences_the_audio():
    from genrekit.explain.occlusion import occlusion_target
    from genrekit.models.registry import load_model

    model = load_model("gtzan57")
    assert occlusion_target(model).kind == "feature table"
    y = half_silent("bursts", model.sample_rate, 2)
    result = occlusion_saliency(model, y, bands=2, seconds=1.0)
    check_saliency(result, model, y, 4.0)


def test_saliency_of_a_cnn_bundle(tiny):
    from genrekit.models.registry import classifier

    model = classifier(load_bundle(tiny["run"]), "tiny")
    y = half_silent("bursts", SR, 5)
    result = occlusion_saliency(model, y, label="bursts", bands=4, seconds=0.5)
    check_saliency(result, model, y, 4.0, "bursts")
    # the bursts are the evidence of "bursts": silencing them lowers its probability
    assert result.grid[:, result.frame_edges[:-1] * result.seconds_per_frame >= 4.0].sum() > 0
    with pytest.raises(Exception, match="unknown genre 'polka'"):
        occlusion_saliency(model, y, label="polka")


def _song(path: Path, sr: int, seconds: float = 8.0) -> Path:
    sf.write(path, half_silent("tones", sr, 3, seconds), sr, subtype="PCM_16")
    return path


def test_explain_song_with_the_default_model_writes_png_and_json(tmp_path, monkeypatch, capsys):
    from genrekit.explain.figure import figure_size

    song = _song(tmp_path / "song.wav", 16000)
    monkeypatch.chdir(tmp_path)
    assert main(["explain", str(song), "--bands", "2"]) == 0  # `genrekit explain SONG`: no sub-verb needed
    assert "musicnn" in capsys.readouterr().err
    image = tmp_path / "song.saliency.png"
    side = json.loads((tmp_path / "song.saliency.json").read_text())
    assert side["model"] == "gtzan-musicnn" and side["model_kind"] == "backbone + head"
    assert side["label"] == max(side["probabilities"], key=side["probabilities"].get)
    assert side["band_edges_hz"][0] == 0 and side["band_edges_hz"][-1] == 8000 and len(side["band_edges_hz"]) == 3
    grid = np.array(side["saliency"])
    assert grid.shape == (2, len(side["cell_starts_s"])) and side["cell_starts_s"][:2] == [0.0, 2.0]
    assert np.abs(grid[:, np.array(side["cell_ends_s"]) <= 4.0]).max() == 0  # the silent half
    frames = 1 + 8 * 16000 // 256
    pixels, palette = read_png(image.read_bytes())
    assert pixels.shape[::-1] == figure_size(frames)
    colours = {tuple(c) for c in palette[np.unique(pixels)]}
    assert (255, 255, 255) in colours and (0, 0, 0) in colours and len(colours) > 50  # maps, ink, paper


@pytest.mark.parametrize("model", ["gtzan57", "cnn"])
def test_explain_saliency_command_with_other_models(tiny, tmp_path, model):
    spec = str(tiny["run"]) if model == "cnn" else model
    song = _song(tmp_path / "song.wav", SR)
    out = tmp_path / "maps" / "x.png"
    out.parent.mkdir()  # a missing parent folder of --out is an error (issue 20), not created
    assert main(["explain", "saliency", str(song), "--model", spec, "--out", str(out), "--seconds", "1"]) == 0
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["model_kind"] == ("CNN" if model == "cnn" else "feature table")
    assert len(side["saliency"]) == 4 and len(side["saliency"][0]) == 8 and side["cell_ends_s"][-1] == 8.0
    pixels, _ = read_png(out.read_bytes())
    assert pixels.shape[0] > 2 * 128 and pixels.shape[1] > 480


def test_an_unknown_genre_is_a_clear_error(tmp_path, capsys):
    song = _song(tmp_path / "song.wav", 16000, 4.0)
    assert main(["explain", str(song), "--label", "polka", "--out", str(tmp_path / "x.png")]) == 1
    assert "unknown genre 'polka'" in capsys.readouterr().err and not (tmp_path / "x.png").exists()


def test_label_is_accepted_by_the_name_tables_print(tmp_path, capsys):
    """Issue 29 item 7: ``--label Country`` (as every table says it) and ``hip hop`` name the labels."""
    song = _song(tmp_path / "song.wav", 16000, 4.0)
    for given, label in (("Country", "country"), ("hip hop", "hiphop"), ("HIP-HOP", "hiphop")):
        out = tmp_path / f"{label}.png"
        assert main(["explain", str(song), "--label", given, "--bands", "2", "--out", str(out)]) == 0
        assert json.loads(out.with_suffix(".json").read_text())["label"] == label
    err = capsys.readouterr().err
    assert ": Country (" in err and ": Hip-Hop (" in err
    assert main(["explain", str(song), "--label", "Polka", "--out", str(tmp_path / "x.png")]) == 1
    assert "the model knows Blues, Classical, Country, Disco, Hip-Hop" in capsys.readouterr().err


def test_filters_of_a_model_without_conv_bundle_point_to_saliency(tiny, tmp_path, capsys):
    code = main(["explain", "filters", "--model", "gtzan57", "--data", str(tiny["data"]), "--out", str(tmp_path / "f")])
    err = capsys.readouterr().err
    assert code == 1 and "explain filters needs a CNN bundle" in err and "genrekit explain SONG" in err
