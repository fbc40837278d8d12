"""The real default engine behind the server, on LFW photographs (skips without ../shared/data/lfw)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facetrust.config import Settings
from facetrust.engine import FaceEngine
from facetrust.server import create_app
from facetrust.service import FaceService

from .live import rekognition, serving, with_facetrust_fields

pytestmark = [pytest.mark.model, pytest.mark.data]


@pytest.fixture
def client(engine: FaceEngine, tmp_path: Path) -> Iterator[Any]:
    with FaceService(tmp_path, engine) as service:
        with serving(create_app(service, authenticator=None, settings=Settings())) as url:
            rek = with_facetrust_fields(rekognition(url))
            try:
                yield rek
            finally:
                rek.close()


def photo(lfw: Path, name: str, number: int) -> bytes:
    return (lfw / "images" / name / f"{name}_{number:04d}.jpg").read_bytes()


def test_detect_faces_finds_the_one_face_of_an_lfw_portrait(client: Any, lfw: Path) -> None:
    (face,) = client.detect_faces(Image={"Bytes": photo(lfw, "Aaron_Peirsol", 1)})["FaceDetails"]

    box = face["BoundingBox"]
    assert 0.2 < box["Left"] + box["Width"] / 2 < 0.8 and 0.2 < box["Top"] + box["Height"] / 2 < 0.8
    assert face["Confidence"] > 80
    assert {m["Type"] for m in face["Landmarks"]} == {"eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight"}


def test_compare_faces_matches_two_photos_of_the_same_person(client: Any, lfw: Path) -> None:
    out = client.compare_faces(
        SourceImage={"Bytes": photo(lfw, "Aaron_Peirsol", 1)}, TargetImage={"Bytes": photo(lfw, "Aaron_Peirsol", 2)}
    )

    (match,) = out["FaceMatches"]
    assert match["Similarity"] >= 80
    assert match["EstimatedFalseMatchRate"] <= 1e-4
    assert out["ScoreNormalisation"] == "cluster"  # the shipped 1:1 normaliser, on by default


def test_compare_faces_does_not_match_two_different_people(client: Any, lfw: Path) -> None:
    out = client.compare_faces(
        SourceImage={"Bytes": photo(lfw, "Aaron_Peirsol", 1)}, TargetImage={"Bytes": photo(lfw, "AJ_Cook", 1)}
    )

    assert out["FaceMatches"] == []
    assert len(out["UnmatchedFaces"]) == 1


def test_search_faces_by_image_finds_the_indexed_person(client: Any, lfw: Path) -> None:
    client.create_collection(CollectionId="lfw")
    for name, number in (("Aaron_Peirsol", 1), ("AJ_Cook", 1), ("Aaron_Eckhart", 1)):
        client.index_faces(CollectionId="lfw", Image={"Bytes": photo(lfw, name, number)}, ExternalImageId=name)

    out = client.search_faces_by_image(CollectionId="lfw", Image={"Bytes": photo(lfw, "Aaron_Peirsol", 3)})

    assert [m["Face"]["ExternalImageId"] for m in out["FaceMatches"]] == ["Aaron_Peirsol"]
    assert out["GallerySize"] == 3
