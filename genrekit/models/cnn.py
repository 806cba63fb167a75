"""Convolutional networks over log-mel patches: the architectures ``genrekit train --model cnn`` offers.

Every network takes a batch of log-mel patches shaped ``(batch, 1, n_mels, frames)``
in dB (:func:`genrekit.features.sets.feature_set` ``("logmel")``) and returns
unnormalised class scores (logits) shaped ``(batch, n_classes)``; the exported ONNX
graph adds the softmax (see :func:`with_softmax`).

- The input is normalised inside the network by a ``BatchNorm2d(1)`` layer, as in
  Won et al. (2020): the dB scale needs no statistics stored beside the weights, and
  the exported graph is self-contained.
- Each network ends in a global pooling, so it accepts any frame count from a few
  tens of frames up (the pooling layers before it need at least 8 frames).

=============  ====================================================================
``shortres``   short-chunk residual CNN (Won et al. 2020), the default
``choi``       3 conv + 2 fully-connected layers with batch normalisation (after
               Choi, Fazekas & Sandler 2016)
``seed6``      6 plain 3×3 convolutions, 30 % dropout
``seed3``      3 convolutions with max pooling and one fully-connected layer
``musicnn``    MSD-musicnn (Pons & Serra 2019, :mod:`genrekit.models.musicnn_architecture`) on its
               own front end (``musicnn_frontend``, 96 bands, 187-frame patches); trained
               from scratch, or fine-tuned from the shipped weights
               (``genrekit train --model cnn --arch musicnn --pretrained``)
=============  ====================================================================

References
----------
- K. Choi, G. Fazekas, M. Sandler, "Automatic tagging using deep convolutional neural
  networks", ISMIR 2016.
- M. Won, A. Ferraro, D. Bogdanov, X. Serra, "Evaluation of CNN-based automatic music
  tagging models", SMC 2020 (``ShortChunkCNN_Res`` in their sota-music-tagging-models).
- K. He, X. Zhang, S. Ren, J. Sun, "Deep residual learning for image recognition",
  CVPR 2016.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from genrekit.errors import ParameterError

__all__ = ["ARCHITECTURES", "DEFAULT_ARCH", "build", "n_parameters", "with_softmax"]

DEFAULT_ARCH = "shortres"


def _conv_relu(c_in: int, c_out: int, *, bn: bool = False) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU(inplace=True))
    return layers


class Seed3(nn.Module):
    """Three 3×3 convolutions, each followed by 2×2 max pooling, then one linear layer.

    Parameters
    ----------
    n_classes : int
    n_mels : int
        Mel bands of the input (unused by the layers; kept for a uniform signature).
    width : int
        Channels of the first convolution; doubled at each later one.
    """

    def __init__(self, n_classes: int, n_mels: int = 128, *, width: int = 16) -> None:
        super().__init__()
        c = (width, 2 * width, 4 * width)
        self.input_bn = nn.BatchNorm2d(1)
        self.features = nn.Sequential(
            *_conv_relu(1, c[0]), nn.MaxPool2d(2),
            *_conv_relu(c[0], c[1]), nn.MaxPool2d(2),
            *_conv_relu(c[1], c[2]), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.classifier = nn.Linear(c[2], n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.input_bn(x)))


class Seed6(nn.Module):
    """Six 3×3 convolutions in three pairs, 2×2 max pooling and 30 % dropout after each pair.

    Parameters
    ----------
    n_classes : int
    n_mels : int
        Unused; kept for a uniform signature.
    width : int
        Channels of the first pair; doubled for each later pair.
    dropout : float
        Dropout probability after each pooling and before the linear layer.
    """

    def __init__(self, n_classes: int, n_mels: int = 128, *, width: int = 16, dropout: float = 0.3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for k in range(3):
            c_out = width * 2**k
            layers += [*_conv_relu(c_in, c_out), *_conv_relu(c_out, c_out), nn.MaxPool2d(2), nn.Dropout(dropout)]
            c_in = c_out
        self.input_bn = nn.BatchNorm2d(1)
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(c_in, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.input_bn(x)))


class Choi(nn.Module):
    """Three conv/BN/ReLU/max-pool blocks and two fully-connected layers (after Choi et al. 2016).

    Choi et al.'s networks are 3×3 convolutions with batch normalisation and
    non-square max pooling that shrinks time faster than frequency; here three such
    blocks, a global max pool (so any window length works) and a two-layer
    classifier with batch normalisation and 50 % dropout.

    Parameters
    ----------
    n_classes : int
    n_mels : int
        Unused; kept for a uniform signature.
    width : int
        Channels of the first block; doubled at each later one.
    hidden : int
        Units of the first fully-connected layer.
    dropout : float
    """

    def __init__(
        self, n_classes: int, n_mels: int = 128, *, width: int = 32, hidden: int = 64, dropout: float = 0.5
    ) -> None:
        super().__init__()
        c = (width, 2 * width, 4 * width)
        self.input_bn = nn.BatchNorm2d(1)
        self.features = nn.Sequential(
            *_conv_relu(1, c[0], bn=True), nn.MaxPool2d((2, 4)),
            *_conv_relu(c[0], c[1], bn=True), nn.MaxPool2d((4, 4)),
            *_conv_relu(c[1], c[2], bn=True),
            nn.AdaptiveMaxPool2d(1), nn.Flatten(),
        )
        self.classifier = nn.Sequential(
            nn.Linear(c[2], hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(hidden, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.input_bn(x)))


class _Res2d(nn.Module):
    """Won et al.'s ``Res_2d``: two 3×3 conv/BN layers, the first with stride 2, plus a shortcut.

    The shortcut is a strided 3×3 conv/BN (as in their code) whenever the shape changes.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 2) -> None:
        super().__init__()
        self.conv_1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn_1 = nn.BatchNorm2d(c_out)
        self.conv_2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn_2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn_2(self.conv_2(self.relu(self.bn_1(self.conv_1(x)))))
        return self.relu(out + self.shortcut(x))


