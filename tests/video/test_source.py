"""Video files in: metadata, sampling, limits, and clear errors for bad, truncated and oversized files."""

from __future__ import annotations

from pathlib import Path

import pytest

from facetrust.errors import InvalidParameterError, InvalidVideoError, VideoTooLargeError
from facetrust.video import VideoLimits, iter_frames, probe_video
from facetrust.video.synth import Truth, story_scene, write_clip


def test_probe_reports_the_video_metadata(story: tuple[Path, Truth]) -> None:
    info = probe_video(story[0])
    assert (info.codec, info.width, info.height, info.frame_rate) == ("h264", 240, 160, 15.0)
    assert info.frame_count == 45
    assert 2900 <= info.duration_ms <= 3100
    assert info.has_audio


def test_frames_are_sampled_at_the_chosen_rate(story: tuple[Path, Truth]) -> None:
    frames = list(iter_frames(story[0], sample_fps=5))
    assert [f.index for f in frames] == list(range(0, 45, 3))
    assert [f.timestamp_ms for f in frames] == [round(i * 1000 / 15) for i in range(0, 45, 3)]
    assert frames[0].image.shape == (160, 240, 3)


def test_a_rate_above_the_frame_rate_gives_every_frame(story: tuple[Path, Truth]) -> None:
    assert len(list(iter_frames(story[0], sample_fps=60))) == 45


@pytest.mark.parametrize("rate", [0, -1, 1000, float("nan")])
def test_a_bad_sampling_rate_is_refused(story: tuple[Path, Truth], rate: float) -> None:
    with pytest.raises(InvalidParameterError, match="Sample rate"):
        list(iter_frames(story[0], sample_fps=rate))


def test_a_file_that_is_not_a_video_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 100)
    with pytest.raises(InvalidVideoError, match=r"notes\.mp4: not a video"):
        probe_video(path)


def test_a_missing_file_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(InvalidVideoError, match=r"absent\.mp4: no such video file"):
        list(iter_frames(tmp_path / "absent.mp4"))


def test_a_truncated_mp4_is_refused(story: tuple[Path, Truth], tmp_path: Path) -> None:
    data = story[0].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidVideoError, match=r"cut\.mp4"):
        list(iter_frames(cut))


def test_a_truncated_mkv_is_refused_as_truncated(tmp_path: Path) -> None:
    whole = tmp_path / "whole.mkv"
    write_clip(whole, story_scene())
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    with pytest.raises(InvalidVideoError, match=r"cut\.mkv: the video is (truncated|corrupt)"):
        list(iter_frames(cut))


@pytest.mark.parametrize(
    ("limits", "name"),
    [
        (VideoLimits(seconds=2.0), "max_video_seconds"),
        (VideoLimits(pixels=200 * 100), "max_video_pixels"),
        (VideoLimits(frames=30), "max_video_frames"),
    ],
)
def test_a_video_over_a_limit_is_refused_naming_the_limit(
    story: tuple[Path, Truth], limits: VideoLimits, name: str
) -> None:
    with pytest.raises(VideoTooLargeError, match=name) as info:
        list(iter_frames(story[0], limits=limits))
    assert info.value.limit_name == name


def test_a_stream_that_grows_past_the_pixel_limit_is_refused_while_decoding(tmp_path: Path) -> None:
    import av

    from video_tracks import still

    parts = []
    for n, (width, height) in enumerate(((64, 48), (128, 96))):  # the header tells of the first size only
        part = tmp_path / f"part{n}.ts"
        with av.open(str(part), mode="w", format="mpegts") as out:
            video = out.add_stream("libx264", rate=10)
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            for _ in range(10):
                for packet in video.encode(av.VideoFrame.from_ndarray(still(width, height, ()), format="rgb24")):
                    out.mux(packet)
            for packet in video.encode():
                out.mux(packet)
        parts.append(part.read_bytes())
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(parts))
    limits = VideoLimits(pixels=64 * 48)
    assert (probe_video(joined, limits).width, probe_video(joined, limits).height) == (64, 48)
    with pytest.raises(VideoTooLargeError, match=r"joined\.ts: a frame is 128x96 = 12288 pixels") as info:
        list(iter_frames(joined, limits=limits))
    assert info.value.limit_name == "max_video_pixels"


@pytest.mark.parametrize("name", ["photo.jpg", "photo.png", "photo.mp4"])
def test_a_still_image_given_as_a_video_is_refused_by_name(tmp_path: Path, name: str) -> None:
    import cv2

    from video_tracks import still

    path = tmp_path / name
    encoded = cv2.imencode(".png" if name.endswith(".png") else ".jpg", still(120, 90, ((30, 20, 48, 1),)))[1]
    path.write_bytes(encoded.tobytes())
    with pytest.raises(InvalidVideoError, match=rf"{name}: the file is a still image \(\w+\), not a video"):
        probe_video(path)
    with pytest.raises(InvalidVideoError, match="still image"):
        list(iter_frames(path))


def test_a_limit_message_gives_the_frame_size_and_whole_numbers(tmp_path: Path) -> None:
    from video_tracks import still

    from .conftest import write_frames

    clip = tmp_path / "wide.mp4"
    write_frames(clip, [still(1280, 800, ())])
    with pytest.raises(VideoTooLargeError) as info:
        probe_video(clip, VideoLimits(pixels=1_000_000))
    assert info.value.message == (
        "wide.mp4: the video is 1280x800 = 1024000 pixels per frame; the limit (max_video_pixels) is 1000000"
    )
