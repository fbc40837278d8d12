"""Profiles per collection: each collection runs on the engine of the profile it was created with,
another profile's engine is loaded only when a collection needs it, and erasure never needs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from facetrust.engine import FaceEngine
from facetrust.errors import InvalidParameterError
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService
from facetrust.service.video import governed_video_search
from facetrust.video import VideoOptions
from facetrust.video.synth import LFW_FACE_INSET, Scene, ScenePerson, lfw_face_patch, write_clip


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
            service.index_faces(name, photo(lfw, "Aaron_Eckhart", 1), external_image_id="eckhart")
        plain = service.search_faces_by_image("plain", photo(lfw, "Aaron_Peirsol", 3), threshold=0)
        fine = service.search_faces_by_image("fine", photo(lfw, "Aaron_Peirsol", 3), threshold=0)

    assert (plain.model, fine.model) == (engine.model_id, accurate.model_id)
    assert plain.matches[0].score != pytest.approx(fine.matches[0].score, abs=1e-3)
    # each score judged by the fused profile's own table, not the default one's; a stranger's score
    # lies where the two tables disagree (a mated one reaches 100 on both)
    for match in fine.matches:
        assert match.similarity == pytest.approx(accurate.calibration.similarity(match.score), abs=1e-3)
    stranger = next(m.score for m in fine.matches if m.face.external_image_id == "eckhart")
    assert abs(accurate.calibration.similarity(stranger) - engine.calibration.similarity(stranger)) > 1


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


@pytest.mark.model
@pytest.mark.data
def test_a_video_search_of_an_accurate_collection_tracks_and_matches_with_the_fused_engine(
    engine: FaceEngine, accurate: FaceEngine, lfw: Path, tmp_path: Path
) -> None:
    face = lfw / "images" / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg"
    scene = Scene(320, 240, 15, 1.2, (ScenePerson(lfw_face_patch(face), 100, (100, 60), face_inset=LFW_FACE_INSET),))
    write_clip(tmp_path / "clip.mp4", scene)
    with FaceService(tmp_path / "data", engine) as service:
        service.create_collection("fine", profile="accurate")
        indexed = service.index_faces("fine", face.read_bytes(), external_image_id="eckhart")
        found = governed_video_search(service.ctx, "fine", tmp_path / "clip.mp4", options=VideoOptions(sample_fps=5))

    assert found.model == accurate.model_id
    assert [[m.face.face_id for m in p.matches] for p in found.persons] == [[indexed.indexed[0].stored.face_id]]
    assert all(e.model == accurate.model_id for p in found.video.persons for e in p.best)


@pytest.mark.model
@pytest.mark.data
def test_associate_faces_matches_on_the_accurate_collections_own_templates(
    engine: FaceEngine, accurate: FaceEngine, lfw: Path, tmp_path: Path
) -> None:
    with FaceService(tmp_path, engine) as service:
        service.create_collection("fine", profile="accurate")
        ids = [
            service.index_faces("fine", photo(lfw, name, number)).indexed[0].stored.face_id
            for name, number in (("Aaron_Peirsol", 1), ("Aaron_Peirsol", 3), ("Aaron_Eckhart", 1))
        ]
        service.create_user("fine", "peirsol")
        first = service.associate_faces("fine", "peirsol", ids[:1])
        same = service.associate_faces("fine", "peirsol", ids[1:2])
        other = service.associate_faces("fine", "peirsol", ids[2:])

    assert (first.associated, same.associated, other.associated) == ((ids[0],), (ids[1],), ())
