"""facetrust faces list / delete."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from facetrust.cli.render_collections import timestamp

from .service_cli import ServiceCli, service_cli

HEADER = (
    "face id                               external image id  user id  box ratio (l,t,w,h)      conf  bright  sharp"
)
MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def fc(tmp_path: Path) -> Iterator[ServiceCli]:
    """Collection "people": a.png with two faces (identities 1 and 2), b.png with one (identity 3)."""
    with service_cli(tmp_path) as helper:
        helper.service.create_collection("people")
        a = helper.image("a.png", [(20, 20, 100, 1), (200, 50, 80, 2)])
        b = helper.image("b.png", [(40, 60, 120, 3)])
        assert helper.run("index", "people", a, b).exit_code == 0
        yield helper


# The keys of each face `faces list --json` writes (docs/cli.md names each: tests/cli/test_docs.py).
FACE_JSON_KEYS = (
    "face_id",
    "image_id",
    "external_image_id",
    "user_id",
    "box",
    "confidence",
    "quality",
    "pose",
    "created_at",
    "created",
    "expires_at",
)


def test_list_prints_every_face_with_its_labels_box_and_quality(fc: ServiceCli) -> None:
    one, two, three = fc.face_ids("people")
    fc.service.create_user("people", "alice")
    fc.service.associate_faces("people", "alice", [three])

    result = fc.run("faces", "list", "people")

    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout == (
        "people: 3 faces\n"
        f"{HEADER}\n"
        f"{one}  a.png              -        0.050,0.067,0.250,0.333  99.0    95.4   99.7\n"
        f"{two}  a.png              -        0.500,0.167,0.200,0.267  99.0    93.5  100.0\n"
        f"{three}  b.png              alice    0.100,0.200,0.300,0.400  99.0    93.2  100.0\n"
    )


def test_list_only_the_faces_of_a_user(fc: ServiceCli) -> None:
    _, two, _ = fc.face_ids("people")
    fc.service.create_user("people", "bob")
    fc.service.associate_faces("people", "bob", [two])

    result = fc.run("faces", "list", "people", "--user-id", "bob", "--json")

    assert result.exit_code == 0
    assert [f["face_id"] for f in json.loads(result.stdout)["faces"]] == [two]


def test_list_json_pages_through_every_face(fc: ServiceCli, monkeypatch: pytest.MonkeyPatch) -> None:
    stored = fc.service.list_faces("people", max_results=10).faces
    listing = fc.service.list_faces
    monkeypatch.setattr(fc.service, "list_faces", lambda *a, **kw: listing(*a, **{**kw, "max_results": 1}))

    result = fc.run("faces", "list", "--json", "people")

    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert (document["collection"], document["model"]) == ("people", "fake-recogniser:0")
    assert [f["face_id"] for f in document["faces"]] == [f.face_id for f in stored]
    first = document["faces"][0]
    assert set(first) == set(FACE_JSON_KEYS)
    assert first["box"] == {"left": 0.05, "top": 0.0667, "width": 0.25, "height": 0.3333}
    assert first["created"] == timestamp(stored[0].created_at)


def test_list_an_empty_collection(fc: ServiceCli) -> None:
    fc.service.create_collection("empty")

    result = fc.run("faces", "list", "empty")

    assert (result.exit_code, result.stdout) == (0, "empty: no faces\n")


def test_list_a_missing_collection_exits_1(fc: ServiceCli) -> None:
    result = fc.run("faces", "list", "nobody")

    assert (result.exit_code, result.stderr) == (1, "Error: Collection 'nobody' does not exist\n")


def test_delete_removes_the_faces_given(fc: ServiceCli) -> None:
    one, _, three = fc.face_ids("people")

    result = fc.run("faces", "delete", "people", one, three)

    assert result.exit_code == 0
    assert result.stdout == f"deleted {one}\ndeleted {three}\npeople: 2 of 2 faces deleted\n"
    assert len(fc.face_ids("people")) == 1


def test_delete_reports_a_face_that_is_not_there_and_exits_1(fc: ServiceCli) -> None:
    one, _, _ = fc.face_ids("people")

    result = fc.run("faces", "delete", "people", one, MISSING)

    assert result.exit_code == 1
    assert result.stdout == f"deleted {one}\npeople: 1 of 2 faces deleted\n"
    assert result.stderr == f"Error: face {MISSING} not deleted: FACE_NOT_FOUND\n"


def test_delete_refuses_a_malformed_face_id(fc: ServiceCli) -> None:
    result = fc.run("faces", "delete", "people", "face-1")

    assert result.exit_code == 1
    assert result.stderr == "Error: FaceIds 'face-1' is invalid: a face id is a lowercase UUID\n"
    assert len(fc.face_ids("people")) == 3
