"""The default model's dense timeline and its single-threaded onnxruntime sessions.

With a timeline, every frame of the song lies in some 3-s patch, the timeline's windows are
at most 10 s long and start at most 5 s apart, for any length, and memory does not grow with
the song beyond the per-patch outputs (1 kB a patch). Without one, the song's label comes
from the bundle's patch plan (patches end to end, at most 32 a song).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from genrekit.audio.windows import MIN_WINDOW_SHIFT
from genrekit.backbones import msd_musicnn as m
from genrekit.models.backbone_head import TIMELINE_HOP, TIMELINE_WINDOW
from genrekit.models.registry import load_model
from genrekit.onnx_sessions import NO_SPINNING

from synthetic_songs import SR, synth, write_song


def covered(starts_s: np.ndarray, n_samples: int) -> bool:
    """Whether patches starting at ``starts_s`` (seconds) hold every STFT frame of the signal."""
    total = m.n_frames(n_samples)
    frames = np.zeros(total, bool)
    for s in np.round(starts_s * m.SAMPLE_RATE / m.HOP_LENGTH).astype(int):
        frames[s:s + m.PATCH_FRAMES] = True
    return bool(frames.all())


def check_windows(timeline: list[dict], duration: float) -> None:
    assert timeline[0]["start"] == 0.0
    assert timeline[-1]["end"] == pytest.approx(duration, abs=1e-3)
    for w in timeline:
        assert w["end"] - w["start"] <= TIMELINE_WINDOW + 1e-3
    starts = [w["start"] for w in timeline]
    # the last window may sit up to a second further, to end at the end (MIN_WINDOW_SHIFT)
    assert all(0 < b - a <= TIMELINE_HOP + MIN_WINDOW_SHIFT for a, b in zip(starts, starts[1:])), starts
    ends = [w["end"] for w in timeline]
    assert all(b["start"] <= a for a, b in zip(ends, timeline[1:]))  # no gap between windows


def dense_taggram(model, y: np.ndarray, block: int = 40_000):
    stream = model.stream(expected_samples=len(y), timeline=True)
    for i in range(0, len(y), block):
        stream.feed(y[i:i + block])
    return stream.finish()


@pytest.mark.parametrize("seconds", [7.3, 240.0])
def test_the_timeline_covers_every_second_with_short_windows(tmp_path, seconds):
    model = load_model()
    song = write_song(tmp_path / "song.flac", "classical", seconds)
    p = model.classify_file(song, timeline=True)
    check_windows(p.timeline, p.duration)
    if seconds > TIMELINE_WINDOW:  # a shorter song is one window
        assert len(p.timeline) >= int(seconds // TIMELINE_HOP) - 1
    y = model.at_model_rate(synth("classical", seconds), SR)
    tg = dense_taggram(model, y)
    assert covered(tg.starts, len(y))


@pytest.mark.parametrize("suffix", [".flac", ".mp3"])
def test_a_clip_a_few_ms_past_30_s_has_no_sliver_window(tmp_path, suffix):
    # A 30.013-s clip had windows at 20.0-30.0 and 20.013-30.013 (an MP3 of it: 20.0 twice).
    model = load_model()
    song = write_song(tmp_path / f"clip{suffix}", "metal", 30.013)
    for timeline in (model.classify_file(song, timeline=True).timeline,
                     model.timeline(synth("metal", 30.013), SR)):
        starts = [w["start"] for w in timeline]
        assert all(b - a >= 1.0 for a, b in zip(starts, starts[1:])), starts
        check_windows(timeline, timeline[-1]["end"])


def test_without_a_timeline_a_long_song_is_sampled_within_the_budget():
    model = load_model()
    y = model.at_model_rate(synth("metal", 240.0), SR)
    stream = model.stream(expected_samples=len(y))
    stream.feed(y)
    sampled = stream.finish()
    fs = model.bundle.feature_set
    assert fs.step == m.PATCH_FRAMES and len(sampled) <= fs.max_patches + 1
    assert not covered(sampled.starts, len(y))  # the label reads a sample of the song, not all of it
    assert len(dense_taggram(model, y)) >= 240 / m.PATCH_SECONDS


@pytest.mark.slow
def test_a_long_song_keeps_the_dense_rule_and_flat_memory():
    """A 20-minute song: the same window rule as a 4-minute one, every frame in a patch, and the
    memory the analysis takes beyond its per-patch outputs does not grow with the length."""
    model = load_model()
    peaks = {}
    for minutes in (2, 20):
        n = int(minutes * 60 * m.SAMPLE_RATE)
        rng = np.random.default_rng(minutes)
        tracemalloc.start()
        stream = model.stream(expected_samples=n, timeline=True)
        for i in range(0, n, 65_536):  # generated block by block: the song is never in memory
            stream.feed((0.1 * rng.standard_normal(min(65_536, n - i))).astype(np.float32))
        tg = stream.finish()
        peaks[minutes] = tracemalloc.get_traced_memory()[1] - len(tg) * 4 * (50 + 200) * 3
        tracemalloc.stop()
        assert covered(tg.starts, n)
        line = model.prediction(model.scores(tg, n, timeline=True)).timeline
        check_windows(line, n / m.SAMPLE_RATE)
        assert len(line) == pytest.approx(n / m.SAMPLE_RATE / TIMELINE_HOP, abs=2)
    assert peaks[20] < peaks[2] + 2 * 2**20, peaks  # bytes beyond the outputs: flat within 2 MiB


def test_sessions_use_one_thread_and_never_spin():
    backbone = m.load_backbone()
    head = load_model().bundle
    for options in (backbone.options, backbone._session.get_session_options(), head._session.get_session_options()):
        assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
        for key, value in NO_SPINNING.items():
            assert options.get_session_config_entry(key) == value


def test_a_dense_stream_refuses_a_step_that_would_leave_gaps():
    with pytest.raises(ValueError, match="at most 187"):
        m.TaggramStream(m.load_backbone(), step=200, dense=True)
