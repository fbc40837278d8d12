"""Helpers of the per-face statistics tests: enrol known unit vectors into a collection, read the
statistics stored for it, and check them against the exact top K computed here."""

from __future__ import annotations

import hashlib

import numpy as np

from facetrust.models.fake import face_png
from facetrust.service import FaceService
from facetrust.service.ingest import PreparedImage
from facetrust.service.scoring import TAIL_K
from facetrust.store import tailstats
from facetrust.types import FaceEmbedding

DIM = 32


def unit_vectors(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim))
    out: np.ndarray = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    return out


def enrol(
    service: FaceService, vectors: np.ndarray, start: int = 0, collection: str = "c", model: str | None = None
) -> list[str]:
    """Index each vector as its own image (``index_prepared``, the bulk path) as embeddings of
    ``model`` (default: the service's own engine's); their face ids."""
    face = service.engine.detect(service.engine.load_image(face_png((20, 20, 100, 1))))[0]
    ids = []
    for i, v in enumerate(vectors, start):
        emb = FaceEmbedding(v, model or service.engine.model_id, face)
        sha = hashlib.sha256(f"{collection}:{i}".encode()).hexdigest()
        done = service.index_prepared(collection, PreparedImage(sha, (face,), (emb,)), external_image_id=f"p{i}")
        ids.append(done.indexed[0].stored.face_id)
    return ids


def face_keys(service: FaceService, collection: str = "c") -> dict[str, int]:
    row = service.store.get_collection(collection)
    assert row is not None
    return {f.face_id: f.key for f in service.store.list_faces(row.id, after_key=0, limit=10_000)}


def stored_tails(service: FaceService, collection: str = "c") -> dict[int, tailstats.FaceTail]:
    keys = list(face_keys(service, collection).values())
    with service.store.snapshot() as conn:
        return tailstats.read(conn, keys)


def assert_exact(service: FaceService, by_key: dict[int, np.ndarray], collection: str = "c") -> None:
    """Every face's stored top K is its exact top K against the other faces (float16 scores)."""
    stored = stored_tails(service, collection)
    keys = np.array(sorted(by_key))
    matrix = np.stack([by_key[k] for k in keys])
    assert sorted(stored) == keys.tolist()
    for i, key in enumerate(keys):
        scores = matrix @ matrix[i]
        scores[i] = -np.inf
        order = np.argsort(-scores)[: min(TAIL_K, len(keys) - 1)]
        assert set(stored[key].neighbours.tolist()) == set(keys[order].tolist()), key
        np.testing.assert_allclose(stored[key].scores, scores[order], atol=2e-3)  # highest first
