"""pq and ivf save each shard's codes: a load reads them back instead of re-encoding every row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

from facetrust.errors import InvalidParameterError
from facetrust.index import create_index, load_index
from facetrust.index.ivf import IvfIndex
from facetrust.index.pq import PqIndex

from .conftest import unit_vectors

NEW_ARRAYS = ("codes", "code_sizes")

ENCODINGS = {"count": 0}  # how often a loaded index encoded every shard from its codebooks


class CountingPq(PqIndex):
    """A pq index that counts how often every shard is encoded from the codebooks."""

    def _adopt(self, trained: Any) -> None:
        ENCODINGS["count"] += 1
        super()._adopt(trained)


class CountingIvf(IvfIndex):
    def _adopt(self, trained: Any) -> None:
        ENCODINGS["count"] += 1
        super()._adopt(trained)


BACKENDS: list[tuple[str, type[PqIndex], dict[str, int]]] = [
    ("pq", CountingPq, {"train_size": 500, "candidates": 30}),
    ("ivf", CountingIvf, {"lists": 8, "probes": 4, "train_size": 500, "candidates": 40}),
]


@pytest.fixture(params=BACKENDS, ids=[b[0] for b in BACKENDS])
def saved(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[PqIndex, type[PqIndex], Path]:
    """A trained index (every shard encoded) and its saved file."""
    name, counting, options = request.param
    index = create_index(name, 16, **options)
    assert isinstance(index, PqIndex)
    index.add(np.arange(3000), unit_vectors(3000, seed=11))
    path = tmp_path / "faces.index"
    index.save(path)
    ENCODINGS["count"] = 0
    return index, counting, path


def data_file(path: Path) -> Path:
    return path.parent / json.loads(path.read_text())["data"]


def rewrite(path: Path, drop: tuple[str, ...] = (), **changes: np.ndarray) -> None:
    """Rewrite a saved index's arrays (``drop`` some, replace others), fixing the manifest's byte count."""
    data = data_file(path)
    with np.load(data) as z:
        arrays = {name: z[name] for name in z.files if name not in drop}
    arrays.update(changes)
    with open(data, "wb") as fh:
        np.savez(fh, **arrays)
    manifest = json.loads(path.read_text())
    manifest["data_bytes"] = data.stat().st_size
    path.write_text(json.dumps(manifest))


def shard_codes(index: PqIndex) -> list[bytes]:
    return [faiss.serialize_index(shard.codes).tobytes() for shard in index._shards]


def assert_same_answers(index: PqIndex, loaded: PqIndex) -> None:
    queries = unit_vectors(60, seed=12)
    before, after = index.search(queries, 10), loaded.search(queries, 10)
    np.testing.assert_array_equal(after.keys, before.keys)
    np.testing.assert_array_equal(after.scores, before.scores)


def test_load_reads_the_saved_codes_back_without_encoding_and_answers_exactly_the_same(
    saved: tuple[PqIndex, type[PqIndex], Path],
) -> None:
    index, counting, path = saved
    loaded = counting.load(path)
    assert ENCODINGS["count"] == 0
    assert shard_codes(loaded) == shard_codes(index)
    assert_same_answers(index, loaded)


def test_codes_of_removed_rows_are_never_saved_and_the_saved_codes_match_a_re_encoding(
    saved: tuple[PqIndex, type[PqIndex], Path],
) -> None:
    index, counting, path = saved
    assert index.remove(np.arange(0, 600, 2)) == 300  # too few to compact: the shards keep the rows, marked
    index.save(path)
    with np.load(data_file(path)) as z:
        sizes, codes = z["code_sizes"], z["codes"]
    ends = np.cumsum(sizes)
    saved_rows = [faiss.deserialize_index(codes[end - size : end]).ntotal for end, size in zip(ends, sizes)]
    assert saved_rows == [shard.live for shard in index._shards] and sum(saved_rows) == 2700
    loaded = counting.load(path)
    assert ENCODINGS["count"] == 0 and len(loaded) == 2700 and 2 not in loaded
    rewrite(path, drop=NEW_ARRAYS)
    re_encoded = counting.load(path)
    assert ENCODINGS["count"] == 1
    assert shard_codes(loaded) == shard_codes(re_encoded)
    assert_same_answers(re_encoded, loaded)


def test_a_loaded_index_keeps_adding_replacing_and_removing(saved: tuple[PqIndex, type[PqIndex], Path]) -> None:
    index, counting, path = saved
    loaded = counting.load(path)
    extra = unit_vectors(100, seed=13)
    for target in (index, loaded):
        target.add(np.arange(5000, 5100), extra)
        target.remove(np.arange(0, 2000))
        target.add([1], extra[0])  # a removed key comes back
    assert_same_answers(index, loaded)
    assert len(loaded) == 1101 and loaded.search(extra[5], 1).keys[0, 0] == 5005


def test_a_file_without_codes_from_the_previous_version_loads_by_re_encoding(
    saved: tuple[PqIndex, type[PqIndex], Path],
) -> None:
    index, counting, path = saved
    rewrite(path, drop=NEW_ARRAYS)  # exactly what the previous save wrote
    loaded = counting.load(path)
    assert ENCODINGS["count"] == 1
    assert shard_codes(loaded) == shard_codes(index)
    assert_same_answers(index, loaded)


def test_an_untrained_index_round_trips_with_empty_codes(tmp_path: Path) -> None:
    index = create_index("pq", 16, train_size=500)
    index.add(np.arange(50), unit_vectors(50, seed=14))
    index.save(tmp_path / "i")
    loaded = load_index(tmp_path / "i")
    assert isinstance(loaded, PqIndex) and not loaded.trained and len(loaded) == 50
    assert_same_answers(index, loaded)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "damage",
    [
        lambda z: {"codes": z["codes"][: len(z["codes"]) // 2]},
        lambda z: {"code_sizes": z["code_sizes"] + 1},
        lambda z: {"codes": np.zeros_like(z["codes"])},
        lambda z: {"shards": z["shards"] + 5},
        lambda z: {"shards": np.zeros_like(z["shards"])},
    ],
    ids=["codes-truncated", "sizes-wrong", "codes-zeroed", "shards-out-of-range", "codes-of-another-shard"],
)
def test_damaged_codes_or_shard_numbers_are_refused_with_a_rebuild_hint(
    saved: tuple[PqIndex, type[PqIndex], Path], damage: Any
) -> None:
    _, _, path = saved
    with np.load(data_file(path)) as z:
        rewrite(path, **damage(z))
    with pytest.raises(InvalidParameterError, match="rebuild") as info:
        load_index(path)
    assert info.value.parameter == "path"


def test_codes_of_another_backend_are_refused(saved: tuple[PqIndex, type[PqIndex], Path], tmp_path: Path) -> None:
    index, _, path = saved
    other = (
        create_index("ivf", 16, train_size=500, lists=8)
        if index.name == "pq"
        else create_index("pq", 16, train_size=500)
    )
    other.add(np.arange(1000), unit_vectors(1000, seed=15))
    other.save(tmp_path / "other")
    with np.load(data_file(tmp_path / "other")) as z:
        codes, sizes = z["codes"], z["code_sizes"]
    rewrite(path, codes=codes, code_sizes=sizes)
    with pytest.raises(InvalidParameterError, match="rebuild"):
        load_index(path)
