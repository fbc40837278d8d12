"""The real detector and recogniser on generated clips of LFW faces: tracking and redaction leak rate."""

from __future__ import annotations

from pathlib import Path

import pytest

from facetrust.engine import FaceEngine
from facetrust.video import VideoOptions, detect_video
from facetrust.video.redact import RedactOptions, plan_boxes, redact_video
from facetrust.video.synth import LFW_FACE_INSET, Scene, ScenePerson, Truth, lfw_face_patch, write_clip
from facetrust.video.tracker import iou

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
