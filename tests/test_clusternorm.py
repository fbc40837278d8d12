"""Cluster-conditional score normalisation: the privacy rule, offsets, the mixture table, the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facetrust.calibration import Calibration
from facetrust.clusternorm import ClusterNormaliser, shipped_normaliser
from facetrust.config import Settings
from facetrust.engine import FaceEngine
from facetrust.errors import ConfigurationError, InvalidParameterError
from facetrust.fairness.clusterfit import (
    PairSet,
    check_privacy,
    cluster_offsets,
    fit_centroids,
    fit_mixture_calibration,
    tail_counts,
    unreliable_clusters,
    wilson_low,
)
from facetrust.models.fake import FakeDetector, FakeRecogniser, fake_calibration
from facetrust.types import FaceEmbedding

MODEL = FakeRecogniser.model_id


def blob(centre: np.ndarray, n: int, spread: float, rng: np.random.Generator) -> np.ndarray:
    v = centre[None, :] + spread * rng.standard_normal((n, len(centre)))
    out: np.ndarray = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    return out


def two_regions(n: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a, b = np.zeros(16), np.zeros(16)
    a[0], b[1] = 1.0, 1.0
    return np.concatenate([blob(a, n, 0.3, rng), blob(b, n, 0.3, rng)])


def test_given_distinct_people_when_fitted_then_every_centroid_passes_the_privacy_rule() -> None:
    vectors = two_regions()
    people = [f"p{i}" for i in range(len(vectors))]
    centroids, rows = fit_centroids(vectors, people, 4, seed=1)
    assert 1 <= len(centroids) <= 4
    assert rows.tolist() == list(range(len(vectors)))  # one image each: nothing capped
    assert check_privacy(centroids, vectors, people) == []


def test_given_one_person_dominating_a_region_when_fitted_then_no_centroid_is_mostly_that_person() -> None:
    rng = np.random.default_rng(3)
    far = np.zeros(16)
    far[2] = 1.0
    vectors = np.concatenate([two_regions(), blob(far, 60, 0.05, rng)])  # one much-photographed person
    people = [f"p{i}" for i in range(400)] + ["famous"] * 60
    # A cluster of only that person's photos would be their template: it must not survive.
    centroids, rows = fit_centroids(vectors, people, 3, seed=0)
    assert [people[i] for i in rows].count("famous") == 5  # at most 10 % of 50 from any one person
    used = vectors[rows]
    label = np.argmax(used @ centroids.T, axis=1)
    for c in range(len(centroids)):
        members = [people[rows[i]] for i in np.flatnonzero(label == c)]
        assert members.count("famous") <= 0.10 * len(members)
        assert len(set(members)) >= 50


def test_check_privacy_names_a_cluster_of_too_few_people() -> None:
    vectors = two_regions(n=30)
    people = [f"p{i}" for i in range(60)]
    centroids = np.stack([vectors[:30].mean(0), vectors[30:].mean(0)])
    assert check_privacy(centroids, vectors, people) == [0, 1]  # 30 people each, fewer than 50
    assert check_privacy(centroids, vectors, people, min_people=30) == []


def test_fit_centroids_refuses_when_no_cluster_can_pass() -> None:
    vectors = two_regions(n=20)
    with pytest.raises(InvalidParameterError, match="at least 50 people"):
        fit_centroids(vectors, [f"p{i}" for i in range(40)], 2)


def test_a_region_of_high_impostor_scores_gets_a_larger_offset() -> None:
    vectors = two_regions(n=200)
    tight = np.concatenate([vectors[:200], two_regions(n=200, seed=5)[200:]])
    # Region 0 as is; region 1 spread wider, so its strangers score lower.
    rng = np.random.default_rng(9)
    b = np.zeros(16)
    b[1] = 1.0
    tight[200:] = blob(b, 200, 0.8, rng)
    centroids = np.eye(16, dtype=np.float32)[:2]
    i, j = np.triu_indices(400, 1)
    offsets = cluster_offsets(centroids, [PairSet("x", tight, i, j)], fmr=1e-2)
    assert offsets[0] > offsets[1] + 0.05


def test_a_cluster_with_too_few_pairs_gets_no_offset() -> None:
    vectors = two_regions(n=20)
    centroids = np.eye(16, dtype=np.float32)[:3]  # the third region has no faces
    i, j = np.triu_indices(40, 1)
    offsets = cluster_offsets(centroids, [PairSet("x", vectors, i, j)], fmr=1e-2, min_tail=2)
    assert offsets[2] == 0.0


def test_the_mixture_table_weighs_each_population_equally() -> None:
    rng = np.random.default_rng(0)
    big = rng.normal(0.0, 0.1, 200_000)
    small = rng.normal(0.2, 0.1, 20_000)
    cal = fit_mixture_calibration([big, small], model=MODEL, dataset="synthetic")
    t = cal.score_for_fmr(1e-2)
    expected = 0.5 * float((big >= t).mean()) + 0.5 * float((small >= t).mean())
    assert cal.fmr(t)[0] == pytest.approx(expected, rel=0.15)
    assert cal.floor_fmr == pytest.approx(0.5 * 10 / 20_000)


def test_the_mixture_table_needs_enough_pairs_in_every_population() -> None:
    with pytest.raises(InvalidParameterError, match="every set"):
        fit_mixture_calibration([np.zeros(5000), np.linspace(0, 1, 10)], model=MODEL, dataset="x")


def normaliser() -> ClusterNormaliser:
    centroids = np.eye(8, dtype=np.float32)[:2]
    return ClusterNormaliser(MODEL, centroids, np.array([0.1, -0.1], dtype=np.float32))


def test_score_subtracts_half_of_each_sides_offset() -> None:
    n = normaliser()
    u = np.eye(8, dtype=np.float32)[0]
    v = (np.eye(8)[0] * 0.6 + np.eye(8)[2] * 0.8).astype(np.float32)
    raw, s = n.score(u, v)
    assert raw == pytest.approx(0.6)
    assert s == pytest.approx(0.6 - 0.1)
    w = np.eye(8, dtype=np.float32)[1]
    assert n.score(u, w)[1] == pytest.approx(0.0)
    block = n.scorer(np.stack([u, v, w])).block(np.array([0]), np.array([1, 2]))
    assert block[0] == pytest.approx([0.5, 0.0])


def test_the_file_round_trips_with_its_calibration() -> None:
    n = normaliser()
    cal = Calibration(n.score_id, (0.0, 1.0), (0.0, -6.0), 1e-6, 10**6, "synthetic")
    back = ClusterNormaliser.from_json(n.with_calibration(cal).to_json(), origin="n.json")
    assert back.score_id == n.score_id
    assert back.calibration == cal
    assert back.score_id.startswith(f"{MODEL}+fsn2-")


def test_a_calibration_of_other_scores_is_refused() -> None:
    n = normaliser()
    with pytest.raises(ConfigurationError, match="not for"):
        n.with_calibration(Calibration(MODEL, (0.0, 1.0), (0.0, -6.0), 1e-6, 10**6, "raw"))


def test_a_file_of_another_format_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="not a valid cluster normaliser"):
        ClusterNormaliser.from_json('{"format": "something-else"}', origin="x.json")


def calibrated(n: ClusterNormaliser) -> ClusterNormaliser:
    return n.with_calibration(Calibration(n.score_id, (0.0, 1.0), (0.0, -6.0), 1e-6, 10**6, "synthetic"))


def test_given_a_cluster_normaliser_when_comparing_then_its_table_judges_the_normalised_score() -> None:
    n = calibrated(normaliser())
    engine = FaceEngine(
        FakeDetector(),
        FakeRecogniser(),
        calibration=fake_calibration(MODEL),
        settings=Settings(flip_augment=False),
        normaliser=n,
    )
    u = np.eye(8, dtype=np.float32)[0]
    v = (np.eye(8)[0] * 0.6 + np.eye(8)[2] * 0.8).astype(np.float32)

    result = engine.compare_embeddings(embedding(u), embedding(v))

    assert result.score == pytest.approx(0.6)  # the raw cosine, as before
    assert result.fmr == pytest.approx(10 ** (-6 * 0.5), rel=1e-3)  # the normalised 0.5 through its table
    assert engine.normalisation == "cluster"


def embedding(v: np.ndarray) -> FaceEmbedding:
    return FaceEmbedding(vector=v, model=MODEL, face=None)


def test_a_model_without_a_shipped_normaliser_has_none() -> None:
    assert shipped_normaliser(MODEL) is None


@pytest.mark.model
def test_the_default_engine_normalises_1to1_scores_with_the_shipped_cluster_normaliser(engine: FaceEngine) -> None:
    assert engine.normalisation == "cluster"
    shipped = shipped_normaliser(engine.model_id)
    assert shipped is not None and engine.normaliser is not None
    assert engine.normaliser.score_id == shipped.score_id
    assert shipped.calibration is not None and shipped.calibration.model == shipped.score_id
    assert shipped.provenance["privacy"] == {"min_people": 50, "max_person_share": 0.1}


@pytest.mark.model
def test_the_setting_or_a_chosen_raw_calibration_switches_the_shipped_normaliser_off(
    engine: FaceEngine, tmp_path: Path
) -> None:
    off = FaceEngine(engine.detector, engine.recogniser, settings=Settings(score_normalisation=False))
    assert off.normaliser is None
    path = tmp_path / "raw.json"
    path.write_text(engine.calibration.to_json())
    chosen = FaceEngine(engine.detector, engine.recogniser, settings=Settings(calibration_file=path))
    assert chosen.normaliser is None and chosen.normalisation == "none"
    assert FaceEngine(engine.detector, engine.recogniser, calibration=engine.calibration).normaliser is None


def test_balanced_offsets_let_a_small_population_move_its_cluster() -> None:
    rng = np.random.default_rng(4)
    region_a, region_b = np.eye(16)[0], np.eye(16)[1]
    big = np.concatenate([blob(region_a, 300, 0.9, rng), blob(region_b, 300, 0.9, rng)])  # strangers score low
    small = blob(region_a, 80, 0.3, rng)  # a small population in region A whose strangers score high
    bi, bj = np.triu_indices(600, 1)
    si, sj = np.triu_indices(80, 1)
    sets = [PairSet("big", big, bi, bj), PairSet("small", small, si, sj)]
    centroids = np.eye(16, dtype=np.float32)[:2]

    pooled = cluster_offsets(centroids, sets, fmr=1e-2)
    balanced = cluster_offsets(centroids, sets, fmr=1e-2, balance=True)

    # Pooled, region A's 3,160 small-population pairs are drowned by ~135,000 of the big one's.
    assert balanced[0] - balanced[1] > pooled[0] - pooled[1] + 0.05


def test_strictest_offsets_follow_the_most_crowded_set_in_each_cluster() -> None:
    rng = np.random.default_rng(5)
    region_a, region_b = np.eye(16)[0], np.eye(16)[1]
    cold = np.concatenate([blob(region_a, 200, 0.9, rng), blob(region_b, 200, 0.9, rng)])  # strangers score low
    hot = np.concatenate([blob(region_a, 200, 0.4, rng), blob(region_b, 200, 0.9, rng)])  # crowded in region A
    ci, cj = np.triu_indices(400, 1)
    sets = [PairSet("cold", cold, ci, cj), PairSet("hot", hot, ci, cj)]
    centroids = np.eye(16, dtype=np.float32)[:2]

    mean = cluster_offsets(centroids, sets, fmr=1e-2, balance=True)
    strict = cluster_offsets(centroids, sets, fmr=1e-2, balance=True, strictest=True)
    hot_alone = cluster_offsets(centroids, sets[1:], fmr=1e-2, balance=True)

    # Region A is judged by the hot set's own tail, measured from the hot set's own overall
    # threshold (the highest), exactly as if the cold set were not there; with the mean of the
    # two tails it sat closer to region B.
    assert strict[0] == pytest.approx(hot_alone[0], abs=1e-6)
    assert strict[0] - strict[1] > mean[0] - mean[1] + 0.02


def test_a_set_too_small_to_measure_any_tail_leaves_the_overall_threshold_alone() -> None:
    rng = np.random.default_rng(6)
    region_a, region_b = np.eye(16)[0], np.eye(16)[1]
    big = np.concatenate([blob(region_a, 300, 0.9, rng), blob(region_b, 300, 0.9, rng)])
    bi, bj = np.triu_indices(600, 1)
    tiny = blob(region_a, 12, 0.1, rng)  # 66 pairs of near-copies: fewer than min_tail / fmr = 2,000
    ti, tj = np.triu_indices(12, 1)
    centroids = np.eye(16, dtype=np.float32)[:2]

    alone = cluster_offsets(centroids, [PairSet("big", big, bi, bj)], fmr=1e-2, balance=True)
    beside = cluster_offsets(
        centroids, [PairSet("big", big, bi, bj), PairSet("tiny", tiny, ti, tj)], fmr=1e-2, balance=True
    )

    # Averaged into the overall tail, its near-copies would raise the threshold every offset is
    # measured from and shift every cluster's offset down by the same amount.
    assert np.allclose(alone, beside)


def minority_region() -> tuple[np.ndarray, list[PairSet]]:
    """Region A holds 40 crowded faces of "hot", whose 780 pairs there are too few to measure, and
    10 faces of "cold", whose pairs with its 200 faces in region B are plenty; "kids", crowded in
    region C, sets the overall threshold."""
    rng = np.random.default_rng(8)
    a, b, c = np.eye(16)[0], np.eye(16)[1], np.eye(16)[2]
    cold = np.concatenate([blob(a, 10, 0.9, rng), blob(b, 200, 0.9, rng)])
    ci, cj = np.triu_indices(210, 1)
    hot = np.concatenate([blob(a, 40, 0.3, rng), blob(b, 100, 0.9, rng)])
    ai, aj = np.triu_indices(40, 1)
    bi, bj = np.triu_indices(100, 1)
    kids = blob(c, 80, 0.1, rng)
    ki, kj = np.triu_indices(80, 1)
    sets = [
        PairSet("cold", cold, ci, cj),
        PairSet("hot", hot, np.concatenate([ai, bi + 40]), np.concatenate([aj, bj + 40])),
        PairSet("kids", kids, ki, kj),
    ]
    return np.eye(16, dtype=np.float32)[:3], sets


def test_a_cluster_whose_measured_sets_hold_few_of_its_faces_is_made_stricter() -> None:
    centroids, sets = minority_region()
    options: dict[str, Any] = {"fmr": 1e-2, "balance": True, "strictest": True}

    plain = cluster_offsets(centroids, sets, **options)
    raised = cluster_offsets(centroids, sets, min_coverage=0.5, **options)
    strictest = cluster_offsets(centroids, sets, min_coverage=0.5, uncovered="strictest", **options)
    hot_overall = cluster_offsets(centroids, sets, min_coverage=0.5, uncovered="overall", **options)

    # Plainly, cold's 10 faces (20 % of region A's) set A's offset from their ordinary tail. With
    # min_coverage A is as strict as hot (80 % of its faces) needs overall, between that and the
    # strictest offset, 0. Regions B and C are covered and keep their offsets.
    assert plain[0] < raised[0] < strictest[0] == 0.0
    assert raised[0] == hot_overall[0]
    for other in (raised, strictest, hot_overall):
        assert np.array_equal(plain[1:], other[1:])


def test_a_cluster_with_no_measured_set_keeps_the_strictest_offset_unless_asked_otherwise() -> None:
    centroids, sets = minority_region()
    options: dict[str, Any] = {"fmr": 1e-2, "balance": True, "strictest": True}
    without_cold = [sets[1], sets[2]]  # region A: only hot's 40 faces, its pairs there too few

    plain = cluster_offsets(centroids, without_cold, **options)
    raised = cluster_offsets(centroids, without_cold, min_coverage=0.5, **options)
    hot_overall = cluster_offsets(centroids, without_cold, min_coverage=0.5, uncovered="overall", **options)

    assert plain[0] == raised[0] == 0.0
    assert hot_overall[0] < 0.0  # hot's overall threshold, less strict than 0


@pytest.mark.parametrize(
    ("options", "parameter"),
    [({"min_coverage": 0.5, "uncovered": "loosest"}, "uncovered"), ({"min_coverage": 1.5}, "min_coverage")],
)
def test_an_unknown_uncovered_rule_or_a_share_past_1_is_refused_naming_it(
    options: dict[str, Any], parameter: str
) -> None:
    centroids, sets = minority_region()
    with pytest.raises(InvalidParameterError, match=f"{parameter} must be") as caught:
        cluster_offsets(centroids, sets, balance=True, **options)
    assert caught.value.parameter == parameter


# -- unreliable clusters (issue 11, 1:1 honesty) -------------------------------------------------


def test_a_file_without_unreliable_clusters_loads_as_none_unreliable() -> None:
    n = calibrated(normaliser())
    data = json.loads(n.to_json())
    del data["unreliable"]
    back = ClusterNormaliser.from_json(json.dumps(data), origin="old.json")
    assert back.unreliable == ()
    assert not back.unreliable_of(np.eye(8, dtype=np.float32)[:2]).any()


def test_unreliable_clusters_round_trip_and_leave_the_scores_and_their_id_alone() -> None:
    n = calibrated(normaliser())
    flagged = n.with_unreliable((1,))
    back = ClusterNormaliser.from_json(flagged.to_json(), origin="n.json")
    assert back.unreliable == (1,)
    assert back.score_id == n.score_id and back.calibration == n.calibration
    faces = np.eye(8, dtype=np.float32)[[0, 1, 1]]
    assert back.unreliable_of(faces).tolist() == [False, True, True]
    assert back.score(faces[0], faces[1]) == n.score(faces[0], faces[1])


@pytest.mark.parametrize("bad", ["[5]", '["1"]', "[true]"])
def test_a_file_naming_no_cluster_as_unreliable_is_refused(bad: str) -> None:
    data = json.loads(calibrated(normaliser()).to_json())
    data["unreliable"] = json.loads(bad)
    with pytest.raises(ConfigurationError, match=r"n\.json is not a valid cluster normaliser"):
        ClusterNormaliser.from_json(json.dumps(data), origin="n.json")


def test_a_cluster_is_unreliable_only_when_its_whole_interval_is_above_the_tolerance() -> None:
    n = np.array([1_000_000, 1_000_000, 2_000, 0])
    high = np.array([1_000, 100, 2, 0])  # 1e-3 (flagged), 1e-4, 1e-3 of too few pairs, none
    assert unreliable_clusters(n, high, 3e-4) == (0,)
    low = wilson_low(high, n)
    assert low[0] == pytest.approx(9.4e-4, rel=0.02) and low[3] == 0.0


def test_tail_counts_count_a_pair_for_both_its_clusters_and_once_inside_one() -> None:
    nearest = np.array([0, 0, 1])
    a, b = np.array([0, 0, 1]), np.array([1, 2, 2])
    got_n, got_high = tail_counts(nearest, np.array([0.9, 0.1, 0.8]), a, b, 0.5, 3)
    assert got_n.tolist() == [3, 2, 0] and got_high.tolist() == [2, 1, 0]


SHIPPED_SCORE_ID = "sface-2021dec:fb143eea0783+flip+fsn316-3b0603d3afd8"


def test_the_shipped_flags_did_not_change_the_shipped_scores() -> None:
    shipped = shipped_normaliser("sface-2021dec:fb143eea0783+flip")
    assert shipped is not None and shipped.calibration is not None
    assert shipped.score_id == shipped.calibration.model == SHIPPED_SCORE_ID  # flags are outside the digest
    assert len(shipped.unreliable) < len(shipped.centroids) // 4  # none since November 30, 2026
    assert len(shipped.fit_sizes) == 5 and shipped.provenance["bagging"]["kmeans_seeds"] == [0, 1, 2, 3, 4]


# -- bagging: several fits' offsets averaged -------------------------------------------------------


def bagged() -> ClusterNormaliser:
    """Two fits over 8-d space: the first splits axes 0 | 1, the second 0 | 1 | 2."""
    eye = np.eye(8, dtype=np.float32)
    centroids = np.concatenate([eye[[0, 1]], eye[[0, 1, 2]]])
    offsets = np.array([0.1, -0.1, 0.3, 0.0, -0.2], dtype=np.float32)
    return ClusterNormaliser(MODEL, centroids, offsets, fits=(2, 3))


def test_a_bagged_face_shifts_by_the_mean_of_its_nearest_regions_offset_in_each_fit() -> None:
    n = bagged()
    faces = np.eye(8, dtype=np.float32)[[0, 1, 2]]
    # face 0: 0.1 and 0.3; face 1: -0.1 and 0.0; face 2 (nearest in fit 1 is a tie, argmax takes 0): 0.1 and -0.2
    assert n.regions(faces).tolist() == [[0, 2], [1, 3], [0, 4]]
    assert n.shift(faces) == pytest.approx([0.2, -0.05, -0.05])
    assert n.nearest(faces).tolist() == [0, 1, 0]  # the first fit's regions
    raw, s = n.score(faces[0], faces[1])
    assert s == pytest.approx(raw - 0.5 * (0.2 - 0.05))
    assert n.scorer(faces).pairs(np.array([0]), np.array([1]))[0] == pytest.approx(s)


def test_a_bagged_face_is_unreliable_when_more_than_half_of_its_fits_mark_its_region() -> None:
    faces = np.eye(8, dtype=np.float32)[[0, 1]]
    assert bagged().with_unreliable((0,)).unreliable_of(faces).tolist() == [False, False]  # one fit of two
    assert bagged().with_unreliable((0, 2)).unreliable_of(faces).tolist() == [True, False]  # both fits


def test_a_bagged_file_round_trips_and_its_fits_are_part_of_its_score_id() -> None:
    n = calibrated(bagged())
    back = ClusterNormaliser.from_json(n.to_json(), origin="n.json")
    assert back.fits == (2, 3) and back.score_id == n.score_id and back.calibration == n.calibration
    one = ClusterNormaliser(MODEL, n.centroids, n.offsets)  # the same numbers read as one fit of 5 regions
    assert one.digest != n.digest
    assert "fits" not in json.loads(calibrated(normaliser()).to_json())  # one fit's file is as before


@pytest.mark.parametrize("bad", ["[2, 2]", "[5, 0]", '["2", "3"]'])
def test_a_file_whose_fits_do_not_add_up_to_its_centroids_is_refused(bad: str) -> None:
    data = json.loads(calibrated(bagged()).to_json())
    data["fits"] = json.loads(bad)
    with pytest.raises(ConfigurationError, match=r"n\.json is not a valid cluster normaliser"):
        ClusterNormaliser.from_json(json.dumps(data), origin="n.json")
    with pytest.raises(InvalidParameterError, match="fits"):
        ClusterNormaliser(MODEL, bagged().centroids, bagged().offsets, fits=(4,))


def test_a_bagged_normalisers_pairs_count_in_each_fits_regions() -> None:
    from facetrust.fairness.normfit import cluster_counts

    n = calibrated(bagged())
    faces = np.eye(8, dtype=np.float32)[[0, 1, 2]]
    pairs = PairSet("all", faces, np.array([0, 0]), np.array([1, 2]))
    count, _ = cluster_counts(n, [pairs])
    # fit 1: pair (0,1) in regions 0 and 1, pair (0,2) inside region 0; fit 2: (0,1) in 2 and 3, (0,2) in 2 and 4
    assert count.tolist() == [2, 1, 2, 1, 1]
