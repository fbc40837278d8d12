"""--data and --index-backend reach the FaceService the CLI opens (and closes) when none is injected."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from facetrust.cli import cli
from facetrust.config import Settings
from facetrust.engine import FaceEngine
from facetrust.models.fake import fake_engine
from facetrust.service import FaceService
from pg_cluster import StoreBackend


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[FaceService]:
    """Build engines with the fake models, and record every FaceService the CLI opens."""
    config = tmp_path / "config.toml"
    config.write_text("")
    monkeypatch.setenv("FACETRUST_CONFIG", str(config))
    engine = fake_engine()

    def load_engine(settings: Settings | None = None) -> FaceEngine:
        return engine

    monkeypatch.setattr("facetrust.engine.load_engine", load_engine)
    seen: list[FaceService] = []
    original = FaceService.open.__func__  # type: ignore[attr-defined]

    def open_and_record(cls: type[FaceService], *args: object, **kwargs: object) -> FaceService:
        service: FaceService = original(cls, *args, **kwargs)
        seen.append(service)
        return service

    monkeypatch.setattr(FaceService, "open", classmethod(open_and_record))
    return seen


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))  # nothing injected: the CLI opens the service


def test_data_option_chooses_the_data_directory(
    opened: list[FaceService], tmp_path: Path, store_backend: StoreBackend
) -> None:
    data = tmp_path / "collections"

    created = run("--data", str(data), "collections", "create", "people")
    listed = run("--data", str(data), "collections", "list")

    assert (created.exit_code, listed.exit_code) == (0, 0)
    assert listed.stdout == "name    model\npeople  fake-recogniser:0\n"
    assert [s.data_dir for s in opened] == [data, data]
    assert (data / "facetrust.db").is_file() or store_backend.name == "postgresql"


def test_the_service_is_closed_when_the_command_ends(
    opened: list[FaceService], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[FaceService] = []
    original = FaceService.close

    def close(self: FaceService) -> None:
        closed.append(self)
        original(self)

    monkeypatch.setattr(FaceService, "close", close)

    result = run("--data", str(tmp_path), "collections", "describe", "nobody")

    assert result.exit_code == 1
    assert result.stderr == "Error: Collection 'nobody' does not exist\n"
    assert closed == opened and len(closed) == 1


def test_index_backend_option_reaches_the_service(opened: list[FaceService], tmp_path: Path) -> None:
    result = run("--data", str(tmp_path), "--index-backend", "exact", "collections", "list")

    assert result.exit_code == 0
    assert [s.indexes.backend for s in opened] == ["exact"]


def test_an_unknown_index_backend_is_a_usage_error(opened: list[FaceService], tmp_path: Path) -> None:
    result = run("--index-backend", "faiss", "collections", "list")

    assert result.exit_code == 2
    assert (
        "Invalid value for '--index-backend': 'faiss' is not one of 'auto', 'exact', 'pq', 'hnsw', 'ivf'."
        in result.stderr
    )
    assert opened == []


def test_an_injected_service_is_used_and_left_open(opened: list[FaceService], tmp_path: Path) -> None:
    service = FaceService(tmp_path / "data", fake_engine())
    try:
        result = CliRunner().invoke(
            cli, ["collections", "create", "people"], obj={"service": service, "engine": service.engine}
        )

        assert result.exit_code == 0
        assert opened == []
        assert service.list_collections().names == ("people",)
    finally:
        service.close()
