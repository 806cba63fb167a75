"""Decoding only what the label uses: a long song's budget of patches read by seeking.

Without a timeline the default model reads at most 32 patches of 3 s; for a long song only
those regions are decoded and resampled (:mod:`genrekit.audio.regions`). Each format's regions
are compared with full decoding of the same file: samples within float precision (AAC
within its noise substitution's randomness), the same patches, tags within a stated
tolerance and the same label.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from genrekit.errors import AudioError
from genrekit.audio import decode as audio
from genrekit.audio.regions import RegionReader
from genrekit.backbones import msd_musicnn as m
from genrekit.models.registry import load_model

from synthetic_songs import SR, synth

SECONDS = 200.0  # long enough that the 32-patch budget reads under half of it
#: Largest difference allowed between region and full decoding (samples at 16 kHz, the song's
#: mean tags): float rounding in the resampler; AAC's noise substitution (PNS) is random by
#: design, so its samples may differ where the encoder used it (mean tags measured within 1e-4).
SAMPLE_TOLERANCE = {"wav": 1e-6, "flac": 1e-6, "ogg": 1e-6, "mp3": 1e-6, "m4a": None}
TAG_TOLERANCE = {"wav": 1e-5, "flac": 1e-5, "ogg": 1e-5, "mp3": 1e-5, "m4a": 1e-3}


def long_song(path, seconds: float = SECONDS, sr: int = SR):
    """A song of changing synthetic "genres", written block by block (never whole in memory)."""
    kinds = ("classical", "hiphop", "metal")
    if path.suffix == ".m4a":
        return _write_m4a(path, seconds, sr, kinds)
    fmt = {".mp3": dict(format="MP3", subtype="MPEG_LAYER_III")}.get(path.suffix, {})
    with sf.SoundFile(path, "w", sr, 2, **fmt) as f:
        for i in range(int(seconds // 10)):
            y = synth(kinds[i % 3], 10.0, seed=i, sr=sr)
            for k in range(0, len(y), sr):  # small writes: libsndfile's vorbis writer dislikes big ones
                f.write(np.stack([y[k:k + sr], 0.8 * y[k:k + sr]], axis=1))
    return path


def _write_m4a(path, seconds, sr, kinds):
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=sr)
        s.layout = "stereo"
        for i in range(int(seconds // 10)):
            y = synth(kinds[i % 3], 10.0, seed=i, sr=sr)
            st = np.ascontiguousarray(np.stack([y, 0.8 * y]))
            for k in range(0, st.shape[1], 1024):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(st[:, k:k + 1024]), format="fltp",
                                                   layout="stereo")
                frame.sample_rate = sr
                for packet in s.encode(frame):
                    c.mux(packet)
        for packet in s.encode(None):
            c.mux(packet)
    return path


def full_prediction(model, path):
    """The prediction from a full decoding, fed to the same planned patches' stream."""
    y = audio.load(path, model.sample_rate)
    stream = model.stream(expected_samples=len(y))
    stream.feed(y)
    return model.finish_stream(stream, len(y), str(path)), y


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3", "m4a"])
def test_regions_equal_full_decoding(tmp_path, ext):
    model = load_model()
    path = long_song(tmp_path / f"song.{ext}")
    full, y = full_prediction(model, path)
    with audio.Decoder(path, model.sample_rate) as decoder:
        reader = RegionReader.open(decoder)
        assert reader is not None, f"{ext}: regions should be exact"
        assert reader.n_samples == len(y)
        plan = model.stream(expected_samples=reader.n_samples).planned(reader.n_samples)
        spans = plan.spans()
        read = 0
        for (start, samples), (lo, hi) in zip(reader.read(spans), spans):
            got, want = samples[lo - start:hi - start], y[lo:hi]
            assert len(got) == len(want)
            if SAMPLE_TOLERANCE[ext] is not None:
                assert np.abs(got - want).max() <= SAMPLE_TOLERANCE[ext], (ext, lo)
            read += len(samples)
    assert read < 0.6 * len(y)  # the label's budget, not the song

    fast = model.classify_file(path)
    assert fast.label == full.label
    tags = {t["label"]: t["score"] for t in full.tags}
    assert max(abs(t["score"] - tags[t["label"]]) for t in fast.tags) <= TAG_TOLERANCE[ext]
    assert max(abs(fast.probabilities[g] - full.probabilities[g]) for g in full.probabilities) <= 10 * TAG_TOLERANCE[ext]
    assert fast.duration == pytest.approx(full.duration)
    assert np.abs(fast.embedding - full.embedding).max() <= 100 * TAG_TOLERANCE[ext]


