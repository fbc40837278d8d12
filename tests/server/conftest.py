"""A real uvicorn server over the fake engine (auth disabled), an unmodified boto3 client, and httpx."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from facetrust.config import Settings
from facetrust.models.fake import fake_engine
from facetrust.server import create_app
from facetrust.service import FaceService

from .live import rekognition, serving, with_facetrust_fields

# Small, so the size limits can be tested with small bodies.
MAX_IMAGE_BYTES = 300_000


@dataclass
class Api:
    url: str
    client: Any  # botocore's generated Rekognition client
    calibrated: Any  # another one, with docs/http.md's hook that keeps facetrust's extra fields
    http: httpx.Client
    service: FaceService


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    service = FaceService(tmp_path / "data", fake_engine())
    settings = Settings(data_dir=tmp_path / "data", max_image_bytes=MAX_IMAGE_BYTES)
    app = create_app(service, authenticator=None, settings=settings)
    try:
        with serving(app) as url, httpx.Client(base_url=url, timeout=30) as http:
            client, calibrated = rekognition(url), with_facetrust_fields(rekognition(url))
            try:
                yield Api(url, client, calibrated, http, service)
            finally:
                client.close()
                calibrated.close()
    finally:
        service.close()
