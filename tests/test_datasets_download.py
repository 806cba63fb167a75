"""`genrekit datasets`: downloads from a real HTTP server on 127.0.0.1 serving archives the tests build.

Clean download, a dropped connection that resumes with a Range request, a wrong checksum,
unsafe archive members, --mirror, --force, and validate on a partial copy. No test
reaches any host but 127.0.0.1 (the catalogue names only local URLs).
"""

import hashlib
import io
import json
import tarfile
import zipfile

import pytest
from datasets_server import FileServer, sha256, tar_bytes, write_catalogue

from genrekit.cli import main
from genrekit.datasets.archive import unpack
from genrekit.errors import UnsafeArchiveError
from genrekit.datasets.install import validate
from genrekit.datasets.registry import BUILTIN, get_dataset

# Distinct, incompressible-ish contents so that a resumed file with a wrong part would be caught.
FILES = {f"toy/{g}/{g}.{i:05d}.wav": hashlib.sha512(f"{g}{i}".encode()).digest() * 400
         for g in ("blues", "rock") for i in range(3)}
ARTISTS = b"blues.00000.wav ::: A ::: x\nblues.00001.wav ::: A ::: y\n"


def entry(url: str, archive: bytes, **overrides) -> dict:
    audio = {"name": "audio", "filename": "toy.tar.gz", "url": f"{url}/data/toy.tar.gz",
             "checksum": sha256(archive), "kind": "archive", "target": "audio", "strip": "toy"}
    audio.update(overrides)
    return {"name": "toy", "title": "Toy", "folder": "toy", "audio_root": "audio", "artists": "artists",
            "resources": [audio, {"name": "artists", "filename": "index.txt", "url": f"{url}/data/index.txt",
                                  "checksum": sha256(ARTISTS), "target": "index.txt"}]}


@pytest.fixture
def server():
    with FileServer() as s:
        s.files["/data/toy.tar.gz"] = tar_bytes(FILES)
        s.files["/data/index.txt"] = ARTISTS
        yield s


@pytest.fixture
def toy(server, tmp_path, monkeypatch):
    """The toy dataset's catalogue (named by $GENREKIT_CATALOGUE) and a fresh data root."""
    archive = server.files["/data/toy.tar.gz"]
    monkeypatch.setenv("GENREKIT_CATALOGUE", str(write_catalogue(tmp_path / "cat.json", [entry(server.url, archive)])))
    root = tmp_path / "root"
    return root


def leftovers(folder):
    """Temporary and partial files genrekit may have left in a dataset folder."""
    meta = folder / ".genrekit"
    return sorted(p.name for p in meta.rglob("*") if p.name.startswith(("tmp-", "old-")) or p.suffix == ".part")


def test_clean_download_places_checks_and_records_every_file(toy, server, capsys):
    assert main(["datasets", "download", "toy", "--root", str(toy)]) == 0
    folder = toy / "toy"
    for name, data in FILES.items():
        assert (folder / "audio" / name.removeprefix("toy/")).read_bytes() == data
    assert (folder / "index.txt").read_bytes() == ARTISTS
    assert leftovers(folder) == []
    state = json.loads((folder / ".genrekit/toy/state.json").read_text())
    assert state["resources"]["audio"]["files"] == len(FILES)
    capsys.readouterr()

    assert main(["datasets", "validate", "toy", "--root", str(toy)]) == 0
    out = capsys.readouterr().out
    assert f"{len(FILES) + 1} present, 0 missing, 0 corrupt: complete" in out

    # A second download fetches nothing: everything is recorded and in place.
    n = len(server.requests)
    assert main(["datasets", "download", "toy", "--root", str(toy)]) == 0
    assert len(server.requests) == n
    assert "0 files downloaded and checked, 2 already there" in capsys.readouterr().out


def test_dropped_connection_resumes_with_a_range_request(toy, server, capsys):
    archive = server.files["/data/toy.tar.gz"]
    server.drop["/data/toy.tar.gz"] = 1
    # No retries: the run stops, keeps the .part, and says how to resume.
    assert main(["datasets", "download", "toy", "--root", str(toy), "--retries", "0"]) == 1
    err = capsys.readouterr().err
    assert "interrupted after" in err and "run the same command again" in err
    part = toy / "toy/.genrekit/downloads/toy.tar.gz.part"
    half = len(archive) // 2
    assert part.stat().st_size == half
    assert not (toy / "toy/audio").exists()  # nothing unpacked from half an archive

    assert main(["datasets", "download", "toy", "--root", str(toy)]) == 0
    assert ("/data/toy.tar.gz", f"bytes={half}-") in server.requests
    assert not part.exists()
    assert validate(get_dataset("toy"), toy).ok


