"""Group options: settings overrides reach the engine's Settings; bad values are errors naming the setting."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from facetrust.cli import cli, main
from facetrust.config import Settings
from facetrust.engine import FaceEngine
from facetrust.models.fake import fake_engine

MakeImage = Callable[..., str]


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Settings]:
    """Make the CLI build its engine through a stub that records the Settings it is given."""
    config = tmp_path / "config.toml"
    config.write_text("")
    monkeypatch.setenv("FACETRUST_CONFIG", str(config))
    seen: list[Settings] = []

    def load_engine(settings: Settings | None = None) -> FaceEngine:
        assert settings is not None
        seen.append(settings)
        return fake_engine()

    monkeypatch.setattr("facetrust.engine.load_engine", load_engine)
    return seen


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))  # no engine injected: the CLI builds one


def test_global_options_become_settings_overrides(built: list[Settings], make_image: MakeImage, tmp_path: Path) -> None:
    image = make_image("empty.png")

    result = run("--cache-dir", str(tmp_path), "--no-flip", "--detection-threshold", "0.7", "detect", image)

    assert result.exit_code == 0
    assert built == [Settings(cache_dir=tmp_path, flip_augment=False, detection_threshold=0.7)]


def test_without_global_options_the_engine_gets_default_settings(built: list[Settings], make_image: MakeImage) -> None:
    result = run("detect", make_image("empty.png"))

    assert result.exit_code == 0
    assert built == [Settings()]


def test_an_invalid_detection_threshold_is_an_error_naming_the_setting(
    built: list[Settings], make_image: MakeImage
) -> None:
    result = run("--detection-threshold", "1.5", "detect", make_image("empty.png"))

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "Error: Setting detection_threshold=1.5 is invalid: must be between 0 and 1\n"
    assert built == []


def test_compare_exits_2_for_an_invalid_setting(built: list[Settings], make_image: MakeImage) -> None:
    image = make_image("empty.png")

    result = run("--detection-threshold", "0", "compare", image, image)

    assert result.exit_code == 2
    assert result.stderr == "Error: Setting detection_threshold=0.0 is invalid: must be between 0 and 1\n"


def test_an_injected_engine_is_used_instead_of_building_one(built: list[Settings], make_image: MakeImage) -> None:
    engine = fake_engine()
    obj = {"engine": engine}

    result = CliRunner().invoke(cli, ["detect", make_image("empty.png")], obj=obj)

    assert result.exit_code == 0
    assert built == []
    assert obj["engine"] is engine


def test_version_option_prints_the_package_version() -> None:
    from importlib.metadata import version

    result = run("--version")

    assert result.exit_code == 0
    assert result.stdout == f"facetrust, version {version('facetrust')}\n"


def test_main_runs_the_group_as_the_console_script(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["models", "list", "--json"])

    assert exit_info.value.code == 0
    assert '"name": "yunet-2023mar"' in capsys.readouterr().out


def test_an_empty_data_directory_is_a_usage_error_not_the_current_directory(
    built: list[Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    tmp_path.chmod(0o755)

    result = run("--data", "", "collections", "list")

    assert result.exit_code == 2
    assert result.stderr.endswith("Error: Invalid value for '--data': the path is empty.\n")
    assert not (tmp_path / "facetrust.db").exists()
    assert tmp_path.stat().st_mode & 0o777 == 0o755  # not made private as a data directory


@pytest.mark.parametrize("option", ["--cache-dir", "--policy"])
def test_an_empty_path_setting_is_a_usage_error(built: list[Settings], make_image: MakeImage, option: str) -> None:
    result = run(option, "", "detect", make_image("empty.png"))

    assert result.exit_code == 2
    assert result.stderr.endswith(f"Error: Invalid value for '{option}': the path is empty.\n")
    assert built == []


def test_a_data_directory_in_a_symlink_loop_is_an_error_naming_it(built: list[Settings], tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)

    result = run("--data", str(loop), "collections", "list")

    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: Data directory {loop} cannot be resolved: ")
    assert "\n" not in result.stderr.rstrip("\n")


def test_a_data_directory_name_too_long_is_an_error_naming_the_database(built: list[Settings], tmp_path: Path) -> None:
    data = tmp_path / ("d" * 300)

    result = run("--data", str(data), "collections", "list")

    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: Cannot open database {data / 'facetrust.db'}: [Errno 36] File name too long"
    )
    assert result.stderr.count("\n") == 1
