"""DetectFaces and CompareFaces through an unmodified boto3 client."""

from __future__ import annotations

import pytest

from facetrust.models.fake import face_png

from .conftest import Api

DETAIL_KEYS = {"BoundingBox", "Landmarks", "Pose", "Quality", "Confidence"}
NEVER_INFERRED = {"AgeRange", "Gender", "Emotions", "Smile", "Beard", "Mustache", "EyesOpen", "MouthOpen"}


def test_detect_faces_returns_every_face_largest_first(api: Api) -> None:
    out = api.client.detect_faces(Image={"Bytes": face_png((40, 40, 80, 1), (200, 60, 100, 2))})

    boxes = [f["BoundingBox"] for f in out["FaceDetails"]]
    assert boxes == [
        pytest.approx({"Width": 0.25, "Height": 1 / 3, "Left": 0.5, "Top": 0.2}),
        pytest.approx({"Width": 0.2, "Height": 80 / 300, "Left": 0.1, "Top": 40 / 300}),
    ]
    detail = out["FaceDetails"][0]
    assert set(detail) == DETAIL_KEYS
    assert set(detail["Pose"]) == {"Roll", "Yaw", "Pitch"}
    assert set(detail["Quality"]) == {"Brightness", "Sharpness"}
    assert detail["Confidence"] == pytest.approx(99.0)


@pytest.mark.parametrize("attributes", [["ALL"], ["AGE_RANGE", "GENDER", "EMOTIONS"], ["DEFAULT"]])
def test_detect_faces_never_infers_age_gender_or_emotion(api: Api, attributes: list[str]) -> None:
    out = api.client.detect_faces(Image={"Bytes": face_png((40, 40, 80, 1))}, Attributes=attributes)

    assert set(out["FaceDetails"][0]) == DETAIL_KEYS
    assert not NEVER_INFERRED & set(out["FaceDetails"][0])


def test_detect_faces_without_faces_is_an_empty_list(api: Api) -> None:
    assert api.client.detect_faces(Image={"Bytes": face_png()})["FaceDetails"] == []


def test_detect_faces_with_an_unknown_attribute_is_invalid_parameter(api: Api) -> None:
    with pytest.raises(api.client.exceptions.InvalidParameterException, match="Attributes 'HAIR'"):
        api.client.detect_faces(Image={"Bytes": face_png()}, Attributes=["HAIR"])


def test_detect_faces_of_corrupt_bytes_is_invalid_image_format(api: Api) -> None:
    with pytest.raises(api.client.exceptions.InvalidImageFormatException):
        api.client.detect_faces(Image={"Bytes": face_png((40, 40, 80, 1))[:100]})


def test_detect_faces_of_an_s3_object_is_invalid_parameter(api: Api) -> None:
    with pytest.raises(api.client.exceptions.InvalidParameterException, match="S3Object is not supported"):
        api.client.detect_faces(Image={"S3Object": {"Bucket": "photos", "Name": "a.jpg"}})


def test_compare_faces_splits_target_faces_at_the_threshold(api: Api) -> None:
    out = api.calibrated.compare_faces(
        SourceImage={"Bytes": face_png((40, 40, 80, 1))},
        TargetImage={"Bytes": face_png((20, 20, 90, 2), (200, 100, 100, 1))},
    )

    assert out["SourceImageFace"]["BoundingBox"] == pytest.approx(
        {"Width": 0.2, "Height": 80 / 300, "Left": 0.1, "Top": 40 / 300}
    )
    assert out["SourceImageFace"]["Confidence"] == pytest.approx(99.0)
    (match,) = out["FaceMatches"]
    assert match["Similarity"] >= 80
    assert 0 < match["EstimatedFalseMatchRate"] <= 1e-4
    assert isinstance(match["FalseMatchRateIsBound"], bool)
    assert match["Face"]["BoundingBox"]["Left"] == pytest.approx(0.5)
    assert set(match["Face"]) == DETAIL_KEYS | {"DetectorScore"}  # facetrust's raw detector score, kept by the hook
    assert match["Face"]["DetectorScore"] == pytest.approx(99.0)
    (unmatched,) = out["UnmatchedFaces"]
    assert unmatched["BoundingBox"]["Left"] == pytest.approx(0.05)
    assert out["ScoreNormalisation"] == "none"  # the fake model ships no cluster normaliser


def test_the_docs_hook_keeps_the_detector_score_of_every_face_detail(api: Api) -> None:
    detected = api.calibrated.detect_faces(Image={"Bytes": face_png((40, 40, 80, 1))})
    compared = api.calibrated.compare_faces(
        SourceImage={"Bytes": face_png((40, 40, 80, 1))},
        TargetImage={"Bytes": face_png((20, 20, 90, 2), (200, 100, 100, 1))},
    )

    assert detected["FaceDetails"][0]["DetectorScore"] == pytest.approx(99.0)
    assert compared["UnmatchedFaces"][0]["DetectorScore"] == pytest.approx(99.0)


