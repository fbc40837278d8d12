"""Profiles per collection over HTTP: a server of the default profile creates, fills, searches and
erases an 'accurate' collection (the real fused engine) beside a default one, through an unmodified
boto3; and the FaceModelProfile member of CreateCollection."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from facetrust.config import Settings
from facetrust.engine import FaceEngine
from facetrust.server import create_app
from facetrust.service import FaceService

from .conftest import Api
from .live import rekognition, serving, with_facetrust_fields

PROFILE = {"facetrust:profile": "accurate"}


def photo(lfw: Path, name: str, number: int) -> bytes:
    return (lfw / "images" / name / f"{name}_{number:04d}.jpg").read_bytes()


def _fill(client: Any, collection: str, lfw: Path) -> dict[str, str]:
    """Index one photo of each of two people; their face ids by name."""
    ids = {}
    for name in ("Aaron_Peirsol", "Aaron_Eckhart"):
        done = client.index_faces(CollectionId=collection, Image={"Bytes": photo(lfw, name, 1)}, ExternalImageId=name)
        ids[name] = done["FaceRecords"][0]["Face"]["FaceId"]
    return ids


def _search(client: Any, collection: str, lfw: Path, threshold: float = 80) -> Any:
    probe = {"Bytes": photo(lfw, "Aaron_Peirsol", 3)}
    return client.search_faces_by_image(CollectionId=collection, Image=probe, FaceMatchThreshold=threshold)


@pytest.mark.model
@pytest.mark.data
def test_a_default_server_indexes_searches_and_erases_an_accurate_collection_beside_a_default_one(
    engine: FaceEngine, accurate: FaceEngine, lfw: Path, tmp_path: Path
) -> None:
    with FaceService(tmp_path, engine) as service:
        with serving(create_app(service, authenticator=None, settings=Settings())) as url:
            client = with_facetrust_fields(rekognition(url))
            try:
                created = client.create_collection(CollectionId="people", Tags=PROFILE)
                client.create_collection(CollectionId="plain")
                ids = _fill(client, "people", lfw)
                _fill(client, "plain", lfw)
                found, plain = _search(client, "people", lfw), _search(client, "plain", lfw)
                everyone = _search(client, "people", lfw, threshold=0)
                described = client.describe_collection(CollectionId="people")
                deleted = client.delete_faces(CollectionId="people", FaceIds=[ids["Aaron_Peirsol"]])
                after = _search(client, "people", lfw)
                left = client.list_faces(CollectionId="people")["Faces"]
            finally:
                client.close()
        chain = service.verify_audit_log()
        created_entry = next(e for e in service.get_audit_log().entries if e.data["operation"] == "CreateCollection")
        profile = service.describe_collection("people").profile  # boto3 drops the FaceModelProfile extension
    probe = accurate.embed_largest(photo(lfw, "Aaron_Peirsol", 3)).vector  # type: ignore[union-attr]
    score = float(probe @ accurate.embed_largest(photo(lfw, "Aaron_Peirsol", 1)).vector)  # type: ignore[union-attr]
    stranger = float(probe @ accurate.embed_largest(photo(lfw, "Aaron_Eckhart", 1)).vector)  # type: ignore[union-attr]
    other = next(m for m in everyone["FaceMatches"] if m["Face"]["ExternalImageId"] == "Aaron_Eckhart")

    assert created["FaceModelVersion"] == described["FaceModelVersion"] == accurate.model_id
    assert profile == "accurate" and described["FaceCount"] == 2
    assert found["FaceModelVersion"] == accurate.model_id and plain["FaceModelVersion"] == engine.model_id
    assert [m["Face"]["ExternalImageId"] for m in found["FaceMatches"]] == ["Aaron_Peirsol"]
    # the fused templates' score, judged by the fused profile's own table (not the default one's)
    assert found["FaceMatches"][0]["Similarity"] == pytest.approx(accurate.calibration.similarity(score), abs=0.05)
    # a stranger's score lies where the two tables disagree (mated scores reach 100 on both)
    assert other["Similarity"] == pytest.approx(accurate.calibration.similarity(stranger), abs=0.05)
    assert abs(accurate.calibration.similarity(stranger) - engine.calibration.similarity(stranger)) > 1
    assert deleted["DeletedFaces"] == [ids["Aaron_Peirsol"]]
    assert after["FaceMatches"] == [] and [f["FaceId"] for f in left] == [ids["Aaron_Eckhart"]]
    assert chain.ok and (created_entry.data["profile"], created_entry.data["model"]) == ("accurate", accurate.model_id)


def _create(api: Api, body: dict[str, Any]) -> httpx.Response:
    headers = {"content-type": "application/x-amz-json-1.1", "x-amz-target": "RekognitionService.CreateCollection"}
    return api.http.post("/", content=json.dumps(body).encode(), headers=headers)


def test_create_collection_takes_the_profile_as_the_face_model_profile_member(api: Api) -> None:
    response = _create(api, {"CollectionId": "people", "FaceModelProfile": "default"})

    assert response.status_code == 200
    assert response.json()["FaceModelProfile"] == "default"
    assert api.client.describe_collection(CollectionId="people")["FaceModelVersion"] == api.service.engine.model_id


def test_an_unknown_profile_is_refused_naming_the_known_ones(api: Api) -> None:
    as_member = _create(api, {"CollectionId": "people", "FaceModelProfile": "fast"})
    with pytest.raises(ClientError) as as_tag:
        api.client.create_collection(CollectionId="people", Tags={"facetrust:profile": "fast"})

    assert as_member.status_code == 400 and as_member.json()["__type"] == "InvalidParameterException"
    assert "FaceModelProfile" in as_member.json()["message"] and "accurate" in as_member.json()["message"]
    error = as_tag.value.response["Error"]
    assert error["Code"] == "InvalidParameterException"
    assert error["Message"] == "Unknown profile 'fast'; available: default, accurate"
    assert api.client.list_collections()["CollectionIds"] == []


def test_a_profile_member_and_tag_that_disagree_are_refused(api: Api) -> None:
    response = _create(
        api, {"CollectionId": "people", "FaceModelProfile": "default", "Tags": {"facetrust:profile": "accurate"}}
    )

    assert response.status_code == 400 and response.json()["__type"] == "InvalidParameterException"
    assert "ask for different profiles" in response.json()["message"]
    assert api.client.list_collections()["CollectionIds"] == []


@pytest.mark.model
@pytest.mark.data
def test_compare_faces_runs_the_profile_asked_for_and_the_default_otherwise(
    engine: FaceEngine, accurate: FaceEngine, lfw: Path, tmp_path: Path
) -> None:
    images = {
        "SourceImage": {"Bytes": base64.b64encode(photo(lfw, "Aaron_Peirsol", 1)).decode()},
        "TargetImage": {"Bytes": base64.b64encode(photo(lfw, "Aaron_Peirsol", 3)).decode()},
    }
    headers = {"content-type": "application/x-amz-json-1.1", "x-amz-target": "RekognitionService.CompareFaces"}
    with FaceService(tmp_path, engine) as service:
        with (
            serving(create_app(service, authenticator=None, settings=Settings())) as url,
            httpx.Client(timeout=120) as http,
        ):
            asked = http.post(url, content=json.dumps({**images, "FaceModelProfile": "accurate"}), headers=headers)
            default = http.post(url, content=json.dumps(images), headers=headers)
        logged = [e.data for e in service.get_audit_log().entries if e.data["operation"] == "CompareFaces"]

    assert asked.status_code == default.status_code == 200
    assert (asked.json()["FaceModelVersion"], default.json()["FaceModelVersion"]) == (
        accurate.model_id,
        engine.model_id,
    )
    assert [e.get("profile") for e in logged] == ["accurate", None]
    assert (asked.json()["ScoreNormalisation"], default.json()["ScoreNormalisation"]) == ("cluster", "cluster")
    assert asked.json()["EstimateUnreliable"] is False  # an adult pair; the accurate normaliser marks no region
