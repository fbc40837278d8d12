"""Redaction: no frame shows a face, audio and timing kept, kept persons left alone, atomic output."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from facetrust.engine import FaceEngine
from facetrust.errors import InvalidParameterError, InvalidVideoError
from facetrust.images import load_image
from facetrust.models.fake import face_png
from facetrust.video import VideoOptions, detect_video, iter_frames, probe_video
from facetrust.video.redact import RedactOptions, redact_image, redact_video
from facetrust.video.synth import Truth
from video_tracks import still, write_tracks

from .conftest import write_frames, write_with_picture


def faces_left(path: Path, engine: FaceEngine) -> list[tuple[int, int]]:
    """(frame, person) of every face the detector still finds, in every frame."""
    found = detect_video(path, engine, VideoOptions(sample_fps=60))
    return [(f.frame_index, f.person) for f in found.faces]


def frame_times(path: Path) -> list[int]:
    """Every decoded frame's time in milliseconds, as the file holds it (-1: none)."""
    import av

    with av.open(str(path)) as container:
        return [round(f.time * 1000) if f.time is not None else -1 for f in container.decode(video=0)]


@pytest.mark.parametrize(("rate", "tracks"), [(3.0, 5), (5.0, 4), (10.0, 4)])
def test_no_frame_of_a_blurred_video_shows_a_face(
    story: tuple[Path, Truth], video_engine: FaceEngine, tmp_path: Path, rate: float, tracks: int
) -> None:
    out = tmp_path / "out.mp4"
    report = redact_video(story[0], out, video_engine, RedactOptions(method="blur"), VideoOptions(sample_fps=rate))
    assert faces_left(out, video_engine) == []
    # without a keep rule nothing is embedded, so a person seen again after the occlusion or the cut
    # starts a new track, and the cut starts new tracks for both: 2 persons make 4 or 5 tracks
    assert (report.frames, report.tracks, report.tracks_kept) == (45, tracks, 0)
    assert report.frames_redacted == sum(1 for f in story[1].frames if f)


@pytest.mark.parametrize("method", ["blur", "pixelate"])
def test_the_detail_of_every_ground_truth_face_is_gone(
    story: tuple[Path, Truth], video_engine: FaceEngine, tmp_path: Path, method: str
) -> None:
    out = tmp_path / "out.mp4"
    redact_video(story[0], out, video_engine, RedactOptions(method=method, strength=100), VideoOptions(sample_fps=5))
    before = list(iter_frames(story[0], sample_fps=60))
    after = list(iter_frames(out, sample_fps=60))
    for a, b, visible in zip(before, after, story[1].frames):
        for _, box in visible:
            x, y, w, h = (int(v) for v in (box.left, box.top, box.width, box.height))
            detail_before = a.image[y : y + h, x : x + w].astype(float).std()
            detail_after = b.image[y : y + h, x : x + w].astype(float).std()
            assert detail_after < 0.6 * detail_before, f"frame {a.index}: the face keeps its detail"


def test_redaction_keeps_audio_frame_count_and_timestamps(
    story: tuple[Path, Truth], video_engine: FaceEngine, tmp_path: Path
) -> None:
    out = tmp_path / "out.mkv"
    redact_video(story[0], out, video_engine)
    src, dst = probe_video(story[0]), probe_video(out)
    assert dst.has_audio
    assert (dst.width, dst.height, dst.frame_rate) == (src.width, src.height, src.frame_rate)
    assert [f.timestamp_ms for f in iter_frames(out, sample_fps=60)] == [
        f.timestamp_ms for f in iter_frames(story[0], sample_fps=60)
    ]


