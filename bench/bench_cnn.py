"""Speed of the CNNs on this CPU: training throughput, and 30-s clip latency with onnxruntime vs PyTorch.

    python bench/bench_cnn.py [--steps 200] [--repeat 7] [--threads 1] [--arch shortres ...] [--clip PATH]

1. **Training**: optimisation steps (forward, backward, AdamW) on batches of 32 random
   3-s log-mel patches (128 bands × 130 frames), per architecture; after 3 warm-up
   steps, ``--steps`` steps are timed and windows per second reported.
2. **Inference** of one 30-s clip, end to end: decode (soundfile + soxr), the log-mel
   front end over the whole clip, 3-s windows every 1.5 s, the network, the mean. The
   network runs once through onnxruntime (the exported bundle, as ``genrekit classify``
   runs it) and once through PyTorch (eval mode, ``no_grad``); both on ``--threads``
   threads. Median of ``--repeat`` runs after a warm-up, with the ratio.

The clip is the first GTZAN clip under ``$GENREKIT_SHARED_DATA`` (default
``../shared/data``) when present, else a synthetic 30-s signal. Weights are random:
speed does not depend on them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from genrekit.audio import decode as audio
from genrekit.audio import windows
from genrekit.models import cnn
from genrekit.models.cnn_inputs import bundle_inputs, cnn_feature_set, signal_windows, window_frames
from genrekit.training.cnn.export import export_onnx, write_bundle

SHARED = Path(os.environ.get("GENREKIT_SHARED_DATA", Path(__file__).resolve().parents[1] / "../shared/data"))
LABELS = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]


def median_seconds(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_training(archs: list[str], steps: int, batch: int = 32) -> None:
    print(f"training: batches of {batch} patches of 1x128x130, AdamW, {steps} timed steps, "
          f"{torch.get_num_threads()} torch thread(s)")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, 128, 130, generator=g) * 15 - 40
    y = torch.randint(0, 10, (batch,), generator=g)
    for arch in archs:
        torch.manual_seed(0)
        model = cnn.build(arch, 10, 128)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        model.train()

        def step():
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        for _ in range(3):
            step()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        seconds = time.perf_counter() - t0
        print(f"  {arch:9s} {cnn.n_parameters(model):>9,d} params  {steps * batch / seconds:7.1f} windows/s  "
              f"({seconds / steps * 1000:.0f} ms/step)")


def bench_inference(arch: str, clip: Path, repeat: int, threads: int) -> None:
    import onnxruntime as ort

    fs = cnn_feature_set()
    n_frames = window_frames(fs, 3.0)
    torch.manual_seed(0)
    model = cnn.build(arch, len(LABELS), fs.n_mels).eval()
    with tempfile.TemporaryDirectory() as tmp:
        onnx_bytes = export_onnx(model, fs.n_mels, n_frames)
        write_bundle(Path(tmp), onnx_bytes, LABELS, fs, n_frames, 3.0, 1.5, {}, {"model": f"cnn-{arch}"})
        from genrekit.models.bundle import load_bundle

        bundle = load_bundle(tmp)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"])

    def decode():
        return audio.load(clip, sr=fs.sample_rate, min_samples=fs.min_samples)

    y = decode()
    bounds = windows.window_bounds(len(y), fs.sample_rate, 3.0, 1.5, cover_end=True)

    def with_onnxruntime():
        y = decode()
        X = bundle_inputs(bundle, y, windows.window_bounds(len(y), fs.sample_rate, 3.0, 1.5, cover_end=True))
        (p,) = session.run(["probabilities"], {"logmel": X})
        return p.mean(axis=0)

    @torch.no_grad()
    def with_pytorch():
        y = decode()
        _, X = signal_windows(fs.compute(y), len(y), fs, 3.0, 1.5, n_frames)
        return torch.softmax(model(torch.from_numpy(X)), dim=1).mean(dim=0).numpy()

    diff = float(np.abs(with_onnxruntime() - with_pytorch()).max())
    X = bundle_inputs(bundle, y, bounds)
    t_decode = median_seconds(decode, repeat)
    t_logmel = median_seconds(lambda: bundle_inputs(bundle, y, bounds), repeat)
    t_net_ort = median_seconds(lambda: session.run(["probabilities"], {"logmel": X}), repeat)
    with torch.no_grad():
        t_net_pt = median_seconds(lambda: model(torch.from_numpy(X)), repeat)
    t_ort = median_seconds(with_onnxruntime, repeat)
    t_pt = median_seconds(with_pytorch, repeat)
    print(f"inference: {arch}, {clip.name} ({len(y) / fs.sample_rate:.1f} s, {len(bounds)} windows of 3 s), "
          f"median of {repeat}, {threads} thread(s) each")
    print(f"  decode {t_decode * 1000:7.1f} ms   log-mel + windows {t_logmel * 1000:7.1f} ms")
    print(f"  network      onnxruntime {t_net_ort * 1000:7.1f} ms   PyTorch {t_net_pt * 1000:7.1f} ms   "
          f"ratio {t_net_pt / t_net_ort:5.2f}x")
    print(f"  end to end   onnxruntime {t_ort * 1000:7.1f} ms   PyTorch {t_pt * 1000:7.1f} ms   "
          f"ratio {t_pt / t_ort:5.2f}x   (max |diff| of the clip's probabilities {diff:.1e})")


def find_clip(path: str | None, tmp: Path) -> Path:
    if path:
        return Path(path)
    found = sorted((SHARED / "gtzan" / "genres").glob("*/*.wav"))
    if found:
        return found[0]
    rng = np.random.default_rng(0)
    t = np.arange(30 * 22050) / 22050
    y = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * rng.standard_normal(len(t))
    target = tmp / "synthetic-30s.wav"
    sf.write(target, y.astype(np.float32), 22050)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="timed training steps per architecture (default 200)")
    parser.add_argument("--repeat", type=int, default=7, help="inference runs, median reported (default 7, at least 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads (default 1)")
    parser.add_argument("--arch", nargs="+", default=list(cnn.ARCHITECTURES), choices=list(cnn.ARCHITECTURES))
    parser.add_argument("--clip", help="audio file for the latency figures (default: a GTZAN clip)")
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    if not args.skip_training:
        bench_training(args.arch, args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        clip = find_clip(args.clip, Path(tmp))
        for arch in args.arch:
            bench_inference(arch, clip, max(5, args.repeat), args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
