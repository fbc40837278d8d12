from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from facetrust.errors import InvalidParameterError, NotFoundError
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService
from facetrust.service.search import fpir


@pytest.fixture(params=["auto", "pq", "hnsw"])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FaceService]:
    """Every test here runs on each index backend (auto is exact at these sizes)."""
    svc = FaceService(tmp_path / "data", fake_engine(), index_backend=request.param)
    yield svc
    svc.close()


def _gallery(service: FaceService, people: int = 6) -> dict[int, str]:
    service.create_collection("c")
    ids = {}
    for pattern in range(people):
        ids[pattern] = (
            service.index_faces("c", face_png((20, 20, 100, pattern)), external_image_id=f"p{pattern}")
            .indexed[0]
            .stored.face_id
        )
    return ids


def test_search_faces_by_image_finds_the_same_person_first(service: FaceService) -> None:
    ids = _gallery(service)
    result = service.search_faces_by_image("c", face_png((150, 100, 100, 3)))
    assert result.matches and result.matches[0].face.face_id == ids[3]
    assert result.matches[0].similarity >= 80 and result.matches[0].fmr <= 1e-4
    assert result.searched_face is not None and result.searched_face.box.left == pytest.approx(150)
    assert result.gallery_size == 6


def test_search_returns_no_match_below_threshold(service: FaceService) -> None:
    _gallery(service)
    result = service.search_faces_by_image("c", face_png((20, 20, 100, 99)))
    assert all(m.similarity >= 80 for m in result.matches)
    assert result.matches == ()


def test_search_with_threshold_zero_returns_everyone_best_first(service: FaceService) -> None:
    _gallery(service)
    result = service.search_faces_by_image("c", face_png((20, 20, 100, 2)), threshold=0, max_faces=100)
    assert len(result.matches) == 6
    sims = [m.similarity for m in result.matches]
    assert sims == sorted(sims, reverse=True)


def test_search_faces_by_face_id_excludes_the_face_itself(service: FaceService) -> None:
    ids = _gallery(service)
    twin = service.index_faces("c", face_png((50, 50, 100, 2))).indexed[0].stored.face_id
    result = service.search_faces("c", ids[2])
    assert [m.face.face_id for m in result.matches] == [twin]
    assert result.searched_face_id == ids[2] and result.gallery_size == 6


def test_search_never_returns_deleted_faces(service: FaceService) -> None:
    ids = _gallery(service)
    service.search_faces_by_image("c", face_png((20, 20, 100, 4)))  # builds the index
    service.delete_faces("c", [ids[4]])
    assert service.search_faces_by_image("c", face_png((20, 20, 100, 4))).matches == ()


def test_search_result_reports_fpir_for_the_gallery_size(service: FaceService) -> None:
    _gallery(service, people=5)
    result = service.search_faces_by_image("c", face_png((20, 20, 100, 1)), threshold=80)
    assert result.fpir == pytest.approx(1 - (1 - 1e-4) ** 5)


def test_fpir_grows_with_gallery_size_and_falls_with_threshold() -> None:
    assert fpir(80, 0) == 0
    assert fpir(80, 1) == pytest.approx(1e-4)
    assert fpir(80, 1_000_000) == pytest.approx(1 - math.exp(-100), rel=1e-6)
    assert fpir(99, 10_000) < fpir(80, 10_000) < fpir(60, 10_000)


def test_fpir_never_claims_an_fmr_below_the_calibrations_floor() -> None:
    from facetrust.service.scoring import ProbeScale

    table = fake_engine().calibration
    small = dataclasses.replace(table, floor_fmr=5e-4, log10_fmr=(0.0, math.log10(5e-4)))  # a small site's table
    assert fpir(80, 5_000, small.floor_fmr) == pytest.approx(ProbeScale(small, 5_000, None).fpir(80))
    assert fpir(80, 5_000, small.floor_fmr) == pytest.approx(1 - (1 - 5e-4) ** 5_000)


def test_search_by_image_without_a_face_raises_invalid_parameter(service: FaceService) -> None:
    _gallery(service)
    with pytest.raises(InvalidParameterError, match="no faces"):
        service.search_faces_by_image("c", face_png())


def test_search_faces_for_unknown_face_raises_not_found(service: FaceService) -> None:
    _gallery(service)
    with pytest.raises(NotFoundError):
        service.search_faces("c", "00000000-0000-0000-0000-000000000000")


@pytest.mark.parametrize("kwargs", [{"threshold": 101}, {"threshold": -1}, {"max_faces": 0}, {"max_faces": 5000}])
def test_search_refuses_out_of_range_parameters(service: FaceService, kwargs: dict[str, float]) -> None:
    _gallery(service)
    with pytest.raises(InvalidParameterError):
        service.search_faces_by_image("c", face_png((20, 20, 100, 1)), **kwargs)  # type: ignore[arg-type]


def test_index_survives_reopening_and_catches_up_with_changes(service: FaceService) -> None:
    ids = _gallery(service)
    service.search_faces_by_image("c", face_png((20, 20, 100, 1)))
    service.close()
    reopened = FaceService(service.data_dir, service.engine)
    try:
        reopened.delete_faces("c", [ids[1]])
        new = reopened.index_faces("c", face_png((20, 20, 100, 1))).indexed[0].stored.face_id
        result = reopened.search_faces_by_image("c", face_png((20, 20, 100, 1)))
        assert [m.face.face_id for m in result.matches] == [new]
    finally:
        reopened.close()


def test_index_is_rebuilt_when_its_files_are_corrupt(service: FaceService) -> None:
    ids = _gallery(service)
    service.search_faces_by_image("c", face_png((20, 20, 100, 1)))
    service.index_faces("c", face_png((20, 20, 100, 7)))
    service.close()
    for path in (service.data_dir / "index").iterdir():
        path.write_bytes(b"garbage")
    reopened = FaceService(service.data_dir, service.engine)
    try:
        result = reopened.search_faces_by_image("c", face_png((20, 20, 100, 1)))
        assert [m.face.face_id for m in result.matches] == [ids[1]]
    finally:
        reopened.close()


def test_search_sees_faces_indexed_by_another_service_on_the_same_data(service: FaceService) -> None:
    _gallery(service)
    service.search_faces_by_image("c", face_png((20, 20, 100, 1)))
    other = FaceService(service.data_dir, service.engine)
    try:
        new = other.index_faces("c", face_png((20, 20, 100, 42))).indexed[0].stored.face_id
    finally:
        other.close()
    result = service.search_faces_by_image("c", face_png((20, 20, 100, 42)))
    assert [m.face.face_id for m in result.matches] == [new]


def test_auto_backend_switches_to_pq_when_the_collection_outgrows_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import facetrust.index

    service = FaceService(tmp_path / "data", fake_engine())
    try:
        ids = _gallery(service, people=3)
        row = service.store.get_collection("c")
        assert row is not None
        assert service.indexes.get(row).ensure().name == "exact"
        monkeypatch.setattr(facetrust.index, "AUTO_THRESHOLD", 5)
        for pattern in range(10, 13):
            service.index_faces("c", face_png((20, 20, 100, pattern)))
        assert service.indexes.get(row).ensure().name == "pq"
        result = service.search_faces_by_image("c", face_png((20, 20, 100, 1)))
        assert [m.face.face_id for m in result.matches] == [ids[1]]
    finally:
        service.close()
