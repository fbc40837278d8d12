"""Embedding a dataset: statuses, the cache (fast rerun, resume), and agreement with the engine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from facetrust.fairness import embedding
from facetrust.fairness.datasets import load_csv
from facetrust.fairness.embedding import FACE, NO_FACE, UNREADABLE, embed_images
from facetrust.models.fake import fake_engine


def test_each_image_gets_its_largest_faces_embedding_or_a_status(
    fake_faces: Callable[..., Path], tmp_path: Path
) -> None:
    spec = load_csv(fake_faces(people=2, per_person=2, missing=("p1_1",)))
    paths = [r.path for r in spec.images]
    (tmp_path / "bad.png").write_bytes(b"not an image")
    engine = fake_engine()

    emb = embed_images(engine, [*paths, str(tmp_path / "bad.png")], fingerprint="x", cache_dir=None)

    assert emb.status.tolist() == [FACE, FACE, FACE, NO_FACE, UNREADABLE]
    assert emb.model == engine.model_id
    expected = engine.embed_largest(paths[0])
    assert expected is not None
    np.testing.assert_allclose(emb.vectors[0], expected.vector, rtol=1e-5, atol=1e-6)
    assert not emb.vectors[3].any()


def test_a_rerun_reads_the_cache_and_reports_progress(fake_faces: Callable[..., Path], tmp_path: Path) -> None:
    paths = [r.path for r in load_csv(fake_faces(people=3)).images]
    engine = fake_engine()
    seen: list[int] = []
    first = embed_images(engine, paths, fingerprint="f", cache_dir=tmp_path / "cache", progress=seen.append)
    assert not first.cached and sum(seen) == len(paths)

    seen.clear()
    again = embed_images(engine, paths, fingerprint="f", cache_dir=tmp_path / "cache", progress=seen.append)

    assert again.cached and seen == [len(paths)]
    np.testing.assert_array_equal(again.vectors, first.vectors)
    (cache_file,) = (tmp_path / "cache" / "audit").iterdir()
    assert cache_file.stat().st_mode & 0o777 == 0o600  # embeddings are biometric data


def test_an_interrupted_run_resumes_after_the_saved_part(
    fake_faces: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = [r.path for r in load_csv(fake_faces(people=4, per_person=2)).images]
    engine = fake_engine()
    monkeypatch.setattr(embedding, "CHUNK", 2)
    monkeypatch.setattr(embedding, "SAVE_EVERY", 2)
    calls: list[int] = []
    real = embedding.embed_chunk

    def failing(engine_: object, chunk: list[str]) -> tuple[np.ndarray, np.ndarray]:
        calls.append(len(chunk))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(engine_, chunk)  # type: ignore[arg-type]

    monkeypatch.setattr(embedding, "embed_chunk", failing)
    with pytest.raises(KeyboardInterrupt):
        embed_images(engine, paths, fingerprint="r", cache_dir=tmp_path)
    monkeypatch.setattr(embedding, "embed_chunk", real)
    done: list[int] = []

    emb = embed_images(engine, paths, fingerprint="r", cache_dir=tmp_path, progress=done.append)

    assert done[0] == 4  # two chunks of two were saved before the interruption
    assert sum(done) == len(paths)
    fresh = embed_images(engine, paths, fingerprint="r", cache_dir=None)
    np.testing.assert_array_equal(emb.vectors, fresh.vectors)
