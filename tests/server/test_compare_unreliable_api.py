"""CompareFaces says when its false-match estimate is unreliable (a face in a cluster the normaliser
flags), through an unmodified boto3 client; a purpose that refuses unreliable estimates refuses it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from facetrust.config import Settings
from facetrust.engine import FaceEngine
from facetrust.governance import audit
from facetrust.governance.policy import Policy, Purpose
from facetrust.models.fake import face_png, fake_engine, flagged_fake_engine
from facetrust.server import create_app
from facetrust.service import FaceService

from .live import rekognition, serving, with_facetrust_fields

CROWDED, PLAIN = 1, 2  # fake identities: the first lies in the flagged cluster


def flagged_engine() -> FaceEngine:
    return flagged_fake_engine(CROWDED, PLAIN)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Any, FaceService]]:
    policy = Policy(
        purposes={"general": Purpose("general", min_threshold=0), "strict": Purpose("strict", refuse_unreliable=True)},
        default_purpose="general",
    )
    service = FaceService(tmp_path / "data", flagged_engine(), policy=policy)
    app = create_app(service, authenticator=None, settings=Settings(data_dir=tmp_path / "data"))
    try:
        with serving(app) as url:
            client = with_facetrust_fields(rekognition(url))
            try:
                yield client, service
            finally:
                client.close()
    finally:
        service.close()


def images(source: int, *target: int) -> dict[str, Any]:
    boxes = [(20 + 140 * i, 20, 100, p) for i, p in enumerate(target)]
    return {
        "SourceImage": {"Bytes": face_png((20, 20, 100, source))},
        "TargetImage": {"Bytes": face_png(*boxes)},
    }


def test_given_a_source_face_in_a_flagged_cluster_when_compared_then_the_response_says_the_estimate_is_unreliable(
    served: tuple[Any, FaceService],
) -> None:
    client, _ = served
    out = client.compare_faces(**images(CROWDED, PLAIN), SimilarityThreshold=0)

    (match,) = out["FaceMatches"]
    assert match["EstimateUnreliable"] is True
    assert match["UnreliableReason"].startswith("the source face lies in a region of faces whose strangers often")
    both = client.compare_faces(**images(CROWDED, CROWDED), SimilarityThreshold=0)
    assert both["FaceMatches"][0]["UnreliableReason"].startswith("both faces lie")
    assert out["EstimateUnreliable"] is True and "children's faces" in out["UnreliableReason"]
    assert out["ScoreNormalisation"] == "cluster"


def test_given_faces_outside_flagged_clusters_when_compared_then_the_estimate_is_reliable(
    served: tuple[Any, FaceService],
) -> None:
    client, _ = served
    out = client.compare_faces(**images(PLAIN, PLAIN), SimilarityThreshold=0)

    (match,) = out["FaceMatches"]
    assert match["EstimateUnreliable"] is False and "UnreliableReason" not in match
    assert out["EstimateUnreliable"] is False and "UnreliableReason" not in out


def test_only_the_pair_with_a_flagged_target_face_is_unreliable(served: tuple[Any, FaceService]) -> None:
    client, _ = served
    out = client.compare_faces(**images(PLAIN, PLAIN, CROWDED), SimilarityThreshold=0)

    flags = sorted((m["Face"]["BoundingBox"]["Left"] > 0.3, m["EstimateUnreliable"]) for m in out["FaceMatches"])
    assert flags == [(False, False), (True, True)]
    assert out["UnreliableReason"].startswith("the target face lies")


def test_given_a_purpose_refusing_unreliable_estimates_when_a_pair_is_unreliable_then_compare_is_refused_and_audited(
    served: tuple[Any, FaceService],
) -> None:
    client, service = served

    def strict(request: Any, **_: Any) -> None:  # docs/http.md: the purpose header from boto3
        request.headers["x-facetrust-purpose"] = "strict"

    client.meta.events.register("before-sign.rekognition.*", strict)
    assert client.compare_faces(**images(PLAIN, PLAIN))["EstimateUnreliable"] is False  # a reliable one runs
    with pytest.raises(ClientError, match="refuses comparisons whose false-match estimate is unreliable") as caught:
        client.compare_faces(**images(CROWDED, PLAIN))
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"

    refused = [e.data for e in audit.entries(service.store.connection())][-1]
    assert (refused["operation"], refused["purpose"], refused["outcome"]) == (
        "CompareFaces",
        "strict",
        "PurposeRefused",
    )
    assert refused["unreliable"] and refused["unreliable"][0].startswith("the source face lies")


def test_the_library_compare_reports_each_pair_and_an_engine_without_flags_none() -> None:
    engine = flagged_engine()
    result = engine.compare(face_png((20, 20, 100, CROWDED)), face_png((20, 20, 100, PLAIN)), threshold=0)
    (pair,) = result.matches
    assert pair.unreliable is not None and pair.unreliable.startswith("the source face lies")

    plain = fake_engine()
    (again,) = plain.compare(face_png((20, 20, 100, CROWDED)), face_png((20, 20, 100, PLAIN)), threshold=0).matches
    assert again.unreliable is None
