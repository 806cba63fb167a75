"""MSD-musicnn as a PyTorch module: genrekit's own definition of Pons & Serra's tagging network.

The architecture follows, layer for layer, ``build_musicnn`` of the musicnn 0.1.0 package
(``num_filt_frontend=1.6, num_filt_midend=64, num_units_backend=200``), so the weights of its
``MSD_musicnn`` TensorFlow checkpoint load one to one (:func:`load_tf_variables`):

front end (musically motivated, Pons et al. 2017)
    batch-normalised input ``(batch, 187 frames, 96 mel bands)``; two *timbral* convolutions
    spanning 7 frames × 38 and × 67 bands (204 filters each), and three *temporal*
    convolutions spanning 128, 64 and 32 frames × 1 band (51 filters each, TensorFlow "same"
    padding); each is ReLU → batch norm → max over frequency: 561 features per frame.
mid end (dense 1-D CNN)
    three convolutions of 7 frames × all features (64 filters, ReLU, batch norm), the second
    and third residual; front- and mid-end outputs are concatenated: 753 features per frame.
back end
    max and mean over time (753 + 753, interleaved per feature as TensorFlow's concat and
    flatten leave them) → batch norm → dense 200 (ReLU) → batch norm (the *penultimate*
    embedding) → dense 50 → sigmoid (the 50 Last.fm tags of the Million Song Dataset).

Batch norms use TensorFlow's ε = 1e-3. In ``eval()`` mode dropout (0.5 before each dense
layer in the original) is the identity; :class:`MusiCNN` keeps it for fine-tuning.

References
----------
- J. Pons, X. Serra, "musicnn: pre-trained convolutional neural networks for music audio
  tagging", ISMIR late-breaking demo, 2019.
- J. Pons, O. Nieto, M. Prockup, E. Schmidt, A. Ehmann, X. Serra, "End-to-end learning for
  music audio tagging at scale", ISMIR 2018.
- J. Pons, T. Lidy, X. Serra, "Experimenting with musically motivated convolutional neural
  networks", CBMI 2016.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from genrekit.errors import BundleError

__all__ = ["MusiCNN", "load_tf_variables", "N_FRAMES", "N_MELS", "N_TAGS", "EMBEDDING_SIZE", "POOL_SIZE"]

N_FRAMES = 187       # 3 s at 16 kHz, hop 256 (musicnn's librosa.time_to_frames(3) + 1)
N_MELS = 96
N_TAGS = 50
EMBEDDING_SIZE = 200  # the penultimate layer
POOL_SIZE = 753       # features per frame after the mid end (max_pool / mean_pool)
_TF_EPS = 1e-3        # tf.compat.v1.layers.batch_normalization's default epsilon


def _bn(n: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(n, eps=_TF_EPS, momentum=0.01)  # TF momentum 0.99 = torch 0.01


def _same_pad(kernel: int) -> tuple[int, int]:
    """TensorFlow's "same" padding along one axis with stride 1: the extra sample goes last."""
    total = kernel - 1
    return total // 2, total - total // 2


class _FreqMaxConv(nn.Module):
    """Conv over (time, frequency) → ReLU → batch norm → max over frequency: ``(batch, filters, time)``."""

    def __init__(self, filters: int, time: int, freq: int, time_pad: tuple[int, int]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, filters, (time, freq))
        self.bn = nn.BatchNorm2d(filters, eps=_TF_EPS, momentum=0.01)
        self.time_pad = time_pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, 1, time, freq)
        x = F.pad(x, (0, 0, *self.time_pad))
        if self.training:  # batch statistics are taken over every frequency, so pool last
            return self.bn(F.relu(self.conv(x))).amax(dim=3)
        # In inference the batch norm is a per-filter map a·v + b, and it and ReLU are monotone, so
        # the max over frequency can come first: a·relu(max v) + b where a ≥ 0, a·relu(min v) + b where
        # a < 0. Negating those filters makes min v = −max(−v) one max for all. The norm and ReLU
        # then run on (batch, filters, time) instead of on every frequency: the same values up to
        # rounding, and about 12% less of the network's CPU time (bench/bench_speed.py).
        bn = self.bn
        sign = torch.where(bn.weight >= 0, 1.0, -1.0)
        pooled = F.conv2d(x, self.conv.weight * sign[:, None, None, None], self.conv.bias * sign).amax(dim=3)
        return F.batch_norm(F.relu(pooled * sign[:, None]), bn.running_mean, bn.running_var, bn.weight, bn.bias,
                            False, 0.0, bn.eps)


