"""Per-face measurements: head pose from landmarks, quality of the region, the Face record."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from facetrust.align import REFERENCE_112
from facetrust.analysis import build_face, estimate_pose, measure_quality
from facetrust.models.base import Detection
from facetrust.types import BoundingBox, Landmarks, Point


def template(scale: float = 2.0, dx: float = 100.0, dy: float = 80.0) -> list[tuple[float, float]]:
    """The frontal reference landmarks, scaled and moved into a larger picture."""
    return [(x * scale + dx, y * scale + dy) for x, y in REFERENCE_112]


def marks(points: list[tuple[float, float]]) -> Landmarks:
    return Landmarks(*(Point(x, y) for x, y in points))


def rotated(points: list[tuple[float, float]], degrees: float) -> list[tuple[float, float]]:
    """Rotate clockwise on screen (y points down) about the points' centroid."""
    cx = sum(x for x, _ in points) / len(points)
    cy = sum(y for _, y in points) / len(points)
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return [(cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c) for x, y in points]


def with_nose(points: list[tuple[float, float]], dx: float = 0.0, dy: float = 0.0) -> list[tuple[float, float]]:
    out = list(points)
    out[2] = (out[2][0] + dx, out[2][1] + dy)
    return out


# -- pose -----------------------------------------------------------------------------------


def test_estimate_pose_of_the_frontal_template_is_level() -> None:
    pose = estimate_pose(marks(template()))
    assert abs(pose.roll) < 1.0
    assert abs(pose.yaw) < 1.0
    assert abs(pose.pitch) < 1.0


def test_estimate_pose_does_not_depend_on_scale_or_position() -> None:
    assert estimate_pose(marks(template(1.0, 0.0, 0.0))) == estimate_pose(marks(template(5.0, 300.0, 17.0)))


@pytest.mark.parametrize("angle", [-40.0, -10.0, 5.0, 25.0])
def test_estimate_pose_roll_is_the_in_plane_rotation_clockwise_positive(angle: float) -> None:
    pose = estimate_pose(marks(rotated(template(), angle)))
    assert pose.roll == pytest.approx(angle, abs=0.5)
    assert abs(pose.yaw) < 1.0
    assert abs(pose.pitch) < 1.0


def test_estimate_pose_yaw_is_positive_when_the_nose_points_right() -> None:
    right = estimate_pose(marks(with_nose(template(), dx=15.0)))
    left = estimate_pose(marks(with_nose(template(), dx=-15.0)))
    assert right.yaw > 10.0
    assert left.yaw < -10.0
    assert right.yaw == pytest.approx(-left.yaw, abs=1.5)


def test_estimate_pose_yaw_grows_with_the_nose_offset() -> None:
    yaws = [estimate_pose(marks(with_nose(template(), dx=d))).yaw for d in (0.0, 5.0, 10.0, 20.0, 30.0)]
    assert yaws == sorted(yaws)
    assert len(set(yaws)) == 5


def test_estimate_pose_pitch_is_positive_when_the_nose_moves_up() -> None:
    up = estimate_pose(marks(with_nose(template(), dy=-12.0)))
    down = estimate_pose(marks(with_nose(template(), dy=12.0)))
    assert up.pitch > 5.0
    assert down.pitch < -5.0
    assert abs(up.yaw) < 1.0


def test_estimate_pose_separates_yaw_from_roll() -> None:
    turned = with_nose(template(), dx=15.0)
    level = estimate_pose(marks(turned))
    tilted = estimate_pose(marks(rotated(turned, 30.0)))
    assert tilted.roll == pytest.approx(30.0 + level.roll, abs=0.5)
    assert tilted.yaw == pytest.approx(level.yaw, abs=0.5)
    assert tilted.pitch == pytest.approx(level.pitch, abs=0.5)


def test_estimate_pose_survives_coincident_landmarks() -> None:
    pose = estimate_pose(marks([(10.0, 10.0)] * 5))
    assert all(math.isfinite(v) for v in (pose.roll, pose.yaw, pose.pitch))


# -- quality --------------------------------------------------------------------------------


def box(left: float, top: float, width: float, height: float) -> BoundingBox:
    return BoundingBox(left=left, top=top, width=width, height=height)


