"""Block-wise analysis: the same numbers as whole-song analysis, in memory that does not grow with the song."""

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from genrekit.audio import decode as audio
from genrekit.audio.decode import Decoder
from genrekit.errors import AudioError, TooLongError
from genrekit.audio.windows import overlapping_blocks
from genrekit.features.extract import compute_file
from genrekit.features.sets import feature_set
from genrekit.models.registry import load_model

SR = 22050


def music_like(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Tones that glide, with noise bursts on a beat: every feature has something to measure."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    tone = 0.2 * np.sin(2 * np.pi * 220 * t * (1 + 0.05 * np.sin(0.3 * t)))
    bursts = 0.1 * rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 2 * t) > 0.7)
    return (tone + bursts).astype(np.float32)


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """200.3 s at 44.1 kHz stereo: resampled, many windows, and a tail that is not a whole window."""
    path = tmp_path_factory.mktemp("blockwise") / "song.flac"
    y = music_like(200.3, 44100)
    sf.write(path, np.c_[y, 0.5 * y], 44100, subtype="PCM_24")
    return path


@pytest.mark.parametrize("name, params", [("logmel", {}), ("mfcc", {}), ("gtzan57", {"window": 30.0}),
                                          ("gtzan57", {"window": 3.0}), ("logmel", {"sample_rate": 16000})])
def test_features_blockwise_equal_the_whole_song(song, name, params):
    fs = feature_set(name, **params)
    whole = fs.compute(audio.load(song, sr=fs.sample_rate))
    blockwise, n = compute_file(song, fs)
    assert n == len(audio.load(song, sr=fs.sample_rate))
    assert blockwise.shape == whole.shape
    if name == "gtzan57":
        np.testing.assert_allclose(blockwise, whole, rtol=1e-5, atol=1e-7)
    else:  # the tolerance test_features.py holds the log-mel to against librosa
        assert np.abs(blockwise - whole).max() < 1e-3


@pytest.mark.parametrize("model", ["musicnn", "gtzan57"])
def test_classify_blockwise_equals_the_whole_song(song, model):
    clf = load_model(model)
    whole = clf.classify_signal(audio.load(song, sr=clf.sample_rate), timeline=True)
    streamed = clf.classify_file(song, timeline=True)
    assert streamed.windows == whole.windows and len(streamed.timeline) == len(whole.timeline) > 10
    assert [(w["start"], w["end"]) for w in streamed.timeline] == [(w["start"], w["end"]) for w in whole.timeline]
    for a, b in zip(streamed.timeline, whole.timeline):
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-5)
    assert streamed.label == whole.label and streamed.duration == whole.duration


def test_decoder_blocks_are_the_loaded_signal(song):
    blocks = list(Decoder(song, SR))
    assert len(blocks) > 10
    assert np.array_equal(np.concatenate(blocks), audio.load(song, sr=SR))


def test_overlapping_blocks_regroup_a_stream():
    x = np.arange(1000, dtype=np.float32)
    chunks = [x[i : i + 37] for i in range(0, 1000, 37)]
    got = list(overlapping_blocks(chunks, 300, 100))
    assert [s for s, _ in got] == [0, 200, 400, 600, 800]
    for start, block in got:
        assert np.array_equal(block, x[start : start + 300])
    assert len(got[-1][1]) == 200  # the rest
    with pytest.raises(ValueError):
        list(overlapping_blocks(chunks, 10, 10))


