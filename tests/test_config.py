"""Settings from the environment: defaults, overrides, and reading once."""

from pathlib import Path

from genrekit.config import VARIABLES, Settings, settings


def test_defaults_when_nothing_is_set():
    s = Settings.from_env({})
    assert s == Settings(data_root=Path.home() / "genrekit-data", cache_dir=Path.home() / ".cache" / "genrekit",
                         catalogue=None, web_stats=False,
                         state_dir=Path.home() / ".local" / "share" / "genrekit")
    assert Settings.from_env({"XDG_DATA_HOME": "/xdg"}).state_dir == Path("/xdg/genrekit")


def test_each_variable_sets_its_field(tmp_path):
    env = {"GENREKIT_DATA": "~/music-data", "GENREKIT_CACHE": str(tmp_path / "c"),
           "GENREKIT_CATALOGUE": str(tmp_path / "cat.json"), "GENREKIT_WEB_STATS": "1", "GENREKIT_OTHER": "x",
           "GENREKIT_STATE": str(tmp_path / "state")}
    s = Settings.from_env(env)
    assert s.data_root == Path.home() / "music-data"  # ~ expanded
    assert s.cache_dir == tmp_path / "c"
    assert s.catalogue == tmp_path / "cat.json"
    assert s.web_stats is True
    assert s.state_dir == tmp_path / "state"
    assert set(VARIABLES.values()) == {name for name in env if name != "GENREKIT_OTHER"}


def test_empty_counts_as_unset_and_stats_need_exactly_1():
    s = Settings.from_env({"GENREKIT_DATA": "", "GENREKIT_CACHE": "", "GENREKIT_CATALOGUE": "",
                           "GENREKIT_WEB_STATS": "yes"})
    assert s == Settings.from_env({})


def test_settings_are_read_once_until_cleared(monkeypatch, tmp_path):
    monkeypatch.setenv("GENREKIT_CACHE", str(tmp_path / "first"))
    assert settings().cache_dir == tmp_path / "first"
    monkeypatch.setenv("GENREKIT_CACHE", str(tmp_path / "second"))
    assert settings() is settings() and settings().cache_dir == tmp_path / "first"
    settings.cache_clear()
    assert settings().cache_dir == tmp_path / "second"
