"""Fixtures for FaceService tests: a service over the fake engine in a temporary data dir."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facetrust.models.fake import draw_face, fake_engine
from facetrust.service import FaceService


def face_png(*faces: tuple[int, int, int, int], width: int = 400, height: int = 300) -> bytes:
    """PNG bytes with fake faces drawn as (left, top, size, pattern)."""
    img = np.full((height, width, 3), 60, np.uint8)
    for left, top, size, pattern in faces:
        draw_face(img, left, top, size, pattern)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[FaceService]:
    svc = FaceService(tmp_path / "data", fake_engine())
    yield svc
    svc.close()