def test_compare_faces_with_threshold_zero_matches_every_face(api: Api) -> None:
    out = api.client.compare_faces(
        SourceImage={"Bytes": face_png((40, 40, 80, 1))},
        TargetImage={"Bytes": face_png((20, 20, 90, 2), (200, 100, 100, 1))},
        SimilarityThreshold=0,
    )

    assert len(out["FaceMatches"]) == 2
    assert out["UnmatchedFaces"] == []


def test_compare_faces_without_a_source_face_is_invalid_parameter(api: Api) -> None:
    with pytest.raises(api.client.exceptions.InvalidParameterException, match="no recognisable face in SourceImage"):
        api.client.compare_faces(SourceImage={"Bytes": face_png()}, TargetImage={"Bytes": face_png((9, 9, 80, 1))})


def test_compare_faces_names_the_image_that_is_not_an_image(api: Api) -> None:
    with pytest.raises(api.client.exceptions.InvalidImageFormatException, match="TargetImage"):
        api.client.compare_faces(SourceImage={"Bytes": face_png((9, 9, 80, 1))}, TargetImage={"Bytes": b"nope"})


def test_compare_faces_names_the_image_whose_pixel_count_is_over_the_limit(api: Api) -> None:
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 2, 0, 0, 0)  # declares 2.5 billion RGB pixels
    bomb = (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    )
    with pytest.raises(api.client.exceptions.ImageTooLargeException, match=r"TargetImage: .*pixels"):
        api.client.compare_faces(SourceImage={"Bytes": face_png((9, 9, 80, 1))}, TargetImage={"Bytes": bomb})
    with pytest.raises(api.client.exceptions.ImageTooLargeException, match="SourceImage: "):
        api.client.compare_faces(SourceImage={"Bytes": bomb}, TargetImage={"Bytes": face_png((9, 9, 80, 1))})


def test_compare_faces_with_an_unknown_quality_filter_is_invalid_parameter(api: Api) -> None:
    with pytest.raises(api.client.exceptions.InvalidParameterException, match="QualityFilter"):
        api.client.compare_faces(
            SourceImage={"Bytes": face_png((9, 9, 80, 1))},
            TargetImage={"Bytes": face_png((9, 9, 80, 1))},
            QualityFilter="SOME",
        )


def test_compare_faces_is_written_to_the_audit_log_with_its_similarities(api: Api) -> None:
    from facetrust.governance import audit

    before = len(list(audit.entries(api.service.store.connection())))
    body = api.client.compare_faces(
        SourceImage={"Bytes": face_png((20, 20, 100, 3))},
        TargetImage={"Bytes": face_png((20, 20, 100, 3), (200, 40, 80, 5))},
        SimilarityThreshold=50,
    )
    entries = list(audit.entries(api.service.store.connection()))
    assert len(entries) == before + 1
    logged = entries[-1].data
    assert logged["operation"] == "CompareFaces" and logged["outcome"] == "ok"
    assert logged["threshold"] == 50 and logged["target_faces"] == 2
    assert logged["similarities"] == [round(m["Similarity"], 4) for m in body["FaceMatches"]]
    assert logged["score_scale"] == api.service.engine.score_id == "fake-recogniser:0"  # raw scores on the table


def test_a_refused_compare_faces_is_logged_with_its_error(api: Api) -> None:
    from facetrust.governance import audit

    with pytest.raises(api.client.exceptions.InvalidParameterException):
        api.client.compare_faces(SourceImage={"Bytes": face_png()}, TargetImage={"Bytes": face_png((20, 20, 100, 3))})
    logged = list(audit.entries(api.service.store.connection()))[-1].data
    assert logged["operation"] == "CompareFaces" and logged["outcome"] == "InvalidParameter"
    assert "no recognisable face in SourceImage" in logged["error"]


def test_detect_faces_is_not_logged(api: Api) -> None:
    from facetrust.governance import audit

    before = len(list(audit.entries(api.service.store.connection())))
    api.client.detect_faces(Image={"Bytes": face_png((20, 20, 100, 3))})
    assert len(list(audit.entries(api.service.store.connection()))) == before


def test_detect_and_compare_use_the_100_largest_faces_as_rekognition_does(api: Api) -> None:
    """botocore's model: DetectFaces "detects the 100 largest faces"; CompareFaces compares "each of
    the 100 largest faces detected in the target"."""
    sizes = [40 + (i % 3) for i in range(120)]  # 120 faces: 40 of each of three sizes
    faces = [(5 + 46 * (i % 12), 5 + 46 * (i // 12), size, 7) for i, size in enumerate(sizes)]
    crowd = face_png(*faces, width=560, height=470)

    found = api.client.detect_faces(Image={"Bytes": crowd})["FaceDetails"]
    compared = api.client.compare_faces(
        SourceImage={"Bytes": face_png((50, 50, 100, 7))}, TargetImage={"Bytes": crowd}, SimilarityThreshold=0
    )

    widths = [round(f["BoundingBox"]["Width"] * 560) for f in found]
    assert len(found) == 100 and sorted(widths, reverse=True) == widths and min(widths) >= 40
    assert widths.count(42) == widths.count(41) == 40  # the 20 smallest left out
    assert len(compared["FaceMatches"]) + len(compared["UnmatchedFaces"]) == 100
