"""Helpers for tests of the collection commands: a FaceService over the fake engine, injected."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import click.testing
import numpy as np
from PIL import Image

from facetrust.cli import cli
from facetrust.models.fake import draw_face, fake_engine
from facetrust.service import FaceService

FaceSpec = tuple[int, int, int, int]  # left, top, size, pattern (identity)


class ServiceCli:
    """Runs ``facetrust ARGS`` with ``obj={"service": …, "engine": …}`` and writes test images."""

    def __init__(self, service: FaceService, folder: Path) -> None:
        self.service = service
        self.folder = folder

    def run(self, *args: str, input: str | None = None) -> click.testing.Result:
        obj = {"service": self.service, "engine": self.service.engine}
        return click.testing.CliRunner().invoke(cli, list(args), obj=obj, input=input)

    def image(self, name: str, faces: Sequence[FaceSpec] = (), width: int = 400, height: int = 300) -> str:
        """A PNG with fake faces drawn as (left, top, size, pattern); returns its path."""
        pixels = np.full((height, width, 3), 60, np.uint8)
        for left, top, size, pattern in faces:
            draw_face(pixels, left, top, size, pattern)
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path)
        return str(path)

    def face_ids(self, collection: str) -> list[str]:
        return [f.face_id for f in self.service.list_faces(collection).faces]


@contextmanager
def service_cli(tmp_path: Path) -> Iterator[ServiceCli]:
    service = FaceService(tmp_path / "data", fake_engine())
    try:
        yield ServiceCli(service, tmp_path / "images")
    finally:
        service.close()