def test_a_kept_person_is_left_unredacted(story: tuple[Path, Truth], video_engine: FaceEngine, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    report = redact_video(story[0], out, video_engine, keep=lambda found: frozenset({1}))
    assert report.tracks_kept == 1
    left = faces_left(out, video_engine)
    assert left and {frame for frame, _ in left} == {
        i for i, f in enumerate(story[1].frames) if any(p == 1 for p, _ in f)
    }


def test_a_failed_redaction_leaves_the_output_untouched_and_no_temporary_file(
    video_engine: FaceEngine, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 5000)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous")
    with pytest.raises(InvalidVideoError, match=r"bad\.mp4"):
        redact_video(bad, out, video_engine)
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4", "out.mp4"]


@pytest.mark.parametrize(
    ("options", "parameter"),
    [({"method": "smudge"}, "method"), ({"strength": 0}, "strength"), ({"strength": 101}, "strength")],
)
def test_bad_redaction_options_are_refused_naming_the_option(options: dict[str, object], parameter: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        RedactOptions(**options)  # type: ignore[arg-type]
    assert info.value.parameter == parameter


def test_an_output_of_an_unknown_kind_is_refused(
    story: tuple[Path, Truth], video_engine: FaceEngine, tmp_path: Path
) -> None:
    with pytest.raises(InvalidParameterError, match=r"out\.gif"):
        redact_video(story[0], tmp_path / "out.gif", video_engine)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_a_redacted_image_shows_no_face(video_engine: FaceEngine, tmp_path: Path, suffix: str) -> None:
    source = face_png((40, 40, 60, 1), (200, 100, 80, 2))
    out = tmp_path / f"out{suffix}"
    report = redact_image(source, out, video_engine)
    assert report.faces == 2
    assert video_engine.detect(out) == []
    assert load_image(out).shape == load_image(source).shape
    assert out.read_bytes()[:4] == (b"\x89PNG" if suffix == ".png" else out.read_bytes()[:4])


def test_a_webm_output_is_vp9_and_shows_no_face(video_engine: FaceEngine, tmp_path: Path) -> None:
    from facetrust.video.synth import story_scene, write_clip

    silent = tmp_path / "silent.mkv"
    write_clip(silent, story_scene(), crf=1)
    out = tmp_path / "out.webm"
    redact_video(silent, out, video_engine, video=VideoOptions(sample_fps=5))
    assert probe_video(out).codec == "vp9"
    assert faces_left(out, video_engine) == []


def test_a_webm_output_for_aac_audio_is_refused_before_any_work(
    story: tuple[Path, Truth], video_engine: FaceEngine, tmp_path: Path
) -> None:
    with pytest.raises(InvalidParameterError, match=r"out\.webm.*\(aac\) cannot be copied into WebM"):
        redact_video(story[0], tmp_path / "out.webm", video_engine)
    assert list(tmp_path.iterdir()) == []


def write_with_opus(path: Path, frames: int = 15) -> None:
    """A silent-looking clip with a fake face and a second of Opus audio (as a WebM or MKV holds it)."""
    import av
    import numpy as np

    with av.open(str(path), mode="w") as out:
        video = out.add_stream("libx264", rate=15)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        sound = out.add_stream("libopus", rate=48000)
        sound.layout = "mono"
        for _ in range(frames):
            for packet in video.encode(av.VideoFrame.from_ndarray(still(160, 120, ((40, 30, 48, 1),)), format="rgb24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        tone = (0.3 * np.sin(np.arange(48000) / 5)).astype(np.float32)[None, :]
        for start in range(0, 48000, 960):
            frame = av.AudioFrame.from_ndarray(tone[:, start : start + 960], format="flt", layout="mono")
            frame.sample_rate, frame.pts = 48000, start
            for packet in sound.encode(frame):
                out.mux(packet)
        for packet in sound.encode():
            out.mux(packet)


def test_an_output_that_cannot_hold_the_audio_is_refused_before_any_work(
    video_engine: FaceEngine, tmp_path: Path
) -> None:
    source = tmp_path / "in" / "opus.mkv"
    source.parent.mkdir()
    write_with_opus(source)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(
        InvalidParameterError, match=r"Output 'copy\.mov': the audio \(opus\) cannot be copied into MOV"
    ):
        redact_video(source, out / "copy.mov", video_engine)
    assert list(out.iterdir()) == []
    redact_video(source, out / "copy.mkv", video_engine)  # Matroska holds it
    assert probe_video(out / "copy.mkv").has_audio and faces_left(out / "copy.mkv", video_engine) == []


def test_a_rotated_video_is_read_upright_and_written_with_its_rotation(
    video_engine: FaceEngine, tmp_path: Path
) -> None:
    import av
    import numpy as np

    shown = still(160, 240, ((20, 150, 48, 1),))  # a portrait frame, as a phone shows it: face low left
    clip = tmp_path / "phone.mp4"
    write_frames(clip, [np.ascontiguousarray(np.rot90(shown, -1))] * 20, rotation=90)  # stored sideways
    found = detect_video(clip, video_engine, VideoOptions(sample_fps=15))
    assert (found.info.width, found.info.height, found.rotation) == (160, 240, 90)
    box = found.faces[0].face.box
    assert (round(box.left), round(box.top), round(box.width)) == (20, 150, 48)  # where a viewer sees it

    out = tmp_path / "out.mp4"
    redact_video(clip, out, video_engine, video=VideoOptions(sample_fps=5))
    assert faces_left(out, video_engine) == []
    with av.open(str(out)) as redacted:
        first = next(redacted.decode(video=0))
        assert (first.width, first.height, first.rotation) == (240, 160, 90)  # stored as the source was


def test_a_face_always_in_view_is_covered_however_sparse_the_sampling(video_engine: FaceEngine, tmp_path: Path) -> None:
    clip = tmp_path / "still.mp4"
    write_frames(clip, [still(160, 120, ((40, 30, 48, 1),))] * 90)  # 6 s at 15 fps
    out = tmp_path / "out.mp4"
    report = redact_video(clip, out, video_engine, video=VideoOptions(sample_fps=0.5))
    assert (report.frames, report.frames_redacted) == (90, 90)
    assert faces_left(out, video_engine) == []


def test_a_variable_frame_rate_keeps_every_timestamp_and_covers_every_frame(
    video_engine: FaceEngine, tmp_path: Path
) -> None:
    times = [i * 1000 for i in range(6)] + [6000 + i * 17 for i in range(1, 60)]  # 1 fps, then 60 fps
    clip = tmp_path / "vfr.mkv"
    write_frames(clip, [still(160, 120, ((40, 30, 48, 1),))] * len(times), times_ms=times)
    for suffix in (".mkv", ".mp4"):
        out = tmp_path / f"out{suffix}"
        redact_video(clip, out, video_engine, video=VideoOptions(sample_fps=2))
        assert [f.timestamp_ms for f in iter_frames(out, sample_fps=240)] == times
        assert faces_left(out, video_engine) == []


def test_an_odd_frame_size_is_written_in_full_chroma(video_engine: FaceEngine, tmp_path: Path) -> None:
    clip = tmp_path / "odd.mkv"
    write_frames(clip, [still(161, 121, ((40, 30, 48, 1),))] * 10, pix_fmt="yuv444p")
    out = tmp_path / "out.mp4"
    redact_video(clip, out, video_engine, video=VideoOptions(sample_fps=5))
    assert (probe_video(out).width, probe_video(out).height) == (161, 121)
    assert faces_left(out, video_engine) == []


def test_the_main_video_track_is_redacted_not_a_preview_before_it(video_engine: FaceEngine, tmp_path: Path) -> None:
    import av

    preview = [still(160, 120, ((20, 20, 48, 2),))] * 10
    main = [still(320, 240, ((100, 60, 64, 1),))] * 10
    clip = tmp_path / "phone.mov"
    write_tracks(clip, [preview, main])
    assert (probe_video(clip).width, probe_video(clip).height) == (320, 240)
    out = tmp_path / "out.mov"
    report = redact_video(clip, out, video_engine, video=VideoOptions(sample_fps=5))
    assert (report.frames, report.frames_redacted) == (10, 10)
    assert report.streams_dropped == ("stream 0: video h264 160x120",)
    with av.open(str(out)) as redacted:
        assert [(s.codec_context.width, s.codec_context.height) for s in redacted.streams.video] == [(320, 240)]
    assert faces_left(out, video_engine) == []


def test_a_video_without_other_streams_drops_none(
    story: tuple[Path, Truth], video_engine: FaceEngine, tmp_path: Path
) -> None:
    report = redact_video(story[0], tmp_path / "out.mp4", video_engine, video=VideoOptions(sample_fps=5))
    assert report.streams_dropped == ()


@pytest.mark.parametrize(
    ("suffix", "picture", "cover", "dropped"),
    [
        (".mkv", 64, False, "stream 0: video mjpeg 64x64"),  # a one-frame track before the video
        (".mp4", 320, True, "stream 1: video mjpeg 320x320 (still picture)"),  # cover art larger than the video
    ],
)
def test_a_still_picture_beside_the_video_is_not_taken_for_it(
    video_engine: FaceEngine, tmp_path: Path, suffix: str, picture: int, cover: bool, dropped: str
) -> None:
    clip = tmp_path / f"clip{suffix}"
    write_with_picture(clip, [still(160, 120, ((40, 30, 48, 1),))] * 10, picture, cover=cover)
    out = tmp_path / "out.mp4"
    report = redact_video(clip, out, video_engine, video=VideoOptions(sample_fps=5))
    assert (report.frames, report.frames_redacted, report.streams_dropped) == (10, 10, (dropped,))
    assert (probe_video(out).width, probe_video(out).height) == (160, 120)
    assert faces_left(out, video_engine) == []


def test_a_one_frame_track_as_large_as_the_video_is_not_taken_for_it(video_engine: FaceEngine, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mkv"  # an unmarked one-frame MJPEG track first, the size of the video
    write_with_picture(clip, [still(160, 160, ((40, 30, 48, 1),))] * 10, 160, cover=False)
    out = tmp_path / "out.mp4"
    report = redact_video(clip, out, video_engine, video=VideoOptions(sample_fps=5))
    assert (report.frames, report.frames_redacted, report.streams_dropped) == (
        10,
        10,
        ("stream 0: video mjpeg 160x160",),
    )
    assert faces_left(out, video_engine) == []


def test_repeated_timestamps_are_written_to_mp4_moved_on_by_a_tick(video_engine: FaceEngine, tmp_path: Path) -> None:
    times = [t for i in range(10) for t in (i * 100, i * 100)]  # pairs of equal times, as some MKVs have
    clip = tmp_path / "pairs.mkv"
    write_frames(clip, [still(160, 120, ((40, 30, 48, 1),))] * len(times), times_ms=times)
    out = tmp_path / "out.mp4"
    report = redact_video(clip, out, video_engine, video=VideoOptions(sample_fps=5))
    assert (report.frames, report.frames_redacted) == (20, 20)
    assert frame_times(clip) == times
    assert frame_times(out) == [t + (i % 2) for i, t in enumerate(times)]
    assert faces_left(out, video_engine) == []


def test_timestamps_restarting_where_two_ts_files_join_are_carried_on(video_engine: FaceEngine, tmp_path: Path) -> None:
    first, second = tmp_path / "a.ts", tmp_path / "b.ts"
    write_frames(first, [still(160, 120, ((10, 30, 48, 1),))] * 15)
    write_frames(second, [still(160, 120, ((100, 30, 48, 2),))] * 15)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    found = detect_video(joined, video_engine, VideoOptions(sample_fps=5, embed=False))
    times = found.frame_times_ms
    assert len(times) == 30 and all(a < b for a, b in pairwise(times))
    assert found.frames_sampled == 10  # 2 s at 5 a second: the second file is looked at too
    assert {round(f.face.box.left) for f in found.faces} == {10, 100}
    out = tmp_path / "out.mp4"
    report = redact_video(joined, out, video_engine, video=VideoOptions(sample_fps=5))
    assert (report.frames, report.frames_redacted) == (30, 30)
    written = frame_times(out)
    assert len(written) == 30 and all(a < b for a, b in pairwise(written))
    assert faces_left(out, video_engine) == []


def test_a_video_without_timestamps_is_written_at_its_frame_rate(video_engine: FaceEngine, tmp_path: Path) -> None:
    clip = tmp_path / "raw.h264"
    write_frames(clip, [still(160, 120, ((40, 30, 48, 1),))] * 20)
    rate = probe_video(clip).frame_rate
    out = tmp_path / "out.mp4"
    report = redact_video(clip, out, video_engine, video=VideoOptions(sample_fps=5))
    assert report.frames == 20
    assert frame_times(out) == [round(i * 1000 / rate) for i in range(20)]
    assert faces_left(out, video_engine) == []
