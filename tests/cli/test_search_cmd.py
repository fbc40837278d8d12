"""facetrust search: candidates with similarity, estimated FMR and the FPIR of the list."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from facetrust.models.fake import face_png
from facetrust.service import scoring

from .service_cli import ServiceCli, service_cli

FACES_HEADER = "#  face id                               external image id  similarity  est. FMR"
USERS_HEADER = "#  user id  faces  similarity  est. FMR  best face id"
UNRELIABLE_6 = "estimate unreliable: gallery of 6 faces is below the 1,000 needed for a per-probe estimate"


@pytest.fixture
def fc(tmp_path: Path) -> Iterator[ServiceCli]:
    """Collection "people" with one face of each of the fake identities 0–5, labelled p0.png … p5.png."""
    with service_cli(tmp_path) as helper:
        helper.service.create_collection("people")
        paths = [helper.image(f"p{n}.png", [(20, 20, 100, n)]) for n in range(6)]
        assert helper.run("index", "people", *paths).exit_code == 0
        yield helper


def face_of(fc: ServiceCli, external: str) -> str:
    return next(f.face_id for f in fc.service.list_faces("people").faces if f.external_image_id == external)


def test_search_prints_the_searched_face_the_match_and_the_fpir(fc: ServiceCli) -> None:
    probe = fc.image("probe.png", [(150, 100, 100, 3)])

    result = fc.run("search", "people", probe)

    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout == (
        f"{probe}: searched face at 150,100,100,100 (100 px)\n"
        f"{FACES_HEADER}\n"
        f"1  {face_of(fc, 'p3.png')}  p3.png                 100.00    ≤1e-06\n"
        "gallery of 6 faces: chance of at least one false match in this list ≈ 0.0006\n"
        f"{UNRELIABLE_6}\n"
    )


def test_search_without_a_match_exits_0_and_says_so(fc: ServiceCli) -> None:
    probe = fc.image("stranger.png", [(150, 100, 100, 42)])

    result = fc.run("search", "people", probe)

    assert result.exit_code == 0
    assert result.stdout == (
        f"{probe}: searched face at 150,100,100,100 (100 px)\n"
        "no faces match at similarity ≥ 80\n"
        "gallery of 6 faces: chance of at least one false match in this list ≈ 0.0006\n"
        f"{UNRELIABLE_6}\n"
    )


def test_search_with_a_lower_threshold_gives_a_larger_fpir(fc: ServiceCli) -> None:
    probe = fc.image("stranger.png", [(150, 100, 100, 42)])

    result = fc.run("search", "people", "--threshold", "20", probe)

    assert result.exit_code == 0
    assert result.stdout.endswith(
        f"gallery of 6 faces: chance of at least one false match in this list ≈ 0.47\n{UNRELIABLE_6}\n"
    )


def test_search_json_gives_the_searched_face_matches_and_fpir(fc: ServiceCli) -> None:
    probe = fc.image("probe.png", [(150, 100, 100, 3)])

    result = fc.run("search", "people", "--json", probe)

    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert {k: document[k] for k in ("image", "threshold", "model", "gallery_size", "fpir")} == {
        "image": probe,
        "threshold": 80.0,
        "model": "fake-recogniser:0",
        "gallery_size": 6,
        "fpir": 0.0005999,
    }
    assert document["searched_face"]["box"] == {"left": 150.0, "top": 100.0, "width": 100.0, "height": 100.0}
    [match] = document["matches"]
    assert match["face"]["face_id"] == face_of(fc, "p3.png")
    assert match["face"]["external_image_id"] == "p3.png"
    assert (match["similarity"], match["fmr"], match["fmr_is_bound"]) == (100.0, 1e-06, True)
    assert match["score"] > 0.99
    estimate = document["estimate"]  # a gallery of 6 is too small for a per-probe estimate
    assert (estimate["method"], estimate["fmr"]) == ("calibration", 0.0001)
    assert estimate["unreliable"].startswith("gallery of 6 faces is below the 1,000 needed")


def test_given_a_gallery_large_enough_when_searching_then_the_text_has_no_unreliable_line(
    fc: ServiceCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scoring, "MIN_GALLERY", 60)  # a per-probe estimate from 64 faces, not 1,000
    for pattern in range(6, 64):
        fc.service.index_faces("people", face_png((20, 20, 100, pattern)), external_image_id=f"p{pattern}.png")
    probe = fc.image("probe.png", [(150, 100, 100, 3)])

    text = fc.run("search", "people", probe)
    document = json.loads(fc.run("search", "people", "--json", probe).stdout)

    assert text.exit_code == 0
    assert document["estimate"]["method"] == "probe-tail" and document["estimate"]["unreliable"] is None
    assert "unreliable" not in text.stdout
    assert text.stdout.endswith("gallery of 64 faces: chance of at least one false match in this list ≈ 0.0064\n")


def test_search_users_lists_the_user_of_the_matching_face(fc: ServiceCli) -> None:
    fc.service.create_user("people", "alice")
    fc.service.associate_faces("people", "alice", [face_of(fc, "p3.png")])
    probe = fc.image("probe.png", [(150, 100, 100, 3)])

    result = fc.run("search", "people", "--users", probe)

    assert result.exit_code == 0
    assert result.stdout == (
        f"{probe}: searched face at 150,100,100,100 (100 px)\n"
        f"{USERS_HEADER}\n"
        f"1  alice        1      100.00    ≤1e-06  {face_of(fc, 'p3.png')}\n"
        "1 face of users: chance of at least one false match in this list ≈ 0.0001\n"
        f"{UNRELIABLE_6}\n"  # the probe's tail is read off all the collection's faces
    )


def test_search_users_of_an_image_without_a_face_says_nothing_was_searched(fc: ServiceCli) -> None:
    empty = fc.image("empty.png", [])

    users = fc.run("search", "people", "--users", empty)
    faces = fc.run("search", "people", empty)

    assert users.exit_code == 0  # SearchUsersByImage: no matches and no searched face, as AWS answers
    assert users.stdout.splitlines()[:2] == [
        f"{empty}: no face that can be searched (none found, or all too small, cut off or below the filter)",
        "no users match at similarity ≥ 80",
    ]
    assert faces.exit_code == 1 and "no faces in the image that can be searched" in faces.stderr


def test_search_max_faces_limits_the_candidates(fc: ServiceCli) -> None:
    probe = fc.image("probe.png", [(150, 100, 100, 3)])

    result = fc.run("search", "people", "--threshold", "0", "--max-faces", "2", "--json", probe)

    assert result.exit_code == 0
    assert len(json.loads(result.stdout)["matches"]) == 2


def test_search_an_image_without_a_face_exits_1(fc: ServiceCli) -> None:
    empty = fc.image("empty.png")

    result = fc.run("search", "people", empty)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: There are no faces in the image that can be searched (none found, or all too small, cut off or "
        "below the quality filter)\n"
    )


def test_search_a_missing_collection_exits_1(fc: ServiceCli) -> None:
    result = fc.run("search", "nobody", fc.image("probe.png", [(150, 100, 100, 3)]))

    assert result.exit_code == 1
    assert result.stderr == "Error: Collection 'nobody' does not exist\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--threshold", "101"), "Invalid value for '--threshold': 101.0 is not in the range 0.0<=x<=100.0."),
        (("--threshold", "high"), "Invalid value for '--threshold': 'high' is not a valid float range."),
        (("--max-faces", "0"), "Invalid value for '--max-faces': 0 is not in the range 1<=x<=4096."),
    ],
)
def test_search_bad_options_are_usage_errors(fc: ServiceCli, args: tuple[str, ...], message: str) -> None:
    result = fc.run("search", "people", *args, fc.image("probe.png", [(150, 100, 100, 3)]))

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "Usage: facetrust search [OPTIONS] COLLECTION IMAGE\n"
        "Try 'facetrust search --help' for help.\n"
        "\n"
        f"Error: {message}\n"
    )