class _MidConv(nn.Module):
    """Conv of 7 frames × all features (zero padding 3 + 3) → ReLU → batch norm."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, 7, padding=3)
        self.bn = _bn(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, features, time)
        return self.bn(F.relu(self.conv(x)))


class MusiCNN(nn.Module):
    """The musicnn tagging network (MSD_musicnn sizes by default).

    Parameters
    ----------
    n_tags : int
        Outputs of the last layer (50 for MSD_musicnn; a new head for fine-tuning).
    frontend_filters : float
        musicnn's ``num_filt_frontend`` (timbral filters = int(1.6 × 128), temporal int(1.6 × 32)).
    midend_filters : int
    backend_units : int
        Size of the penultimate embedding.
    n_mels : int
    dropout : float
        Dropout before each dense layer while training (0.5 in the original).

    ``forward(x)`` takes log-compressed mel patches ``(batch, time, n_mels)`` (musicnn's layout;
    ``(batch, 1, n_mels, time)`` as genrekit's other CNNs take is accepted too) and returns
    the logits ``(batch, n_tags)``; :meth:`features` returns every named output.
    """

    def __init__(self, n_tags: int = N_TAGS, *, frontend_filters: float = 1.6, midend_filters: int = 64,
                 backend_units: int = EMBEDDING_SIZE, n_mels: int = N_MELS, dropout: float = 0.5) -> None:
        super().__init__()
        timbral, temporal = int(frontend_filters * 128), int(frontend_filters * 32)
        self.input_bn = nn.BatchNorm2d(1, eps=_TF_EPS, momentum=0.01)
        self.timbral = nn.ModuleList([
            _FreqMaxConv(timbral, 7, int(0.4 * n_mels), (3, 3)),
            _FreqMaxConv(timbral, 7, int(0.7 * n_mels), (3, 3)),
        ])
        self.temporal = nn.ModuleList([_FreqMaxConv(temporal, k, 1, _same_pad(k)) for k in (128, 64, 32)])
        front = 2 * timbral + 3 * temporal
        self.midend = nn.ModuleList([
            _MidConv(front, midend_filters), _MidConv(midend_filters, midend_filters),
            _MidConv(midend_filters, midend_filters),
        ])
        self.pool_size = front + 3 * midend_filters
        self.pool_bn = _bn(2 * self.pool_size)
        self.dense = nn.Linear(2 * self.pool_size, backend_units)
        self.dense_bn = _bn(backend_units)
        self.output = nn.Linear(backend_units, n_tags)
        self.dropout = nn.Dropout(dropout)

    @staticmethod
    def _as_time_freq(x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:  # (batch, 1, n_mels, time) → (batch, time, n_mels)
            x = x[:, 0].transpose(1, 2)
        return x

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named outputs: ``logits``, ``tags`` (sigmoid), ``penultimate`` (200), ``max_pool`` and
        ``mean_pool`` (753 each), as musicnn's extractor names them."""
        x = self._as_time_freq(x).unsqueeze(1)           # (batch, 1, time, freq): TF's NHWC as NCHW
        x = self.input_bn(x)
        front = torch.cat([block(x) for block in (*self.timbral, *self.temporal)], dim=1)  # (b, 561, t)
        m1 = self.midend[0](front)
        m2 = self.midend[1](m1) + m1
        m3 = self.midend[2](m2) + m2
        stack = torch.cat([front, m1, m2, m3], dim=1)    # (b, 753, t)
        max_pool = stack.amax(dim=2)
        mean_pool = stack.mean(dim=2)
        # TF concatenates [max, mean] on a trailing axis and flattens: features interleave.
        pooled = torch.stack([max_pool, mean_pool], dim=2).flatten(1)
        hidden = self.dense_bn(F.relu(self.dense(self.dropout(self.pool_bn(pooled)))))
        logits = self.output(self.dropout(hidden))
        return {"logits": logits, "tags": torch.sigmoid(logits), "penultimate": hidden,
                "max_pool": max_pool, "mean_pool": mean_pool}

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate embedding ``(batch, backend_units)``."""
        return self.features(x)["penultimate"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)["logits"]

    def replace_head(self, n_classes: int) -> None:
        """A new, freshly initialised output layer of ``n_classes`` (for fine-tuning)."""
        self.output = nn.Linear(self.output.in_features, n_classes)


# --- weights from musicnn's TensorFlow checkpoint ------------------------------------------------
def _tf_conv2d(conv: nn.Conv2d, kernel: np.ndarray, bias: np.ndarray) -> None:
    # TF [kh, kw, in, out] → torch [out, in, kh, kw]
    conv.weight.data = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
    conv.bias.data = torch.from_numpy(bias.copy())


def _tf_midconv(conv: nn.Conv1d, kernel: np.ndarray, bias: np.ndarray) -> None:
    # TF [7, features, 1, out] (a 2-D conv spanning all features) → torch Conv1d [out, features, 7]
    conv.weight.data = torch.from_numpy(np.ascontiguousarray(kernel[:, :, 0, :].transpose(2, 1, 0)))
    conv.bias.data = torch.from_numpy(bias.copy())


def _tf_bn(bn: nn.modules.batchnorm._BatchNorm, variables: dict, name: str) -> None:
    bn.weight.data = torch.from_numpy(variables[f"{name}/gamma"].copy())
    bn.bias.data = torch.from_numpy(variables[f"{name}/beta"].copy())
    bn.running_mean.data = torch.from_numpy(variables[f"{name}/moving_mean"].copy())
    bn.running_var.data = torch.from_numpy(variables[f"{name}/moving_variance"].copy())


def _tf_dense(layer: nn.Linear, kernel: np.ndarray, bias: np.ndarray) -> None:
    layer.weight.data = torch.from_numpy(np.ascontiguousarray(kernel.T))
    layer.bias.data = torch.from_numpy(bias.copy())


def load_tf_variables(model: MusiCNN, variables: dict[str, np.ndarray]) -> MusiCNN:
    """Copy the variables of musicnn's checkpoint (``name → array``, as
    ``tf.train.load_checkpoint(...).get_tensor`` gives them) into ``model``.

    TensorFlow named the layers in the order ``build_musicnn`` creates them:
    ``batch_normalization`` (input), then ``conv2d``/``batch_normalization_1`` (timbral 38),
    ``conv2d_1``/``_2`` (timbral 67), ``conv2d_2..4``/``_3..5`` (temporal 128, 64, 32),
    ``conv2d_5..7``/``_6..8`` (mid end), ``batch_normalization_9`` (pooled), ``dense``,
    ``batch_normalization_10`` (penultimate), ``dense_1`` (tags).
    """
    v = {k: np.asarray(a, dtype=np.float32) for k, a in variables.items()}

    def conv(i: int) -> tuple[np.ndarray, np.ndarray]:
        name = "conv2d" if i == 0 else f"conv2d_{i}"
        return v[f"{name}/kernel"], v[f"{name}/bias"]

    def bn_name(i: int) -> str:
        return "batch_normalization" if i == 0 else f"batch_normalization_{i}"

    _tf_bn(model.input_bn, v, bn_name(0))
    for i, block in enumerate((*model.timbral, *model.temporal)):
        _tf_conv2d(block.conv, *conv(i))
        _tf_bn(block.bn, v, bn_name(i + 1))
    for i, block in enumerate(model.midend):
        _tf_midconv(block.conv, *conv(5 + i))
        _tf_bn(block.bn, v, bn_name(6 + i))
    _tf_bn(model.pool_bn, v, bn_name(9))
    _tf_dense(model.dense, v["dense/kernel"], v["dense/bias"])
    _tf_bn(model.dense_bn, v, bn_name(10))
    _tf_dense(model.output, v["dense_1/kernel"], v["dense_1/bias"])
    return model


# --- weights from genrekit's shipped ONNX graph (no TensorFlow needed) -----------------------------
def pretrained(onnx_path=None) -> MusiCNN:
    """MSD-musicnn with the weights genrekit ships (:mod:`genrekit.backbones.msd_musicnn`), in eval mode.

    The ONNX graph written by ``scripts/convert_musicnn.py`` keeps every parameter and
    batch-norm statistic under its module name (``net.<name>``), so the state dict is read
    back from its initializers: fine-tuning needs PyTorch and the package, not TensorFlow.
    """
    import onnx
    from onnx import numpy_helper

    from genrekit.backbones.msd_musicnn import FOLDER, ONNX_FILE

    graph = onnx.load_model_from_string(open(onnx_path or FOLDER / ONNX_FILE, "rb").read()).graph
    state = {i.name.removeprefix("net."): torch.from_numpy(numpy_helper.to_array(i).copy())
             for i in graph.initializer if i.name.startswith("net.")}
    model = MusiCNN()
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise BundleError(onnx_path or ONNX_FILE, f"not a musicnn graph (no {', '.join(missing[:3])})")
    own.update({k: v for k, v in state.items() if k in own})
    model.load_state_dict(own)
    return model.eval()