def test_measure_quality_of_a_black_region_has_brightness_zero() -> None:
    image = np.full((100, 100, 3), 255, dtype=np.uint8)
    image[20:60, 20:60] = 0
    assert measure_quality(image, box(20, 20, 40, 40)).brightness == pytest.approx(0.0, abs=0.01)


def test_measure_quality_of_a_white_region_has_brightness_100() -> None:
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    image[20:60, 20:60] = 255
    assert measure_quality(image, box(20, 20, 40, 40)).brightness == pytest.approx(100.0, abs=0.01)


def test_measure_quality_brightness_of_mid_grey_is_about_half() -> None:
    image = np.full((50, 50, 3), 128, dtype=np.uint8)
    assert measure_quality(image, box(0, 0, 50, 50)).brightness == pytest.approx(50.2, abs=0.5)


def test_measure_quality_of_a_flat_region_has_no_sharpness() -> None:
    image = np.full((80, 80, 3), 90, dtype=np.uint8)
    assert measure_quality(image, box(10, 10, 60, 60)).sharpness == 0.0


def test_measure_quality_scores_a_blurred_face_less_sharp() -> None:
    rng = np.random.default_rng(4)
    sharp = np.kron(rng.integers(0, 256, (28, 28)), np.ones((4, 4))).astype(np.uint8)
    sharp = np.repeat(sharp[:, :, None], 3, axis=2)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 4.0)
    region = box(0, 0, 112, 112)
    crisp, soft = measure_quality(sharp, region).sharpness, measure_quality(blurred, region).sharpness
    assert crisp > 90.0
    assert soft < crisp - 30.0
    assert 0.0 <= soft <= 100.0


def test_measure_quality_clips_a_box_that_leaves_the_image() -> None:
    image = np.zeros((50, 50, 3), dtype=np.uint8)
    image[:25, :25] = 255
    quality = measure_quality(image, box(-25, -25, 50, 50))
    assert quality.brightness == pytest.approx(100.0, abs=0.01)


def test_measure_quality_of_a_box_outside_the_image_is_zero() -> None:
    image = np.full((50, 50, 3), 255, dtype=np.uint8)
    quality = measure_quality(image, box(80, 80, 30, 30))
    assert (quality.brightness, quality.sharpness) == (0.0, 0.0)


# -- build_face -----------------------------------------------------------------------------


def detection(left: float, top: float, size: float, score: float = 0.9) -> Detection:
    points = tuple((left + x / 112.0 * size, top + y / 112.0 * size) for x, y in REFERENCE_112)
    return Detection((left, top, size, size * 1.2), points, score)


def test_build_face_fills_the_face_record() -> None:
    image = np.full((300, 400, 3), 128, dtype=np.uint8)
    face = build_face(image, detection(100, 50, 120, score=0.87), min_face_size=40)
    assert face.box == BoundingBox(100.0, 50.0, 120.0, 144.0)
    assert face.confidence == pytest.approx(87.0)
    assert face.size == 120.0
    assert (face.image_width, face.image_height) == (400, 300)
    assert face.recognisable
    assert face.reason is None
    assert face.landmarks.eye_left.x < face.landmarks.eye_right.x
    assert abs(face.pose.roll) < 1.0
    assert face.quality.brightness == pytest.approx(50.2, abs=0.5)
    assert face.ratio_box.left == pytest.approx(0.25)
    assert face.ratio_box.height == pytest.approx(144.0 / 300.0)


def test_build_face_marks_a_small_face_not_recognisable_saying_why() -> None:
    image = np.zeros((200, 200, 3), dtype=np.uint8)
    face = build_face(image, detection(10, 10, 24), min_face_size=40)
    assert not face.recognisable
    assert face.reason is not None
    assert "24 px" in face.reason
    assert "40 px" in face.reason


def test_build_face_accepts_a_face_exactly_at_the_minimum_size() -> None:
    image = np.zeros((200, 200, 3), dtype=np.uint8)
    assert build_face(image, detection(10, 10, 40), min_face_size=40).recognisable


@pytest.mark.parametrize(("score", "confidence"), [(1.4, 100.0), (-0.2, 0.0), (0.5, 50.0)])
def test_build_face_clamps_confidence_to_0_to_100(score: float, confidence: float) -> None:
    image = np.zeros((200, 200, 3), dtype=np.uint8)
    assert build_face(image, detection(10, 10, 60, score), min_face_size=40).confidence == confidence
