"""Features against librosa (the reference implementation) and against the real Kaggle table."""

import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.ndimage

from genrekit.audio import decode as audio
from genrekit.features.sets import FeatureSet, feature_set
from genrekit.features import spectral
from genrekit.features.chroma import chroma_from_power, estimate_tuning
from genrekit.features.gtzan57 import COLUMNS, gtzan57_features, gtzan57_table
from genrekit.features.hpss import hpss, median_filter_1d
from genrekit.features.rhythm import onset_strength, tempo

librosa = pytest.importorskip("librosa")

SR = 22050


def synth(seconds=4.0, sr=SR, seed=0):
    """A chord with vibrato, a kick every 0.5 s and some noise: exercises every feature."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = sum(0.2 * np.sin(2 * np.pi * f * t + 3 * np.sin(2 * np.pi * 5 * t)) for f in (220.0, 277.2, 329.6))
    kick = np.exp(-np.arange(int(0.08 * sr)) / (0.015 * sr)) * np.sin(2 * np.pi * 60 * np.arange(int(0.08 * sr)) / sr)
    for start in range(0, len(t) - len(kick), sr // 2):
        y[start : start + len(kick)] += 0.8 * kick
    return (y + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def clip(shared_data):
    y, _ = librosa.load(shared_data / "gtzan/genres/jazz/jazz.00004.wav", sr=None)
    return y


# --- log-mel and MFCC: equal to librosa for the same parameters ------------------------
PARAMS = [
    dict(sr=22050, n_fft=2048, hop_length=512, n_mels=128, fmin=0.0, fmax=None),
    dict(sr=16000, n_fft=1024, hop_length=256, n_mels=64, fmin=30.0, fmax=7000.0),
    dict(sr=44100, n_fft=4096, hop_length=1024, n_mels=96, fmin=20.0, fmax=16000.0),
]


@pytest.mark.parametrize("p", PARAMS, ids=lambda p: f"{p['sr']}-{p['n_fft']}-{p['n_mels']}")
def test_logmel_equals_librosa_within_1e_3_db(p):
    y = synth(sr=p["sr"])
    ours = FeatureSet("logmel", sample_rate=p["sr"], n_fft=p["n_fft"], hop_length=p["hop_length"],
                      n_mels=p["n_mels"], fmin=p["fmin"], fmax=p["fmax"]).compute(y)
    ref = librosa.power_to_db(librosa.feature.melspectrogram(
        y=y, sr=p["sr"], n_fft=p["n_fft"], hop_length=p["hop_length"], n_mels=p["n_mels"], fmin=p["fmin"], fmax=p["fmax"]))
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-3


def test_logmel_of_real_clip_equals_librosa(clip):
    ours = feature_set("logmel").compute(clip)
    ref = librosa.power_to_db(librosa.feature.melspectrogram(y=clip, sr=SR))
    assert np.abs(ours - ref).max() < 1e-3


@pytest.mark.parametrize("n_mfcc", [13, 20, 40])
def test_mfcc_equals_librosa_within_1e_3_relative(clip, n_mfcc):
    ours = feature_set("mfcc", n_mfcc=n_mfcc).compute(clip)
    ref = librosa.feature.mfcc(y=clip, sr=SR, n_mfcc=n_mfcc)
    assert ours.shape == ref.shape == (n_mfcc, ref.shape[1])
    np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max())


def test_mel_filterbank_equals_librosa():
    for sr, n_fft, n_mels, fmin, fmax in [(22050, 2048, 128, 0.0, None), (16000, 512, 40, 100.0, 4000.0)]:
        np.testing.assert_allclose(spectral.mel_filterbank(sr, n_fft, n_mels, fmin, fmax),
                                   librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax),
                                   rtol=1e-6, atol=1e-9)


def test_stft_and_istft_match_librosa(clip):
    D = spectral.stft(clip)
    ref = librosa.stft(clip)
    assert np.abs(D - ref).max() < 1e-4 * np.abs(ref).max()
    back = spectral.istft(D, length=len(clip))
    assert np.abs(back - clip).max() < 1e-5


# --- the spectral descriptors behind the GTZAN table -------------------------------------
def test_spectral_descriptors_match_librosa(clip):
    D = spectral.stft(clip)
    S = np.abs(D)
    freqs = spectral.fft_frequencies(SR, 2048)
    centroid = spectral.spectral_centroid(S, freqs)
    np.testing.assert_allclose(centroid, librosa.feature.spectral_centroid(y=clip, sr=SR)[0], rtol=1e-5)
    np.testing.assert_allclose(spectral.spectral_bandwidth(S, freqs, centroid),
                               librosa.feature.spectral_bandwidth(y=clip, sr=SR)[0], rtol=1e-5)
    both = spectral.spectral_centroid_bandwidth(S, freqs)
    np.testing.assert_allclose(both[0], centroid, rtol=1e-6)
    np.testing.assert_allclose(both[1], librosa.feature.spectral_bandwidth(y=clip, sr=SR)[0], rtol=1e-5)
    np.testing.assert_array_equal(spectral.spectral_rolloff(S, freqs), librosa.feature.spectral_rolloff(y=clip, sr=SR)[0])
    np.testing.assert_allclose(spectral.rms(clip), librosa.feature.rms(y=clip)[0], rtol=1e-6)
    np.testing.assert_array_equal(spectral.zero_crossing_rate(clip), librosa.feature.zero_crossing_rate(clip)[0])


def test_chroma_and_tuning_match_librosa(clip):
    P = np.abs(spectral.stft(clip)) ** 2
    assert estimate_tuning(P, SR, 2048) == pytest.approx(librosa.estimate_tuning(S=P, sr=SR))
    np.testing.assert_allclose(chroma_from_power(P, SR, 2048), librosa.feature.chroma_stft(y=clip, sr=SR), atol=1e-5)


def test_hpss_matches_librosa(clip):
    D = spectral.stft(clip)
    harm, perc = hpss(D)
    ref_h, ref_p = librosa.decompose.hpss(librosa.stft(clip))
    scale = np.abs(ref_h).max()
    assert np.abs(harm - ref_h).max() < 1e-4 * scale
    assert np.abs(perc - ref_p).max() < 1e-4 * scale


@pytest.mark.parametrize("shape", [(40, 50), (7, 9), (1025, 3), (3, 1)])
@pytest.mark.parametrize("axis", [0, 1])
def test_fast_median_filter_equals_scipy(shape, axis):
    S = np.random.default_rng(1).random(shape, dtype=np.float32)
    size = [1, 1]
    size[axis] = 31
    np.testing.assert_array_equal(median_filter_1d(S, 31, axis), scipy.ndimage.median_filter(S, size=size, mode="reflect"))


def test_tempo_matches_librosa_beat_track(shared_data):
    for name in ["disco/disco.00000.wav", "classical/classical.00003.wav", "metal/metal.00005.wav"]:
        y, _ = librosa.load(shared_data / "gtzan/genres" / name, sr=None)
        logmel = spectral.power_to_db(spectral.mel_power(np.abs(spectral.stft(y)) ** 2, SR, 2048))
        ref, _ = librosa.beat.beat_track(y=y, sr=SR)
        assert tempo(onset_strength(logmel), SR) == pytest.approx(float(np.atleast_1d(ref)[0]))


def test_tempo_of_synthetic_pulse_is_its_rate():
    # Clicks every 0.5 s: 120 BPM, right at the prior's centre.
    y = np.zeros(10 * SR, np.float32)
    y[:: SR // 2] = 1.0
    logmel = feature_set("logmel").compute(y)
    assert tempo(onset_strength(logmel), SR) == pytest.approx(120, rel=0.03)


def test_tempo_of_silence_is_zero():
    assert tempo(np.zeros(500, np.float32), SR) == 0.0


# --- the gtzan57 table ----------------------------------------------------------------
def test_columns_are_the_kaggle_tables(shared_data):
    header = (shared_data / "gtzan/features_30_sec.csv").read_text().splitlines()[0].split(",")
    assert header[2:-1] == list(COLUMNS)


def test_three_second_windows_are_rows_of_their_slices():
    y = synth(seconds=10.0)
    table = feature_set("gtzan57", window=3.0).compute(y)
    bounds = audio.window_bounds(len(y), SR, 3.0)
    assert table.shape == (3, 57) and len(bounds) == 3
    np.testing.assert_array_equal(table[1], gtzan57_features(y[bounds[1][0] : bounds[1][1]]))


def test_clip_shorter_than_window_is_one_row_over_all_of_it():
    y = synth(seconds=2.0)
    np.testing.assert_array_equal(gtzan57_table(y, SR, window=30.0), gtzan57_features(y)[None])


def test_signal_shorter_than_a_frame_is_refused():
    with pytest.raises(ValueError, match="shorter than one analysis frame"):
        feature_set("gtzan57").compute(np.zeros(1000, np.float32))


def test_silence_gives_finite_features():
    row = feature_set("gtzan57").compute(np.zeros(SR, np.float32))[0]
    assert np.all(np.isfinite(row))


# --- feature sets as values --------------------------------------------------------------
def test_feature_set_key_is_stable_across_processes_and_tracks_parameters():
    fs = feature_set("logmel", n_mels=64)
    code = "from genrekit.features.sets import feature_set; print(feature_set('logmel', n_mels=64).key)"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == fs.key
    assert feature_set("logmel", n_mels=96).key != fs.key
    assert FeatureSet.from_dict(json.loads(json.dumps(fs.to_dict()))) == fs


def test_feature_set_rejects_unknown_names_and_parameters():
    with pytest.raises(ValueError, match="unknown feature set"):
        FeatureSet("chromagram")
    with pytest.raises(ValueError, match="unknown feature-set parameters"):
        FeatureSet.from_dict({"name": "logmel", "n_bins": 3})


# --- fidelity to the real Kaggle table ----------------------------------------------------
@pytest.mark.slow
def test_gtzan57_reproduces_the_kaggle_table_for_all_70_clips(shared_data):
    """Every value within 0.05 standard deviations (over the table's 1000 rows) of the CSV's."""
    import pandas as pd

    table = pd.read_csv(shared_data / "gtzan/features_30_sec.csv").set_index("filename")
    std = table[list(COLUMNS)].std().to_numpy()
    clips = sorted((shared_data / "gtzan/genres").glob("*/*.wav"))
    assert len(clips) == 70
    worst = (0.0, "", "")
    fs = feature_set("gtzan57")
    for path in clips:
        rows = fs.compute(audio.load(path, sr=fs.sample_rate))
        assert rows.shape == (1, 57)
        assert table.loc[path.name, "length"] == len(audio.load(path, sr=fs.sample_rate))
        deviation = np.abs(rows[0] - table.loc[path.name, list(COLUMNS)].to_numpy(float)) / std
        i = int(np.argmax(deviation))
        if deviation[i] > worst[0]:
            worst = (float(deviation[i]), path.name, COLUMNS[i])
    print(f"\nworst deviation: {worst[0]:.4f} std ({worst[2]} of {worst[1]})")
    assert worst[0] <= 0.05, worst


def test_shared_analysis_of_overlapping_windows_matches_separate_analysis(shared_data, clip):
    """Timelines analyse a song once; each window must still get (nearly) its own row."""
    import pandas as pd

    from genrekit.features.gtzan57 import gtzan57_windows

    std = pd.read_csv(shared_data / "gtzan/features_30_sec.csv")[list(COLUMNS)].std().to_numpy()
    bounds = audio.window_bounds(len(clip), SR, 15.0, 7.5, cover_end=True)
    shared = gtzan57_windows(clip, SR, bounds)
    alone = np.stack([gtzan57_features(clip[a:b]) for a, b in bounds])
    assert len(bounds) == 3  # 0-15, 7.5-22.5, 15-30.01 s (the 0.01-s tail is absorbed)
    assert np.max(np.abs(shared - alone) / std) < 0.05
    np.testing.assert_array_equal(gtzan57_windows(clip, SR, [(0, len(clip))])[0], gtzan57_features(clip))


def test_equal_recipes_have_equal_keys_whatever_the_number_types():
    assert feature_set("gtzan57", window=30).key == feature_set("gtzan57", window=30.0).key
    assert feature_set("logmel", fmin=0).key == feature_set("logmel", fmin=0.0).key