class ShortRes(nn.Module):
    """Short-chunk residual CNN (Won et al. 2020, ``ShortChunkCNN_Res``).

    Seven residual blocks, each halving frequency and time (the 2×2 down-sampling is
    the first convolution's stride, as in the authors' code), channel counts
    ``w, w, 2w, 2w, 2w, 2w, 4w``; a global max pool over what remains of frequency
    and time; then linear → BN → ReLU → dropout → linear. With 128 mel bands the
    blocks bring frequency down to 1, as in the paper.

    The paper uses ``w = 128`` on 3.7-s chunks and a GPU; the default here is
    ``w = 32`` (about 16× fewer multiply-adds, 0.7 M parameters) so that training
    GTZAN-size data on a laptop CPU takes minutes, not hours.

    Parameters
    ----------
    n_classes : int
    n_mels : int
        Unused; kept for a uniform signature.
    width : int
        Channels ``w`` of the first blocks.
    n_blocks : int
        Residual blocks (7 in the paper).
    dropout : float
    """

    def __init__(
        self, n_classes: int, n_mels: int = 128, *, width: int = 32, n_blocks: int = 7, dropout: float = 0.5
    ) -> None:
        super().__init__()
        plan = [1, 1, 2, 2, 2, 2, 4] + [4] * max(0, n_blocks - 7)
        channels = [width * m for m in plan[:n_blocks]]
        self.input_bn = nn.BatchNorm2d(1)
        blocks, c_in = [], 1
        for c_out in channels:
            blocks.append(_Res2d(c_in, c_out))
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.classifier = nn.Sequential(
            nn.Linear(c_in, c_in, bias=False), nn.BatchNorm1d(c_in), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(c_in, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.blocks(self.input_bn(x))))


def _musicnn(n_classes: int, n_mels: int = 96, **options) -> nn.Module:
    """MSD-musicnn's architecture with ``n_classes`` outputs, freshly initialised.

    Its batch norms get torch's usual momentum 0.1 instead of the pretrained network's
    TensorFlow 0.01: on a few hundred steps of small data the running statistics would
    otherwise stay near their initial values and evaluation would see the wrong scale.
    """
    from genrekit.models.musicnn_architecture import MusiCNN

    model = MusiCNN(n_classes, n_mels=n_mels, **options)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = 0.1
    return model


#: Architecture name → class; keyword options of each class are its ``width`` etc.
ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "shortres": ShortRes,
    "choi": Choi,
    "seed6": Seed6,
    "seed3": Seed3,
    "musicnn": _musicnn,
}
#: Architectures that take one fixed input (feature set name), whatever ``--input`` says.
FIXED_INPUT = {"musicnn": "musicnn_frontend"}


def build(arch: str, n_classes: int, n_mels: int = 128, **options) -> nn.Module:
    """A freshly initialised network.

    Parameters
    ----------
    arch : str
        A key of :data:`ARCHITECTURES`.
    n_classes : int
        Output classes (at least 2).
    n_mels : int
        Mel bands of the input patches.
    **options
        Architecture options (``width``, ``dropout``, ...; see each class).

    Returns
    -------
    torch.nn.Module
        Maps ``(batch, 1, n_mels, frames)`` float32 dB patches to ``(batch, n_classes)`` logits.
        Initialisation draws from torch's global generator: seed it first
        (``torch.manual_seed``) for reproducible weights.
    """
    if arch not in ARCHITECTURES:
        raise ParameterError(f"unknown architecture {arch!r}; expected one of {', '.join(ARCHITECTURES)}")
    if n_classes < 2:
        raise ParameterError(f"a classifier needs at least 2 classes, got {n_classes}")
    return ARCHITECTURES[arch](n_classes, n_mels, **options)


def n_parameters(model: nn.Module) -> int:
    """Trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class _Softmax(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(logmel), dim=1)


def with_softmax(model: nn.Module) -> nn.Module:
    """``model`` followed by a softmax over classes: what the ONNX bundle computes."""
    return _Softmax(model)
