"""Tracking: one person, one index, through motion, occlusion and a cut; best frames per track."""

from __future__ import annotations

from pathlib import Path

import pytest

from facetrust.engine import FaceEngine
from facetrust.types import BoundingBox
from facetrust.video import VideoOptions, detect_video
from facetrust.video.synth import Truth
from facetrust.video.tracker import iou, observation_quality

from .conftest import FPS


def person_of_each_track(result_faces: list[tuple[int, int, BoundingBox]], truth: Truth) -> dict[int, set[int]]:
    """For each track, the ground-truth persons its sightings lie on (by box overlap)."""
    out: dict[int, set[int]] = {}
    for frame, track, box in result_faces:
        best = max(truth.frames[frame], key=lambda pb: iou(pb[1], box), default=None)
        if best is not None and iou(best[1], box) > 0.5:
            out.setdefault(track, set()).add(best[0])
    return out


@pytest.mark.parametrize("rate", [5.0, 15.0])
def test_each_person_keeps_one_track_through_occlusion_and_cut(
    story: tuple[Path, Truth], video_engine: FaceEngine, rate: float
) -> None:
    result = detect_video(story[0], video_engine, VideoOptions(sample_fps=rate))
    sightings = [(f.frame_index, f.person, f.face.box) for f in result.faces]
    assert person_of_each_track(sightings, story[1]) == {0: {0}, 1: {1}}
    assert len(result.persons) == 2
    assert result.frames_sampled == round(45 * min(rate, FPS) / FPS)


def test_every_visible_face_is_found_in_every_sampled_frame(
    story: tuple[Path, Truth], video_engine: FaceEngine
) -> None:
    result = detect_video(story[0], video_engine, VideoOptions(sample_fps=15))
    assert len(result.faces) == sum(len(f) for f in story[1].frames)


def test_a_person_entering_later_starts_a_new_track_at_its_entry(
    story: tuple[Path, Truth], video_engine: FaceEngine
) -> None:
    result = detect_video(story[0], video_engine, VideoOptions(sample_fps=15))
    assert result.persons[1].first_ms == 1000
    assert result.persons[0].first_ms == 0
    assert result.persons[0].last_ms == result.persons[1].last_ms == 2933


def test_each_track_keeps_its_best_frames_best_first(story: tuple[Path, Truth], video_engine: FaceEngine) -> None:
    result = detect_video(story[0], video_engine, VideoOptions(sample_fps=15))
    for person in result.persons:
        assert len(person.best) == 3
        qualities = [observation_quality(e.face) for e in person.best if e.face is not None]
        assert qualities == sorted(qualities, reverse=True)
        assert {id(e.face) for e in person.best} <= {id(f.face) for f in person.faces}
        assert all(e.model == video_engine.model_id for e in person.best)


def test_a_long_track_is_embedded_rarely(story: tuple[Path, Truth], video_engine: FaceEngine) -> None:
    calls: list[int] = []
    embed = video_engine.embed

    def counting(image: object, faces: object = None) -> object:
        calls.append(len(faces or []))  # type: ignore[arg-type]
        return embed(image, faces)  # type: ignore[arg-type]

    video_engine.embed = counting  # type: ignore[method-assign]
    result = detect_video(story[0], video_engine, VideoOptions(sample_fps=15))
    sightings = len(result.faces)
    # at most one embedding per track per half second, plus the re-identifications after the occlusion and the cut
    assert sum(calls) <= 2 * 3 * 2 + 4 < sightings


def test_progress_reaches_the_end(story: tuple[Path, Truth], video_engine: FaceEngine) -> None:
    seen: list[tuple[int, int]] = []
    detect_video(story[0], video_engine, VideoOptions(sample_fps=5), progress=lambda d, t: seen.append((d, t)))
    assert seen[-1][0] >= seen[-1][1] - 200
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_iou_of_boxes() -> None:
    a = BoundingBox(0, 0, 10, 10)
    assert iou(a, a) == 1.0
    assert iou(a, BoundingBox(20, 20, 5, 5)) == 0.0
    assert iou(a, BoundingBox(5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_the_cut_of_the_story_is_told_from_motion_entries_and_occlusions() -> None:
    from facetrust.video.pipeline import CutDetector
    from facetrust.video.synth import render, story_scene

    scene, detector = story_scene(), CutDetector()
    cuts = [i for i in range(0, 45, 3) if detector.is_cut(render(scene, i)[0])]
    assert cuts == [33]  # 2.2 s at 15 fps; person 1 enters at frame 15 and is hidden from 24 to 30
