"""Concurrent image decodes over HTTP: a full decode budget answers ThrottlingException, never a 500."""

from __future__ import annotations

import io

import pytest
from botocore.exceptions import ClientError

from facetrust.budget import DecodeBudget
from facetrust.models.fake import face_png

from .conftest import Api


def _blank_png(width: int, height: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("1", (width, height), 0).save(out, "PNG")
    return out.getvalue()


def test_a_decode_while_the_budget_is_held_is_throttled_then_served_once_freed(api: Api) -> None:
    engine = api.service.engine
    engine.budget = DecodeBudget(1_000_000, wait=0.05)
    held = engine.load_image(_blank_png(1000, 900))  # another request's image, still in use
    image = face_png((40, 40, 80, 1))

    with pytest.raises(ClientError) as refused:
        api.client.detect_faces(Image={"Bytes": image})
    error = refused.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error["Error"]["Code"] == "ThrottlingException"
    assert "retry later" in error["Error"]["Message"]

    del held
    assert len(api.client.detect_faces(Image={"Bytes": image})["FaceDetails"]) == 1
    assert engine.budget.in_flight == 0
