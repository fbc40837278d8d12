"""Every face seen in a video is kept until its end, so their number is bounded: a video in which
more are seen than ``max_video_sightings`` is refused as it is read, not after."""

from __future__ import annotations

from pathlib import Path

import pytest

from facetrust.config import Settings
from facetrust.engine import FaceEngine
from facetrust.errors import ConfigurationError, VideoTooLargeError
from facetrust.video import VideoOptions, detect_video
from facetrust.video.source import VideoLimits
from facetrust.video.synth import Truth


def test_a_video_with_more_sightings_than_the_limit_is_refused_as_it_is_read(
    story: tuple[Path, Truth], video_engine: FaceEngine
) -> None:
    path, _ = story
    seen = len(detect_video(path, video_engine, VideoOptions(sample_fps=5)).faces)
    assert seen > 6

    calls: list[int] = []
    with pytest.raises(VideoTooLargeError) as caught:
        detect_video(
            path,
            video_engine,
            VideoOptions(sample_fps=5, limits=VideoLimits(sightings=6)),
            progress=lambda done, total: calls.append(done),
        )

    error = caught.value
    assert (error.limit_name, error.limit) == ("max_video_sightings", 6)
    assert 6 < error.actual < seen  # stopped where the limit was passed, not at the end
    assert "max_video_sightings" in error.message and error.message.startswith("story.mp4: ")
    assert str(path.parent) not in error.message


def test_the_limit_comes_from_the_settings_and_must_be_positive() -> None:
    assert VideoLimits.from_settings(Settings(max_video_sightings=12)).sightings == 12
    assert VideoLimits.from_settings(Settings()).sightings == 200_000
    with pytest.raises(ConfigurationError, match="max_video_sightings"):
        Settings(max_video_sightings=0)


def test_redaction_hides_every_face_however_many_are_seen(
    story: tuple[Path, Truth], video_engine: FaceEngine, tmp_path: Path
) -> None:
    from facetrust.video.redact import redact_video

    path, _ = story
    few = VideoOptions(sample_fps=5, limits=VideoLimits(sightings=6))

    report = redact_video(path, tmp_path / "public.mp4", video_engine, video=few)

    assert report.faces > 6
    assert detect_video(tmp_path / "public.mp4", video_engine, VideoOptions(sample_fps=15)).faces == ()
