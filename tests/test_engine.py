"""FaceEngine over the deterministic fakes: detection, embedding, calibrated comparison."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import facetrust
from facetrust.config import Settings
from facetrust.engine import FaceEngine
from facetrust.errors import ImageTooLargeError, InvalidImageError, InvalidParameterError
from facetrust.models.fake import FakeDetector, FakeRecogniser, draw_face, fake_calibration, fake_engine
from facetrust.types import FaceEmbedding


def picture(*faces: tuple[int, int, int, int], shape: tuple[int, int] = (240, 320)) -> np.ndarray:
    """A dark picture with fake faces drawn at (left, top, size, pattern)."""
    image = np.full((*shape, 3), 40, dtype=np.uint8)
    for left, top, size, pattern in faces:
        draw_face(image, left, top, size, pattern)
    return image


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


# -- detection ------------------------------------------------------------------------------


def test_detect_returns_an_empty_list_for_a_blank_image(fake: FaceEngine) -> None:
    assert fake.detect(np.zeros((120, 160, 3), dtype=np.uint8)) == []


def test_detect_returns_faces_largest_first(fake: FaceEngine) -> None:
    faces = fake.detect(picture((10, 10, 30, 1), (60, 20, 90, 2), (180, 100, 60, 3)))
    assert [f.box.width for f in faces] == [90.0, 60.0, 30.0]
    assert (faces[0].box.left, faces[0].box.top) == (60.0, 20.0)


def test_detect_fills_each_face_record(fake: FaceEngine) -> None:
    (face,) = fake.detect(picture((100, 50, 80, 1)))
    assert face.confidence == pytest.approx(99.0)
    assert (face.image_width, face.image_height) == (320, 240)
    assert face.size == 80.0
    assert face.recognisable
    assert 100 < face.landmarks.eye_left.x < face.landmarks.eye_right.x < 180
    assert abs(face.pose.roll) < 1.0


def test_detect_marks_faces_below_the_minimum_size_not_recognisable(fake: FaceEngine) -> None:
    small, large = sorted(fake.detect(picture((10, 10, 30, 1), (100, 50, 80, 2))), key=lambda f: f.size)
    assert not small.recognisable
    assert small.reason is not None
    assert "40 px" in small.reason
    assert large.recognisable


def test_detect_honours_the_minimum_face_size_setting() -> None:
    engine = fake_engine(Settings(flip_augment=False, min_face_size=20))
    (face,) = engine.detect(picture((10, 10, 30, 1)))
    assert face.recognisable


def test_detect_gives_the_same_faces_for_array_bytes_and_path(fake: FaceEngine, tmp_path: Path) -> None:
    image = picture((20, 30, 64, 1), (150, 40, 90, 2))
    path = tmp_path / "group.png"
    path.write_bytes(png(image))
    assert fake.detect(png(image)) == fake.detect(image) == fake.detect(path)


def test_detect_applies_the_pixel_limit_of_the_settings() -> None:
    engine = fake_engine(Settings(flip_augment=False, max_image_pixels=1000))
    with pytest.raises(ImageTooLargeError):
        engine.detect(picture((20, 30, 64, 1)))


def test_detect_refuses_bytes_that_are_not_an_image(fake: FaceEngine) -> None:
    with pytest.raises(InvalidImageError):
        fake.detect(b"GIF89a not really")


# -- embedding ------------------------------------------------------------------------------


def test_embed_returns_only_recognisable_faces_largest_first(fake: FaceEngine) -> None:
    embeddings = fake.embed(picture((10, 10, 30, 1), (60, 20, 90, 2), (180, 100, 60, 3)))
    assert [e.face.box.width for e in embeddings if e.face is not None] == [90.0, 60.0]


def test_embed_returns_l2_normalised_float32_vectors_with_the_model_id(fake: FaceEngine) -> None:
    embeddings = fake.embed(picture((60, 20, 90, 2), (180, 100, 60, 3)))
    assert len(embeddings) == 2
    for embedding in embeddings:
        assert embedding.vector.dtype == np.float32
        assert embedding.vector.shape == (FakeRecogniser.dim,)
        assert float(np.linalg.norm(embedding.vector)) == pytest.approx(1.0, abs=1e-5)
        assert embedding.model == fake.model_id == "fake-recogniser:0"


def test_embed_returns_nothing_for_an_image_without_faces(fake: FaceEngine) -> None:
    assert fake.embed(np.zeros((64, 64, 3), dtype=np.uint8)) == []


def test_embed_uses_the_faces_it_is_given(fake: FaceEngine) -> None:
    image = picture((60, 20, 90, 2), (180, 100, 60, 3))
    smaller = fake.detect(image)[1]
    (embedding,) = fake.embed(image, [smaller])
    assert embedding.face == smaller


def test_embed_is_deterministic_and_independent_of_the_batch_size(fake: FaceEngine) -> None:
    image = picture((10, 10, 50, 1), (80, 20, 90, 2), (200, 100, 60, 3))
    batched = fake.embed(image)
    one_by_one = fake_engine(Settings(flip_augment=False, batch_size=1)).embed(image)
    assert len(batched) == len(one_by_one) == 3
    for a, b in zip(batched, one_by_one, strict=True):
        np.testing.assert_allclose(a.vector, b.vector, atol=1e-6)
    for a, b in zip(batched, fake.embed(image), strict=True):
        np.testing.assert_array_equal(a.vector, b.vector)


def test_embed_crops_of_nothing_is_an_empty_matrix(fake: FaceEngine) -> None:
    out = fake.embed_crops(np.zeros((0, 112, 112, 3), dtype=np.uint8))
    assert out.shape == (0, FakeRecogniser.dim)


def test_embed_with_flip_augment_records_it_in_the_model_id() -> None:
    engine = fake_engine(Settings(flip_augment=True))
    assert engine.model_id == "fake-recogniser:0+flip"
    (embedding,) = engine.embed(picture((60, 20, 90, 2)))
    assert embedding.model == "fake-recogniser:0+flip"
    assert float(np.linalg.norm(embedding.vector)) == pytest.approx(1.0, abs=1e-5)


def test_embed_largest_returns_the_largest_recognisable_face(fake: FaceEngine) -> None:
    embedding = fake.embed_largest(picture((10, 10, 50, 1), (80, 20, 90, 2)))
    assert embedding is not None
    assert embedding.face is not None
    assert embedding.face.box.width == 90.0


def test_embed_largest_returns_none_without_a_recognisable_face(fake: FaceEngine) -> None:
    assert fake.embed_largest(picture((10, 10, 30, 1))) is None


# -- comparison -----------------------------------------------------------------------------


def test_compare_matches_the_same_pattern_with_high_similarity(fake: FaceEngine) -> None:
    result = fake.compare(picture((20, 20, 96, 1)), picture((180, 100, 96, 1)))
    assert result.is_match
    (match,) = result.matches
    assert match.comparison.similarity >= 99.0
    assert match.comparison.score > 0.99
    assert match.comparison.fmr_is_bound
    assert match.face.box.left == 180.0
    assert result.unmatched == ()
    assert result.threshold == 80.0
    assert result.model == "fake-recogniser:0"
    assert result.source_face.box.left == 20.0


def test_compare_does_not_match_a_different_pattern(fake: FaceEngine) -> None:
    result = fake.compare(picture((20, 20, 96, 1)), picture((180, 100, 96, 3)))
    assert not result.is_match
    (other,) = result.unmatched
    assert other.comparison.similarity < 80.0
    assert not other.comparison.is_match


def test_compare_sorts_a_group_into_matches_and_others(fake: FaceEngine) -> None:
    group = picture((10, 10, 88, 3), (120, 30, 72, 1), (210, 120, 80, 5))
    result = fake.compare(picture((20, 20, 96, 1)), group)
    assert [m.face.box.left for m in result.matches] == [120.0]
    assert sorted(m.face.box.left for m in result.unmatched) == [10.0, 210.0]


def test_compare_uses_the_largest_face_of_the_source(fake: FaceEngine) -> None:
    source = picture((10, 10, 48, 3), (100, 40, 112, 1))
    result = fake.compare(source, picture((180, 100, 96, 1)))
    assert result.source_face.box.width == 112.0
    assert result.is_match


def test_compare_with_a_faceless_target_has_no_matches(fake: FaceEngine) -> None:
    result = fake.compare(picture((20, 20, 96, 1)), np.zeros((100, 100, 3), dtype=np.uint8))
    assert not result.is_match
    assert result.matches == ()
    assert result.unmatched == ()


def test_compare_refuses_a_source_without_a_face(fake: FaceEngine) -> None:
    with pytest.raises(InvalidImageError, match="no recognisable face") as info:
        fake.compare(np.zeros((100, 100, 3), dtype=np.uint8), picture((20, 20, 96, 1)))
    assert info.value.source == "source"


def test_compare_refuses_a_source_whose_only_face_is_too_small(fake: FaceEngine) -> None:
    with pytest.raises(InvalidImageError, match="no recognisable face"):
        fake.compare(picture((20, 20, 30, 1)), picture((20, 20, 96, 1)))


@pytest.mark.parametrize("threshold", [-1.0, 100.01, 1000, math.nan])
def test_compare_refuses_a_threshold_outside_0_to_100(fake: FaceEngine, threshold: object) -> None:
    with pytest.raises(InvalidParameterError, match="outside 0–100") as info:
        fake.compare(picture((20, 20, 96, 1)), picture((20, 20, 96, 1)), threshold=threshold)  # type: ignore[arg-type]
    assert info.value.parameter == "threshold"


@pytest.mark.parametrize("threshold", ["80", True, None])
def test_compare_refuses_a_threshold_that_is_not_a_number(fake: FaceEngine, threshold: object) -> None:
    with pytest.raises(InvalidParameterError, match="must be a number from 0 to 100") as info:
        fake.compare(picture((20, 20, 96, 1)), picture((20, 20, 96, 3)), threshold=threshold)  # type: ignore[arg-type]
    assert info.value.parameter == "threshold"


def test_compare_takes_a_numpy_number_as_threshold(fake: FaceEngine) -> None:
    found = fake.compare(picture((20, 20, 96, 1)), picture((20, 20, 96, 1)), threshold=np.int64(80))  # type: ignore[arg-type]
    assert found.matches and found.matches[0].comparison.threshold == 80.0


@pytest.mark.parametrize("which", ["source", "target"])
def test_compare_names_the_image_it_cannot_read(fake: FaceEngine, which: str) -> None:
    good, bad = picture((20, 20, 96, 1)), b"not an image"
    with pytest.raises(InvalidImageError) as info:
        fake.compare(bad if which == "source" else good, bad if which == "target" else good)
    assert info.value.source == f"{which} image"
    with pytest.raises(InvalidParameterError) as unsupported:
        fake.compare(None if which == "source" else good, None if which == "target" else good)  # type: ignore[arg-type]
    assert unsupported.value.parameter == f"{which} image"


def test_compare_threshold_0_accepts_every_face_and_100_only_bounded_ones(fake: FaceEngine) -> None:
    source, target = picture((20, 20, 96, 1)), picture((10, 10, 90, 3), (120, 30, 96, 1))
    assert len(fake.compare(source, target, threshold=0).matches) == 2
    strict = fake.compare(source, target, threshold=100)
    assert [m.face.box.left for m in strict.matches] == [120.0]


def test_compare_embeddings_is_symmetric_and_calibrated(fake: FaceEngine) -> None:
    a = fake.embed(picture((20, 20, 96, 1)))[0]
    b = fake.embed(picture((20, 20, 96, 3)))[0]
    ab, ba = fake.compare_embeddings(a, b), fake.compare_embeddings(b, a)
    assert ab.score == pytest.approx(ba.score)
    assert ab.score == pytest.approx(float(np.dot(a.vector, b.vector)))
    assert ab.similarity == pytest.approx(fake.calibration.similarity(ab.score), abs=1e-3)
    assert ab.threshold == 80.0


def test_an_embedding_cannot_be_changed_under_its_holder_and_leaves_the_callers_array_writable(
    fake: FaceEngine,
) -> None:
    embedding = fake.embed(picture((20, 20, 96, 1)))[0]
    with pytest.raises(ValueError, match="read-only"):
        embedding.vector[0] = 1.0
    own = np.ones(4, dtype=np.float32)
    held = FaceEmbedding(vector=own, model="m")
    own[0] = 2.0
    assert held.vector[0] == 2.0 and not held.vector.flags.writeable


def test_compare_embeddings_refuses_an_embedding_from_another_model(fake: FaceEngine) -> None:
    mine = fake.embed(picture((20, 20, 96, 1)))[0]
    foreign = FaceEmbedding(vector=mine.vector.copy(), model="sface-2021dec:fb143eea0783")
    with pytest.raises(InvalidParameterError, match="sface-2021dec") as info:
        fake.compare_embeddings(mine, foreign)
    assert info.value.parameter == "embedding"
    with pytest.raises(InvalidParameterError):
        fake.compare_embeddings(foreign, mine)


def test_compare_embeddings_refuses_what_is_not_an_embedding_of_its_length(fake: FaceEngine) -> None:
    mine = fake.embed(picture((20, 20, 96, 1)))[0]
    short = FaceEmbedding(vector=mine.vector[:5].copy(), model=mine.model)
    with pytest.raises(InvalidParameterError, match="Compare FaceEmbeddings") as info:
        fake.compare_embeddings(None, mine)  # type: ignore[arg-type]
    assert info.value.parameter == "embedding"
    with pytest.raises(InvalidParameterError, match="cannot be compared"):
        fake.compare_embeddings(mine, short)


def test_compare_embeddings_refuses_a_bad_threshold(fake: FaceEngine) -> None:
    mine = fake.embed(picture((20, 20, 96, 1)))[0]
    with pytest.raises(InvalidParameterError, match="outside 0–100"):
        fake.compare_embeddings(mine, mine, threshold=101)


def test_embeddings_with_and_without_flip_do_not_mix(fake: FaceEngine) -> None:
    plain = fake.embed(picture((20, 20, 96, 1)))[0]
    flipped_engine = fake_engine(Settings(flip_augment=True))
    with pytest.raises(InvalidParameterError, match=r"\+flip"):
        flipped_engine.compare_embeddings(plain, plain)


# -- construction ---------------------------------------------------------------------------


def test_engine_refuses_a_calibration_made_for_another_model() -> None:
    with pytest.raises(InvalidParameterError, match="other-model:1") as info:
        FaceEngine(
            FakeDetector(),
            FakeRecogniser(),
            calibration=fake_calibration("other-model:1"),
            settings=Settings(flip_augment=False),
        )
    assert info.value.parameter == "calibration"


def test_engine_refuses_a_calibration_without_flip_when_flip_is_on() -> None:
    with pytest.raises(InvalidParameterError, match=r"[Cc]alibration"):
        FaceEngine(FakeDetector(), FakeRecogniser(), calibration=fake_calibration(), settings=Settings())


def test_api_verbs_use_the_engine_they_are_given(fake: FaceEngine) -> None:
    image = picture((20, 20, 96, 1), (150, 40, 60, 2))
    assert facetrust.detect_faces(image, engine=fake) == fake.detect(image)
    assert len(facetrust.embed_faces(image, engine=fake)) == 2
    assert facetrust.compare_faces(image, image, engine=fake).is_match


def test_a_folder_that_cannot_be_read_is_an_error_naming_it_not_a_silent_gap(tmp_path: Path) -> None:
    """Run where the permissions apply: as the user, or as root inside a user namespace (unshare)."""
    import os
    import shutil
    import subprocess
    import sys

    album = tmp_path / "album"
    (album / "locked").mkdir(parents=True)
    (album / "a.jpg").write_bytes(b"x")
    (album / "locked" / "b.jpg").write_bytes(b"x")
    (album / "locked").chmod(0)
    script = (
        "import sys\n"
        "from facetrust.engine import iter_image_paths\n"
        "from facetrust.errors import InvalidParameterError\n"
        "try:\n"
        "    print(iter_image_paths([sys.argv[1]]))\n"
        "except InvalidParameterError as exc:\n"
        "    print(exc.message)\n"
    )
    command = [sys.executable, "-c", script, str(album)]
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("running as root, and there is no unshare to drop the privilege")
        command = ["unshare", "--user", *command]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    finally:
        (album / "locked").chmod(0o755)
    if "unshare" in command[0] and done.returncode != 0 and "unshare" in done.stderr:
        pytest.skip(f"unshare --user is not allowed here: {done.stderr.strip()}")
    assert done.stdout.strip() == f"Cannot read the folder {album / 'locked'}: Permission denied", done.stderr


def test_a_folder_lists_names_with_an_image_suffix_that_are_no_regular_file_so_each_is_reported(
    tmp_path: Path,
) -> None:
    import os

    from facetrust.engine import iter_image_paths

    album = tmp_path / "album"
    album.mkdir()
    (album / "a.jpg").write_bytes(b"x")
    (album / "gone.jpg").symlink_to(album / "nowhere.jpg")
    os.mkfifo(album / "pipe.png")
    (album / "folder.jpg").mkdir()  # a folder named like an image is walked, not listed

    listed = iter_image_paths([str(album)])

    assert [Path(p).name for p in listed] == ["a.jpg", "gone.jpg", "pipe.png"]
    for path in listed[1:]:
        with pytest.raises(InvalidImageError):
            facetrust.load_image(path)


def test_the_top_level_verbs_and_load_engine_refuse_what_is_not_an_engine_or_settings() -> None:
    with pytest.raises(InvalidParameterError) as verb:
        facetrust.detect_faces(picture((20, 20, 96, 1)), engine="x")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError) as loading:
        facetrust.load_engine(5)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError) as class_loading:
        FaceEngine.load(5)  # type: ignore[arg-type]
    assert (verb.value.parameter, loading.value.parameter, class_loading.value.parameter) == (
        "engine",
        "settings",
        "settings",
    )


def test_a_box_in_an_image_of_no_size_is_refused_not_divided_by_zero() -> None:
    from facetrust.types import BoundingBox

    with pytest.raises(InvalidParameterError, match="must be positive"):
        BoundingBox(1, 2, 3, 4).ratios(0, 0)


def test_an_engine_refuses_what_is_not_a_model_or_settings_and_embed_what_is_not_a_face() -> None:
    with pytest.raises(InvalidParameterError) as no_detector:
        FaceEngine(None, FakeRecogniser())  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError) as no_settings:
        FaceEngine(FakeDetector(), FakeRecogniser(), settings="x")  # type: ignore[arg-type]
    assert (no_detector.value.parameter, no_settings.value.parameter) == ("detector", "settings")
    with pytest.raises(InvalidParameterError, match="faces must be Face objects"):
        fake_engine().embed(picture((20, 20, 96, 1)), faces=[None])  # type: ignore[list-item]


def test_compare_lists_the_target_faces_by_the_similarity_it_reports_not_the_raw_score() -> None:
    from facetrust.calibration import Calibration
    from facetrust.clusternorm import ClusterNormaliser

    plain = fake_engine()
    source = picture((20, 20, 96, 1))
    vectors = {p: plain.embed_largest(picture((20, 20, 96, p))) for p in range(2, 12)}
    probe = plain.embed_largest(source)
    assert probe is not None and all(v is not None for v in vectors.values())
    raw = {p: float(np.dot(probe.vector, v.vector)) for p, v in vectors.items() if v is not None}
    higher, lower = sorted(raw, key=raw.__getitem__, reverse=True)[:2]  # the two best raw scores
    centroids = np.stack([v.vector for p, v in vectors.items() if v is not None and p in (higher, lower)])
    offsets = np.array([0.5, 0.0] if higher < lower else [0.0, 0.5], np.float32)  # the higher's region is stricter
    normaliser = ClusterNormaliser(FakeRecogniser.model_id, centroids, offsets)
    table = Calibration(normaliser.score_id, (-1.0, 0.9), (0.0, -6.0), 1e-6, 10**7, "synthetic")
    engine = FaceEngine(
        FakeDetector(),
        FakeRecogniser(),
        calibration=fake_calibration(),
        settings=plain.settings,
        normaliser=normaliser.with_calibration(table),
    )
    result = engine.compare(source, picture((10, 10, 90, higher), (120, 30, 90, lower)), threshold=0)
    assert [round(m.face.box.left) for m in result.matches] == [120, 10]  # the lower raw score reports more
    assert result.matches[0].comparison.similarity > result.matches[1].comparison.similarity
    assert result.matches[0].comparison.score < result.matches[1].comparison.score


@pytest.mark.parametrize("smallest", [0, -3, 2.5, True])
def test_detect_refuses_a_smallest_face_that_is_not_a_width_in_pixels(fake: FaceEngine, smallest: object) -> None:
    from facetrust.models.fake import face_png

    with pytest.raises(InvalidParameterError) as info:
        fake.detect(face_png((40, 40, 60, 1)), smallest_face=smallest)  # type: ignore[arg-type]
    assert info.value.parameter == "smallest_face"


def test_detect_down_to_a_size_on_a_detector_that_does_not_scale_finds_what_detect_finds(fake: FaceEngine) -> None:
    from facetrust.models.fake import face_png

    image = face_png((40, 40, 60, 1), (200, 100, 80, 2))
    assert [f.box for f in fake.detect(image, smallest_face=20)] == [f.box for f in fake.detect(image)]
