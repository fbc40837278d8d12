"""facetrust video detect|search and facetrust redact, over the fake engine and a generated clip."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from facetrust.governance import audit
from facetrust.video import VideoOptions, detect_video, probe_video
from facetrust.video.synth import story_scene, write_clip

from .service_cli import ServiceCli, service_cli


@pytest.fixture
def fc(tmp_path: Path) -> Iterator[ServiceCli]:
    """Collection "staff" holding fake person 1 (staff.png), and the story clip at clip.mp4."""
    with service_cli(tmp_path) as helper:
        helper.service.create_collection("staff")
        assert helper.run("index", "staff", helper.image("staff.png", [(20, 20, 100, 1)])).exit_code == 0
        write_clip(tmp_path / "clip.mp4", story_scene(), audio=True, crf=1)
        yield helper


def clip(fc: ServiceCli) -> str:
    return str(fc.folder.parent / "clip.mp4")


def last_audit(fc: ServiceCli) -> dict[str, object]:
    with fc.service.store.snapshot() as conn:
        entries = list(audit.entries(conn))
    return entries[-1].data


def test_video_detect_lists_each_person_with_first_and_last_sighting(fc: ServiceCli) -> None:
    result = fc.run("video", "detect", clip(fc), "--sample-fps", "5")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"{clip(fc)}: 3.0 s, 240×160 at 15 fps; 15 frames looked at (5 per second), 2 persons\n"
        "person  first seen  last seen  sightings  largest px\n"
        "     0      0.00 s     2.80 s         15          48\n"
        "     1      1.00 s     2.80 s          8          48\n"
    )


def test_video_detect_json_gives_metadata_and_every_sighting(fc: ServiceCli) -> None:
    result = fc.run("video", "detect", clip(fc), "--sample-fps", "5", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["metadata"] == {
        "codec": "h264",
        "format": "mov",
        "width": 240,
        "height": 160,
        "frame_rate": 15.0,
        "duration_ms": 3000,
        "frames": 45,
        "audio": True,
    }
    assert [len(p["sightings"]) for p in doc["persons"]] == [15, 8]
    assert doc["persons"][1]["sightings"][0] == {
        "timestamp_ms": 1000,
        "box": {"left": 160.0, "top": 90.0, "width": 48.0, "height": 48.0},
        "confidence": 99.0,
    }


def test_video_detect_of_a_file_that_is_not_a_video_exits_1_naming_it(fc: ServiceCli, tmp_path: Path) -> None:
    bad = tmp_path / "holiday.mp4"
    bad.write_text("not a video")
    result = fc.run("video", "detect", str(bad))
    assert result.exit_code == 1
    assert result.stderr == "Error: holiday.mp4: not a video FFmpeg can read (InvalidDataError)\n"


def test_video_search_matches_the_enrolled_person_only_and_is_audited(fc: ServiceCli) -> None:
    result = fc.run("video", "search", "staff", clip(fc), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    matched = {p["person"]: [m["external_image_id"] for m in p["matches"]] for p in doc["persons"]}
    assert matched == {0: ["staff.png"], 1: []}
    entry = last_audit(fc)
    assert (entry["operation"], entry["collection"], entry["persons"]) == ("VideoSearch", "staff", [0])
    assert entry["face_ids"] == [doc["persons"][0]["matches"][0]["face_id"]]


def test_video_search_text_names_the_best_match_per_person(fc: ServiceCli) -> None:
    result = fc.run("video", "search", "staff", clip(fc))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "staff.png" in lines[2] and lines[3].split()[-4:] == ["-", "-", "-", "-"]
    assert lines[4].startswith("1 of 2 persons match in staff at similarity ≥ 80 (gallery of 1 face; audit entry")
    # a gallery of one face is too small to read a person's own estimate from: each person says so
    assert [line.split(":")[0] for line in lines[5:]] == ["person 0", "person 1"]
    assert all("estimate unreliable: " in line for line in lines[5:])


def test_video_search_json_gives_each_persons_estimate_as_its_audit_entry_records_it(fc: ServiceCli) -> None:
    result = fc.run("video", "search", "staff", clip(fc), "--json")
    doc = json.loads(result.stdout)
    recorded = last_audit(fc)["estimates"]

    assert [p["estimate"]["method"] for p in doc["persons"]] == [e["estimate"] for e in recorded]
    assert [p["estimate"]["unreliable"] for p in doc["persons"]] == [e["unreliable"] for e in recorded]
    assert [p["fpir"] for p in doc["persons"]] == [e["fpir"] for e in recorded]


def test_redact_video_writes_a_redacted_copy_and_reports_it(fc: ServiceCli, tmp_path: Path) -> None:
    out = tmp_path / "public.mp4"
    result = fc.run("redact", clip(fc), "-o", str(out), "--sample-fps", "5")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"{clip(fc)} → {out}: 23 face sightings in 4 tracks, 0 kept; 45 of 45 frames redacted (104 boxes)\n"
    )
    assert probe_video(out).has_audio
    assert detect_video(out, fc.service.engine, VideoOptions(sample_fps=60)).faces == ()
    entry = last_audit(fc)
    assert (entry["operation"], entry["output"], entry["tracks"]) == ("Redact", "public.mp4", 4)


def test_redact_names_the_streams_it_does_not_carry(fc: ServiceCli, tmp_path: Path) -> None:
    from video_tracks import still, write_tracks

    source = tmp_path / "phone.mov"
    write_tracks(source, [[still(160, 120, ())] * 6, [still(320, 240, ((40, 30, 48, 1),))] * 6])
    out = tmp_path / "public.mov"
    result = fc.run("redact", str(source), "-o", str(out), "--sample-fps", "5")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"{source} → {out}: 2 face sightings in 1 tracks, 0 kept; 6 of 6 frames redacted (6 boxes); "
        "not carried: stream 0: video h264 160x120\n"
    )
    assert last_audit(fc)["streams_dropped"] == ["stream 0: video h264 160x120"]


def test_redact_with_keep_leaves_the_matching_person_and_audits_the_match(fc: ServiceCli, tmp_path: Path) -> None:
    out = tmp_path / "public.mkv"
    result = fc.run("redact", clip(fc), "-o", str(out), "--keep", "staff", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tracks_kept"] == 1
    left = detect_video(out, fc.service.engine, VideoOptions(sample_fps=60))
    assert left.faces and {f.face.box.left < 160 or f.timestamp_ms >= 2200 for f in left.faces} == {True}
    entry = last_audit(fc)
    assert (entry["operation"], entry["collection"], entry["persons"]) == ("Redact", "staff", [0])


def test_redact_an_image(fc: ServiceCli, tmp_path: Path) -> None:
    source = fc.image("group.png", [(20, 20, 100, 1), (200, 100, 80, 4)])
    out = tmp_path / "group-public.png"
    result = fc.run("redact", source, "-o", str(out), "--method", "pixelate", "--strength", "100")
    assert result.exit_code == 0, result.output
    assert (
        result.stdout == f"{source} → {out}: 2 face sightings in 2 tracks, 0 kept; 1 of 1 frames redacted (2 boxes)\n"
    )


def test_redact_into_an_unknown_format_exits_1(fc: ServiceCli, tmp_path: Path) -> None:
    result = fc.run("redact", clip(fc), "-o", str(tmp_path / "out.gif"))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Output 'out.gif' must end in one of .jpg, .jpeg, .png, .mp4, .mov, .mkv")


def test_redact_into_a_missing_folder_is_a_usage_error_before_any_work(fc: ServiceCli, tmp_path: Path) -> None:
    result = fc.run("redact", clip(fc), "-o", str(tmp_path / "nowhere" / "out.mp4"))
    assert result.exit_code == 2 and "does not exist" in result.stderr and "Traceback" not in result.output


def test_a_nan_threshold_or_rate_is_a_usage_error(fc: ServiceCli) -> None:
    for args in (
        ("video", "search", "staff", clip(fc), "--threshold", "nan"),
        ("video", "detect", clip(fc), "--sample-fps", "nan"),
    ):
        result = fc.run(*args)
        assert result.exit_code == 2 and "'nan' is not a number" in result.stderr, args
