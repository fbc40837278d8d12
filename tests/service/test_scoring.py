"""Per-probe estimates in 1:N search: the probe's own FMR and FPIR against its gallery."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from facetrust.calibration import default_calibration, fit_calibration
from facetrust.errors import PurposeRefusedError
from facetrust.governance.policy import Policy, Purpose
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService, scoring
from facetrust.service.scoring import MIN_GALLERY, TAIL_K, probe_scale

CAL = default_calibration("sface-2021dec:fb143eea0783+flip")


def _unit(rng: np.random.Generator, n: int, dim: int = 128) -> np.ndarray:
    v = rng.normal(size=(n, dim))
    out: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def _top(probe: np.ndarray, gallery: np.ndarray) -> list[float]:
    return sorted((gallery @ probe).tolist(), reverse=True)[:TAIL_K]


def test_given_a_probe_among_many_look_alikes_when_scaled_then_it_needs_a_higher_score_to_match() -> None:
    rng = np.random.default_rng(0)
    gallery = _unit(rng, 5000)
    probe = gallery[0]
    crowd = gallery[:400] + 1.2 * probe  # a crowded region of the space around the probe
    crowded = np.vstack([crowd / np.linalg.norm(crowd, axis=1, keepdims=True), gallery[400:]])
    sparse = probe_scale(CAL, _top(probe, gallery[1:]), 4999)
    dense = probe_scale(CAL, _top(probe, crowded[1:]), 4999)
    assert dense.score_for_similarity(80) > sparse.score_for_similarity(80) + 0.1
    assert dense.unreliable is not None and "resembles many gallery faces" in dense.unreliable
    assert sparse.unreliable is None and sparse.method == "probe-tail"


@pytest.mark.parametrize("pull", [0.0, 0.6])
def test_the_probes_estimated_fmr_is_within_3x_of_its_measured_one_in_sparse_and_crowded_galleries(
    pull: float,
) -> None:
    rng = np.random.default_rng(1)
    dim = 48
    population = _unit(rng, 3000, dim)
    pairs = (population[:1500] @ population[1500:].T).ravel()
    cal = fit_calibration(pairs, model="m", dataset="random faces")  # the population's score shape
    probe = _unit(rng, 1, dim)[0]

    def strangers(n: int) -> np.ndarray:  # faces around the probe, the more so the larger ``pull``
        v = _unit(rng, n, dim) + pull * probe
        out: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
        return out

    scale = probe_scale(cal, _top(probe, strangers(5000)), 5000)
    measured_pool = strangers(400_000) @ probe
    for similarity in (60.0, 70.0):
        measured = float((measured_pool >= scale.score_for_similarity(similarity)).mean())
        promised = 10 ** (-similarity / 20)
        assert promised / 3 <= measured <= promised * 3, (similarity, measured)


def test_given_a_small_gallery_when_scaled_then_the_global_calibration_is_used_and_flagged() -> None:
    scale = probe_scale(CAL, [0.3] * TAIL_K, MIN_GALLERY - 1)
    assert scale.method == "calibration"
    assert scale.unreliable is not None and f"below the {MIN_GALLERY:,}" in scale.unreliable
    assert scale.compare(0.45) == CAL.compare(0.45)
    assert scale.fpir(80.0) == pytest.approx(1 - (1 - 1e-4) ** (MIN_GALLERY - 1))


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[FaceService]:
    policy = Policy(
        purposes={"strict": Purpose("strict", refuse_unreliable=True), "open": Purpose("open", min_threshold=0)},
        default_purpose="open",
    )
    svc = FaceService(tmp_path / "data", fake_engine(), policy=policy)
    yield svc
    svc.close()


def _enrol(service: FaceService, collection: str, people: int) -> None:
    for pattern in range(people):
        service.index_faces(collection, face_png((20, 20, 100, pattern)), external_image_id=f"p{pattern}")


def test_given_a_purpose_refusing_unreliable_estimates_when_the_gallery_is_small_then_search_is_refused(
    strict: FaceService,
) -> None:
    strict.create_collection("c", purpose="strict")
    _enrol(strict, "c", 3)
    with pytest.raises(PurposeRefusedError, match="refuses probes whose false-match estimate is unreliable: gallery"):
        strict.search_faces_by_image("c", face_png((20, 20, 100, 1)))
    strict.create_collection("d", purpose="open")
    _enrol(strict, "d", 3)
    found = strict.search_faces_by_image("d", face_png((20, 20, 100, 1)))
    assert found.estimate.method == "calibration" and found.estimate.unreliable is not None


@pytest.fixture
def large(strict: FaceService, monkeypatch: pytest.MonkeyPatch) -> FaceService:
    """Collection "c" (purpose open) of 64 fake people, p0 … p63; per-probe estimates from 60 faces on."""
    monkeypatch.setattr(scoring, "MIN_GALLERY", 60)
    strict.create_collection("c", purpose="open")
    _enrol(strict, "c", 64)
    return strict


def test_given_a_gallery_large_enough_when_searching_then_the_fpir_is_the_probes_own(large: FaceService) -> None:
    strict = large
    found = strict.search_faces_by_image("c", face_png((20, 20, 100, 7)), threshold=80)
    assert found.estimate.method == "probe-tail"
    assert found.estimate.fmr == pytest.approx(1e-4, rel=1e-3)
    assert found.fpir == pytest.approx(1 - (1 - found.estimate.fmr) ** 64)
    everyone = strict.search_faces_by_image("c", face_png((20, 20, 100, 7)), threshold=0, max_faces=100)
    assert everyone.matches[0].face.external_image_id == "p7"  # the same fake person ranks first
    sims = [m.similarity for m in everyone.matches]
    assert sims == sorted(sims, reverse=True) and len(sims) == 64


def test_the_audit_log_records_how_each_search_estimated_its_error_rates(strict: FaceService) -> None:
    from facetrust.governance import audit

    strict.create_collection("d", purpose="open")
    _enrol(strict, "d", 3)
    found = strict.search_faces_by_image("d", face_png((20, 20, 100, 1)))
    entry = list(audit.entries(strict.store.connection()))[-1]
    assert entry.seq == found.audit_seq
    assert entry.data["estimate"] == "calibration"
    assert entry.data["unreliable"] == found.estimate.unreliable
    assert entry.data["fpir"] == pytest.approx(found.fpir)


def _last_entry(service: FaceService) -> dict[str, object]:
    from facetrust.governance import audit

    return dict(list(audit.entries(service.store.connection()))[-1].data)


def test_a_search_refused_for_an_unreliable_estimate_is_audited_with_the_estimate(strict: FaceService) -> None:
    strict.create_collection("c", purpose="strict")
    _enrol(strict, "c", 3)
    with pytest.raises(PurposeRefusedError):
        strict.search_faces_by_image("c", face_png((20, 20, 100, 1)), threshold=85)
    entry = _last_entry(strict)
    assert (entry["operation"], entry["outcome"], entry["threshold"]) == ("SearchFacesByImage", "PurposeRefused", 85)
    assert entry["estimate"] == "calibration" and entry["gallery_size"] == 3
    reason = str(entry["unreliable"])
    assert reason.startswith("gallery of 3 faces is below") and reason in str(entry["error"])


def test_given_a_purpose_refusing_unreliable_estimates_when_associate_matches_then_refused_audited_and_unchanged(
    strict: FaceService,
) -> None:
    strict.create_collection("c", purpose="strict")
    _enrol(strict, "c", 3)
    first, second, _ = [f.face_id for f in strict.list_faces("c").faces]
    strict.create_user("c", "u")
    strict.associate_faces("c", "u", [first])  # nothing to match against yet: no estimate needed
    with pytest.raises(PurposeRefusedError, match="estimate is unreliable: gallery of 2 faces is below"):
        strict.associate_faces("c", "u", [second], user_match_threshold=85)
    entry = _last_entry(strict)
    assert (entry["operation"], entry["outcome"], entry["user_ids"]) == ("AssociateFaces", "PurposeRefused", ["u"])
    assert [f.face_id for f in strict.list_faces("c").faces if f.user_id == "u"] == [first]


def test_given_a_gallery_large_enough_when_associate_matches_then_each_new_face_is_scored_as_its_search_would(
    large: FaceService,
) -> None:
    strict = large
    by_person = {f.external_image_id: f.face_id for f in strict.list_faces("c", max_results=100).faces}
    strict.create_user("c", "u")
    strict.associate_faces("c", "u", [by_person["p7"]])
    strict.associate_faces("c", "u", [by_person["p8"]], user_match_threshold=0)
    entry = _last_entry(strict)
    searched = strict.search_faces("c", by_person["p8"], threshold=0, max_faces=100)
    own = next(m for m in searched.matches if m.face.face_id == by_person["p7"])
    assert entry["estimates"] == ["probe-tail"] and entry["unreliable"] == [None]
    assert entry["similarities"] == [round(own.similarity, 4)]
    assert own.similarity != pytest.approx(CAL.similarity(own.score), abs=0.01)  # not the global calibration's


def test_the_accurate_profiles_calibration_scales_a_typical_probe_as_the_global_table_and_a_crowded_one_up() -> None:
    fused = default_calibration("fused-sface-dlib:a5ff4225b9ac")  # the 'accurate' profile's table
    gallery = 5000
    # a typical probe: its top gallery scores are the table's own impostor quantiles
    typical = [fused.score_for_fmr((i + 0.5) / gallery) for i in range(TAIL_K)]
    scale = probe_scale(fused, typical, gallery)
    assert scale.method == "probe-tail" and scale.unreliable is None
    assert abs(scale.score_for_similarity(80) - fused.score_for_similarity(80)) < 0.005
    assert 70 < scale.compare(fused.score_for_similarity(80)).similarity < 90
    crowded = probe_scale(fused, [s + 0.02 for s in typical], gallery)  # close strangers: fused scores are tight
    assert crowded.score_for_similarity(80) > scale.score_for_similarity(80) + 0.01


def test_a_symmetric_score_reaches_the_tables_floor_when_both_sides_are_beyond_similarity_100() -> None:
    from facetrust.fairness.tailnorm import anchor

    table = default_calibration("sface-2021dec:fb143eea0783")
    c, m_global = anchor(table, scoring.TAIL_K, 10_000)
    side = (c, m_global, c, m_global)  # a tail like the population's: scores map onto themselves
    symmetric = scoring.ProbeScale(table, 10_000, side, symmetric=True)
    one_sided = scoring.ProbeScale(table, 10_000, side)
    for raw in (0.6, 0.8):
        both, probe_only = symmetric.compare(raw, 80.0, side), one_sided.compare(raw, 80.0)
        assert (both.fmr, both.fmr_is_bound) == (probe_only.fmr, probe_only.fmr_is_bound)
    assert symmetric.compare(0.8, 80.0, side).fmr == table.floor_fmr
    lifted = symmetric.compare(0.6, 80.0, (c + 0.5, m_global, c, m_global))  # one side far below
    assert lifted.similarity < 100.0 and lifted.fmr > table.floor_fmr
