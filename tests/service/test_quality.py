from __future__ import annotations

import dataclasses

import pytest

from facetrust.errors import InvalidParameterError
from facetrust.service.quality import check_quality_filter, rejection_reasons
from facetrust.types import BoundingBox, Face, Landmarks, Point, Pose, Quality


def _face(**changes: object) -> Face:
    marks = Landmarks(Point(40, 50), Point(70, 50), Point(55, 65), Point(45, 80), Point(65, 80))
    base = Face(
        box=BoundingBox(20, 20, 70, 80),
        landmarks=marks,
        confidence=95.0,
        pose=Pose(0, 0, 0),
        quality=Quality(brightness=50, sharpness=70),
        size=70,
        image_width=200,
        image_height=200,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_a_good_face_passes_every_level() -> None:
    for level in ("NONE", "AUTO", "LOW", "MEDIUM", "HIGH"):
        assert rejection_reasons(_face(), level) == []


@pytest.mark.parametrize(
    ("changes", "level", "reason"),
    [
        ({"confidence": 60.0}, "MEDIUM", "LOW_CONFIDENCE"),
        ({"quality": Quality(50, 20)}, "HIGH", "LOW_SHARPNESS"),
        ({"quality": Quality(3, 70)}, "LOW", "LOW_BRIGHTNESS"),
        ({"quality": Quality(96, 70)}, "MEDIUM", "LOW_BRIGHTNESS"),
        ({"pose": Pose(0, 50, 0)}, "HIGH", "EXTREME_POSE"),
        ({"pose": Pose(0, 0, -45)}, "MEDIUM", "EXTREME_POSE"),
    ],
)
def test_each_bar_rejects_with_its_reason(changes: dict[str, object], level: str, reason: str) -> None:
    assert rejection_reasons(_face(**changes), level) == [reason]


def test_a_weaker_level_accepts_what_a_stricter_one_rejects() -> None:
    face = _face(confidence=60.0, pose=Pose(0, 50, 0))
    assert rejection_reasons(face, "LOW") == []
    assert set(rejection_reasons(face, "HIGH")) == {"LOW_CONFIDENCE", "EXTREME_POSE"}


def test_none_still_refuses_small_and_cut_off_faces() -> None:
    small = _face(recognisable=False, reason="too small", size=20)
    assert rejection_reasons(small, "NONE") == ["SMALL_BOUNDING_BOX"]
    cut = _face(landmarks=Landmarks(Point(-5, 50), Point(30, 50), Point(15, 65), Point(5, 80), Point(25, 80)))
    assert rejection_reasons(cut, "NONE") == ["LOW_FACE_QUALITY"]


def test_unknown_quality_filter_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(InvalidParameterError, match="NONE, AUTO, LOW, MEDIUM, HIGH"):
        check_quality_filter("BEST")


def test_the_confidence_bar_applies_to_the_detectors_own_score_not_the_rekognition_scale() -> None:
    calibrated_high = _face(confidence=99.9, detector_score=60.0)  # a weak detection, mapped high
    calibrated_low = _face(confidence=40.0, detector_score=90.0)

    assert rejection_reasons(calibrated_high, "MEDIUM") == ["LOW_CONFIDENCE"]
    assert rejection_reasons(calibrated_low, "HIGH") == []


def test_split_faces_accepts_exactly_the_faces_rejection_reasons_clears() -> None:
    # The bulk write's quick test (split_faces) must refuse every face the filter's reasons
    # refuse, at every level, edge values and NaN included.
    import itertools
    import math

    from facetrust.service.quality import split_faces

    nan = math.nan
    marks = [None, Landmarks(Point(-5, 50), Point(30, 50), Point(15, 65), Point(5, 80), Point(25, 80))]
    marks += [Landmarks(Point(40, 50), Point(70, 50), Point(55, 65), Point(45, 80), Point(200, 80))]
    marks += [Landmarks(Point(40, nan), Point(70, 50), Point(55, 65), Point(45, 80), Point(65, 80))]
    faces = [
        _face(**{k: v for k, v in (("landmarks", lm), ("recognisable", rec)) if v is not None})
        for lm, rec in itertools.product(marks, [None, False])
    ]
    values = [{"confidence": c} for c in (50.0, 54.9, 70.0, 85.0, nan)] + [
        {"quality": Quality(b, s)} for b, s in itertools.product((4.9, 5.0, 98.0, 98.1, nan), (4.9, 25.0, nan))
    ]
    values += [{"pose": Pose(0, y, p)} for y, p in itertools.product((-70.1, 40.0, 55.0, nan), (-50.0, 30.1, nan))]
    faces += [_face(**v) for v in values]
    for level in ("NONE", "AUTO", "LOW", "MEDIUM", "HIGH"):
        accepted, unindexed = split_faces(faces, level, None)
        assert accepted == [f for f in faces if not rejection_reasons(f, level)]
        assert [u.reasons for u in unindexed] == [tuple(r) for f in faces if (r := rejection_reasons(f, level))]
