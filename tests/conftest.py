"""Shared fixtures: the fake engine, the real engine, and the evaluation data under ../shared."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from facetrust.engine import FaceEngine
from facetrust.models.fake import fake_engine

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
