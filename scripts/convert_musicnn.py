"""Rebuild genrekit's MSD-musicnn ONNX backbone from the musicnn 0.1.0 wheel, and check it.

    python scripts/convert_musicnn.py [--work /tmp/musicnn-convert] [--clips ../shared/data/gtzan/genres]

What it does, in order:

1. ``pip download --no-deps musicnn==0.1.0`` (the wheel ships the TensorFlow checkpoints; ISC
   licence, Music Technology Group, UPF) and unpack it into ``--work``.
2. Make a throwaway virtual environment in ``--work`` with TensorFlow (``tensorflow-cpu``,
   ``tf_keras``, librosa) — never a dependency of genrekit — and run this same script there
   with ``--stage tf``: it dumps the ``MSD_musicnn`` checkpoint's variables to ``weights.npz``
   and runs the package's own network (``musicnn.models.define_model`` in a TF1 graph, as
   ``musicnn.extractor.extractor`` does) on real clips, writing the reference inputs and
   outputs to ``reference.npz``.
3. Back here (PyTorch needed: ``pip install torch==2.13.0 -e ".[train]"``): build
   :class:`genrekit.models.musicnn_architecture.MusiCNN`, load the variables, export ONNX to
   ``genrekit/backbones/msd_musicnn/msd_musicnn.onnx`` and check it on the reference patches:
   tags within 1e-4 (absolute), embeddings within 1e-3 (relative). It also compares
   genrekit's own front end (:mod:`genrekit.backbones.msd_musicnn`) with the package's librosa
   front end on the same clips.

Two quirks of musicnn 0.1.0 are *not* reproduced: under numpy >= 2 its
``np.log10(10000 * x.astype(float16) + 1)`` overflows float16 (the reference here computes
the logarithm in float32 after the float16 cast, as numpy < 2 did), and its extractor returns
the first patch's ``penultimate`` for every patch (here each patch's own is kept).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "genrekit" / "backbones" / "msd_musicnn"
WHEEL = "musicnn==0.1.0"
TF_PACKAGES = ["tensorflow-cpu>=2.16", "tf_keras", "numpy<2.1", "librosa>=0.10", "soundfile"]
TAG_TOLERANCE = 1e-4
EMBEDDING_TOLERANCE = 1e-3


# --- stage "tf": inside the throwaway TensorFlow environment ------------------------------------
def tf_stage(package_dir: Path, clips: list[Path], out: Path) -> None:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf.compat.v1.layers needs tf_keras on TF >= 2.16
    import librosa
    import numpy as np
    import tensorflow as tf

    sys.path.insert(0, str(package_dir))
    from musicnn import configuration as config
    from musicnn import models

    tf.compat.v1.disable_eager_execution()
    prefix = str(package_dir / "musicnn" / "MSD_musicnn") + "/"
    reader = tf.compat.v1.train.NewCheckpointReader(prefix)
    names = sorted(n for n in reader.get_variable_to_shape_map() if "Adam" not in n and "power" not in n)
    np.savez(out / "weights.npz", **{n: reader.get_tensor(n) for n in names})

    n_frames = librosa.time_to_frames(3, sr=config.SR, n_fft=config.FFT_SIZE, hop_length=config.FFT_HOP) + 1
    step = librosa.time_to_frames(1, sr=config.SR, n_fft=config.FFT_SIZE, hop_length=config.FFT_HOP)
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, n_frames, config.N_MELS])
        is_training = tf.compat.v1.placeholder(tf.bool)
        y, _, _, _, _, _, mean_pool, max_pool, penultimate = models.define_model(x, is_training, "MSD_musicnn", 50)
        tags = tf.nn.sigmoid(y)
    sess = tf.compat.v1.Session()
    tf.compat.v1.train.Saver().restore(sess, prefix)

    ref = {"n_frames": np.array(n_frames), "step": np.array(step)}
    for i, clip in enumerate(clips):
        audio, sr = librosa.load(clip, sr=config.SR)
        mel = librosa.feature.melspectrogram(y=audio, sr=sr, hop_length=config.FFT_HOP,
                                             n_fft=config.FFT_SIZE, n_mels=config.N_MELS).T
        logc = np.log10(10000 * mel.astype(np.float16).astype(np.float32) + 1)
        starts = range(0, logc.shape[0] - n_frames + 1, step)
        batch = np.stack([logc[s:s + n_frames] for s in starts]).astype(np.float32)
        t, p, mx, mn = sess.run([tags, penultimate, max_pool, mean_pool], {x: batch, is_training: False})
        ref.update({f"{i}/audio16k": audio.astype(np.float32), f"{i}/patches": batch, f"{i}/tags": t,
                    f"{i}/penultimate": p, f"{i}/max_pool": mx, f"{i}/mean_pool": mn})
        print(f"  {clip.name}: {len(batch)} patches", flush=True)
    ref["clips"] = np.array([c.name for c in clips])
    ref["labels"] = np.array(config.MSD_LABELS)
    np.savez(out / "reference.npz", **ref)
    sess.close()


# --- the driver -----------------------------------------------------------------------------------
def fetch_package(work: Path) -> Path:
    wheel_dir = work / "wheel"
    if not list(wheel_dir.glob("musicnn-0.1.0-*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(wheel_dir), WHEEL], check=True)
    (wheel,) = wheel_dir.glob("musicnn-0.1.0-*.whl")
    package_dir = work / "package"
    if not (package_dir / "musicnn" / "MSD_musicnn").is_dir():
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(package_dir)
    return package_dir


def tf_python(work: Path) -> Path:
    venv = work / "tf-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *TF_PACKAGES], check=True)
    return python


def export(weights: Path, reference: Path, out_dir: Path) -> dict:
    import numpy as np
    import onnxruntime as ort
    import torch

    sys.path.insert(0, str(ROOT))
    from genrekit.backbones import msd_musicnn as backbone
    from genrekit.models.musicnn_architecture import MusiCNN, load_tf_variables

    model = load_tf_variables(MusiCNN(), dict(np.load(weights))).eval()
    ref = np.load(reference)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / backbone.ONNX_FILE

    class Exported(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, patches):
            f = self.net.features(patches)
            return f["tags"], f["penultimate"], f["max_pool"], f["mean_pool"]

    example = torch.from_numpy(ref["0/patches"][:2])
    torch.onnx.export(Exported(model).eval(), (example,), str(onnx_path), input_names=["patches"],
                      output_names=list(backbone.OUTPUTS), opset_version=17, dynamo=False,
                      dynamic_axes={"patches": {0: "batch", 1: "frames"}, **{o: {0: "batch"} for o in backbone.OUTPUTS}})
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    report = {"clips": [], "tags_max_abs": 0.0, "embedding_max_rel": 0.0, "frontend_tag_mean_max_abs": 0.0}
    for i, clip in enumerate(ref["clips"]):
        tags, pen, mx, mn = session.run(None, {"patches": ref[f"{i}/patches"]})
        with torch.no_grad():
            torch_tags = model.features(torch.from_numpy(ref[f"{i}/patches"]))["tags"].numpy()
        tag_err = float(max(np.abs(tags - ref[f"{i}/tags"]).max(), np.abs(torch_tags - ref[f"{i}/tags"]).max()))
        rel = lambda a, b: float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))  # noqa: E731
        emb_err = max(rel(pen, ref[f"{i}/penultimate"]), rel(mx, ref[f"{i}/max_pool"]), rel(mn, ref[f"{i}/mean_pool"]))
        # genrekit's own front end on the same 16-kHz audio, against the package's librosa front end
        ours = backbone.Backbone(onnx_path).taggram(ref[f"{i}/audio16k"], step=int(ref["step"]))
        fe_err = float(np.abs(ours.tags.mean(axis=0) - ref[f"{i}/tags"].mean(axis=0)).max())
        report["clips"].append({"clip": str(clip), "patches": int(len(tags)), "tags_max_abs": tag_err,
                                "embedding_max_rel": emb_err, "frontend_tag_mean_max_abs": fe_err})
        for key, value in (("tags_max_abs", tag_err), ("embedding_max_rel", emb_err), ("frontend_tag_mean_max_abs", fe_err)):
            report[key] = max(report[key], value)
    report["sha256"] = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    report["parameters_sha256"] = backbone.parameters_sha256(onnx_path)  # the weights' identity (feature-set keys)
    report["ok"] = report["tags_max_abs"] <= TAG_TOLERANCE and report["embedding_max_rel"] <= EMBEDDING_TOLERANCE
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/musicnn-convert"),
                        help="folder for the wheel, the TensorFlow venv and intermediate files (default %(default)s)")
    parser.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "data" / "gtzan" / "genres",
                        help="folder of real audio clips to check against (default %(default)s)")
    parser.add_argument("--n-clips", type=int, default=10, metavar="N", help="clips to check (default %(default)s)")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where the ONNX goes (default %(default)s)")
    parser.add_argument("--stage", choices=["all", "tf"], default="all", help=argparse.SUPPRESS)
    parser.add_argument("--clip", type=Path, action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.stage == "tf":
        tf_stage(fetch_package(args.work), args.clip, args.work)
        return 0

    package_dir = fetch_package(args.work)
    clips = sorted(args.clips.rglob("*.wav"))
    clips = clips[:: max(1, len(clips) // args.n_clips)][: args.n_clips]  # spread over the genres
    if not clips:
        parser.error(f"no .wav clips under {args.clips}")
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
               PYTHONWARNINGS="ignore")
    subprocess.run([str(tf_python(args.work)), __file__, "--stage", "tf", "--work", str(args.work),
                    *[a for c in clips for a in ("--clip", str(c))]], check=True, env=env)
    _ = package_dir
    report = export(args.work / "weights.npz", args.work / "reference.npz", args.out)
    (args.out / "conversion.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "clips"}, indent=1))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
