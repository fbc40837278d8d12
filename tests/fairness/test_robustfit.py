"""Calibration robust to duplicate photos, with bootstrap intervals on its thresholds."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from facetrust.calibration import Calibration, fit_calibration
from facetrust.fairness.clusterfit import fit_mixture_calibration
from facetrust.fairness.datasets import load_csv
from facetrust.fairness.pairs import CosineScorer, build_group_pairs
from facetrust.fairness.refit import fit_for_datasets
from facetrust.fairness.robustfit import duplicate_rows, threshold_intervals
from facetrust.models.fake import fake_engine


def _unit(rng: np.random.Generator, n: int, dim: int = 32) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    out: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def test_given_copies_of_one_photo_under_other_names_when_deduplicated_then_all_but_the_first_are_dropped() -> None:
    vectors = _unit(np.random.default_rng(1), 10)
    vectors[7] = vectors[2]  # the same photo labelled as someone else
    vectors[9] = vectors[2] * 0.99 + vectors[3] * 0.01  # a near copy of it
    vectors[9] /= np.linalg.norm(vectors[9])
    identity = [f"p{i}" for i in range(10)]
    assert duplicate_rows(vectors, np.arange(10), identity).tolist() == [7, 9]


def test_given_two_photos_of_one_labelled_person_when_deduplicated_then_both_are_kept() -> None:
    vectors = _unit(np.random.default_rng(2), 6)
    vectors[4] = vectors[1]
    identity: list[str | None] = ["a", "b", "c", "d", "b", None]
    assert duplicate_rows(vectors, np.arange(6), identity).tolist() == []
    identity[4] = None  # no identity: nobody else's, so a copy of it is a duplicate
    assert duplicate_rows(vectors, np.arange(6), identity).tolist() == [4]


def test_given_duplicated_images_when_calibrating_then_they_are_dropped_and_counted(
    fake_faces: Callable[..., Path],
) -> None:
    csv = fake_faces(people=40, per_person=2)
    for k, photo in enumerate(("p0_0.png", "p2_1.png", "p5_0.png")):  # copies of three photos under other names
        shutil.copyfile(csv.parent / photo, csv.parent / f"copy{k}.png")
    with csv.open("a") as fh:  # ... listed as three other people of the same group
        fh.write("copy0.png,dupe0,b\ncopy1.png,dupe1,b\ncopy2.png,dupe2,a\n")
    found = fit_for_datasets(fake_engine(), [load_csv(csv)], cache_dir=None)
    assert isinstance(found, Calibration)
    (dataset,) = found.provenance["datasets"]
    assert dataset["duplicates_dropped"] == 3
    assert found.impostor_pairs == 722 + 760  # as without the copies


def test_the_threshold_intervals_cover_the_fitted_thresholds_and_narrow_with_more_people() -> None:
    widths = []
    for people in (300, 1200):
        rng = np.random.default_rng(people)
        vectors = _unit(rng, people, dim=24)
        identity = np.arange(people)
        pairs = build_group_pairs(
            CosineScorer(vectors), "all", np.arange(people), identity, np.zeros(people, np.int64), mated=False
        )
        cal = fit_calibration(pairs.impostor_scores, model="m", dataset="d")
        found = threshold_intervals(
            [(CosineScorer(vectors), pairs)], cal.score_for_fmr(0.03), similarities=(40.0, 60.0)
        )
        for sim, iv in found.items():
            assert iv.low <= cal.score_for_similarity(sim) <= iv.high
        widths.append(found[60.0].high - found[60.0].low)
    assert widths[1] < widths[0]


def test_equal_weight_intervals_bracket_the_mixture_table_not_the_pooled_one() -> None:
    rng = np.random.default_rng(5)
    big = _unit(rng, 1500, dim=24)  # many people, spread out
    small = _unit(rng, 300, dim=24) * 0.6 + _unit(rng, 1, dim=24) * 0.8  # few people, crowded together
    small /= np.linalg.norm(small, axis=1, keepdims=True)
    groups = []
    for vectors in (big, small):
        n = len(vectors)
        pairs = build_group_pairs(
            CosineScorer(vectors), "g", np.arange(n), np.arange(n), np.zeros(n, np.int64), mated=False
        )
        groups.append((CosineScorer(vectors), pairs))
    mixture = fit_mixture_calibration([g.impostor_scores for _, g in groups], model="m", dataset="d")
    pooled = fit_calibration(np.concatenate([g.impostor_scores for _, g in groups]), model="m", dataset="d")
    cut = min(mixture.score_for_fmr(0.03), pooled.score_for_fmr(0.03))

    found = threshold_intervals(groups, cut, similarities=(40.0,), equal_weights=True)[40.0]
    pooled_found = threshold_intervals(groups, cut, similarities=(40.0,))[40.0]

    # the crowded group's 45,000 pairs weigh as much as the other's 1.1 million: a stricter table
    assert mixture.score_for_similarity(40.0) > pooled.score_for_similarity(40.0) + 0.05
    assert found.low <= mixture.score_for_similarity(40.0) <= found.high
    assert pooled_found.low <= pooled.score_for_similarity(40.0) <= pooled_found.high
    assert found.low > pooled_found.high


def test_a_calibration_records_its_threshold_intervals(fake_faces: Callable[..., Path]) -> None:
    found = fit_for_datasets(fake_engine(), [load_csv(fake_faces(people=40, per_person=2))], cache_dir=None)
    assert isinstance(found, Calibration)
    intervals = found.provenance["threshold_intervals"]
    # 1,482 pairs reach Similarity 40 only: no interval for a threshold no score gets to
    assert set(intervals) == {"40"} == {f"{s:g}" for s in (40.0, 60.0, 80.0, 99.0) if found.reaches(s)}
    low, high = intervals["40"]
    assert low <= found.score_for_similarity(40.0) <= high


@pytest.mark.parametrize("replicates", [0])
def test_without_replicates_no_intervals_are_recorded(fake_faces: Callable[..., Path], replicates: int) -> None:
    found = fit_for_datasets(
        fake_engine(), [load_csv(fake_faces(people=40, per_person=2))], cache_dir=None, replicates=replicates
    )
    assert isinstance(found, Calibration)
    assert "threshold_intervals" not in found.provenance
