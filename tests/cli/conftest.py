"""CLI test fixtures: a runner that injects the fake engine, and a maker of fake-face PNGs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import click.testing
import numpy as np
import pytest
from PIL import Image

from facetrust.cli import cli
from facetrust.models.fake import draw_face, fake_engine

FaceSpec = tuple[int, int, int, int]  # left, top, size, pattern (identity)
MakeImage = Callable[..., str]
Invoke = Callable[..., click.testing.Result]


@pytest.fixture(autouse=True)
def _no_facetrust_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings must come from the command line in these tests, not the developer's shell; and the
    per-user data directory (where `compare` keeps its audit log without --data) is a temporary one."""
    import os

    for key in list(os.environ):
        if key.startswith("FACETRUST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@pytest.fixture
def make_image(tmp_path: Path) -> MakeImage:
    """``make_image(name, [(left, top, size, pattern), ...])`` writes a PNG the fake detector reads."""

    def make(name: str, faces: Sequence[FaceSpec] = (), width: int = 200, height: int = 120) -> str:
        pixels = np.full((height, width, 3), 40, dtype=np.uint8)
        for left, top, size, pattern in faces:
            draw_face(pixels, left, top, size, pattern)
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path)
        return str(path)

    return make


@pytest.fixture
def invoke() -> Invoke:
    """Run ``facetrust ARGS`` in-process over the fake engine (stdout and stderr kept apart)."""

    def run(*args: str) -> click.testing.Result:
        return click.testing.CliRunner().invoke(cli, list(args), obj={"engine": fake_engine()})

    return run
