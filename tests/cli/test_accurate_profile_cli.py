"""`facetrust collections create --profile accurate` on a service of the default profile, then index,
search and describe: the collection's commands use the real fused engine."""

from __future__ import annotations

import json
from pathlib import Path

import click.testing
import pytest

from facetrust.cli import cli
from facetrust.engine import FaceEngine
from facetrust.service import FaceService

pytestmark = [pytest.mark.model, pytest.mark.data]


def photo(lfw: Path, name: str, number: int) -> str:
    return str(lfw / "images" / name / f"{name}_{number:04d}.jpg")


def test_create_index_and_search_a_collection_of_the_accurate_profile(
    engine: FaceEngine, accurate: FaceEngine, lfw: Path, tmp_path: Path
) -> None:
    with FaceService(tmp_path, engine) as service:
        obj = {"service": service, "engine": engine}

        def run(*args: str) -> click.testing.Result:
            return click.testing.CliRunner().invoke(cli, list(args), obj=obj)

        created = run("collections", "create", "people", "--profile", "accurate")
        indexed = run("index", "people", photo(lfw, "Aaron_Peirsol", 1))
        searched = run("search", "people", photo(lfw, "Aaron_Peirsol", 3), "--json")
        described = run("collections", "describe", "people", "--json")

    assert created.exit_code == 0, created.stderr
    assert created.stdout == f"Created collection people (model {accurate.model_id})\n"
    assert indexed.exit_code == 0, indexed.stderr
    assert searched.exit_code == 0, searched.stderr
    matches = json.loads(searched.stdout)["matches"]
    assert len(matches) == 1 and matches[0]["similarity"] >= 80.0
    assert json.loads(searched.stdout)["model"] == accurate.model_id
    assert json.loads(described.stdout)["profile"] == "accurate"
