"""Profiles per collection: each collection runs on the engine of the profile it was created with,
another profile's engine is loaded only when a collection needs it, and erasure never needs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from facetrust.engine import FaceEngine
from facetrust.errors import InvalidParameterError
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService


def photo(lfw: Path, name: str, number: int) -> bytes:
    return (lfw / "images" / name / f"{name}_{number:04d}.jpg").read_bytes()


def test_a_service_whose_collections_are_all_default_loads_no_other_profile(tmp_path: Path) -> None:
    with FaceService(tmp_path, fake_engine()) as service:
        created = service.create_collection("c")
        service.index_faces("c", face_png((10, 10, 80, 1)))
        service.search_faces_by_image("c", face_png((10, 10, 80, 1)))

        assert service.engines.loaded == ("default",)
        assert created.profile == service.describe_collection("c").profile == "default"


def test_an_unknown_profile_is_refused_naming_the_known_ones_and_the_attempt_is_audited(tmp_path: Path) -> None:
    with FaceService(tmp_path, fake_engine()) as service:
        with pytest.raises(InvalidParameterError, match=r"^Unknown profile 'fast'; available: default, accurate$"):
            service.create_collection("c", profile="fast")
        last = service.get_audit_log().entries[-1].data

        assert service.list_collections().names == ()
    assert (last["operation"], last["profile"], last["outcome"]) == ("CreateCollection", "fast", "InvalidParameter")


@pytest.mark.model
@pytest.mark.data
def test_each_collection_embeds_with_its_own_profile_in_one_service(
    engine: FaceEngine, accurate: FaceEngine, lfw: Path, tmp_path: Path
) -> None:
    with FaceService(tmp_path, engine) as service:
        service.create_collection("plain")
        service.create_collection("fine", profile="accurate")
        for name in ("plain", "fine"):
            service.index_faces(name, photo(lfw, "Aaron_Peirsol", 1), external_image_id="peirsol")
        plain = service.search_faces_by_image("plain", photo(lfw, "Aaron_Peirsol", 3))
        fine = service.search_faces_by_image("fine", photo(lfw, "Aaron_Peirsol", 3))

    assert (plain.model, fine.model) == (engine.model_id, accurate.model_id)
    assert plain.matches[0].score != pytest.approx(fine.matches[0].score, abs=1e-3)
    fused = fine.matches[0].score  # judged by the fused profile's own table, not the default one's
    assert fine.matches[0].similarity == pytest.approx(accurate.calibration.similarity(fused), abs=1e-3)
    assert abs(accurate.calibration.similarity(fused) - engine.calibration.similarity(fused)) > 1


@pytest.mark.model
@pytest.mark.data
def test_an_accurate_collection_is_erased_without_loading_its_engine(
    engine: FaceEngine, accurate: FaceEngine, lfw: Path, tmp_path: Path
) -> None:
    with FaceService(tmp_path, engine) as service:
        service.create_collection("fine", profile="accurate")
        indexed = service.index_faces("fine", photo(lfw, "Aaron_Peirsol", 1), external_image_id="peirsol")
    with FaceService(tmp_path, engine) as service:  # a fresh process: only the default engine loaded
        receipt = service.erase_external_image_id("fine", "peirsol")
        assert service.engines.loaded == ("default",)
        assert service.verify_receipt(receipt)
        assert service.list_faces("fine").faces == ()

    assert list(receipt.face_ids) == [f.stored.face_id for f in indexed.indexed]
