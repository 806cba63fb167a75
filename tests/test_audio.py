"""Decoding real files: formats, mixdown, resampling, bad input, memory."""

import os
import sys
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from genrekit.audio.decode import SilentAudioWarning, load
from genrekit.errors import AudioError
from genrekit.audio.info import AudioInfo, info

SR_IN = 44100


def sine(seconds, sr, freq=440.0, amp=0.5):
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(y, sr):
    """Frequency of the largest spectral peak, in Hz."""
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return np.argmax(spectrum) * sr / len(y)


def write_m4a(path, x, sr):
    """AAC in an MP4 container, through PyAV's encoder."""
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=sr, layout="stereo")
        for i in range(0, len(x), 1024):
            frame = av.AudioFrame.from_ndarray(
                np.stack([x[i : i + 1024]] * 2), format="fltp", layout="stereo"
            )
            frame.sample_rate = sr
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def expect_error(path, *words, **kwargs):
    """load(path) raises an AudioError naming the file and saying ``words``."""
    with pytest.raises(AudioError) as caught:
        load(path, **kwargs)
    err = caught.value
    assert err.path == str(path)
    assert str(err) == f"{path}: {err.problem}"
    for word in words:
        assert word in err.problem
    return err


@pytest.fixture(scope="module")
def librosa():
    """The reference decoder, imported once (its lazy import takes a second)."""
    module = pytest.importorskip("librosa")
    module.load, module.resample  # noqa: B018 -- trigger the lazy submodule imports
    return module


@pytest.fixture
def stereo_wav(tmp_path):
    path = tmp_path / "sine.wav"
    x = sine(2.0, SR_IN)
    sf.write(path, np.c_[x, x], SR_IN, subtype="PCM_16")
    return path


# --- good input ---------------------------------------------------------------


def test_stereo_44k_comes_back_mono_22k_with_the_sine(stereo_wav):
    y = load(stereo_wav, sr=22050)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 2.0 * 22050) <= 2
    assert abs(peak_hz(y, 22050) - 440) < 1
    assert abs(np.abs(y).max() - 0.5) < 0.01


def test_resampling_matches_librosa(stereo_wav, librosa):
    ref, _ = librosa.load(stereo_wav, sr=22050)
    y = load(stereo_wav, sr=22050)
    assert y.shape == ref.shape
    assert np.abs(y - ref).max() < 1e-4


def test_native_rate_mono_is_the_plain_float32_read(tmp_path):
    path = tmp_path / "mono.wav"
    sf.write(path, sine(3.5, 22050), 22050, subtype="PCM_16")  # longer than one block
    ref, _ = sf.read(path, dtype="float32")
    assert np.array_equal(load(path, sr=22050), ref)


def test_mixdown_averages_channels(tmp_path):
    path = tmp_path / "lr.wav"
    a, b = sine(1.0, 22050, 440), sine(1.0, 22050, 1000, amp=0.25)
    sf.write(path, np.c_[b + a, b - a], 22050, subtype="FLOAT")
    assert np.abs(load(path, sr=22050) - b).max() < 1e-6  # the 440 Hz part cancels


@pytest.mark.parametrize(
    "name, subtype",
    [("pcm16.wav", "PCM_16"), ("float.wav", "FLOAT"), ("x.flac", "PCM_16"),
     ("x.aiff", "PCM_16"), ("x.au", "PCM_16")],
)
def test_lossless_round_trip(tmp_path, name, subtype):
    x = sine(1.0, 22050)
    sf.write(tmp_path / name, x, 22050, subtype=subtype)
    assert np.abs(load(tmp_path / name, sr=22050) - x).max() < 1e-4


def _write_lossy(path, sr):
    x = sine(2.0, sr)
    if path.suffix == ".m4a":
        return write_m4a(path, x, sr)
    fmt = {".mp3": ("MP3", None), ".ogg": ("OGG", "VORBIS"), ".opus": ("OGG", "OPUS")}
    sf.write(path, np.c_[x, x], sr, format=fmt[path.suffix][0], subtype=fmt[path.suffix][1])
    return path


@pytest.mark.parametrize("name, sr", [("x.mp3", SR_IN), ("x.ogg", SR_IN), ("x.opus", 48000), ("x.m4a", SR_IN)])
def test_lossy_keeps_duration_and_pitch(tmp_path, name, sr):
    path = _write_lossy(tmp_path / name, sr)
    y = load(path, sr=22050)
    assert abs(len(y) / 22050 - 2.0) < 0.1
    assert abs(peak_hz(y, 22050) - 440) < 1


def test_vbr_mp3_read_in_blocks_equals_whole_file_read(tmp_path):
    # soundfile's read() seeks after each block; in VBR MP3s that seek silences
    # samples at block boundaries. load must not inherit that.
    path = tmp_path / "vbr.mp3"
    x = sine(4.0, SR_IN)
    sf.write(path, np.c_[x, x], SR_IN, format="MP3", bitrate_mode="VARIABLE")
    whole, _ = sf.read(path, dtype="float32")
    assert np.array_equal(load(path, sr=SR_IN), whole.mean(axis=1))


