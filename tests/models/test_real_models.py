"""The real pinned models (YuNet + SFace) on LFW: behaviour with tolerances, never exact floats.

LFW here is the grayscale 250×250 copy in ../shared/data/lfw; the pipeline scores about
98.8 % on its View-2 protocol, so the bounds below leave room for a miss or two.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facetrust.engine import FaceEngine
from facetrust.images import load_image
from facetrust.types import FaceEmbedding

pytestmark = pytest.mark.model

PAIRS_EACH = 20


def image_path(lfw: Path, name: str, number: str) -> Path:
    return lfw / "images" / name / f"{name}_{int(number):04d}.jpg"


def first_pairs(lfw: Path) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """The first matched and mismatched pairs of pairs.txt (View 2, fold 1)."""
    rows = [line.split("\t") for line in (lfw / "pairs.txt").read_text().splitlines()[1:]]
    matched = [(image_path(lfw, r[0], r[1]), image_path(lfw, r[0], r[2])) for r in rows if len(r) == 3]
    mismatched = [(image_path(lfw, r[0], r[1]), image_path(lfw, r[2], r[3])) for r in rows if len(r) == 4]
    return matched[:PAIRS_EACH], mismatched[:PAIRS_EACH]


def similarities(engine: FaceEngine, pairs: list[tuple[Path, Path]]) -> list[float | None]:
    """Similarity of each pair's largest faces; None where a face was not found."""
    out: list[float | None] = []
    for a, b in pairs:
        ea, eb = engine.embed_largest(a), engine.embed_largest(b)
        out.append(None if ea is None or eb is None else engine.compare_embeddings(ea, eb).similarity)
    return out


@pytest.fixture(scope="module")
def lfw_pairs(lfw: Path) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    matched, mismatched = first_pairs(lfw)
    assert len(matched) == len(mismatched) == PAIRS_EACH
    return matched, mismatched


@pytest.fixture(scope="module")
def sample(lfw_pairs: tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]) -> Path:
    """One LFW image with a single clear face (the first image of pairs.txt)."""
    return lfw_pairs[0][0][0]


@pytest.mark.data
def test_matched_lfw_pairs_mostly_reach_similarity_50(
    engine: FaceEngine, lfw_pairs: tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]
) -> None:
    scores = similarities(engine, lfw_pairs[0])
    hits = sum(1 for s in scores if s is not None and s >= 50.0)
    assert hits >= 0.9 * PAIRS_EACH, scores


@pytest.mark.data
def test_mismatched_lfw_pairs_mostly_stay_below_similarity_80(
    engine: FaceEngine, lfw_pairs: tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]
) -> None:
    scores = similarities(engine, lfw_pairs[1])
    below = sum(1 for s in scores if s is not None and s < 80.0)
    assert below >= 0.95 * PAIRS_EACH, scores


@pytest.mark.data
def test_an_lfw_image_compared_with_itself_has_similarity_100(engine: FaceEngine, sample: Path) -> None:
    result = engine.compare(sample, sample)
    assert result.is_match
    (match,) = result.matches
    assert match.comparison.score > 0.99
    assert match.comparison.similarity == pytest.approx(100.0, abs=0.01)
    assert match.comparison.fmr_is_bound


@pytest.mark.data
def test_detect_finds_one_centred_confident_face_in_an_lfw_image(engine: FaceEngine, sample: Path) -> None:
    faces = engine.detect(sample)
    recognisable = [f for f in faces if f.recognisable]
    assert len(recognisable) == 1
    face = faces[0]
    assert face is recognisable[0]
    assert (face.image_width, face.image_height) == (250, 250)
    assert face.confidence >= 99.0  # Rekognition's scale: a clear frontal face
    assert face.detector_score is not None and 50.0 < face.detector_score < face.confidence
    centre_x, centre_y = face.box.left + face.box.width / 2, face.box.top + face.box.height / 2
    assert 75 < centre_x < 175
    assert 75 < centre_y < 175
    assert 60 < face.box.width < 200
    marks = face.landmarks
    assert marks.eye_left.x < marks.nose.x < marks.eye_right.x
    assert max(marks.eye_left.y, marks.eye_right.y) < marks.nose.y < min(marks.mouth_left.y, marks.mouth_right.y)


@pytest.mark.data
def test_a_mirrored_lfw_image_still_matches_the_original(engine: FaceEngine, sample: Path) -> None:
    original = load_image(sample)
    mirrored = np.ascontiguousarray(original[:, ::-1])
    result = engine.compare(original, mirrored)
    assert result.is_match
    assert result.matches[0].comparison.similarity >= 80.0


@pytest.mark.data
def test_real_embeddings_are_l2_normalised_float32_of_the_pinned_model(engine: FaceEngine, sample: Path) -> None:
    embeddings = engine.embed(sample)
    assert len(embeddings) == 1
    (embedding,) = embeddings
    assert isinstance(embedding, FaceEmbedding)
    assert embedding.vector.dtype == np.float32
    assert embedding.vector.shape == (128,)
    assert float(np.linalg.norm(embedding.vector)) == pytest.approx(1.0, abs=1e-4)
    assert "sface-2021dec" in embedding.model
    assert embedding.model == engine.model_id
    assert engine.calibration.model == engine.model_id


@pytest.mark.data
def test_real_embedding_does_not_depend_on_how_the_image_arrives(engine: FaceEngine, sample: Path) -> None:
    from_path = engine.embed(sample)[0].vector
    from_bytes = engine.embed(sample.read_bytes())[0].vector
    from_array = engine.embed(load_image(sample))[0].vector
    np.testing.assert_allclose(from_path, from_bytes, atol=1e-6)
    np.testing.assert_allclose(from_path, from_array, atol=1e-6)


def test_an_all_black_image_has_no_face(engine: FaceEngine) -> None:
    black = np.zeros((250, 250, 3), dtype=np.uint8)
    assert engine.detect(black) == []
    assert engine.embed(black) == []
    assert engine.embed_largest(black) is None


def test_a_uniform_grey_image_has_no_face(engine: FaceEngine) -> None:
    assert engine.detect(np.full((480, 640, 3), 128, dtype=np.uint8)) == []
