"""Settings: defaults, precedence (override > environment > file > default), validation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from facetrust.config import Settings
from facetrust.errors import ConfigurationError


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the per-user config directory at an empty folder, so a developer's file cannot leak in."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_settings_defaults_are_the_documented_values() -> None:
    settings = Settings()
    assert settings.cache_dir is None
    assert settings.max_image_bytes == 15 * 1024 * 1024
    assert settings.max_image_pixels == 40_000_000
    assert settings.min_face_size == 40
    assert settings.detection_threshold == 0.5
    assert settings.detector_max_side == 640
    assert settings.flip_augment is True
    assert settings.threads == 0
    assert settings.batch_size == 16


def test_settings_load_without_sources_gives_the_defaults() -> None:
    assert Settings.load(environ={}) == Settings()


def test_settings_are_frozen_and_replace_makes_a_changed_copy() -> None:
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.threads = 3  # type: ignore[misc]
    changed = settings.replace(threads=3)
    assert (settings.threads, changed.threads) == (0, 3)


def test_settings_are_hashable_and_equal_by_value() -> None:
    assert Settings(threads=2) == Settings(threads=2)
    assert hash(Settings(threads=2)) == hash(Settings(threads=2))
    assert Settings(threads=2) != Settings(threads=3)


def test_settings_load_reads_every_setting_from_the_environment(tmp_path: Path) -> None:
    environ = {
        "FACETRUST_CACHE_DIR": str(tmp_path / "cache"),
        "FACETRUST_MAX_IMAGE_BYTES": "1000",
        "FACETRUST_MAX_IMAGE_PIXELS": "2000",
        "FACETRUST_MIN_FACE_SIZE": "20",
        "FACETRUST_DETECTION_THRESHOLD": "0.7",
        "FACETRUST_DETECTOR_MAX_SIDE": "320",
        "FACETRUST_FLIP_AUGMENT": "false",
        "FACETRUST_THREADS": "2",
        "FACETRUST_BATCH_SIZE": "8",
    }
    assert Settings.load(environ=environ) == Settings(
        cache_dir=tmp_path / "cache",
        max_image_bytes=1000,
        max_image_pixels=2000,
        min_face_size=20,
        detection_threshold=0.7,
        detector_max_side=320,
        flip_augment=False,
        threads=2,
        batch_size=8,
    )


@pytest.mark.parametrize(("raw", "value"), [("1", True), ("yes", True), ("ON", True), ("0", False), ("no", False)])
def test_settings_load_reads_boolean_words_from_the_environment(raw: str, value: bool) -> None:
    assert Settings.load(environ={"FACETRUST_FLIP_AUGMENT": raw}).flip_augment is value


def test_settings_load_ignores_environment_variables_of_other_programs() -> None:
    settings = Settings.load(environ={"THREADS": "9", "FACETRUST_DATA": "/somewhere", "PATH": "/bin"})
    assert settings == Settings()


def test_settings_load_reads_a_toml_file_section(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path / "config.toml",
        '[facetrust]\nmin_face_size = 24\ndetection_threshold = 0.6\nflip_augment = false\ncache_dir = "~/models"\n',
    )
    settings = Settings.load(environ={}, config_file=path)
    assert settings.min_face_size == 24
    assert settings.detection_threshold == 0.6
    assert settings.flip_augment is False
    assert settings.cache_dir == Path("~/models").expanduser()


def test_settings_load_reads_top_level_keys_when_the_file_has_no_section(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "config.toml", "threads = 4\n")
    assert Settings.load(environ={}, config_file=path).threads == 4


def test_settings_load_finds_the_file_named_by_facetrust_config(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "elsewhere.toml", "[facetrust]\nbatch_size = 4\n")
    assert Settings.load(environ={"FACETRUST_CONFIG": str(path)}).batch_size == 4


def test_settings_load_finds_the_user_config_file(tmp_path: Path) -> None:
    folder = tmp_path / "xdg-config" / "facetrust"
    folder.mkdir(parents=True)
    write_toml(folder / "config.toml", "[facetrust]\nbatch_size = 5\n")
    assert Settings.load(environ={}).batch_size == 5


def test_settings_load_prefers_environment_over_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "config.toml", "[facetrust]\nthreads = 4\nbatch_size = 4\n")
    settings = Settings.load(environ={"FACETRUST_THREADS": "2"}, config_file=path)
    assert settings.threads == 2  # environment wins
    assert settings.batch_size == 4  # file still applies where the environment is silent


def test_settings_load_prefers_overrides_over_environment_and_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "config.toml", "[facetrust]\nthreads = 4\nmin_face_size = 30\nbatch_size = 4\n")
    environ = {"FACETRUST_THREADS": "2", "FACETRUST_MIN_FACE_SIZE": "35"}
    settings = Settings.load({"threads": 1}, environ=environ, config_file=path)
    assert settings.threads == 1  # override > environment > file
    assert settings.min_face_size == 35  # environment > file
    assert settings.batch_size == 4  # file > default


def test_an_explicit_value_is_used_even_when_the_variable_for_it_is_malformed(tmp_path: Path) -> None:
    environ = {"FACETRUST_DATA_DIR": "", "FACETRUST_THREADS": "many"}
    settings = Settings.load({"data_dir": tmp_path, "threads": 2}, environ=environ)
    assert (settings.data_dir, settings.threads) == (tmp_path, 2)
    with pytest.raises(ConfigurationError, match="FACETRUST_THREADS"):
        Settings.load({"data_dir": tmp_path}, environ=environ)  # not overridden: still read, and refused


def test_settings_load_treats_a_none_override_as_not_given() -> None:
    settings = Settings.load({"threads": None}, environ={"FACETRUST_THREADS": "3"})
    assert settings.threads == 3


def test_settings_load_coerces_string_overrides() -> None:
    settings = Settings.load({"threads": "3", "flip_augment": "off", "cache_dir": "/tmp/ft"}, environ={})
    assert (settings.threads, settings.flip_augment, settings.cache_dir) == (3, False, Path("/tmp/ft"))


def test_settings_resolved_cache_dir_is_the_given_folder_or_the_user_cache(tmp_path: Path) -> None:
    assert Settings(cache_dir=tmp_path).resolved_cache_dir == tmp_path
    default = Settings().resolved_cache_dir
    assert isinstance(default, Path)
    assert "facetrust" in default.parts


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_image_bytes", 0),
        ("max_image_pixels", -1),
        ("min_face_size", 0),
        ("detection_threshold", 0.0),
        ("detection_threshold", 1.0),
        ("detector_max_side", 32),
        ("detector_max_side", 10_000),
        ("threads", -1),
        ("threads", 1000),
        ("batch_size", 0),
        ("retention_sweep_seconds", 1e-6),  # a sweep (and an audit entry) a microsecond
        ("retention_sweep_seconds", float("inf")),  # "never" is 0
        ("vacuum_seconds", 0.5),  # a vacuum (a rewrite of the store, and an audit entry) twice a second
        ("vacuum_seconds", float("inf")),  # "never" is 0
        ("change_log_days", 0.5),  # shorter than a weekend: a replica restarted after one rebuilds every index
        ("change_log_days", float("inf")),  # "never" is 0
        ("change_log_days", -1.0),
    ],
)
def test_settings_refuse_an_out_of_range_value_naming_the_setting(name: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=f"{name}={value!r}") as info:
        Settings(**{name: value})  # type: ignore[arg-type]
    assert info.value.setting == name


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("threads", [1]),
        ("threads", 2.5),
        ("min_face_size", True),
        ("flip_augment", 1),
        ("detection_threshold", "high"),
        ("cache_dir", 5),
    ],
)
def test_settings_refuse_a_value_of_the_wrong_type_naming_the_setting(name: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=name) as info:
        Settings.load({name: value}, environ={})
    assert info.value.setting == name


def test_settings_refuse_a_wrongly_typed_value_from_a_toml_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "config.toml", "[facetrust]\nthreads = [1, 2]\n")
    with pytest.raises(ConfigurationError, match="threads") as info:
        Settings.load(environ={}, config_file=path)
    assert info.value.setting == "threads"


@pytest.mark.parametrize(
    ("variable", "raw", "setting"),
    [
        ("FACETRUST_THREADS", "many", "threads"),
        ("FACETRUST_DETECTION_THRESHOLD", "high", "detection_threshold"),
        ("FACETRUST_FLIP_AUGMENT", "maybe", "flip_augment"),
    ],
)
def test_settings_load_refuses_an_unparsable_environment_value_naming_the_variable(
    variable: str, raw: str, setting: str
) -> None:
    with pytest.raises(ConfigurationError, match=f"{variable}='{raw}'") as info:
        Settings.load(environ={variable: raw})
    assert info.value.setting == setting


def test_settings_load_refuses_an_out_of_range_environment_value() -> None:
    with pytest.raises(ConfigurationError, match="batch_size") as info:
        Settings.load(environ={"FACETRUST_BATCH_SIZE": "0"})
    assert info.value.setting == "batch_size"


def test_settings_load_refuses_an_unknown_key_in_the_file_listing_the_known_ones(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "config.toml", "[facetrust]\nthreads = 2\nthreadz = 2\n")
    with pytest.raises(ConfigurationError, match=r"Unknown setting 'threadz'; known: .*threads") as info:
        Settings.load(environ={}, config_file=path)
    assert info.value.setting == "threadz"


def test_settings_load_refuses_an_unknown_override() -> None:
    with pytest.raises(ConfigurationError, match="'detector'") as info:
        Settings.load({"detector": "scrfd"}, environ={})
    assert info.value.setting == "detector"


def test_settings_load_refuses_a_missing_config_file_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigurationError, match="does not exist") as info:
        Settings.load(environ={}, config_file=path)
    assert str(path) in str(info.value)


def test_settings_load_refuses_a_missing_file_named_by_facetrust_config(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigurationError, match="does not exist"):
        Settings.load(environ={"FACETRUST_CONFIG": str(path)})


@pytest.mark.parametrize("raw", ["", "  "])
def test_settings_load_refuses_an_empty_facetrust_config_naming_it(
    raw: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # before: the current directory, read as "Config file . cannot be read"
    with pytest.raises(ConfigurationError, match=r"FACETRUST_CONFIG='.*' is not a path") as info:
        Settings.load(environ={"FACETRUST_CONFIG": raw})
    assert info.value.setting == "config"


def test_settings_load_refuses_invalid_toml_naming_the_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "config.toml", "[facetrust\nthreads = \n")
    with pytest.raises(ConfigurationError, match="not valid TOML") as info:
        Settings.load(environ={}, config_file=path)
    assert str(path) in str(info.value)


def test_settings_load_refuses_a_facetrust_key_that_is_not_a_table(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "config.toml", 'facetrust = "yes"\n')
    with pytest.raises(ConfigurationError, match="must be a table"):
        Settings.load(environ={}, config_file=path)


def test_settings_turn_a_string_cache_dir_into_a_path() -> None:
    settings = Settings(cache_dir="~/ft-cache")  # type: ignore[arg-type]
    assert settings.cache_dir == Path("~/ft-cache").expanduser()
    assert settings.resolved_cache_dir / "models" == Path("~/ft-cache/models").expanduser()


@pytest.mark.parametrize("raw", ["", "   ", "a\0b"])
def test_an_empty_path_or_one_with_a_nul_is_refused_not_taken_as_the_current_directory(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="not a path") as info:
        Settings.load(environ={"FACETRUST_DATA_DIR": raw})
    assert info.value.setting == "data_dir"
    with pytest.raises(ConfigurationError, match="not empty, no NUL"):
        Settings(cache_dir=raw)  # type: ignore[arg-type]  # as a config file's value would come


def test_a_config_file_that_is_a_folder_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=f"Config file {tmp_path} cannot be read: Is a directory"):
        Settings.load(environ={}, config_file=tmp_path)


def test_a_config_file_with_settings_beside_its_facetrust_table_names_them_instead_of_ignoring_them(
    tmp_path: Path,
) -> None:
    path = write_toml(tmp_path / "config.toml", 'data_dir = "/srv/faces"\n[facetrust]\nindex_backend = "exact"\n')
    with pytest.raises(ConfigurationError, match="data_dir outside the \\[facetrust\\] table would not be read"):
        Settings.load(environ={}, config_file=path)


def test_a_config_file_that_is_a_fifo_is_refused_at_once_not_waited_on(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigurationError, match="not a regular file"):
        Settings.load(environ={}, config_file=fifo)


def test_a_malformed_store_url_is_refused_without_echoing_what_may_be_its_password() -> None:
    with pytest.raises(ConfigurationError, match="store='postgres:…' is invalid") as info:
        Settings(store="postgres:/u:S3CRET@h/db")
    assert "S3CRET" not in str(info.value)
