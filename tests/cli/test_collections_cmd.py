"""facetrust collections create / list / describe / delete over an injected FaceService."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facetrust.cli.render_collections import timestamp

from .service_cli import ServiceCli, service_cli


@pytest.fixture
def fc(tmp_path: Path) -> Iterator[ServiceCli]:
    with service_cli(tmp_path) as helper:
        yield helper


def test_create_prints_the_collection_and_its_model(fc: ServiceCli) -> None:
    result = fc.run("collections", "create", "people")

    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout == "Created collection people (model fake-recogniser:0)\n"
    assert fc.service.describe_collection("people").face_count == 0


def test_create_an_existing_collection_is_an_error(fc: ServiceCli) -> None:
    fc.service.create_collection("people")

    result = fc.run("collections", "create", "people")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "Error: Collection 'people' already exists\n"


def test_create_refuses_an_invalid_name(fc: ServiceCli) -> None:
    result = fc.run("collections", "create", "my people")

    assert result.exit_code == 1
    assert result.stderr == "Error: CollectionId 'my people' is invalid: use 1–255 characters from a-z A-Z 0-9 _ . -\n"


def test_list_prints_every_collection_with_its_model(fc: ServiceCli) -> None:
    for name in ("staff", "alpha", "visitors"):
        fc.service.create_collection(name)

    result = fc.run("collections", "list")

    assert result.exit_code == 0
    assert result.stdout == (
        "name      model\nalpha     fake-recogniser:0\nstaff     fake-recogniser:0\nvisitors  fake-recogniser:0\n"
    )


def test_list_pages_through_every_collection(fc: ServiceCli, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a", "b", "c"):
        fc.service.create_collection(name)
    listing = fc.service.list_collections
    calls: list[int] = []

    def one_per_page(**kw: Any) -> Any:
        calls.append(kw["max_results"])
        return listing(**{**kw, "max_results": 1})  # whatever page size the command asks for

    monkeypatch.setattr(fc.service, "list_collections", one_per_page)

    result = fc.run("collections", "list", "--json")

    assert result.exit_code == 0
    assert calls == [4096] * 3  # the largest page size: one audit entry per page
    assert json.loads(result.stdout) == [{"name": n, "model": "fake-recogniser:0"} for n in ("a", "b", "c")]


def test_list_says_when_there_are_no_collections(fc: ServiceCli) -> None:
    result = fc.run("collections", "list")

    assert (result.exit_code, result.stdout) == (0, "no collections\n")


def test_describe_prints_model_creation_time_and_counts(fc: ServiceCli) -> None:
    info = fc.service.create_collection("people")
    fc.run("index", "people", fc.image("a.png", [(20, 20, 100, 1), (200, 50, 100, 2)]))
    fc.service.create_user("people", "alice")

    result = fc.run("collections", "describe", "people")

    assert result.exit_code == 0
    assert result.stdout == (
        f"name     people\nmodel    fake-recogniser:0\nprofile  default\ncreated  {timestamp(info.created_at)}\n"
        "faces    2\nusers    1\n"
    )


def test_describe_json_gives_every_field(fc: ServiceCli) -> None:
    info = fc.service.create_collection("people")

    result = fc.run("collections", "describe", "--json", "people")

    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "name": "people",
        "model": "fake-recogniser:0",
        "created_at": round(info.created_at, 4),
        "created": timestamp(info.created_at),
        "face_count": 0,
        "user_count": 0,
        "purpose": "general",
        "profile": "default",
    }


def test_describe_a_missing_collection_exits_1_naming_it(fc: ServiceCli) -> None:
    result = fc.run("collections", "describe", "nobody")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "Error: Collection 'nobody' does not exist\n"


def test_delete_with_yes_deletes_and_counts_the_faces(fc: ServiceCli) -> None:
    fc.service.create_collection("people")
    fc.run("index", "people", fc.image("a.png", [(20, 20, 100, 1), (200, 50, 100, 2)]))

    result = fc.run("collections", "delete", "--yes", "people")

    assert result.exit_code == 0
    assert result.stdout == "Deleted collection people (2 faces deleted)\n"
    assert fc.service.list_collections().names == ()


def test_delete_asks_first_and_deletes_on_y(fc: ServiceCli) -> None:
    fc.service.create_collection("people")
    fc.run("index", "people", fc.image("a.png", [(20, 20, 100, 1)]))

    result = fc.run("collections", "delete", "people", input="y\n")

    assert result.exit_code == 0
    assert result.stderr == "Delete collection people with its 1 face and 0 users? [y/N]: y\n"
    assert result.stdout == "Deleted collection people (1 face deleted)\n"


def test_delete_without_yes_aborts_on_n_and_keeps_the_collection(fc: ServiceCli) -> None:
    fc.service.create_collection("people")

    result = fc.run("collections", "delete", "people", input="n\n")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "Delete collection people with its 0 faces and 0 users? [y/N]: n\nAborted!\n"
    assert fc.service.list_collections().names == ("people",)


def test_delete_a_missing_collection_is_an_error_before_asking(fc: ServiceCli) -> None:
    result = fc.run("collections", "delete", "nobody")

    assert result.exit_code == 1
    assert result.stderr == "Error: Collection 'nobody' does not exist\n"


def test_catch_up_computes_the_statistics_of_faces_that_lack_them_and_says_how_many(fc: ServiceCli) -> None:
    from facetrust.store import tailstats

    fc.service.create_collection("people")  # background mode, no server: enrolment computes none
    fc.service.index_faces("people", fc.image("a.png", [(20, 20, 80, 1), (150, 20, 80, 2), (280, 20, 80, 3)]))

    first = fc.run("collections", "catch-up", "people", "--limit", "1")
    again = fc.run("collections", "catch-up", "people")

    assert (first.exit_code, first.stderr) == (0, "")
    assert first.stdout == "Computed the statistics of 1 face of collection people; 2 faces still without\n"
    assert again.stdout == "Computed the statistics of 2 faces of collection people; 0 faces still without\n"
    row = fc.service.store.get_collection("people")
    assert row is not None
    with fc.service.store.transaction() as conn:  # as a deletion leaves the faces that held the deleted one
        tailstats.mark_stale(
            conn, row.id, [f.key for f in fc.service.store.list_faces(row.id, after_key=0, limit=10)][:2]
        )
    stale = fc.run("collections", "catch-up", "people")
    assert stale.stdout == "Computed the statistics of 2 faces of collection people; 0 faces still without\n"


def test_catch_up_of_a_missing_collection_is_an_error(fc: ServiceCli) -> None:
    result = fc.run("collections", "catch-up", "nope")

    assert result.exit_code == 1
    assert result.stderr == "Error: Collection 'nope' does not exist\n"
