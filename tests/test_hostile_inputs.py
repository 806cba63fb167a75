"""The second round of hardening (issue 20): inputs built to break genrekit in new ways.

Each test names the class of input it stands for: absurd sample rates in headers,
``--out`` targets that are devices, FIFOs or folders, container formats that read other
files, streams with odd parameters, names that are not UTF-8, hostile bundles, the
server's connections and Host header, names printed on stderr, archives, and wrong
answers a user would meet.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from genrekit.errors import AudioError
from genrekit.audio import decode as audio
from genrekit.audio import info as audio_info
from cli_helpers import cli_env
from fuzz_corpus import nan_bundle

# --- 1. memory for any header ---------------------------------------------------------

_PEAK = """
import sys
from genrekit.audio.decode import AudioError, Decoder
try:
    with Decoder(sys.argv[1], 22050) as decoder:
        for block in decoder:
            pass
except AudioError as err:
    print(err)
print([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1])
"""


def _tone(path: Path, rate: int, frames: int, fmt: str = "WAV") -> Path:
    y = 0.1 * np.random.default_rng(0).standard_normal(frames).astype(np.float32)
    sf.write(path, y, rate, format=fmt, subtype="PCM_16")
    return path


@pytest.mark.parametrize("rate", [1, 8, 37, 999])
def test_a_header_claiming_a_sub_audio_rate_is_refused_before_decoding(tmp_path, rate):
    # The old decoder resampled 65,536 input frames at once: a 1-Hz header made one block of
    # 1.4 G samples; and soxr itself answers ~800 input samples with one burst of 800 x ratio.
    path = _tone(tmp_path / f"r{rate}.wav", rate, 40 * rate + 7)
    with pytest.raises(AudioError, match=f"header says {rate} Hz; music needs at least 1000 Hz"):
        audio.Decoder(path, 22050)


@pytest.mark.parametrize("rate", [1000, 4000, 8000])
def test_decoded_blocks_are_bounded_in_output_samples_at_low_rates(tmp_path, rate):
    path = _tone(tmp_path / f"r{rate}.wav", rate, 40 * rate + 7)
    with audio.Decoder(path, 22050) as decoder:
        sizes = [block.size for block in decoder]
    assert sum(sizes) == -(-(40 * rate + 7) * 22050 // rate)
    assert max(sizes) <= 2 * audio._BLOCK


def test_a_one_hertz_header_needs_no_more_memory_than_a_normal_clip(tmp_path):
    normal = tmp_path / "normal.wav"
    sf.write(normal, 0.1 * np.random.default_rng(0).standard_normal((30 * 44100, 2)).astype(np.float32), 44100)
    low = _tone(tmp_path / "one-hertz.wav", 1, 2000)  # 4 KB claiming 33 minutes
    aiff = tmp_path / "half-hertz.aiff"  # libsndfile rounds 0.5 Hz to 1 Hz
    _tone(aiff, 8000, 2000, "AIFF")
    data = bytearray(aiff.read_bytes())
    comm = data.find(b"COMM")
    data[comm + 16 : comm + 26] = bytes.fromhex("3FFE8000000000000000")  # 80-bit 0.5
    aiff.write_bytes(data)

    def peak_kb(path: Path) -> int:
        run = subprocess.run([sys.executable, "-c", _PEAK, str(path)], env=cli_env(), capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        return int(run.stdout.split()[-1])

    base = peak_kb(normal)
    for path in (low, aiff):
        assert peak_kb(path) < base + 40 * 1024, path.name  # within 40 MB of a 30-s clip's


# --- 2. --out never replaces a device, FIFO or socket; folder/file mismatches before any work -------


def _run(capsys, *args) -> tuple[int, str]:
    from genrekit.cli import main

    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def _special(tmp_path: Path, kind: str) -> Path:
    import os
    import socket

    path = tmp_path / f"{kind}-target"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()
    elif kind == "link-to-fifo":
        os.mkfifo(tmp_path / "real-fifo")
        path.symlink_to(tmp_path / "real-fifo")
    elif kind == "link-to-device":
        path.symlink_to(os.devnull)
    return path


def _verbs(song: Path, bundle: Path, out: Path) -> dict[str, list]:
    """One command line per verb with an output file, each pointing its output at ``out``."""
    return {
        "classify": ["classify", song, "--model", bundle, "--out", out],
        "classify-store": ["classify", song, "--model", bundle, "--out", out],
        "features": ["features", song, "--out", out],
        "evaluate": ["evaluate", "--model", bundle, "--data", song.parent, "--out", out],
        "cluster": ["cluster", "--features", song.parent, "--out", out],
        "report": ["report", bundle.parent, "--out", out],
    }


@pytest.mark.parametrize("kind", ["fifo", "socket", "link-to-fifo", "link-to-device"])
@pytest.mark.parametrize("verb", ["classify", "classify-store", "features", "evaluate", "cluster", "report"])
def test_out_never_replaces_a_device_fifo_or_socket(bundle_dir, tmp_path, capsys, kind, verb):
    import os
    import stat

    from synthetic_songs import write_song

    song = write_song(tmp_path / "music" / "blues" / "song.wav", "classical", seconds=4.0)
    target = _special(tmp_path, kind)
    before = os.stat(target).st_mode
    if verb == "classify-store":  # the suffix decides the writer; a link's name keeps the target's kind
        target = target.rename(target.with_suffix(".jsonl")) or target.with_suffix(".jsonl")
    code, err = _run(capsys, *_verbs(song, bundle_dir, target)[verb])
    assert code == 1, err
    assert stat.S_IFMT(os.stat(target).st_mode) == stat.S_IFMT(before)  # still what it was
    assert f"--out {target}: is a" in err and "not a regular file" in err, err
    assert "classify: 1 file" not in err  # refused before the run


def test_out_checks_refuse_a_character_device_without_writing(tmp_path):
    import os

    from genrekit._io import check_out
    from genrekit.errors import CommandError

    with pytest.raises(CommandError, match="is a character device"):
        check_out(os.devnull)


def test_atomic_writes_never_replace_a_fifo(tmp_path):
    import os
    import stat

    from genrekit._io import write_bytes_atomic

    fifo = _special(tmp_path, "link-to-fifo")
    with pytest.raises(OSError, match="not a regular file: not replaced"):
        write_bytes_atomic(fifo, b"data")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and fifo.is_symlink()


@pytest.mark.parametrize("verb", ["classify", "features", "evaluate", "cluster", "report"])
def test_a_folder_where_a_file_is_expected_is_refused_before_any_work(bundle_dir, tmp_path, capsys, verb):
    from synthetic_songs import write_song

    song = write_song(tmp_path / "music" / "blues" / "song.wav", "classical", seconds=4.0)
    folder = tmp_path / "out.csv"
    folder.mkdir()
    code, err = _run(capsys, *_verbs(song, bundle_dir, folder)[verb])
    assert code == 1 and f"--out {folder}: is a folder" in err, err
    assert "classify: 1 file" not in err


def test_a_file_where_a_folder_is_expected_is_refused(tmp_path, capsys):
    from synthetic_songs import write_song

    song = write_song(tmp_path / "music" / "blues" / "song.wav", "classical", seconds=4.0)
    run_file = tmp_path / "run"
    run_file.write_text("mine")
    code, err = _run(capsys, "train", "--data", song.parent.parent, "--model", "logreg", "--out", run_file)
    assert code == 1 and f"--out {run_file}: is a file, not a folder" in err, err
    assert run_file.read_text() == "mine"


@pytest.mark.parametrize("verb", ["classify", "features", "evaluate", "train"])
def test_a_missing_parent_folder_is_an_error_not_created(bundle_dir, tmp_path, capsys, verb):
    from synthetic_songs import write_song

    song = write_song(tmp_path / "music" / "blues" / "song.wav", "classical", seconds=4.0)
    out = tmp_path / "no" / "such" / ("run" if verb == "train" else "out.csv")
    line = (["train", "--data", song.parent.parent, "--model", "logreg", "--out", out] if verb == "train"
            else _verbs(song, bundle_dir, out)[verb])
    code, err = _run(capsys, *line)
    assert code == 1 and f"the folder {out.parent} does not exist" in err and "mkdir -p" in err, err
    assert not (tmp_path / "no").exists()


# --- 3. only audio containers open: nothing named inside a file is read ------------------------------

@pytest.mark.parametrize("name, text", [
    ("list.m4a", "ffconcat version 1.0\nfile sibling.wav\nfile sibling.wav\n"),
    ("many.mp3", "ffconcat version 1.0\n" + "file sibling.wav\n" * 200),
    ("playlist.m4a", "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nsibling.wav\n#EXT-X-ENDLIST\n"),
    ("list.ffconcat", "ffconcat version 1.0\nfile 'file:sibling.wav'\n"),
], ids=["concat", "concat-200", "hls", "concat-protocol"])
def test_a_container_that_names_other_files_is_refused(tmp_path, name, text):
    pytest.importorskip("av")
    sf.write(tmp_path / "sibling.wav", 0.1 * np.sin(np.arange(3 * 22050) / 7).astype(np.float32), 22050)
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(AudioError, match="not an audio file"):
        audio.load(path)
    with pytest.raises(AudioError):
        audio_info.info(path)


def test_an_image_sequence_pattern_is_not_opened(tmp_path):
    pytest.importorskip("av")
    (tmp_path / "img001.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    path = tmp_path / "img%03d.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(AudioError):
        audio.load(path)


def test_audio_containers_still_open_through_pyav(tmp_path):
    pytest.importorskip("av")
    from fuzz_corpus import write_base

    path = write_base(tmp_path, "m4a")
    y = audio.load(path)
    assert abs(y.size / 22050 - 3.0) < 0.05


# --- 4. odd streams: a named AudioError, never AttributeError (or a 500) ------------------------------


def _wav(tag: int, bits: int, channels: int = 1, rate: int = 22050) -> bytes:
    import struct

    block = channels * max(bits, 8) // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    data = b"\x01\x02" * 4000
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


ODD_WAVS = {"float-24-bit": (3, 24), "float-12-bit": (3, 12), "float-8-bit": (3, 8), "tag-1234": (1234, 16),
            "extensible-bare": (0xFFFE, 16), "pcm-0-bit": (1, 0), "float-0-bit": (3, 0)}


def _odd_m4a(folder: Path, atom: bytes, size: int) -> Path:
    import struct

    from fuzz_corpus import write_base

    data = bytearray(write_base(folder / "base", "m4a").read_bytes())
    at = data.find(atom) - 4
    data[at : at + 4] = struct.pack(">I", size)
    path = folder / f"{atom.decode()}-{size}.m4a"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("name", sorted(ODD_WAVS))
def test_a_wav_with_an_odd_format_is_a_named_error(tmp_path, name):
    pytest.importorskip("av")
    path = tmp_path / f"{name}.wav"
    path.write_bytes(_wav(*ODD_WAVS[name]))
    with pytest.raises(AudioError, match="no decodable audio stream"):
        audio.load(path)
    with pytest.raises(AudioError):
        audio_info.info(path)


@pytest.mark.parametrize("atom", [b"minf", b"stbl", b"stsd"])
def test_an_m4a_with_a_one_byte_atom_is_a_named_error(tmp_path, atom):
    pytest.importorskip("av")
    path = _odd_m4a(tmp_path, atom, 1)
    with pytest.raises(AudioError, match=path.name):
        audio.load(path)


# --- 6. hostile bundles: one validator for load, `models`, --runs and /api/models ---------------------


def _copy_bundle(src: Path, folder: Path, edit=None, raw=None) -> Path:
    import json
    import shutil

    shutil.copytree(src, folder)
    text = (folder / "bundle.json").read_text()
    if edit is not None:
        meta = json.loads(text)
        edit(meta)
        text = json.dumps(meta)
    if raw is not None:
        text = raw(text)
    (folder / "bundle.json").write_text(text)
    return folder


HOSTILE_META = {
    "float-1e400": (lambda t: t.replace('"top_db": 80.0', '"top_db": 1e400'), "not a finite number"),
    "int-5000-digits": (lambda t: t.replace('"n_mfcc": 20', '"n_mfcc": ' + "9" * 5000), "integer of 5000 digits"),
    "nan-literal": (lambda t: t.replace('"top_db": 80.0', '"top_db": NaN'), "not a finite number"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_META))
def test_overflowing_numbers_in_a_bundle_are_a_bundle_error(bundle_dir, tmp_path, capsys, name):
    from genrekit.models.bundle import load_bundle
    from genrekit.errors import BundleError
    from genrekit.models.bundle_json import read_bundle_meta

    raw, words = HOSTILE_META[name]
    folder = _copy_bundle(bundle_dir, tmp_path / name, raw=raw)
    for read in (load_bundle, read_bundle_meta):
        with pytest.raises(BundleError, match=words):
            read(folder)
    code, err = _run(capsys, "models", tmp_path)  # listed as broken; the listing itself stands
    assert code in (0, 1) and "Traceback" not in err
    assert name in err + capsys.readouterr().out or words in err


def test_a_model_that_outputs_nan_is_an_error_not_a_label(bundle_dir, tmp_path):
    from genrekit.errors import BundleError
    from genrekit.models.registry import load_model
    from synthetic_songs import write_song

    folder = nan_bundle(bundle_dir, tmp_path / "nan")
    song = write_song(tmp_path / "song.wav", "classical", seconds=4.0)
    with pytest.raises(BundleError, match="not finite probabilities"):
        load_model(folder).classify_file(song)


def test_models_flags_weights_outside_the_folder(bundle_dir, tmp_path, capsys):
    import os

    folder = _copy_bundle(bundle_dir, tmp_path / "runs" / "outside")
    (tmp_path / "elsewhere.onnx").write_bytes((folder / "model.onnx").read_bytes())
    os.unlink(folder / "model.onnx")
    (folder / "model.onnx").symlink_to(tmp_path / "elsewhere.onnx")
    from genrekit.errors import BundleError
    from genrekit.models.bundle_json import read_bundle_meta

    with pytest.raises(BundleError, match="weights file is a link"):
        read_bundle_meta(folder)
    code, err = _run(capsys, "models", tmp_path / "runs")
    out = capsys.readouterr().out
    assert "weights file is a link" in err + out, err + out


def test_runs_never_follow_symlinks_out_of_their_folder_or_around_loops(bundle_dir, tmp_path):
    from genrekit.models.registry import find_bundles, find_runs

    runs = tmp_path / "runs"
    _copy_bundle(bundle_dir, runs / "inside")
    _copy_bundle(bundle_dir, tmp_path / "outside" / "bundle")
    (tmp_path / "outside" / "results.json").write_text("{}")
    (runs / "escape").symlink_to(tmp_path / "outside")
    (runs / "loop").symlink_to(runs)
    (runs / "inside" / "back").symlink_to(runs)
    assert [p.name for p in find_bundles(runs)] == ["inside"]
    assert find_runs(runs) == []


def test_the_server_answers_hostile_bundles_with_422_and_lists_the_rest(bundle_dir, tmp_path):
    import json

    from servers import Server
    from synthetic_songs import write_song

    runs = tmp_path / "runs"
    _copy_bundle(bundle_dir, runs / "good")
    _copy_bundle(bundle_dir, runs / "overflow", raw=HOSTILE_META["float-1e400"][0])
    nan = nan_bundle(bundle_dir, tmp_path / "nan")
    song = write_song(tmp_path / "song.wav", "classical", seconds=4.0)
    srv = Server(nan, tmp_path, "--runs", str(runs))
    try:
        status, out = srv.upload("song.wav", song.read_bytes())
        models_status, _, body = srv.get("/api/models")
    finally:
        srv.stop()
    assert status == 422 and "not finite probabilities" in out["error"], out
    assert models_status == 200, body
    listing = json.dumps(json.loads(body))
    assert "good" in listing and "not a finite number" in listing
    assert str(tmp_path) not in listing  # no absolute server paths


# --- 10. wrong answers a user would meet ----------------------------------------------------------------


def test_evaluate_scores_the_default_model_on_an_audio_folder(tmp_path, capsys):
    # Was: all the work, then "its features do not match the model's inputs (different order)":
    # the msd_musicnn table has 250 columns, the head reads 50 of them by name.
    from synthetic_songs import write_song

    for genre in ("classical", "metal"):
        write_song(tmp_path / "music" / genre / f"{genre}.00000.wav", genre, seconds=4.0)
    code, err = _run(capsys, "evaluate", "--model", "gtzan-musicnn", "--data", tmp_path / "music",
                     "--out", tmp_path / "figures.json")
    assert code == 0, err
    import json

    figures = json.loads((tmp_path / "figures.json").read_text())
    assert figures["n_tracks"] == 2 and 0.0 <= figures["track"]["accuracy"] <= 1.0


def test_evaluate_checks_the_features_before_the_work(bundle_dir, tmp_path, capsys):
    # A gtzan57 model against a table of other columns: refused before any audio is read.
    import pandas as pd

    table = tmp_path / "other.csv"
    pd.DataFrame({"filename": ["blues.00000.wav"], "label": ["blues"], "x": [1.0]}).to_csv(table, index=False)
    code, err = _run(capsys, "evaluate", "--model", bundle_dir, "--data", table)
    assert code == 1 and "do not match the model's inputs" in err and "missing" in err, err


@pytest.mark.parametrize("dtype, scale, offset", [("int16", 2**15, 0), ("int32", 2**31, 0), ("uint8", 2**7, 2**7)])
def test_classify_scales_integer_pcm_to_plus_minus_one(bundle_dir, dtype, scale, offset):
    # Was: cast without scaling, so scipy.io.wavfile's int16 gave a different, wrong answer silently.
    import genrekit
    from synthetic_songs import synth

    y = synth("metal", 4.0, 0)
    pcm = np.clip(np.round(y.astype(np.float64) * (scale - 1)) + offset, 0 if offset else -scale, 2 * scale - 1 if offset else scale - 1)
    want = {r["label"]: r["score"] for r in genrekit.classify(y, model=bundle_dir, sr=22050, precision=None)}
    got = {r["label"]: r["score"] for r in genrekit.classify(pcm.astype(dtype), model=bundle_dir, sr=22050,
                                                             precision=None)}
    assert got.keys() == want.keys()
    assert max(abs(got[g] - want[g]) for g in want) < 0.02, (got, want)
    # What the model is given: the signal within ±1, as the decoder would give it (the test
    # bundle's features are nearly scale-free, so the check is on the signal itself).
    from genrekit.models.registry import load_model

    given = load_model(bundle_dir).at_model_rate(pcm.astype(dtype), 22050)
    assert np.abs(given).max() <= 1.0 and np.abs(given - y).max() < max(2.0 / scale, 1e-6)


def test_pcm_conversion_follows_the_convention():
    assert audio.pcm_to_float(np.array([-32768, 0, 16384], np.int16)).tolist() == [-1.0, 0.0, 0.5]
    assert audio.pcm_to_float(np.array([0, 128, 255], np.uint8)).tolist() == [-1.0, 0.0, 127 / 128]
    assert audio.pcm_to_float(np.array([0.25], np.float64)).dtype == np.float32
    with pytest.raises(TypeError):
        audio.pcm_to_float(np.array([True]))


def test_files_named_on_the_command_line_come_back_in_the_order_given(tmp_path):
    from genrekit.audio.files import collect_audio_files
    from synthetic_songs import write_song

    c, a = write_song(tmp_path / "c.wav", seconds=0.5), write_song(tmp_path / "a.wav", seconds=0.5)
    folder = tmp_path / "folder"
    z, b = write_song(folder / "z.wav", seconds=0.5), write_song(folder / "b.wav", seconds=0.5)
    assert collect_audio_files([c, folder, a, c]) == [c, b, z, a]


def test_a_silent_file_carries_its_warning_in_its_notes(bundle_dir, tmp_path):
    from genrekit.models.registry import load_model
    from genrekit.prediction import Prediction

    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(4 * 22050, np.float32), 22050)
    clf = load_model(bundle_dir)
    with pytest.warns(audio.SilentAudioWarning):
        prediction = clf.classify_file(path)
    assert any(n.startswith("silent:") for n in prediction.notes), prediction.notes
    again = clf.annotate(Prediction.from_record(prediction.to_record()))  # as read back from a store
    assert any(n.startswith("silent:") for n in again.notes), again.notes


def test_a_very_short_input_reports_its_duration_to_the_millisecond():
    from genrekit.output import prediction_notes

    notes = prediction_notes({"probabilities": {"a": 0.9, "b": 0.1}, "duration": 0.045}, None)
    notes += prediction_notes({"probabilities": {"a": 0.9, "b": 0.1}, "duration": 0.045, "model": "x"},
                              type("M", (), {"window": 30.0, "card": {}})())
    assert any("short input: 0.045 s" in n for n in notes) and not any("0.0 s" in n for n in notes), notes


def test_train_into_a_finished_run_is_refused_unless_overwrite(tmp_path, capsys):
    from synthetic_songs import song_folder

    song_folder(tmp_path / "music", per_genre=4, seconds=3.0)
    run = tmp_path / "run"
    base = ["train", "--data", tmp_path / "music", "--out", run, "--cache", tmp_path / "cache"]
    code, err = _run(capsys, *base, "--model", "logreg")
    assert code == 0, err
    code, err = _run(capsys, *base, "--model", "tree")
    assert code == 1 and "already holds a finished training run of other models" in err and "--overwrite" in err, err
    assert sorted(p.name for p in run.iterdir() if (p / "bundle.json").exists()) == ["logreg"]
    code, err = _run(capsys, *base, "--model", "tree", "--overwrite")
    assert code == 0, err
    assert sorted(p.name for p in run.iterdir() if (p / "bundle.json").exists()) == ["tree"]


# --- 5. file names that are not UTF-8 ---------------------------------------------------------------


def _latin1_song(folder: Path) -> Path:
    """``café.wav`` with its name in Latin-1 (the byte 0xE9), as Python sees it: ``caf\\udce9.wav``."""
    import os

    from synthetic_songs import write_song

    folder.mkdir(parents=True, exist_ok=True)
    plain = write_song(folder / "x.wav", "classical", seconds=3.0)
    name = os.fsencode(folder) + b"/caf\xe9.wav"
    os.rename(os.fsencode(plain), name)
    return Path(os.fsdecode(name))


def test_a_latin1_file_name_decodes(tmp_path):
    path = _latin1_song(tmp_path)
    assert audio.load(path).size == 3 * 22050
    assert audio_info.info(path).samplerate == 22050


@pytest.mark.parametrize("out", ["r.jsonl", "r.sqlite", "r.csv", "r.json", None])
def test_a_latin1_file_name_is_classified_and_stored(bundle_dir, tmp_path, out):
    import json
    import os

    song = _latin1_song(tmp_path / "music")
    args = ["classify", str(tmp_path / "music"), "--model", str(bundle_dir), "--format", "json"]
    if out:
        args += ["--out", str(tmp_path / out)]
    for _ in range(2):  # the second run of a store finds the first one's result
        run = subprocess.run([sys.executable, "-m", "genrekit", *args], env=cli_env(), capture_output=True,
                             timeout=300)
        err = run.stderr.decode("utf-8")  # every byte genrekit writes is UTF-8
        assert run.returncode == 0 and "Traceback" not in err, err
    if out != "r.sqlite":
        text = (tmp_path / out).read_bytes().decode("utf-8") if out else run.stdout.decode("utf-8")
        assert "caf\\udce9.wav" in text, text  # JSON's escape of the undecodable byte: it reads back exactly
    if out in ("r.jsonl", "r.json", None):
        record = json.loads(text.splitlines()[0] if out == "r.jsonl" else text)
        record = record[0] if isinstance(record, list) else record
        assert os.fsencode(record["path"]).endswith(b"caf\xe9.wav")
    if out in ("r.jsonl", "r.sqlite"):
        from genrekit.library.results import open_results

        with open_results(tmp_path / out) as store:
            assert [r["path"] for r in store.records()] == [str(song)]


# --- 8. one escaping function for every name printed --------------------------------------------------


def test_names_with_newlines_or_escape_codes_cannot_forge_stderr_lines(bundle_dir, tmp_path, capsys):
    music = tmp_path / "music"
    music.mkdir()
    (music / "bad\n  failed: forged.wav: fine.wav").write_bytes(b"not audio at all" * 10)
    (music / "\x1b[2Jclear.wav").write_bytes(b"not audio either" * 10)
    silent = music / "silent\nwarning: forged.wav"
    sf.write(silent, np.zeros(3 * 22050, np.float32), 22050, format="WAV")
    code, err = _run(capsys, "classify", music, "--model", bundle_dir, "--format", "json")
    assert code == 1
    assert "\x1b" not in err, err
    lines = err.splitlines()
    assert not any(line.startswith(("  failed: forged", "warning: forged")) for line in lines), err
    assert sum(line.startswith("  failed: ") for line in lines) == 2, err
    assert "bad\\n  failed: forged.wav" in err and "\\x1b[2Jclear.wav" in err


def test_an_error_line_escapes_the_name_it_quotes(tmp_path, capsys):
    code, err = _run(capsys, "classify", tmp_path / "no\nsuch\x1b[0m.wav", "--model", tmp_path / "missing\nmodel")
    assert code == 1 and "\x1b" not in err and len(err.strip().splitlines()) == 1, err


# --- 7. the server: header deadline, Host allow-list ------------------------------------------------


def test_an_idle_connection_that_never_sends_headers_is_closed(bundle_dir, tmp_path):
    import socket
    import time

    from servers import Server

    srv = Server(bundle_dir, tmp_path, "--header-timeout", "1")
    try:
        idle = socket.create_connection(("127.0.0.1", srv.port))
        partial = socket.create_connection(("127.0.0.1", srv.port))
        partial.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never ends its headers
        idle.settimeout(15)
        partial.settimeout(15)
        started = time.monotonic()
        assert idle.recv(1024) == b""  # closed by the server, not by our timeout
        assert partial.recv(1024) == b""
        assert time.monotonic() - started < 14
        assert srv.get("/api/health")[0] == 200
    finally:
        srv.stop()


def test_the_host_header_is_checked_against_an_allow_list(bundle_dir, tmp_path):
    from servers import Server

    srv = Server(bundle_dir, tmp_path, "--allow-host", "music.box")
    try:
        def status(host):
            return srv.request("GET", "/api/health", headers={"Host": host})[0]

        assert status(f"127.0.0.1:{srv.port}") == 200
        assert status(f"localhost:{srv.port}") == 200
        assert status(f"[::1]:{srv.port}") == 200
        assert status(f"music.box:{srv.port}") == 200
        assert status(f"rebound.attacker.example:{srv.port}") == 400
        assert status("127.0.0.1.attacker.example") == 400
    finally:
        srv.stop()


# --- 9. archives ------------------------------------------------------------------------------------


def _tar(path: Path, members: list[tuple[str, bytes | None]]) -> Path:
    import io
    import tarfile

    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("members", [
    [("a", b"x"), ("a", None)],
    [("a", b"x"), ("a/b.wav", b"y")],
    [("d/" + "n" * 300 + ".wav", b"x")],
], ids=["file-then-folder", "file-then-member-inside", "over-long-name"])
def test_archive_members_that_cannot_be_written_are_named_errors(tmp_path, members):
    from genrekit.datasets.archive import unpack
    from genrekit.errors import DatasetError

    archive = _tar(tmp_path / "a.tar", members)
    with pytest.raises(DatasetError, match="a.tar: member"):
        unpack(archive, tmp_path / "out")


def test_an_unknown_zip_method_is_a_named_error(tmp_path):
    import zipfile

    from genrekit.datasets.archive import unpack
    from genrekit.errors import DatasetError

    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("song.wav", b"x" * 100)
    data = bytearray(path.read_bytes())
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):  # local header and central directory: method field
        at = data.find(sig)
        data[at + (8 if sig == b"PK\x03\x04" else 10) : at + (10 if sig == b"PK\x03\x04" else 12)] = (99).to_bytes(2, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="compression method"):
        unpack(path, tmp_path / "out")


def test_unpacking_stops_at_the_size_cap(tmp_path):
    from genrekit.datasets.archive import unpack
    from genrekit.errors import UnsafeArchiveError

    archive = _tar(tmp_path / "a.tar", [("one.wav", b"\0" * 6000), ("two.wav", b"\0" * 6000)])
    with pytest.raises(UnsafeArchiveError, match="more than 10000 bytes"):
        unpack(archive, tmp_path / "out", max_bytes=10_000)
    assert unpack(archive, tmp_path / "ok", max_bytes=12_000) == 2


# --- issue 30: results files, --names files and named pipes given to read-only verbs ----------------------

_DEEP = "[" * 100_000 + "]" * 100_000


def _hostile_record_lines(song: Path) -> dict[str, str]:
    """One hand-made results line per kind of damage (each a JSON object a verb must skip, not trip on)."""
    import json

    from results_files import hand_made

    good = hand_made(song, content_hash="f" * 64)
    bad = {
        "path-number": dict(good, path=7), "path-null": dict(good, path=None), "label-number": dict(good, label=5),
        "label-list": dict(good, label=["metal"]), "probabilities-list": dict(good, probabilities=[0.9]),
        "probabilities-text": dict(good, probabilities={"metal": "high"}),
        "duration-text": dict(good, duration="long"), "duration-negative": dict(good, duration=-3),
        "embedding-text": dict(good, embedding="abc"), "hash-number": dict(good, content_hash=12),
    }
    lines = {kind: json.dumps(record) for kind, record in bad.items()}
    lines["huge-integer-score"] = json.dumps(good).replace('"metal": 0.9', '"metal": ' + "9" * 5000)
    lines["deep-timeline"] = json.dumps(dict(good, timeline="DEEP")).replace('"DEEP"', _DEEP)
    return lines


def _hostile_results(tmp_path: Path, kind: str) -> tuple[Path, Path]:
    import json

    from results_files import hand_made
    from synthetic_songs import write_song

    song = write_song(tmp_path / "music" / "good.wav", "metal", seconds=1.0)
    hostile = _hostile_record_lines(write_song(tmp_path / "music" / "bad.wav", "metal", seconds=1.0))[kind]
    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps(hand_made(song)) + "\n" + hostile + "\n")
    return results, song


@pytest.mark.parametrize("kind", sorted(_hostile_record_lines(Path("x.wav"))))
def test_playlists_skip_hand_made_records_of_every_wrong_type(tmp_path, capsys, kind):
    from results_files import fingerprint

    results, song = _hostile_results(tmp_path, kind)
    before = fingerprint(results)[:3]  # bytes and mtime (the playlists' folder is made beside it)
    code, err = _run(capsys, "playlists", results, "--out", tmp_path / "pl")
    assert code == 0, err
    assert "skipped 1 record(s) that are not valid genrekit results (line 2: " in err, err
    assert (tmp_path / "pl" / "Metal.m3u8").read_text().splitlines()[-1] == "../music/good.wav"
    assert fingerprint(results)[:3] == before


def _sqlite_with(tmp_path: Path, song: Path, column: str, value) -> Path:
    import sqlite3

    from genrekit.library.results import open_results
    from results_files import hand_made

    path = tmp_path / "results.sqlite"
    with open_results(path) as store:
        store.put(hand_made(song, embedding=[0.5] * 8), None)
        store.put(hand_made(tmp_path / "music" / "bad.wav", embedding=[0.25] * 8), None)
    db = sqlite3.connect(path)
    db.execute(f"UPDATE results SET {column} = ? WHERE path LIKE '%bad.wav'", (value,))
    db.commit()
    db.close()
    return path


_SQLITE_DAMAGE = {"embedding-3-bytes": ("embedding", b"\x00\x01\x02"), "probabilities-not-json": ("probabilities", "{"),
                  "timeline-deep": ("timeline", _DEEP), "label-blob": ("label", b"\xff\xfe")}


@pytest.mark.parametrize("damage", sorted(_SQLITE_DAMAGE))
def test_playlists_skip_damaged_sqlite_rows(tmp_path, capsys, damage):
    from synthetic_songs import write_song

    song = write_song(tmp_path / "music" / "good.wav", "metal", seconds=1.0)
    results = _sqlite_with(tmp_path, song, *_SQLITE_DAMAGE[damage])
    code, err = _run(capsys, "playlists", results, "--out", tmp_path / "pl")
    assert code == 0, err
    assert "skipped 1 record(s) that are not valid genrekit results (row " in err, err
    assert (tmp_path / "pl" / "Metal.m3u8").read_text().splitlines()[-1] == "../music/good.wav"


_SIMILAR_DAMAGE = {"embedding-ragged": [0.5] * 3, "embedding-nan": [float("nan")] * 8,
                   "embedding-strings": ["a"] * 8, "embedding-3-bytes": b"\x00\x01\x02"}


@pytest.mark.parametrize("damage", sorted(_SIMILAR_DAMAGE))
def test_similar_skips_damaged_embeddings(tmp_path, capsys, damage):
    import json

    from genrekit.audio.files import content_hash
    from results_files import hand_made
    from synthetic_songs import write_song

    song = write_song(tmp_path / "music" / "query.wav", "metal", seconds=1.0)
    other = write_song(tmp_path / "music" / "other.wav", "classical", seconds=1.0)
    records = [hand_made(song, content_hash=content_hash(song), embedding=[1.0] * 8),
               hand_made(other, embedding=[1.0] * 4 + [0.5] * 4)]
    value = _SIMILAR_DAMAGE[damage]
    if isinstance(value, bytes):
        results = _sqlite_with(tmp_path, song, "embedding", value)
        with __import__("sqlite3").connect(results) as db:
            db.execute("UPDATE results SET content_hash = ? WHERE path LIKE '%query.wav'", (content_hash(song),))
    else:
        bad = hand_made(tmp_path / "music" / "bad.wav", embedding=value)
        results = tmp_path / "results.jsonl"
        results.write_text("".join(json.dumps(r) + "\n" for r in [*records, bad]))
    code, err = _run(capsys, "similar", song, "--library", results, "--format", "json")
    assert code == 0, err
    assert "skipped 1 record(s) that are not valid genrekit results" in err, err


# --- --names files: read with a size cap, regular files only, names as one-line values ----------------------

_NAMES = {
    "deep-nesting": "a = " + "[" * 50_000 + "]" * 50_000 + "\n",
    "huge-integer": "a = " + "9" * 5000 + "\n",
    "control-character": 'hiphop = "Hip\\nHop\\u001b[2J"\n',
    "ten-kb-name": 'hiphop = "' + "x" * 10_000 + '"\n',
    "no-letter": 'hiphop = "!!!"\n',
    "zero-width-alias": '[aliases]\n"\\u200b" = "hiphop"\n',
    "over-a-mebibyte": "# " + "x" * (1 << 20) + "\n",
    "two-labels-one-name": 'hiphop = "Hip Hop"\nrap = "HipHop"\n',
}


@pytest.mark.parametrize("kind", sorted(_NAMES) + ["fifo", "dev-zero", "folder"])
def test_hostile_names_files_are_one_line_errors(tmp_path, kind):
    import os

    from results_files import hand_made, write_jsonl
    from synthetic_songs import write_song

    song = write_song(tmp_path / "music" / "a.wav", "metal", seconds=1.0)
    results = write_jsonl(tmp_path / "results.jsonl", [hand_made(song)])
    names = tmp_path / "names.toml"
    if kind == "fifo":
        os.mkfifo(names)
    elif kind == "dev-zero":
        names = Path("/dev/zero")
    elif kind == "folder":
        names.mkdir()
    else:
        names.write_text(_NAMES[kind], encoding="utf-8")
    # A subprocess: the old reader waited forever on a FIFO and read /dev/zero until memory ran out.
    run = subprocess.run([sys.executable, "-m", "genrekit", "playlists", str(results), "--out", str(tmp_path / "pl"),
                          "--names", str(names)], env=cli_env(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert f"names file {names}" in line and "\x1b" not in line, line
    assert not (tmp_path / "pl").exists()


# --- named pipes inside a library: refused by name, never read -------------------------------------------


@pytest.mark.parametrize("out", ["r.jsonl", "r.sqlite"])
def test_a_fifo_inside_a_library_is_named_not_hashed(bundle_dir, tmp_path, out):
    import os

    from synthetic_songs import write_song

    write_song(tmp_path / "lib" / "a.wav", "metal", seconds=2.0)
    os.mkfifo(tmp_path / "lib" / "pipe.wav")
    run = subprocess.run([sys.executable, "-m", "genrekit", "classify", str(tmp_path / "lib"), "--model", str(bundle_dir),
                          "--out", str(tmp_path / out)], env=cli_env(), capture_output=True, text=True, timeout=120)
    assert "Traceback" not in run.stderr, run.stderr
    assert "pipe.wav: not a regular file" in run.stderr, run.stderr
    assert "1 done" in run.stderr and "1 failed" in run.stderr, run.stderr


def test_a_fifo_as_the_results_of_a_read_verb_is_refused(tmp_path):
    import os

    os.mkfifo(tmp_path / "results.jsonl")
    run = subprocess.run([sys.executable, "-m", "genrekit", "playlists", str(tmp_path / "results.jsonl"), "--out",
                          str(tmp_path / "pl")], env=cli_env(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "not a regular file" in run.stderr and "Traceback" not in run.stderr, run.stderr


def test_the_classify_table_escapes_labels_and_names_from_elsewhere():
    from genrekit.output import render_table
    from genrekit.tagging.names import NameMap

    label = "Rock\x1b[2J\nfake line"
    rows = [{"path": "a.wav", "label": label, "probabilities": {label: 0.9, "jazz": 0.1}, "notes": []}]
    names = NameMap({"jazz": ("Jazz\r\x1b[31m",)})  # a map made in Python, unchecked by load_names
    text = render_table(rows, names=names)
    assert "\x1b" not in text and "\r" not in text and len(text.splitlines()) == 2, text
    assert "Rock\\x1b[2J\\nfake line" in text and "Jazz\\r\\x1b[31m" in text


def test_classify_out_refuses_another_programs_sqlite_database_without_changing_it(bundle_dir, tmp_path, capsys):
    import sqlite3

    from results_files import fingerprint
    from synthetic_songs import write_song

    song = write_song(tmp_path / "music" / "a.wav", "metal", seconds=1.0)
    db_path = tmp_path / "library.db"
    db = sqlite3.connect(db_path)
    db.executescript("CREATE TABLE items (id INTEGER PRIMARY KEY, path BLOB); PRAGMA user_version = 7;")
    db.close()
    before = fingerprint(db_path)
    code, err = _run(capsys, "classify", song, "--model", bundle_dir, "--out", db_path)
    assert code == 1 and "library.db: another program's SQLite database (tables items)" in err, err
    assert fingerprint(db_path) == before