def test_dropped_connection_is_resumed_within_one_run(toy, server):
    server.drop["/data/toy.tar.gz"] = 1
    assert main(["datasets", "download", "toy", "--root", str(toy), "--retries", "2"]) == 0
    gets = [r for r in server.requests if r[0] == "/data/toy.tar.gz"]
    assert len(gets) == 2 and gets[0][1] is None and gets[1][1].startswith("bytes=")
    assert validate(get_dataset("toy"), toy).ok


def test_wrong_checksum_is_refused_and_nothing_is_unpacked(server, tmp_path, monkeypatch, capsys):
    wrong = entry(server.url, b"", checksum="sha256:" + "0" * 64)
    monkeypatch.setenv("GENREKIT_CATALOGUE", str(write_catalogue(tmp_path / "cat.json", [wrong])))
    root = tmp_path / "root"
    assert main(["datasets", "download", "toy", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and "nothing was unpacked" in err
    folder = root / "toy"
    assert not (folder / "audio").exists()
    assert leftovers(folder) == []
    # The small artist index came first and is recorded; the refused archive is not.
    assert "audio" not in json.loads((folder / ".genrekit/toy/state.json").read_text())["resources"]


def _dotdot(tar):
    info = tarfile.TarInfo("toy/../../evil.txt")
    info.size = 4
    tar.addfile(info, io.BytesIO(b"evil"))


def _absolute(tar):
    info = tarfile.TarInfo("/tmp/genrekit-evil.txt")
    info.size = 4
    tar.addfile(info, io.BytesIO(b"evil"))


def _symlink(tar):
    info = tarfile.TarInfo("toy/blues/link.wav")
    info.type = tarfile.SYMTYPE
    info.linkname = "/etc/passwd"
    tar.addfile(info)


@pytest.mark.parametrize("bad, message", [(_dotdot, "climbs out"), (_absolute, "absolute path"), (_symlink, "is a link")])
def test_unsafe_archive_member_is_refused(bad, message, server, tmp_path, monkeypatch, capsys):
    archive = tar_bytes(FILES, extra=bad)
    server.files["/data/toy.tar.gz"] = archive
    monkeypatch.setenv("GENREKIT_CATALOGUE", str(write_catalogue(tmp_path / "cat.json", [entry(server.url, archive)])))
    root = tmp_path / "root"
    assert main(["datasets", "download", "toy", "--root", str(root)]) == 1
    assert message in capsys.readouterr().err
    assert not (root / "toy/audio").exists()
    assert not (tmp_path / "evil.txt").exists() and not (root / "evil.txt").exists()
    assert leftovers(root / "toy") == []


def test_zip_members_are_checked_too(tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("ok/a.txt", b"a")
        zf.writestr("../b.txt", b"b")
    with pytest.raises(UnsafeArchiveError, match="climbs out"):
        unpack(bad, tmp_path / "out")
    assert not (tmp_path / "b.txt").exists()
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("fma_small/000/000002.mp3", b"x" * 10)
    seen = []
    assert unpack(good, tmp_path / "out2", on_file=lambda rel, sha, size: seen.append((rel, size))) == 1
    assert seen == [("fma_small/000/000002.mp3", 10)]


def test_mirror_fetches_the_same_names_elsewhere_and_still_checks_them(server, tmp_path, monkeypatch, capsys):
    archive = server.files["/data/toy.tar.gz"]
    # The entry's own host is a closed port on 127.0.0.1: only the mirror can answer.
    with FileServer() as closed:
        dead = closed.url
    monkeypatch.setenv("GENREKIT_CATALOGUE", str(write_catalogue(tmp_path / "cat.json", [entry(dead, archive)])))
    server.files["/mirror/toy.tar.gz"] = archive
    server.files["/mirror/index.txt"] = ARTISTS
    root = tmp_path / "root"
    assert main(["datasets", "download", "toy", "--root", str(root), "--mirror", server.url + "/mirror/"]) == 0
    assert ("/mirror/toy.tar.gz", None) in server.requests
    assert validate(get_dataset("toy"), root).ok

    # A mirror serving other bytes under the same name is refused.
    server.files["/bad/toy.tar.gz"] = tar_bytes({"toy/blues/blues.00000.wav": b"other"})
    server.files["/bad/index.txt"] = ARTISTS
    assert main(["datasets", "download", "toy", "--root", str(tmp_path / "r2"), "--mirror", server.url + "/bad"]) == 1
    assert "checksum mismatch" in capsys.readouterr().err


def test_users_files_are_not_replaced_without_force(toy, capsys):
    mine = toy / "toy/audio/notes.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("my notes")
    assert main(["datasets", "download", "toy", "--root", str(toy)]) == 1
    assert "--force" in capsys.readouterr().err
    assert mine.read_text() == "my notes"
    assert main(["datasets", "download", "toy", "--root", str(toy), "--force"]) == 0
    assert not mine.exists() and (toy / "toy/audio/blues/blues.00000.wav").exists()
    assert leftovers(toy / "toy") == []


def test_validate_lists_missing_and_corrupt_files_of_a_partial_copy(toy, capsys):
    assert main(["datasets", "download", "toy", "--root", str(toy)]) == 0
    audio = toy / "toy/audio"
    (audio / "rock/rock.00001.wav").unlink()
    (audio / "blues/blues.00002.wav").write_bytes(b"damaged")
    (toy / "toy/index.txt").unlink()
    capsys.readouterr()
    assert main(["datasets", "validate", "toy", "--root", str(toy)]) == 1
    out = capsys.readouterr().out
    assert "missing: audio/rock/rock.00001.wav" in out
    assert "missing: index.txt" in out
    assert "corrupt: audio/blues/blues.00002.wav (sha256 differs" in out
    assert f"{len(FILES) - 2} present, 2 missing, 1 corrupt: INCOMPLETE" in out


def _mirdata_index(files: dict[str, bytes]) -> bytes:
    tracks = {name.rsplit("/", 1)[1].removesuffix(".wav"): {"audio": [name, hashlib.md5(data).hexdigest()]}
              for name, data in files.items()}
    return json.dumps({"version": "1.0", "tracks": tracks}).encode()


@pytest.mark.parametrize("use_mirdata", [None, False])
def test_validate_a_hand_made_partial_copy_against_a_mirdata_index(use_mirdata, server, tmp_path, monkeypatch):
    """No genrekit record at all: the mirdata-format index alone says which clips are missing or damaged."""
    if use_mirdata is None:
        pytest.importorskip("mirdata")
    names = {f"audio/{n.removeprefix('toy/')}": d for n, d in FILES.items()}
    index = _mirdata_index(names)
    server.files["/data/index.json"] = index
    toy = entry(server.url, server.files["/data/toy.tar.gz"])
    toy["resources"].append({"name": "index", "filename": "index.json", "url": f"{server.url}/data/index.json",
                             "checksum": sha256(index), "target": "idx/index.json"})
    toy["index"] = "index"
    monkeypatch.setenv("GENREKIT_CATALOGUE", str(write_catalogue(tmp_path / "cat.json", [toy])))
    folder = tmp_path / "root/toy"
    kept = sorted(names)[:4]
    for rel in kept:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(names[rel])
    (folder / kept[0]).write_bytes(b"damaged")
    (folder / "idx").mkdir()
    (folder / "idx/index.json").write_bytes(index)

    result = validate(get_dataset("toy"), tmp_path / "root", use_mirdata=use_mirdata)
    audio = {c.path: c.status for c in result.checks if c.resource == "audio"}
    assert audio == {rel: ("corrupt" if rel == kept[0] else "present" if rel in kept else "missing")
                     for rel in names}
    assert result.counts() == {"present": 3 + 1, "missing": len(names) - 4 + 1, "corrupt": 1}  # + index, artists


def test_builtin_entries_name_a_checksum_for_every_file():
    for ds in BUILTIN:
        for r in ds.resources:
            assert r.checksum and r.url.startswith(("http://", "https://")), (ds.name, r.name)
    assert get_dataset("fma-small").requires == ("fma-metadata",)


def test_gtzan_split_and_artist_checksums_match_the_published_files(shared_data):
    """The split lists and artist index in the shared data are the published files the entry names."""
    gtzan = get_dataset("gtzan")
    for r in gtzan.resources:
        if r.name.startswith("split-") or r.name == "artists":
            local = shared_data / "gtzan" / ("GTZANindex.txt" if r.name == "artists" else
                                              f"splits/fault_filtered/{r.filename}")
            assert sha256(local.read_bytes()) == r.checksum


def test_mirdata_entries_are_mirdata_s_own_remotes_and_indexes():
    """gtzan and ballroom take mirdata's URLs and md5s: fail if mirdata changes them."""
    pytest.importorskip("mirdata")
    from mirdata.datasets import ballroom, gtzan_genre

    pairs = [(get_dataset("gtzan"), gtzan_genre, "all"), (get_dataset("ballroom"), ballroom, "audio")]
    for ds, module, remote_key in pairs:
        remote = module.REMOTES[remote_key]
        audio = ds.resource("audio")
        assert (audio.url, audio.checksum, audio.filename) == (remote.url, f"md5:{remote.checksum}", remote.filename)
        assert audio.target == remote.destination_dir
        index = module.INDEXES[module.INDEXES["default"]]
        r = ds.resource("index")
        assert (r.url, r.checksum, r.filename) == (index.remote.url, f"md5:{index.remote.checksum}", index.filename)


def test_a_server_without_range_support_sends_the_whole_file_again(toy, server):
    server.drop["/data/toy.tar.gz"] = 1
    server.ignore_range.add("/data/toy.tar.gz")
    assert main(["datasets", "download", "toy", "--root", str(toy), "--retries", "1"]) == 0
    assert validate(get_dataset("toy"), toy).ok  # the half already there was not kept in front of the whole


def test_a_local_folder_serves_as_mirror(server, tmp_path, monkeypatch):
    archive = server.files["/data/toy.tar.gz"]
    with FileServer() as closed:
        dead = closed.url
    monkeypatch.setenv("GENREKIT_CATALOGUE", str(write_catalogue(tmp_path / "cat.json", [entry(dead, archive)])))
    local = tmp_path / "downloads"
    local.mkdir()
    (local / "toy.tar.gz").write_bytes(archive)
    (local / "index.txt").write_bytes(ARTISTS)
    root = tmp_path / "root"
    assert main(["datasets", "download", "toy", "--root", str(root), "--mirror", local.as_uri()]) == 0
    assert validate(get_dataset("toy"), root).ok


def test_progress_bar_shows_size_and_rate(server, tmp_path, capsys):
    from genrekit.datasets.download import fetch

    data = server.files["/data/toy.tar.gz"]
    fetch(server.url + "/data/toy.tar.gz", tmp_path / "t.part", checksum=sha256(data), progress=True, label="toy")
    err = capsys.readouterr().err
    size_kib = f"{len(data) / 1024:.0f}"
    assert "toy" in err and "B/s" in err and size_kib[:2] in err
    assert (tmp_path / "t.part").read_bytes() == data


def test_temporary_folders_of_a_killed_run_are_removed(toy):
    stale = toy / "toy/.genrekit/tmp-999999999-deadbeef"
    (stale / "toy/blues").mkdir(parents=True)
    (stale / "toy/blues/half.wav").write_bytes(b"half")
    assert main(["datasets", "download", "toy", "--root", str(toy)]) == 0
    assert not stale.exists() and leftovers(toy / "toy") == []


def test_restoring_a_damaged_copy_keeps_the_users_own_files_unless_forced(toy, capsys):
    assert main(["datasets", "download", "toy", "--root", str(toy)]) == 0
    audio = toy / "toy/audio"
    (audio / "rock/rock.00001.wav").unlink()
    (audio / "rock/my-remix.wav").write_bytes(b"mine")
    assert main(["datasets", "download", "toy", "--root", str(toy)]) == 1
    assert "my-remix.wav exists" in capsys.readouterr().err
    (audio / "rock/my-remix.wav").unlink()
    assert main(["datasets", "download", "toy", "--root", str(toy)]) == 0  # only genrekit's files: restored
    assert validate(get_dataset("toy"), toy).ok


def test_download_after_a_validate_that_found_damage_fetches_again(toy, server):
    assert main(["datasets", "download", "toy", "--root", str(toy)]) == 0
    (toy / "toy/audio/blues/blues.00000.wav").write_bytes(b"damaged")
    assert main(["datasets", "validate", "toy", "--root", str(toy)]) == 1
    n = len(server.requests)
    assert main(["datasets", "download", "toy", "--root", str(toy)]) == 0
    assert len(server.requests) > n
    assert main(["datasets", "validate", "toy", "--root", str(toy)]) == 0


def test_list_and_info_describe_the_builtin_datasets(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("GENREKIT_CATALOGUE", raising=False)
    assert main(["datasets", "list", "--root", str(tmp_path)]) == 0
    listed = capsys.readouterr().out
    for name in ("gtzan", "fma-metadata", "fma-small", "fma-medium", "ballroom"):
        assert f"\n{name} " in listed
    assert main(["datasets", "info", "gtzan"]) == 0
    info = capsys.readouterr().out
    for words in ("tracks: 1,000", "size: 1.2 GB", "licence:", "citation: G. Tzanetakis", "exact repetitions",
                  "mislabellings", "distorted", "fault-filtered split", "md5:5b3d6dddb579ab49814ab86dba69e7c7"):
        assert words in info
    assert main(["datasets", "info", "fma-small"]) == 0
    assert "sha1:ade154f733639d52e35e32f5593efe5be76c6d70" in capsys.readouterr().out
    assert main(["datasets", "info", "nope"]) == 1
    assert "unknown dataset 'nope'" in capsys.readouterr().err
