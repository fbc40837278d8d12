"""Saved indexes: the manifest is the commit point; damaged or missing files raise clear errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from facetrust.errors import InvalidParameterError, NotFoundError
from facetrust.index import create_index, load_index
from facetrust.index.exact import ExactIndex
from facetrust.index.hnsw import HnswIndex

from .conftest import unit_vectors


@pytest.fixture(params=["exact", "pq", "hnsw", "ivf"])
def saved(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    index = create_index(request.param, 8)
    index.add(np.arange(20), unit_vectors(20, dim=8))
    path = tmp_path / "faces.index"
    index.save(path)
    return path


def data_file(path: Path) -> Path:
    return path.parent / json.loads(path.read_text())["data"]


def test_missing_index_raises_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="No saved index at"):
        load_index(tmp_path / "nothing")


def test_manifest_records_backend_size_and_parameters(saved: Path) -> None:
    manifest = json.loads(saved.read_text())
    assert manifest["format"] == "facetrust-index/1"
    assert manifest["dim"] == 8 and manifest["count"] == 20
    assert manifest["data_bytes"] == data_file(saved).stat().st_size
    assert manifest["data"].startswith("faces.index.")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_text("not json"), "not JSON"),
        (lambda p: p.write_text(json.dumps({"format": "other/9"})), "expected format"),
        (lambda p: data_file(p).unlink(), "is missing"),
        (lambda p: data_file(p).write_bytes(b"x" * 10), "has 10 bytes"),
    ],
    ids=["not-json", "wrong-format", "data-missing", "data-truncated"],
)
def test_damaged_index_raises_invalid_parameter_saying_rebuild(saved: Path, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    damage(saved)
    with pytest.raises(InvalidParameterError, match=message) as info:
        load_index(saved)
    assert info.value.parameter == "path"
    assert "rebuild" in str(info.value)


def test_corrupt_data_of_the_recorded_size_is_refused(saved: Path) -> None:
    data = data_file(saved)
    data.write_bytes(b"\0" * data.stat().st_size)
    with pytest.raises(InvalidParameterError, match="rebuild"):
        load_index(saved)


def test_a_data_path_outside_the_folder_is_refused(saved: Path) -> None:
    manifest = json.loads(saved.read_text())
    manifest["data"] = "../elsewhere.npz"
    saved.write_text(json.dumps(manifest))
    with pytest.raises(InvalidParameterError, match="plain file name"):
        load_index(saved)


def test_loading_with_the_wrong_backend_class_is_refused(saved: Path) -> None:
    backend = json.loads(saved.read_text())["backend"]
    other = HnswIndex if backend == "exact" else ExactIndex
    with pytest.raises(InvalidParameterError, match="use load_index"):
        other.load(saved)


def test_an_unknown_backend_in_the_manifest_lists_the_known_ones(saved: Path) -> None:
    manifest = json.loads(saved.read_text())
    manifest["backend"] = "annoy"
    saved.write_text(json.dumps(manifest))
    with pytest.raises(InvalidParameterError, match=r"'annoy'.*available: exact, pq, hnsw, ivf"):
        load_index(saved)


def test_saving_into_a_missing_folder_raises_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        create_index("exact", 4).save(tmp_path / "no" / "such" / "index")


def test_a_failed_save_leaves_the_previous_index_intact(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = saved.read_text()
    index = load_index(saved)

    def explode(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("facetrust.index.storage.os.replace", explode)
    index.remove([0])
    with pytest.raises(OSError, match="disk full"):
        index.save(saved)
    monkeypatch.undo()
    assert saved.read_text() == before
    assert len(load_index(saved)) == 20
    assert sorted(p.name for p in saved.parent.iterdir()) == sorted([saved.name, data_file(saved).name])


def _rewrite_npz(saved: Path, **changes: np.ndarray) -> None:
    """Replace arrays in a saved .npz index and fix the manifest's byte count, as a bad writer would."""
    data = data_file(saved)
    with np.load(data) as z:
        arrays = {name: z[name] for name in z.files}
    arrays.update(changes)
    with open(data, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]
    manifest = json.loads(saved.read_text())
    manifest["data_bytes"] = data.stat().st_size
    saved.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("keys", "vectors", "message"),
    [
        (np.zeros(20, np.int64), None, "repeated or negative keys"),
        (np.arange(-1, 19), None, "repeated or negative keys"),
        (np.arange(19), None, "the manifest says 20 faces"),
        (np.arange(20).astype(np.float64), None, "keys float64"),
        (None, np.zeros((20, 4), np.float32), r"vectors \(20, 4\)"),
    ],
    ids=["repeated", "negative", "short", "float-keys", "narrow-vectors"],
)
@pytest.mark.parametrize("backend", ["exact", "pq", "ivf"])  # hnsw writes a usearch file, checked by its header
def test_npz_arrays_that_disagree_with_the_manifest_are_refused(
    backend: str, tmp_path: Path, keys: np.ndarray | None, vectors: np.ndarray | None, message: str
) -> None:
    index = create_index(backend, 8)
    index.add(np.arange(20), unit_vectors(20, dim=8))
    saved = tmp_path / "faces.index"
    index.save(saved)
    _rewrite_npz(saved, **{name: a for name, a in (("keys", keys), ("vectors", vectors)) if a is not None})
    with pytest.raises(InvalidParameterError, match=message) as info:
        load_index(saved)
    assert "rebuild" in str(info.value) and info.value.parameter == "path"


def test_the_exact_index_keeps_no_copy_of_a_removed_vector_in_its_spare_rows() -> None:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((3, 8)).astype(np.float32)
    index = ExactIndex(8)
    index.add(np.array([1, 2, 3]), vectors)
    index.remove([3])  # the last row: nothing moves into it
    index.remove([1])  # a middle row: the last one moves in
    stored = index._vectors  # every row, the spare ones included
    for gone in (vectors[0], vectors[2]):
        assert not any(np.array_equal(row, gone) for row in stored)
    assert len(index) == 1 and 2 in index


@pytest.mark.parametrize("backend", ["exact", "pq", "hnsw", "ivf"])
def test_a_saved_index_is_readable_by_its_owner_only_whatever_the_umask(backend: str, tmp_path: Path) -> None:
    index = create_index(backend, 8)
    index.add(np.arange(20), unit_vectors(20, dim=8))
    path = tmp_path / "faces.index"
    before = os.umask(0o022)
    try:
        index.save(path)
    finally:
        os.umask(before)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(data_file(path).stat().st_mode) == 0o600
