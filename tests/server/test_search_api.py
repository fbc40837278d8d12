"""SearchFaces, SearchFacesByImage, SearchUsers, SearchUsersByImage, and their calibrated extras."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from facetrust.models.fake import face_png

from .conftest import Api


@dataclass
class Gallery:
    api: Api
    ann: str  # pattern 1
    ann_again: str  # pattern 1, another picture
    cleo: str  # pattern 3: similarity about 36 to pattern 1 on the fake engine
    bob: str  # pattern 2: similarity 0 to pattern 1


@pytest.fixture
def gallery(api: Api) -> Gallery:
    api.client.create_collection(CollectionId="staff")

    def one(spec: tuple[int, int, int, int]) -> str:
        out = api.client.index_faces(CollectionId="staff", Image={"Bytes": face_png(spec)})
        return str(out["FaceRecords"][0]["Face"]["FaceId"])

    g = Gallery(api, one((40, 40, 80, 1)), one((150, 60, 100, 1)), one((40, 40, 80, 3)), one((40, 40, 80, 2)))
    for user, face in (("ann", g.ann_again), ("cleo", g.cleo), ("bob", g.bob)):
        api.client.create_user(CollectionId="staff", UserId=user)
        api.client.associate_faces(CollectionId="staff", UserId=user, FaceIds=[face])
    return g


def test_search_faces_finds_the_same_person_with_calibrated_extras(gallery: Gallery) -> None:
    out = gallery.api.calibrated.search_faces(CollectionId="staff", FaceId=gallery.ann)

    assert out["SearchedFaceId"] == gallery.ann
    assert [m["Face"]["FaceId"] for m in out["FaceMatches"]] == [gallery.ann_again]  # default threshold 80
    match = out["FaceMatches"][0]
    assert match["Similarity"] >= 80
    assert 0 < match["EstimatedFalseMatchRate"] <= 1e-4
    assert isinstance(match["FalseMatchRateIsBound"], bool)
    assert match["Face"]["UserId"] == "ann"
    assert out["GallerySize"] == 3  # the searched face is not compared with itself
    assert 0 < out["GalleryFalsePositiveIdentificationRate"] < 1e-3
    assert out["FaceModelVersion"] == "fake-recogniser:0"
    # a gallery of 3 is too small for a per-probe estimate: the global table, and said so
    assert out["EstimateMethod"] == "calibration" and out["EstimateUnreliable"] is True
    assert out["ProbeFalseMatchRate"] == pytest.approx(1e-4)
    assert "gallery of 3 faces is below the 1,000 needed" in out["UnreliableReason"]


def test_search_faces_threshold_and_max_faces(gallery: Gallery) -> None:
    client = gallery.api.client

    loose = gallery.api.calibrated.search_faces(CollectionId="staff", FaceId=gallery.ann, FaceMatchThreshold=30)
    one = client.search_faces(CollectionId="staff", FaceId=gallery.ann, FaceMatchThreshold=30, MaxFaces=1)

    assert [m["Face"]["FaceId"] for m in loose["FaceMatches"]] == [gallery.ann_again, gallery.cleo]
    assert [m["Face"]["FaceId"] for m in one["FaceMatches"]] == [gallery.ann_again]
    assert loose["GalleryFalsePositiveIdentificationRate"] > 0.01  # a loose threshold has a high FPIR


def test_search_faces_for_an_unknown_face_is_resource_not_found(gallery: Gallery) -> None:
    with pytest.raises(gallery.api.client.exceptions.ResourceNotFoundException):
        gallery.api.client.search_faces(CollectionId="staff", FaceId="00000000-0000-4000-8000-000000000000")


def test_search_faces_with_a_threshold_over_100_is_invalid_parameter(gallery: Gallery) -> None:
    with pytest.raises(gallery.api.client.exceptions.InvalidParameterException, match="FaceMatchThreshold"):
        gallery.api.client.search_faces(CollectionId="staff", FaceId=gallery.ann, FaceMatchThreshold=101)


def test_search_faces_by_image_reports_the_searched_face(gallery: Gallery) -> None:
    out = gallery.api.calibrated.search_faces_by_image(
        CollectionId="staff", Image={"Bytes": face_png((100, 100, 90, 1))}
    )

    assert {m["Face"]["FaceId"] for m in out["FaceMatches"]} == {gallery.ann, gallery.ann_again}
    assert out["SearchedFaceBoundingBox"] == pytest.approx({"Width": 0.225, "Height": 0.3, "Left": 0.25, "Top": 1 / 3})
    assert out["SearchedFaceConfidence"] == pytest.approx(99.0)
    assert out["GallerySize"] == 4
    assert all("EstimatedFalseMatchRate" in m for m in out["FaceMatches"])


def test_search_faces_by_image_without_a_face_is_invalid_parameter(gallery: Gallery) -> None:
    with pytest.raises(gallery.api.client.exceptions.InvalidParameterException, match="no faces"):
        gallery.api.client.search_faces_by_image(CollectionId="staff", Image={"Bytes": face_png()})


def test_search_faces_by_image_in_a_missing_collection_is_resource_not_found(gallery: Gallery) -> None:
    with pytest.raises(gallery.api.client.exceptions.ResourceNotFoundException):
        gallery.api.client.search_faces_by_image(CollectionId="nobody", Image={"Bytes": face_png((9, 9, 80, 1))})


def test_search_users_by_face_id(gallery: Gallery) -> None:
    out = gallery.api.calibrated.search_users(CollectionId="staff", FaceId=gallery.ann)

    assert [(m["User"]["UserId"], m["User"]["UserStatus"]) for m in out["UserMatches"]] == [("ann", "ACTIVE")]
    assert out["SearchedFace"] == {"FaceId": gallery.ann}
    assert "SearchedUser" not in out
    assert out["UserMatches"][0]["Similarity"] >= 80
    assert "EstimatedFalseMatchRate" in out["UserMatches"][0]
    assert out["GallerySize"] == 3


def test_search_users_by_user_id_excludes_the_user_itself(gallery: Gallery) -> None:
    out = gallery.api.client.search_users(CollectionId="staff", UserId="ann", UserMatchThreshold=30)

    assert [m["User"]["UserId"] for m in out["UserMatches"]] == ["cleo"]
    assert out["SearchedUser"] == {"UserId": "ann"}


def test_search_users_needs_exactly_one_of_user_and_face(gallery: Gallery) -> None:
    with pytest.raises(gallery.api.client.exceptions.InvalidParameterException, match="exactly one"):
        gallery.api.client.search_users(CollectionId="staff")
    with pytest.raises(gallery.api.client.exceptions.InvalidParameterException, match="exactly one"):
        gallery.api.client.search_users(CollectionId="staff", UserId="ann", FaceId=gallery.ann)


def test_search_users_for_a_missing_user_is_resource_not_found(gallery: Gallery) -> None:
    with pytest.raises(gallery.api.client.exceptions.ResourceNotFoundException):
        gallery.api.client.search_users(CollectionId="staff", UserId="nobody")


def test_search_users_by_image(gallery: Gallery) -> None:
    out = gallery.api.client.search_users_by_image(
        CollectionId="staff", Image={"Bytes": face_png((100, 100, 90, 1))}, MaxUsers=5
    )

    assert [m["User"]["UserId"] for m in out["UserMatches"]] == ["ann"]
    assert set(out["SearchedFace"]["FaceDetail"]) == {"BoundingBox", "Landmarks", "Pose", "Quality", "Confidence"}
    assert out["UnsearchedFaces"] == []
    assert out["FaceModelVersion"] == "fake-recogniser:0"


def test_search_users_by_image_with_an_unknown_quality_filter_is_invalid_parameter(gallery: Gallery) -> None:
    with pytest.raises(gallery.api.client.exceptions.InvalidParameterException, match="QualityFilter"):
        gallery.api.client.search_users_by_image(
            CollectionId="staff", Image={"Bytes": face_png((100, 100, 90, 1))}, QualityFilter="BEST"
        )


def test_plain_boto3_parses_search_responses_without_the_extras(gallery: Gallery) -> None:
    out = gallery.api.client.search_faces(CollectionId="staff", FaceId=gallery.ann)

    assert set(out) == {"SearchedFaceId", "FaceMatches", "FaceModelVersion", "ResponseMetadata"}
    assert set(out["FaceMatches"][0]) == {"Similarity", "Face"}


def test_search_users_by_image_without_a_face_answers_no_matches_and_no_searched_face(gallery: Gallery) -> None:
    """AWS: "If no valid face is detected in the image, the response will contain an empty
    UserMatches list and no SearchedFace object" (SearchFacesByImage refuses it, as AWS does)."""
    out = gallery.api.client.search_users_by_image(CollectionId="staff", Image={"Bytes": face_png()})

    assert out["UserMatches"] == [] and "SearchedFace" not in out and out["UnsearchedFaces"] == []
    calibrated = gallery.api.calibrated.search_users_by_image(CollectionId="staff", Image={"Bytes": face_png()})
    assert calibrated["GalleryFalsePositiveIdentificationRate"] == 0.0  # nothing searched, no list to be wrong
    with pytest.raises(gallery.api.client.exceptions.InvalidParameterException, match="no faces in the image"):
        gallery.api.client.search_faces_by_image(CollectionId="staff", Image={"Bytes": face_png()})
    log = gallery.api.service.get_audit_log(limit=None, disclose=True).entries
    entry = [e.data for e in log if e.data.get("operation") == "SearchUsersByImage"][-1]
    assert (entry["outcome"], entry["no_face"], entry["user_ids"]) == ("ok", True, [])


@pytest.mark.parametrize("operation", ["search_users", "search_users_by_image"])
def test_max_users_above_500_is_refused_as_botocores_model_bounds_it(gallery: Gallery, operation: str) -> None:
    ask = {"FaceId": gallery.ann} if operation == "search_users" else {"Image": {"Bytes": face_png((100, 100, 90, 1))}}
    with pytest.raises(gallery.api.client.exceptions.InvalidParameterException, match="MaxUsers 501"):
        getattr(gallery.api.client, operation)(CollectionId="staff", MaxUsers=501, **ask)
    assert getattr(gallery.api.client, operation)(CollectionId="staff", MaxUsers=500, **ask)["UserMatches"]