def test_a_flac_header_claiming_2_to_the_36_samples_is_not_allocated(tmp_path):
    # Was: "Unable to allocate 256 GiB" (the output was preallocated from the header).
    path = tmp_path / "liar.flac"
    sf.write(path, music_like(2.0), SR, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    assert data[:4] == b"fLaC"
    (packed,) = struct.unpack(">Q", data[18:26])
    packed |= (1 << 36) - 1  # the 36-bit total-samples field, all ones
    data[18:26] = struct.pack(">Q", packed)
    path.write_bytes(bytes(data))
    with pytest.raises(AudioError, match="truncated: header declares 68719476735 frames"):
        audio.load(path)
    with pytest.raises(TooLongError, match="its header declares"):
        audio.load(path, max_duration=60)


def test_max_duration_refuses_a_long_file_before_decoding_it(tmp_path):
    path = quiet_flac(tmp_path / "six.flac", 6)
    with pytest.raises(TooLongError, match="its header declares 6.0 min; the limit is 5 min"):
        Decoder(path, SR, max_duration=300.0)
    assert len(audio.load(path, max_duration=360.0)) == 6 * 60 * SR


def test_absurd_sample_values_are_one_clear_error(tmp_path):
    # Was: an internal ValueError plus 25 numpy overflow warnings.
    path = tmp_path / "loud.wav"
    x = music_like(1.0)
    x[1000:2000] = 1e30
    sf.write(path, x, SR, subtype="FLOAT")
    with _no_numpy_warnings():
        with pytest.raises(AudioError, match="out of range.*peak 1e\\+30"):
            compute_file(path, feature_set("gtzan57"))


class _no_numpy_warnings:
    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings(record=True)
        self.caught = self._ctx.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)
        assert not [w for w in self.caught if issubclass(w.category, RuntimeWarning)]
        return False


def test_decoder_chatter_is_a_warning_naming_the_file(tmp_path):
    # libmpg123 writes "Xing stream size off" to the C-level stderr of a cut MP3.
    path = tmp_path / "cut.mp3"
    sf.write(path, np.c_[music_like(20.0)], SR, format="MP3")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    code = ("import warnings, genrekit.audio.decode as a\n"
            "warnings.simplefilter('always')\n"
            f"try:\n    a.load({str(path)!r})\nexcept a.AudioError as e:\n    print('error:', e)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "error:" in run.stdout and "truncated" in run.stdout
    assert "Xing" in run.stderr  # reported as a warning...
    for line in run.stderr.splitlines():
        if "Xing" in line:
            assert str(path) in line  # ...that names the file, never raw


# --- memory -------------------------------------------------------------------------------------
_RSS = """
import sys, json
from genrekit.features.extract import compute_file
from genrekit.features.sets import feature_set
from genrekit.models.registry import load_model
what, path = sys.argv[1], sys.argv[2]
if what == "classify":
    load_model().classify_file(path, timeline=True)
else:
    compute_file(path, feature_set(what))
# VmHWM, not ru_maxrss: the latter keeps the RSS of the (large) parent that forked us.
print(json.dumps(next(int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('VmHWM:'))))
"""


def peak_rss(what: str, path) -> int:
    """Peak resident memory (bytes) of a fresh process doing ``what`` to ``path``."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-c", _RSS, what, str(path)], capture_output=True, text=True,
                         timeout=900, env=env)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.splitlines()[-1])


def quiet_flac(path, minutes: float):
    """A FLAC of near-silence (a faint tone: not silent, so every feature runs), written in 1-minute blocks."""
    t = np.arange(60 * SR) / SR
    minute = (1e-3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as f:
        for _ in range(int(minutes)):
            f.write(minute)
    return path


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads VmHWM from /proc")
def test_memory_does_not_grow_with_the_song(tmp_path):
    # Was: about 110 MB more per minute of audio (a 10-minute song: over 1.1 GB).
    short = quiet_flac(tmp_path / "two.flac", 2)
    long = quiet_flac(tmp_path / "ten.flac", 10)
    for what in ("classify", "logmel"):
        small, big = peak_rss(what, short), peak_rss(what, long)
        assert big < 700 * 2**20, f"{what}: {big / 2**20:.0f} MiB for 10 minutes"
        assert big - small < 120 * 2**20, f"{what}: {small / 2**20:.0f} -> {big / 2**20:.0f} MiB from 2 to 10 min"
