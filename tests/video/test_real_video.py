"""The real detector and recogniser on generated clips of LFW faces: tracking and redaction leak rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facetrust.engine import FaceEngine
from facetrust.images import load_image
from facetrust.video import VideoOptions, detect_video, iter_frames
from facetrust.video.redact import RedactOptions, plan_boxes, redact_image, redact_video
from facetrust.video.synth import LFW_FACE_INSET, Scene, ScenePerson, Truth, lfw_face_patch, write_clip
from facetrust.video.tracker import iou

from .conftest import write_frames

pytestmark = [pytest.mark.model, pytest.mark.data]


def lfw_scene(lfw: Path) -> Scene:
    a = lfw_face_patch(lfw / "images" / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg")
    b = lfw_face_patch(lfw / "images" / "AJ_Cook" / "AJ_Cook_0001.jpg")
    return Scene(
        320,
        240,
        15,
        3.0,
        (
            ScenePerson(a, 100, (10, 20), (30, 10), cut_offsets=((-60, 90),), face_inset=LFW_FACE_INSET),
            ScenePerson(b, 90, (220, 130), (-15, 0), enter_s=0.8, occluded=((1.4, 1.9),), face_inset=LFW_FACE_INSET),
        ),
        cuts=(2.0,),
        seed=3,
    )


@pytest.fixture(scope="module")
def lfw_clip(lfw: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth]:
    path = tmp_path_factory.mktemp("lfw") / "lfw.mp4"
    return path, write_clip(path, lfw_scene(lfw))


def test_real_faces_keep_one_track_each_through_occlusion_and_cut(
    lfw_clip: tuple[Path, Truth], engine: FaceEngine
) -> None:
    result = detect_video(lfw_clip[0], engine, VideoOptions(sample_fps=10))
    persons: dict[int, set[int]] = {}
    for f in result.faces:
        best = max(lfw_clip[1].frames[f.frame_index], key=lambda pb: iou(pb[1], f.face.box), default=None)
        assert best is not None and iou(best[1], f.face.box) > 0.3, f"a face where none is at {f.timestamp_ms} ms"
        persons.setdefault(f.person, set()).add(best[0])
    assert persons == {0: {0}, 1: {1}}


def test_real_redaction_leaves_no_face_region_uncovered(
    lfw_clip: tuple[Path, Truth], engine: FaceEngine, tmp_path: Path
) -> None:
    options = RedactOptions()
    found = detect_video(lfw_clip[0], engine, VideoOptions(sample_fps=5))
    plan = plan_boxes(found, options, frames=len(lfw_clip[1].frames))
    for frame, visible in enumerate(lfw_clip[1].frames):
        for _, box in visible:
            assert any(iou(box, b) > 0 and _covers(b, box) for b in plan.get(frame, [])), f"frame {frame} leaks"
    out = tmp_path / "out.mp4"
    redact_video(lfw_clip[0], out, engine, options, VideoOptions(sample_fps=5))
    assert detect_video(out, engine, VideoOptions(sample_fps=15)).faces == ()


def _covers(outer: object, inner: object) -> bool:
    o, i = outer, inner
    return (
        o.left <= i.left + 1  # type: ignore[attr-defined]
        and o.top <= i.top + 1  # type: ignore[attr-defined]
        and o.left + o.width >= i.left + i.width - 1  # type: ignore[attr-defined]
        and o.top + o.height >= i.top + i.height - 1  # type: ignore[attr-defined]
    )


def test_the_accurate_profile_does_not_take_a_new_person_for_one_who_left(
    lfw: Path, accurate: FaceEngine, tmp_path: Path
) -> None:
    # fused scores of different people sit far above SFace's (about 0.6): re-identification
    # must ask the same false-match rate of them, not the same raw score
    a = lfw_face_patch(lfw / "images" / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg")
    b = lfw_face_patch(lfw / "images" / "AJ_Cook" / "AJ_Cook_0001.jpg")
    scene = Scene(
        320,
        240,
        15,
        2.4,
        (
            ScenePerson(a, 100, (20, 60), leave_s=0.8, face_inset=LFW_FACE_INSET),
            ScenePerson(b, 100, (200, 60), enter_s=1.6, face_inset=LFW_FACE_INSET),
        ),
        seed=5,
    )
    path = tmp_path / "leave-enter.mp4"
    truth = write_clip(path, scene)
    result = detect_video(path, accurate, VideoOptions(sample_fps=5))
    persons: dict[int, set[int]] = {}
    for f in result.faces:
        best = max(truth.frames[f.frame_index], key=lambda pb: iou(pb[1], f.face.box), default=None)
        assert best is not None and iou(best[1], f.face.box) > 0.3
        persons.setdefault(f.person, set()).add(best[0])
    assert persons == {0: {0}, 1: {1}}


def _small_faces_frame(lfw: Path, width: int, height: int, patch: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """A textured ``width``×``height`` frame with two LFW faces, each in a ``patch``-pixel square
    (the face is about 0.6 of it), and the squares' corners: small in the frame, yet recognisable."""
    import cv2

    rng = np.random.default_rng(7)
    tile = rng.integers(30, 130, size=(height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    frame = np.ascontiguousarray(np.kron(tile, np.ones((8, 8, 1), np.uint8))[:height, :width])
    corners = []
    for k, name in enumerate(("Aaron_Eckhart", "AJ_Cook")):
        face = lfw_face_patch(lfw / "images" / name / f"{name}_0001.jpg")
        x, y = width // 3 * (k + 1), height // 2
        frame[y : y + patch, x : x + patch] = cv2.resize(face, (patch, patch), interpolation=cv2.INTER_AREA)
        corners.append((x, y))
    return frame, corners


def _check_small_faces(
    engine: FaceEngine, before: np.ndarray, after: np.ndarray, corners: list[tuple[int, int]], patch: int
) -> None:
    """Each face is one the engine recognises (seen in a crop the detector does not scale down)
    and has lost its detail in ``after``."""
    for x, y in corners:
        crop = np.ascontiguousarray(before[y - patch : y + 2 * patch, x - patch : x + 2 * patch])
        assert [f.recognisable for f in engine.detect(crop)] == [True]
        inner = slice(y + patch // 5, y + patch * 4 // 5), slice(x + patch // 5, x + patch * 4 // 5)
        detail_before, detail_after = before[inner].astype(float).std(), after[inner].astype(float).std()
        assert detail_after < 0.6 * detail_before, f"the face at {x},{y} keeps its detail"


def test_redaction_finds_the_small_recognisable_faces_of_a_large_video(
    lfw: Path, engine: FaceEngine, tmp_path: Path
) -> None:
    # at 1920x1080 the detector's usual scale (longer side 640) shrinks these faces to about 15 px,
    # which it cannot see; the engine recognises them (min_face_size 40), so redaction must find them
    frame, corners = _small_faces_frame(lfw, 1920, 1080, 76)
    clip = tmp_path / "hd.mp4"
    write_frames(clip, [frame] * 3)
    out = tmp_path / "out.mp4"
    report = redact_video(clip, out, engine, video=VideoOptions(sample_fps=15))
    assert (report.frames, report.frames_redacted) == (3, 3)
    for redacted in iter_frames(out, sample_fps=60):
        _check_small_faces(engine, frame, redacted.image, corners, 76)


def test_image_redaction_finds_the_small_recognisable_faces_of_a_4k_image(
    lfw: Path, engine: FaceEngine, tmp_path: Path
) -> None:
    frame, corners = _small_faces_frame(lfw, 3840, 2160, 80)
    out = tmp_path / "out.png"
    report = redact_image(frame, out, engine)
    assert report.faces == 2
    _check_small_faces(engine, frame, load_image(out), corners, 80)
