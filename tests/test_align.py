"""Alignment: the similarity transform and the warp onto the 112×112 landmark template."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from facetrust.align import REFERENCE_112, align_face, similarity_transform
from facetrust.types import Landmarks, Point


def similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return np.array([[scale * math.cos(a), -scale * math.sin(a), tx], [scale * math.sin(a), scale * math.cos(a), ty]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


@pytest.mark.parametrize(
    ("angle", "scale", "tx", "ty"), [(0.0, 1.0, 0.0, 0.0), (30.0, 1.7, 5.0, -3.0), (-75.0, 0.4, -120.0, 44.0)]
)
def test_similarity_transform_recovers_a_known_rotation_scale_and_translation(
    angle: float, scale: float, tx: float, ty: float
) -> None:
    src = np.random.default_rng(1).uniform(-50, 150, (5, 2))
    truth = similarity(angle, scale, tx, ty)
    found = similarity_transform(src, apply(truth, src))
    assert found.shape == (2, 3)
    np.testing.assert_allclose(found, truth, atol=1e-9)


def test_similarity_transform_is_the_least_squares_fit_under_noise() -> None:
    rng = np.random.default_rng(2)
    src = rng.uniform(0, 100, (50, 2))
    truth = similarity(12.0, 0.8, 10.0, 20.0)
    dst = apply(truth, src) + rng.normal(0, 0.5, (50, 2))
    found = similarity_transform(src, dst)
    np.testing.assert_allclose(found[:, :2], truth[:, :2], atol=0.01)
    np.testing.assert_allclose(found[:, 2], truth[:, 2], atol=0.5)

    def residual(matrix: np.ndarray) -> float:
        return float(((apply(matrix, src) - dst) ** 2).sum())

    assert residual(found) <= residual(truth)
    a, b, tx, ty = found[0, 0], found[1, 0], found[0, 2], found[1, 2]
    for da, db, dx, dy in np.vstack([np.eye(4), -np.eye(4)]) * 1e-3:  # no nearby similarity does better
        nudged = np.array([[a + da, -(b + db), tx + dx], [b + db, a + da, ty + dy]])
        assert residual(found) <= residual(nudged)


def test_similarity_transform_never_mirrors() -> None:
    src = np.array(REFERENCE_112)
    mirrored = src * [-1.0, 1.0]
    found = similarity_transform(src, mirrored)
    assert np.linalg.det(found[:, :2]) > 0


def test_similarity_transform_of_the_template_onto_itself_is_the_identity() -> None:
    ref = np.array(REFERENCE_112)
    np.testing.assert_allclose(similarity_transform(ref, ref), [[1, 0, 0], [0, 1, 0]], atol=1e-9)


def dotted_image(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A black RGB image with a small bright blob at each point."""
    image = np.zeros((*shape, 3), dtype=np.uint8)
    for x, y in points:
        cv2.circle(image, (round(x * 16), round(y * 16)), 3 * 16, (255, 255, 255), -1, cv2.LINE_AA, shift=4)
    return image


def blob_centres(image: np.ndarray) -> np.ndarray:
    gray = image[:, :, 0].astype(np.float64)
    count, labels = cv2.connectedComponents((gray > 40).astype(np.uint8))
    centres = []
    for i in range(1, count):
        ys, xs = np.nonzero(labels == i)
        weights = gray[ys, xs]
        centres.append((np.average(xs, weights=weights), np.average(ys, weights=weights)))
    return np.array(centres)


def assert_dots_on(centres: np.ndarray, expected: np.ndarray, tolerance: float) -> None:
    assert len(centres) == len(expected)
    for x, y in expected:
        nearest = np.min(np.hypot(centres[:, 0] - x, centres[:, 1] - y))
        assert nearest < tolerance, (x, y, centres)


@pytest.mark.parametrize(("angle", "scale"), [(0.0, 1.0), (20.0, 2.5), (-35.0, 1.6)])
def test_align_face_puts_the_landmarks_on_the_reference_template(angle: float, scale: float) -> None:
    ref = np.array(REFERENCE_112)
    face_points = apply(similarity(angle, scale, 150.0, 90.0), ref - 56.0)  # a face centred at (150, 90)
    image = dotted_image(face_points, (260, 300))
    crop = align_face(image, [tuple(p) for p in face_points])
    assert crop.shape == (112, 112, 3)
    assert crop.dtype == np.uint8
    assert_dots_on(blob_centres(crop), ref, tolerance=1.0)


def test_align_face_accepts_landmarks_and_scales_the_template_to_the_size() -> None:
    ref = np.array(REFERENCE_112)
    face_points = apply(similarity(10.0, 2.0, 120.0, 120.0), ref - 56.0)
    marks = Landmarks(*(Point(float(x), float(y)) for x, y in face_points))
    crop = align_face(dotted_image(face_points, (240, 240)), marks, size=224)
    assert crop.shape == (224, 224, 3)
    assert_dots_on(blob_centres(crop), ref * 2.0, tolerance=1.5)


def test_align_face_fills_outside_the_image_with_black() -> None:
    image = np.full((60, 60, 3), 200, dtype=np.uint8)
    # A 28-px face whose crop starts 10 px above and left of the image.
    cut = [(x / 4.0 - 10.0, y / 4.0 - 10.0) for x, y in REFERENCE_112]
    crop = align_face(image, cut)
    assert crop[0, 0].tolist() == [0, 0, 0]
    assert crop[-1, -1].tolist() == [200, 200, 200]
