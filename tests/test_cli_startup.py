"""The command line stays light: building the parser imports neither PyTorch nor scikit-learn."""

import subprocess
import sys


def test_parser_builds_without_heavy_imports():
    code = ("import sys; from genrekit.cli import build_parser; build_parser(); "
            "print(' '.join(m for m in ('torch', 'sklearn', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_cnn_option_names_match_the_architectures():
    from genrekit.models import cnn
    from genrekit.training.cnn.options import ARCH_NAMES, DEFAULT_ARCH

    assert set(ARCH_NAMES) == set(cnn.ARCHITECTURES)
    assert DEFAULT_ARCH == cnn.DEFAULT_ARCH == ARCH_NAMES[0]