def test_patch_starts_are_the_streams_patches():
    backbone = m.load_backbone()
    for n in (5_000, 48_000, 480_000, 3_840_123, 19_200_000):
        for kw in ({"step": 187, "max_patches": 32, "cover_end": True}, {"step": 187, "dense": True},
                   {"step": 61}):
            stream = m.TaggramStream(backbone, expected_samples=n, **kw)
            starts = m.patch_starts(n, kw["step"], kw.get("max_patches"), cover_end=kw.get("cover_end", False),
                                    dense=kw.get("dense", False))
            assert stream.planned(n).starts == starts
            if n <= 480_000:  # run the stream itself on the shorter ones
                stream.feed(np.zeros(n, np.float32))
                assert list(np.round(stream.finish().starts * m.SAMPLE_RATE / m.HOP_LENGTH).astype(int)) == starts


def test_what_cannot_be_read_exactly_is_decoded_whole(tmp_path):
    """A cut-off file fails as full decoding fails it (its last regions are missing), with the same words."""
    model = load_model()
    path = long_song(tmp_path / "song.flac")
    for ext in ("flac", "wav"):
        cut = tmp_path / f"cut.{ext}"
        source = path if ext == "flac" else long_song(tmp_path / "song.wav")
        data = source.read_bytes()
        cut.write_bytes(data[: len(data) * 3 // 4])
        with pytest.raises(AudioError) as full:
            audio.load(cut, model.sample_rate)
        with pytest.raises(AudioError) as sampled:
            model.classify_file(cut)
        assert str(sampled.value) == str(full.value)
    # a dense timeline reads every second: no regions
    with audio.Decoder(path, model.sample_rate) as decoder:
        reader = RegionReader.open(decoder)
        dense = model.stream(expected_samples=reader.n_samples, timeline=True).planned(reader.n_samples)
        assert sum(hi - lo for lo, hi in dense.spans()) >= reader.n_samples


def test_a_long_song_without_timeline_keeps_flat_memory(tmp_path):
    """A 20-minute song costs no more memory than a 4-minute one: regions are read one at a time."""
    model = load_model()
    peaks = {}
    for minutes in (4, 20):
        path = long_song(tmp_path / f"song{minutes}.flac", seconds=minutes * 60.0)
        tracemalloc.start()
        p = model.classify_file(path)
        peaks[minutes] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert p.duration == pytest.approx(minutes * 60.0, abs=0.01) and p.windows >= 1
    assert peaks[20] < peaks[4] + 2 * 2**20, peaks  # flat within 2 MiB


def test_the_models_region_plan_is_its_streams_plan():
    from genrekit.models.registry import load_model

    model = load_model()
    for n in (48_000, 3_840_123, 19_200_000):
        for timeline in (False, True):
            stream = model.stream(expected_samples=n, timeline=timeline)
            assert model.region_planner(timeline)(n).starts == stream.planned(n).starts
    assert load_model("gtzan57").region_planner() is None  # a feature table needs the whole signal


def test_a_silent_song_read_in_regions_keeps_its_silent_note(tmp_path):
    from genrekit.output import SILENT_NOTE

    path = tmp_path / "silence.flac"
    with sf.SoundFile(path, "w", 22050, 1) as f:  # 3 minutes, long enough to be read in regions
        for _ in range(180):
            f.write(np.zeros(22050, np.float32))
    model = load_model()
    with audio.Decoder(path, model.sample_rate, min_samples=model.min_samples) as decoder:
        assert RegionReader.open(decoder) is not None
    with pytest.warns(audio.SilentAudioWarning):
        prediction = model.classify_file(path)
    assert prediction.notes and prediction.notes[0].startswith(SILENT_NOTE)
