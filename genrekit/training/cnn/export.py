"""A trained CNN as a model bundle: ONNX export checked against PyTorch, the "none of these" decision, the files.

The bundle (``bundle.json`` + ``model.onnx`` + ``MODEL_CARD.md``, see
:mod:`genrekit.models.bundle`) is what ``genrekit classify --model RUN_DIR`` loads: the
network followed by a softmax, served by onnxruntime without PyTorch.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from genrekit._io import write_bytes_atomic
from genrekit.errors import DatasetError, TrainingError
from genrekit.models import cnn
from genrekit.models.cnn_inputs import input_bands
from genrekit.training.cnn.tracks import TrackSet

#: Largest |onnxruntime − PyTorch| probability accepted for an exported network.
ONNX_TOLERANCE = 1e-4
ONNX_OPSET = 18
INPUT_NAME = "logmel"
OUTPUT_NAME = "probabilities"


def export_onnx(
    model: torch.nn.Module, n_mels: int, n_frames: int, *, sample: np.ndarray | None = None, seed: int = 0
) -> bytes:
    """The network followed by a softmax as ONNX bytes, checked against PyTorch.

    Input ``logmel`` float32 ``[batch, 1, n_mels, n_frames]`` (dynamic batch axis),
    output ``probabilities`` ``[batch, n_classes]``, opset 18. The torch.export-based
    exporter is used when ``onnxscript`` is installed, the TorchScript one otherwise.

    Parameters
    ----------
    model : torch.nn.Module
        Logits network (see :mod:`genrekit.models.cnn`); it is not modified.
    n_mels, n_frames : int
        Input patch size.
    sample : np.ndarray, optional
        Real patches to check the export on, besides a random batch.
    seed : int
        Seed of the random check batch.

    Raises
    ------
    TrainingError
        If onnxruntime's probabilities differ from PyTorch's by more than
        :data:`ONNX_TOLERANCE` on the check batches.
    """
    import onnxruntime as ort

    net = cnn.with_softmax(copy.deepcopy(model).to("cpu")).eval()
    example = torch.zeros(2, 1, n_mels, n_frames)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation chatter from the exporters
        target = os.path.join(tmp, "model.onnx")
        if importlib.util.find_spec("onnxscript") is not None:
            level = logging.getLogger("torch.onnx").level
            logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed"
            try:
                program = torch.onnx.export(
                    net, (example,), None, dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                    dynamic_shapes=({0: torch.export.Dim("batch")},), opset_version=ONNX_OPSET, verbose=False,
                )
            finally:
                logging.getLogger("torch.onnx").setLevel(level)
            onnx_bytes = program.model_proto.SerializeToString()
        else:
            torch.onnx.export(
                net, (example,), target, dynamo=False, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, opset_version=ONNX_OPSET,
            )
            with open(target, "rb") as f:
                onnx_bytes = f.read()

    from genrekit.onnx_sessions import session_options

    session = ort.InferenceSession(onnx_bytes, session_options(), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(seed)
    # Random patches at a log-mel's level (dB below the peak), 5 windows: not the batch size exported with.
    checks = [(torch.randn(5, 1, n_mels, n_frames, generator=g) * 15 - 40).numpy()]
    if sample is not None and len(sample):
        checks.append(np.ascontiguousarray(sample, dtype=np.float32))
    for X in checks:
        (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: X})
        with torch.no_grad():
            want = net(torch.from_numpy(X)).numpy()
        worst = float(np.max(np.abs(got - want)))
        if not worst <= ONNX_TOLERANCE:
            raise TrainingError(
                f"ONNX export disagrees with PyTorch: probabilities differ by up to {worst:.2g} "
                f"(tolerance {ONNX_TOLERANCE:g})"
            )
    return onnx_bytes


def fit_unknown_decision(proba, owners, tracks: TrackSet, classes, artists, seed) -> dict | None:
    """The bundle's "none of these" decision, fitted on the validation tracks only (never the test's).

    A CNN's input is a spectrogram, not a table row, so the decision measures its output: the mean
    over a song's windows of the log of the network's probabilities
    (:func:`genrekit.models.calibration.log_rows`), Mahalanobis distance to the nearest genre's mean
    (:func:`genrekit.models.unknown.unknown_decision`; threshold at 5% of the validation tracks'
    out-of-fold distances, folds grouped by artist where artists are known). Training tracks are
    not used: the network has fitted them, so their outputs are more confident than a new song's.
    ``None`` when the validation tracks do not cover two genres.
    """
    from genrekit.models.calibration import song_means
    from genrekit.models.unknown import log_rows, unknown_decision

    idx, rows, _ = song_means(log_rows(proba), owners)
    y = tracks.labels[idx]
    if len(set(y.tolist())) < 2 or len(idx) < 3:
        return None
    artists = artists if artists is not None else tracks.artists
    groups, grouped_by = tracks.tracks[idx], "track"
    if artists is not None:
        from genrekit.datasets.splits import artist_groups

        try:
            groups, grouped_by = artist_groups(tracks.table().subset(idx), artists), "artist"
        except DatasetError:  # a track without an artist: grouped by track, as the validation carve does
            pass
    return unknown_decision(rows, y, list(classes), groups=groups, grouped_by=grouped_by, seed=seed,
                            rows="log_probabilities", songs="validation tracks")


def write_bundle(out_dir: Path, onnx_bytes: bytes, classes, fs, n_frames, window, hop, metrics, card,
                 unknown: dict | None = None) -> None:
    """Write ``model.onnx``, ``MODEL_CARD.md`` and, last, ``bundle.json`` (which names the weights' checksum)."""
    from genrekit.models.bundle import load_bundle
    from genrekit.models.model_card import model_card_markdown
    from genrekit.models.bundle_save import bundle_meta_text
    from genrekit.models.bundle_json import BUNDLE_JSON, MODEL_CARD, WEIGHTS_FILE

    text = bundle_meta_text(
        out_dir, onnx_bytes, kind="cnn", labels=classes, feature_set=fs,
        input={"name": INPUT_NAME, "dtype": "float32", "shape": [None, 1, input_bands(fs), n_frames]},
        window=window, hop=hop, metrics=metrics, card=card, extra={"unknown": unknown},
    )
    for name, data in (
        (WEIGHTS_FILE, onnx_bytes),
        (MODEL_CARD, model_card_markdown(json.loads(text)).encode("utf-8")),
        (BUNDLE_JSON, text.encode("utf-8")),
    ):
        write_bytes_atomic(out_dir / name, data)
        os.chmod(out_dir / name, 0o644)  # temporary files are 0600; a bundle is meant to be shared
    load_bundle(out_dir)  # never leave a bundle that would be refused
