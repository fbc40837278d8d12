"""Shared fixtures: the fake engine, the real engine, and the evaluation data under ../shared."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facetrust.engine import FaceEngine
from facetrust.models.fake import fake_engine
from pg_cluster import STORE_BACKEND, PgServer, StoreBackend, session_server

REPO = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    env = os.environ.get("FACETRUST_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def require_data(name: str) -> Path:
    """The data folder ``name`` under the data root; skip without it, but fail under CI."""
    path = data_root() / name
    if not path.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but the evaluation data {path} is missing")
        pytest.skip(f"evaluation data {path} is absent (set FACETRUST_DATA to the folder holding {name}/)")
    return path


@pytest.fixture(autouse=True, scope="session")
def private_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The per-user config directory (where default keys are made) is a temporary one, never the real one."""
    folder = tmp_path_factory.mktemp("user-config")
    old = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(folder)
    yield folder / "facetrust"
    if old is None:
        os.environ.pop("XDG_CONFIG_HOME", None)
    else:
        os.environ["XDG_CONFIG_HOME"] = old


@pytest.fixture
def fake() -> FaceEngine:
    """A FaceEngine over the deterministic fake detector and recogniser."""
    return fake_engine()


@pytest.fixture(scope="session")
def engine() -> FaceEngine:
    """The real default engine (YuNet + SFace), loaded once per test session."""
    from facetrust.engine import load_engine

    return load_engine()


@pytest.fixture(scope="session")
def lfw() -> Path:
    return require_data("lfw")


@pytest.fixture(scope="session")
def utkface() -> Path:
    return require_data("utkface")


@pytest.fixture(scope="session")
def accurate() -> FaceEngine:
    """The real 'accurate' profile engine (YuNet + SFace fused with dlib), loaded once."""
    from facetrust.config import Settings
    from facetrust.engine import load_engine

    return load_engine(Settings(profile="accurate"))


@pytest.fixture(scope="session")
def story_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated story clip (two fake-engine persons; facetrust.video.synth), written once."""
    from facetrust.video.synth import story_scene, write_clip

    path = tmp_path_factory.mktemp("story") / "story.mp4"
    write_clip(path, story_scene(), crf=1)
    return path


# -- PostgreSQL (tests/pg.py) ------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A throwaway PostgreSQL for the session (skips without one; fails under CI=true)."""
    yield from session_server()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A ``postgresql://…`` URL whose connections use a fresh, empty schema."""
    return pg_server.schema_url()


@pytest.fixture(autouse=True)
def store_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> StoreBackend:
    """With FACETRUST_TEST_STORE=postgresql, every service (and key store) opened on a data
    directory without a ``store`` argument uses PostgreSQL: one fresh schema per data directory,
    so a service reopened on the same directory sees the same database, as on SQLite."""
    if STORE_BACKEND != "postgresql":
        return StoreBackend("sqlite", lambda data_dir: None)
    from facetrust.server import keys
    from facetrust.service import faceservice
    from facetrust.store import postgres

    server: PgServer = request.getfixturevalue("pg_server")
    urls: dict[Path, str] = {}

    def url_for(data_dir: Path) -> str:
        found = Path(data_dir).resolve()
        if found not in urls:
            urls[found] = server.schema_url()
        return urls[found]

    real_open_store, real_keys_open = postgres.open_store, keys.KeyStore.open.__func__  # type: ignore[attr-defined]

    def open_store(path: Path, url: str | None = None, **kwargs: Any) -> Any:
        return real_open_store(path, url_for(path.parent) if url is None else url, **kwargs)

    def open_keys(cls: type, data_dir: Path, **kwargs: Any) -> Any:
        if kwargs.get("store") is None:
            kwargs["store"] = url_for(data_dir)
        return real_keys_open(cls, data_dir, **kwargs)

    monkeypatch.setattr(postgres, "open_store", open_store)
    monkeypatch.setattr(faceservice, "open_store", open_store)
    monkeypatch.setattr(keys.KeyStore, "open", classmethod(open_keys))
    return StoreBackend("postgresql", url_for)
