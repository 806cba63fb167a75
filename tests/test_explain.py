"""``genrekit explain``: top dataset excerpts per conv filter, occlusion saliency; both without torch.

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
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from genrekit import audio  # noqa: E402
from genrekit.cli import main  # noqa: E402
from genrekit.explain import LayerProbe, occlusion_saliency  # noqa: E402
from genrekit.models.bundle import load_bundle  # noqa: E402
from genrekit.web.spectrogram import png_size  # noqa: E402

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
    from genrekit.models.train_cnn import train_cnn

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


def test_saliency_lies_where_the_cue_is(tiny):
    # 4 s of silence, then 4 s of bursts: only the second half can hold evidence of "bursts"
    bursts = clip("bursts", np.random.default_rng(5))
    y = np.concatenate([np.zeros_like(bursts), bursts])
    bundle = load_bundle(tiny["run"])
    result = occlusion_saliency(bundle, y, label="bursts")
    assert result.label == "bursts" and result.saliency.shape == result.spec.shape
    mass = np.clip(result.saliency, 0, None).sum(axis=0)
    half = int(round(4.0 / result.seconds_per_frame))
    assert mass.sum() > 0
    assert mass[half:].sum() > 0.8 * mass.sum(), (mass[:half].sum(), mass[half:].sum())
    # a constant (silent) window is unchanged by a grey patch: no saliency at all there
    assert np.abs(result.saliency[:, : int(1.4 / result.seconds_per_frame)]).max() < 1e-6


def test_saliency_command_writes_png_and_sidecar(tiny, tmp_path):
    song = tmp_path / "song.wav"
    sf.write(song, np.concatenate([clip("tones", np.random.default_rng(1)), clip("bursts", np.random.default_rng(2))]),
             SR, subtype="PCM_16")
    out = tmp_path / "maps" / "song.png"
    assert main(["explain", "saliency", str(song), "--model", str(tiny["run"]), "--out", str(out),
                 "--patch", "32", "32", "--stride", "16", "16"]) == 0
    frames = 1 + len(audio.load(song, sr=SR)) // 512
    assert png_size(out.read_bytes()) == (frames, 2 * 128 + 3)  # spectrogram, gap, saliency
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["label"] in ("bursts", "tones") and side["label"] == max(side["probabilities"], key=side["probabilities"].get)
    assert abs(sum(side["probabilities"].values()) - 1) < 1e-6 and side["patch"] == [32, 32]
    assert len(side["saliency_per_second"]) >= 8