def test_info_reads_the_header(stereo_wav, tmp_path):
    assert info(stereo_wav) == AudioInfo(str(stereo_wav), SR_IN, 2, 2 * SR_IN, 2.0, "WAV PCM_16")
    m4a = info(write_m4a(tmp_path / "x.m4a", sine(2.0, SR_IN), SR_IN))
    assert (m4a.samplerate, m4a.channels) == (SR_IN, 2)
    assert abs(m4a.duration - 2.0) < 0.1 and "aac" in m4a.format


def test_gtzan_clip_equals_librosa_native_read(shared_data, librosa):
    path = sorted((shared_data / "gtzan" / "genres").glob("*/*.wav"))[0]
    ref, ref_sr = librosa.load(path, sr=None)
    assert ref_sr == 22050
    assert np.array_equal(load(path, sr=22050), ref)


# --- bad input ----------------------------------------------------------------


def test_missing_file(tmp_path):
    expect_error(tmp_path / "nope.wav", "file not found")
    with pytest.raises(AudioError, match="file not found"):
        info(tmp_path / "nope.wav")


def test_directory(tmp_path):
    expect_error(tmp_path, "directory")


def test_empty_file(tmp_path):
    (tmp_path / "empty.mp3").write_bytes(b"")
    expect_error(tmp_path / "empty.mp3", "empty file (0 bytes)")


@pytest.mark.parametrize("name", ["notes.mp3", "notes.wav"])
def test_text_file_is_not_audio(tmp_path, name):
    (tmp_path / name).write_text("these are my notes, not a song\n" * 50)
    err = expect_error(tmp_path / name, "not an audio file")
    assert "(" in err.problem  # carries the decoder's reason


def test_truncated_wav(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, np.zeros((22050, 2), np.float32) + 0.1, 22050, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: 44 + 4 * 1000])  # 44-byte header, 4-byte frames
    expect_error(path, "truncated", "declares 22050 frames", "holds 1000")


def test_no_samples(tmp_path):
    sf.write(tmp_path / "none.wav", np.zeros(0, np.float32), 22050)
    expect_error(tmp_path / "none.wav", "0 samples")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_samples(tmp_path, bad):
    x = sine(0.5, 22050)
    x[100] = bad
    sf.write(tmp_path / "bad.wav", x, 22050, subtype="FLOAT")
    expect_error(tmp_path / "bad.wav", "NaN or infinite")


def test_too_short(tmp_path):
    sf.write(tmp_path / "blip.wav", sine(0.05, SR_IN), SR_IN)  # 0.05 s -> 1103 samples at 22050
    n = 1103
    expect_error(tmp_path / "blip.wav", "too short", f"{n / 22050:.3f} s", f"{2048 / 22050:.3f} s",
                 min_samples=2048)
    assert len(load(tmp_path / "blip.wav", min_samples=n)) == n  # exactly enough is fine


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    path = tmp_path / "locked.wav"
    sf.write(path, sine(0.5, 22050), 22050)
    path.chmod(0)
    expect_error(path, "permission denied")


def test_m4a_without_pyav_says_how_to_install(tmp_path, monkeypatch):
    path = write_m4a(tmp_path / "x.m4a", sine(1.0, SR_IN), SR_IN)
    monkeypatch.setitem(sys.modules, "av", None)  # as if the extra were not installed
    expect_error(path, 'pip install "genrekit[av]"')


@pytest.mark.parametrize("level", [0.0, 1e-7])
def test_silence_warns_and_returns_the_signal(tmp_path, level):
    path = tmp_path / "quiet.wav"
    sf.write(path, np.full(22050, level, np.float32), 22050, subtype="FLOAT")
    with pytest.warns(SilentAudioWarning, match="quiet.wav.*silent"):
        y = load(path)
    assert len(y) == 22050 and np.abs(y).max() < 1e-6


# --- memory -------------------------------------------------------------------


@pytest.mark.slow
def test_hour_long_files_need_no_more_than_their_output(tmp_path):
    path = tmp_path / "long.wav"
    minutes, chunk = 10, 10 * SR_IN
    with sf.SoundFile(path, "w", SR_IN, 2, subtype="PCM_16") as f:
        x = (sine(10.0, SR_IN) * 32767).astype(np.int16)
        for _ in range(minutes * 60 * SR_IN // chunk):
            f.write(np.c_[x, x])
    tracemalloc.start()
    try:
        y = load(path, sr=22050)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert abs(len(y) - minutes * 60 * 22050) <= 2
    assert peak < 1.3 * y.nbytes + 16 * 2**20, f"peak {peak / 2**20:.1f} MiB for {y.nbytes / 2**20:.1f} MiB"


def test_rate_must_be_a_positive_integer(stereo_wav):
    with pytest.raises(ValueError, match="positive integer"):
        load(stereo_wav, sr=0)
