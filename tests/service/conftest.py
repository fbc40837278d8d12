"""Fixtures for FaceService tests: a service over the fake engine in a temporary data dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from facetrust.models.fake import fake_engine
from facetrust.service import FaceService


@pytest.fixture
def service(tmp_path: Path) -> Iterator[FaceService]:
    svc = FaceService(tmp_path / "data", fake_engine())
    yield svc
    svc.close()
