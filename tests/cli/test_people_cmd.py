"""facetrust people list / show / merge / split / name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from .service_cli import ServiceCli, service_cli


@pytest.fixture
def fc(tmp_path: Path) -> Iterator[ServiceCli]:
    """Collection "people": a1, a2 (identity 1), b1, b2 (identity 2), c1 (identity 3), one image each."""
    with service_cli(tmp_path) as helper:
        helper.service.create_collection("people")
        # the second face of a person sits elsewhere, so no two files have the same bytes (index skips copies)
        specs = [("a1", 1, 20), ("a2", 1, 24), ("b1", 2, 20), ("b2", 2, 24), ("c1", 3, 20)]
        paths = [helper.image(f"{n}.png", [(x, 20, 100, p)]) for n, p, x in specs]
        assert helper.run("index", "people", *paths).exit_code == 0
        yield helper


def _clusters(fc: ServiceCli) -> list[dict[str, object]]:
    people: list[dict[str, object]] = json.loads(fc.run("people", "list", "people", "--json").stdout)["people"]
    return people


def test_list_shows_each_cluster_and_the_unclustered_count(fc: ServiceCli) -> None:
    result = fc.run("people", "list", "people")
    ids = sorted(str(p["cluster_id"]) for p in _clusters(fc))

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "people: 2 people, 1 face unclustered (threshold 90)"
    assert lines[1] == f"{'cluster id':36}  faces  cohesion  user"
    assert sorted(line.split()[0] for line in lines[2:]) == ids
    assert all(line.split()[1:2] == ["2"] and line.endswith("  -") for line in lines[2:])


def test_show_lists_the_faces_of_a_cluster(fc: ServiceCli) -> None:
    a1, a2, *_ = fc.face_ids("people")
    cluster = next(p for p in _clusters(fc) if p["representative_face_id"] in (a1, a2))

    result = fc.run("people", "show", "people", str(cluster["cluster_id"]))

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"cluster        {cluster['cluster_id']}"
    assert lines[1] == "faces          2"
    assert sorted(lines[5:]) == sorted([a1, a2])


def test_merge_split_and_name_from_the_command_line(fc: ServiceCli) -> None:
    a1, a2, b1, b2, _ = fc.face_ids("people")
    by_face = {str(p["representative_face_id"]): str(p["cluster_id"]) for p in _clusters(fc)}
    first = by_face.get(a1) or by_face[a2]
    second = by_face.get(b1) or by_face[b2]

    merged = fc.run("people", "merge", "people", first, second, "--json")
    split = fc.run("people", "split", "people", first, b2)
    named = fc.run("people", "name", "people", first, "alice")

    assert merged.exit_code == 0 and set(json.loads(merged.stdout)["face_ids"]) == {a1, a2, b1, b2}
    assert split.exit_code == 0 and split.stdout.splitlines()[1] == "faces          3"
    assert (named.exit_code, named.stdout) == (0, f"Named cluster {first} alice: 3 faces associated\n")
    full = json.loads(fc.run("people", "list", "people", "--full", "--threshold", "85", "--json").stdout)
    assert full["threshold"] == 85
    assert [(p["cluster_id"], p["size"], p["user_id"]) for p in full["people"]] == [(first, 3, "alice")]


def test_an_unknown_cluster_is_an_error(fc: ServiceCli) -> None:
    result = fc.run("people", "show", "people", "nope")

    assert (result.exit_code, result.stderr) == (1, "Error: Cluster 'nope' is not in collection 'people'\n")


def test_threshold_without_full_is_a_usage_error(fc: ServiceCli) -> None:
    result = fc.run("people", "list", "people", "--threshold", "90")

    assert result.exit_code == 2 and "--threshold applies to a full pass" in result.stderr
