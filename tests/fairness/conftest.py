"""Fairness fixtures: synthetic embedded datasets, and fake-face image datasets on disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facetrust.fairness.datasets import Analysis, DatasetSpec, ImageRecord
from facetrust.fairness.embedding import FACE, NO_FACE, DatasetEmbeddings
from facetrust.models.fake import draw_face

Synthetic = tuple[DatasetSpec, DatasetEmbeddings]


def synthetic(people: int = 120, seed: int = 0, spread: tuple[float, float] = (0.8, 1.2)) -> Synthetic:
    """Two groups of people; group "b" has noisier embeddings (more errors) than group "a"."""
    rng = np.random.default_rng(seed)
    records, vectors = [], []
    for p in range(people):
        group = "a" if p % 2 else "b"
        centre = rng.standard_normal(16)
        for k in range(int(rng.integers(1, 5))):
            noise = spread[0] if group == "a" else spread[1]
            vectors.append(centre + noise * rng.standard_normal(16))
            records.append(ImageRecord(f"/data/{p}_{k}.jpg", f"p{p}", {"g": group}))
    v = np.array(vectors, dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    status = np.full(len(v), FACE, dtype=np.int8)
    status[::25] = NO_FACE
    v[status == NO_FACE] = 0.0
    spec = DatasetSpec("synthetic", "csv", tuple(records), (Analysis("g", "g"),))
    return spec, DatasetEmbeddings("m", v, status)


@pytest.fixture
def synth() -> Synthetic:
    return synthetic()


@pytest.fixture
def fake_faces(tmp_path: Path) -> Callable[..., Path]:
    """``fake_faces(people=…, per_person=…)`` writes fake-face PNGs and a data.csv (path,identity,group)."""

    def make(people: int = 24, per_person: int = 3, missing: tuple[str, ...] = ("p3_0",)) -> Path:
        folder = tmp_path / "faces"
        folder.mkdir(exist_ok=True)
        rows = ["path,identity,group"]
        for p in range(people):
            for k in range(per_person):
                pixels = np.full((120, 120, 3), 40, dtype=np.uint8)
                if f"p{p}_{k}" not in missing:
                    draw_face(pixels, 10 + 5 * k, 10, 64 + 4 * k, pattern=p)
                Image.fromarray(pixels).save(folder / f"p{p}_{k}.png")
                rows.append(f"p{p}_{k}.png,p{p},{'a' if p % 2 else 'b'}")
        (folder / "data.csv").write_text("\n".join(rows) + "\n")
        return folder / "data.csv"

    return make
