"""The 'accurate' profile on real LFW photographs: dlib's recogniser, the fused engine, a collection."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from facetrust.clusternorm import ClusterNormaliser, shipped_normaliser
from facetrust.config import Settings
from facetrust.engine import FaceEngine
from facetrust.errors import InvalidParameterError
from facetrust.models.dlib import CANVAS
from facetrust.models.fused import DLIB_SHARE, FusedRecogniser
from facetrust.service import FaceService

pytestmark = [pytest.mark.model, pytest.mark.data]


def photo(lfw: Path, name: str, number: int) -> Path:
    return lfw / "images" / name / f"{name}_{number:04d}.jpg"


def vector(engine: FaceEngine, path: Path) -> np.ndarray:
    found = engine.embed_largest(path)
    assert found is not None, path
    return found.vector


def test_the_accurate_engine_embeds_unit_fused_vectors_with_its_own_model_and_calibration(
    accurate: FaceEngine, lfw: Path
) -> None:
    (embedding,) = accurate.embed(photo(lfw, "Aaron_Peirsol", 1))

    assert isinstance(accurate.recogniser, FusedRecogniser)
    assert embedding.vector.shape == (256,)
    assert embedding.vector.dtype == np.float32
    assert float(np.linalg.norm(embedding.vector)) == pytest.approx(1.0, abs=1e-4)
    assert embedding.model == accurate.model_id
    assert accurate.model_id.startswith("fused-sface-dlib:") and "+flip" not in accurate.model_id
    assert accurate.calibration.model == accurate.model_id


def test_the_fused_score_is_the_weighted_sum_of_the_sface_and_dlib_cosines_on_real_faces(
    accurate: FaceEngine, lfw: Path
) -> None:
    recogniser = accurate.recogniser
    assert isinstance(recogniser, FusedRecogniser)
    rgb = [accurate.load_image(photo(lfw, "Aaron_Peirsol", n)) for n in (1, 3)]
    faces = [accurate.detect(image)[0] for image in rgb]
    from facetrust.align import align_face

    crops = np.stack(
        [align_face(i, f.landmarks, size=CANVAS, reference=recogniser.reference) for i, f in zip(rgb, faces)]
    )
    sface, dlib = recogniser.embed_parts(crops)
    fused = recogniser.embed(crops)

    expected = (1 - DLIB_SHARE) * float(sface[0] @ sface[1]) + DLIB_SHARE * float(dlib[0] @ dlib[1])
    assert float(fused[0] @ fused[1]) == pytest.approx(expected, abs=1e-5)


def test_dlib_scores_the_same_person_above_different_people(accurate: FaceEngine, lfw: Path) -> None:
    recogniser = accurate.recogniser
    assert isinstance(recogniser, FusedRecogniser)
    same = [photo(lfw, "Aaron_Peirsol", n) for n in (1, 3)]
    others = [photo(lfw, "Aaron_Eckhart", 1), photo(lfw, "AJ_Lamas", 1), photo(lfw, "Aaron_Guiel", 1)]
    from facetrust.align import align_face

    crops = []
    for path in same + others:
        rgb = accurate.load_image(path)
        crops.append(align_face(rgb, accurate.detect(rgb)[0].landmarks, size=CANVAS, reference=recogniser.reference))
    _, dlib = recogniser.embed_parts(np.stack(crops))

    mated = float(dlib[0] @ dlib[1])
    impostors = [float(dlib[0] @ d) for d in dlib[2:]]
    assert mated > 0.93  # dlib's cosines sit high: its tolerance 0.6 (Euclidean) is cosine 0.82
    assert max(impostors) < mated - 0.05, (mated, impostors)


def test_matched_pairs_reach_similarity_80_and_mismatched_do_not(accurate: FaceEngine, lfw: Path) -> None:
    a, b = vector(accurate, photo(lfw, "Aaron_Peirsol", 1)), vector(accurate, photo(lfw, "Aaron_Peirsol", 3))
    c = vector(accurate, photo(lfw, "Aaron_Eckhart", 1))
    assert accurate.calibration.similarity(float(a @ b)) >= 80.0
    assert accurate.calibration.similarity(float(a @ c)) < 80.0


# made by bench/calibrate.py --normaliser --profile accurate
ACCURATE_SCORE_ID = "fused-sface-dlib:a5ff4225b9ac+fsn308-fe0890f3e24f"


def test_the_accurate_engine_normalises_1to1_scores_with_its_own_shipped_cluster_normaliser(
    accurate: FaceEngine, lfw: Path
) -> None:
    shipped = shipped_normaliser(accurate.model_id)

    assert accurate.normalisation == "cluster"
    assert shipped is not None and isinstance(accurate.normaliser, ClusterNormaliser)
    assert accurate.normaliser.score_id == shipped.score_id == ACCURATE_SCORE_ID
    assert shipped.centroids.shape[1] == accurate.recogniser.dim == 256
    assert shipped.calibration is not None and shipped.calibration.model == ACCURATE_SCORE_ID
    assert shipped.provenance["privacy"] == {"min_people": 50, "max_person_share": 0.1}
    assert "SFace's cosine" in shipped.provenance["utk_offset_pairs"]  # the same pairs left out as the default's
    same = accurate.compare(photo(lfw, "Aaron_Peirsol", 1), photo(lfw, "Aaron_Peirsol", 3))
    other = accurate.compare(photo(lfw, "Aaron_Peirsol", 1), photo(lfw, "Aaron_Eckhart", 1))
    assert same.normalisation == other.normalisation == "cluster"
    assert same.model == accurate.model_id
    assert len(same.matches) == 1 and same.matches[0].comparison.similarity >= 80.0
    assert not other.matches and other.unmatched[0].comparison.similarity < 80.0


def test_a_collection_of_the_accurate_profile_indexes_and_finds_the_same_person(
    accurate: FaceEngine, lfw: Path, tmp_path: Path
) -> None:
    with FaceService(tmp_path, accurate) as service:
        info = service.create_collection("people", profile="accurate")
        assert info.model == accurate.model_id
        service.index_faces("people", photo(lfw, "Aaron_Peirsol", 1), external_image_id="peirsol")
        service.index_faces("people", photo(lfw, "Aaron_Eckhart", 1), external_image_id="eckhart")

        found = service.search_faces_by_image("people", photo(lfw, "Aaron_Peirsol", 3))

        assert [m.face.external_image_id for m in found.matches] == ["peirsol"]


def test_a_default_service_searches_an_accurate_collection_made_by_an_accurate_one(
    accurate: FaceEngine, engine: FaceEngine, lfw: Path, tmp_path: Path
) -> None:
    with FaceService(tmp_path, accurate) as service:
        service.create_collection("people", profile="accurate")
        service.index_faces("people", photo(lfw, "Aaron_Peirsol", 1), external_image_id="peirsol")
    with FaceService(tmp_path, engine) as service:
        found = service.search_faces_by_image("people", photo(lfw, "Aaron_Peirsol", 3))

    assert found.model == accurate.model_id
    assert [m.face.external_image_id for m in found.matches] == ["peirsol"]
    assert Settings(profile="accurate").profile == "accurate"


def test_a_normaliser_file_of_the_default_model_serves_the_default_engine_and_leaves_the_accurate_one_its_own(
    tmp_path: Path,
) -> None:
    from facetrust.service.profiles import ProfileEngines

    plain = FaceEngine.load(Settings())
    own = shipped_normaliser(plain.model_id)
    assert own is not None
    path = tmp_path / "own-normaliser.json"
    own.save(path)
    default = FaceEngine.load(Settings(normaliser_file=path))
    assert isinstance(default.normaliser, ClusterNormaliser) and default.normaliser.score_id == own.score_id

    accurate = ProfileEngines(default).get("accurate")  # before: refused, "not available on this server"

    fused = shipped_normaliser(accurate.model_id)
    assert fused is not None and accurate.settings.normaliser_file is None
    assert isinstance(accurate.normaliser, ClusterNormaliser) and accurate.score_id == fused.score_id
    with pytest.raises(
        InvalidParameterError, match=re.escape(f"Normaliser file {path} is for model {plain.model_id!r}")
    ):
        FaceEngine.load(Settings(profile="accurate", normaliser_file=path))  # asked for by name: still refused


def test_a_folder_of_refitted_normalisers_serves_each_profile_its_own(tmp_path: Path) -> None:
    import dataclasses

    from facetrust.service.profiles import ProfileEngines

    default_own, fused_own = (
        shipped_normaliser(FaceEngine.load(Settings(profile=p, score_normalisation=False)).model_id)
        for p in ("default", "accurate")
    )
    assert default_own is not None and fused_own is not None
    shifted = dataclasses.replace(fused_own, offsets=fused_own.offsets + 0.01, calibration=None)
    shifted = ClusterNormaliser.from_json(shifted.to_json(), origin="shifted")  # as stored: offsets rounded
    assert fused_own.calibration is not None
    refitted = shifted.with_calibration(dataclasses.replace(fused_own.calibration, model=shifted.score_id))
    default_own.save(tmp_path / "default.json")
    refitted.save(tmp_path / "accurate.json")

    default = FaceEngine.load(Settings(normaliser_file=tmp_path))
    accurate = ProfileEngines(default).get("accurate")

    assert default.score_id == default_own.score_id
    assert accurate.settings.normaliser_file == tmp_path  # kept: the folder holds a file for its model
    assert accurate.score_id == refitted.score_id != fused_own.score_id


def test_a_calibration_file_of_the_default_model_leaves_the_accurate_profile_its_shipped_table(tmp_path: Path) -> None:
    from facetrust.calibration import default_calibration
    from facetrust.service.profiles import ProfileEngines

    plain = FaceEngine.load(Settings())
    path = tmp_path / "site.json"
    path.write_text(default_calibration(plain.model_id).to_json())
    default = FaceEngine.load(Settings(calibration_file=path))
    assert default.normalisation == "none"  # a chosen raw table: no normaliser on top

    accurate = ProfileEngines(default).get("accurate")

    assert accurate.calibration.model == accurate.model_id and accurate.normalisation == "cluster"
