"""`facetrust collections create --profile accurate`, then index and search, with the real fused engine."""

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
    accurate: FaceEngine, lfw: Path, tmp_path: Path
) -> None:
    with FaceService(tmp_path, accurate) as service:
        obj = {"service": service, "engine": accurate}

        def run(*args: str) -> click.testing.Result:
            return click.testing.CliRunner().invoke(cli, list(args), obj=obj)

        created = run("collections", "create", "people", "--profile", "accurate")
        indexed = run("index", "people", photo(lfw, "Aaron_Peirsol", 1))
        searched = run("search", "people", photo(lfw, "Aaron_Peirsol", 3), "--json")

    assert created.exit_code == 0, created.stderr
    assert created.stdout == f"Created collection people (model {accurate.model_id})\n"
    assert indexed.exit_code == 0, indexed.stderr
    assert searched.exit_code == 0, searched.stderr
    matches = json.loads(searched.stdout)["matches"]
    assert len(matches) == 1 and matches[0]["similarity"] >= 80.0
