"""CreateCollection with the facetrust:profile tag, IndexFaces and SearchFacesByImage through boto3,
with the real 'accurate' engine behind the server; and the tag refused by a default server."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from facetrust.config import Settings
from facetrust.engine import FaceEngine
from facetrust.server import create_app
from facetrust.service import FaceService

from .conftest import Api
from .live import rekognition, serving

PROFILE = {"facetrust:profile": "accurate"}


def photo(lfw: Path, name: str, number: int) -> bytes:
    return (lfw / "images" / name / f"{name}_{number:04d}.jpg").read_bytes()


@pytest.mark.model
@pytest.mark.data
def test_an_accurate_collection_indexes_and_finds_the_same_person(
    accurate: FaceEngine, lfw: Path, tmp_path: Path
) -> None:
    with FaceService(tmp_path, accurate) as service:
        with serving(create_app(service, authenticator=None, settings=Settings())) as url:
            client = rekognition(url)
            try:
                created = client.create_collection(CollectionId="people", Tags=PROFILE)
                for name, number in (("Aaron_Peirsol", 1), ("Aaron_Eckhart", 1)):
                    client.index_faces(
                        CollectionId="people", Image={"Bytes": photo(lfw, name, number)}, ExternalImageId=name
                    )
                found = client.search_faces_by_image(
                    CollectionId="people", Image={"Bytes": photo(lfw, "Aaron_Peirsol", 3)}, FaceMatchThreshold=80
                )
            finally:
                client.close()

    assert created["FaceModelVersion"] == accurate.model_id
    assert [m["Face"]["ExternalImageId"] for m in found["FaceMatches"]] == ["Aaron_Peirsol"]


def test_a_server_of_the_default_profile_refuses_an_accurate_collection(api: Api) -> None:
    with pytest.raises(ClientError) as info:
        api.client.create_collection(CollectionId="people", Tags=PROFILE)

    error = info.value.response["Error"]
    assert error["Code"] == "InvalidParameterException"
    assert "Profile 'accurate' needs a service started with it" in error["Message"]
    assert api.client.list_collections()["CollectionIds"] == []
