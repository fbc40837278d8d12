"""Fitting the 1:1 cluster normaliser on a deployment's own labelled faces (``facetrust.fairness.normfit``).

The faces are synthetic: people of group "a" anywhere on the sphere, people of group "b" crowded
around one direction, so that different people of "b" score far higher than those of "a" (as
children's faces do). Fitted on one sample, judged on another.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from facetrust.clusternorm import ClusterNormaliser
from facetrust.config import Settings
from facetrust.engine import FaceEngine
from facetrust.errors import ConfigurationError, InvalidParameterError
from facetrust.fairness.clusterfit import check_privacy
from facetrust.fairness.datasets import Analysis, DatasetSpec, ImageRecord
from facetrust.fairness.embedding import FACE, NO_FACE
from facetrust.fairness.normfit import (
    NormaliserFit,
    check_held_out,
    fit_cluster_normaliser,
    fit_normaliser,
    group_pair_sets,
    repeat_pairs,
    split_people,
)
from facetrust.fairness.pairs import CosineScorer
from facetrust.fairness.refit import Prepared, fit_table, prepare
from facetrust.models.fake import FakeDetector, FakeRecogniser, fake_calibration
from facetrust.types import FaceEmbedding

MODEL = FakeRecogniser.model_id
DIM = FakeRecogniser.dim


def _unit(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = x / np.linalg.norm(x, axis=-1, keepdims=True)
    return out


def population(seed: int, people: int, per_person: int = 2) -> tuple[DatasetSpec, np.ndarray]:
    """Odd people in group "a" (spread out), even ones in "b" (crowded near one direction)."""
    rng = np.random.default_rng(seed)
    crowd = _unit(np.ones(DIM))
    vectors, images = [], []
    for p in range(people):
        group = "a" if p % 2 else "b"
        centre = _unit(rng.standard_normal(DIM))
        if group == "b":
            centre = _unit(crowd + 0.4 * centre)
        for k in range(per_person):
            vectors.append(_unit(centre + 0.35 * _unit(rng.standard_normal(DIM))))
            images.append(ImageRecord(f"p{p}_{k}.png", f"p{p}", {"group": group}))
    spec = DatasetSpec(f"synthetic-{seed}", "csv", tuple(images), (Analysis("group", "group"),))
    return spec, np.asarray(vectors, dtype=np.float32)


def prepared(seed: int = 0, people: int = 600) -> Prepared:
    spec, vectors = population(seed, people)
    return prepare(spec, MODEL, vectors, np.full(len(vectors), FACE, np.int8))


@pytest.fixture(scope="module")
def fitted() -> NormaliserFit:
    return fit_normaliser([prepared()], model=MODEL, clusters=8, replicates=20)


def held_out_fmr(scores: np.ndarray, spec: DatasetSpec, threshold: float) -> dict[str, float]:
    """Each group's share of same-group pairs of different people at or above ``threshold``."""
    group = np.array([img.groups["group"] for img in spec.images])
    person = np.array([img.identity for img in spec.images])
    i, j = np.triu_indices(len(spec.images), 1)
    out = {}
    for g in ("a", "b"):
        keep = (group[i] == g) & (group[j] == g) & (person[i] != person[j])
        out[g] = float((scores[i[keep], j[keep]] >= threshold).mean())
    return out


def test_the_fit_brings_a_crowded_groups_false_match_rate_back_to_the_promise_on_people_it_never_saw(
    fitted: NormaliserFit,
) -> None:
    raw_table = fit_table([prepared()], model=MODEL, score_model=MODEL, replicates=0)
    spec, vectors = population(seed=1, people=1200)  # other people, from the same two populations
    raw = held_out_fmr(vectors @ vectors.T, spec, raw_table.score_for_similarity(80.0))
    assert raw["b"] > 10 * 1e-4  # raw scores: the crowded group matches far more often than promised

    n = fitted.normaliser
    assert n.calibration is not None
    rows = np.arange(len(vectors))
    normalised = held_out_fmr(n.scorer(vectors).block(rows, rows), spec, n.calibration.score_for_similarity(80.0))
    assert max(normalised.values()) <= 3 * 1e-4  # issue 11's tolerance, for both groups


def test_regions_of_the_crowded_group_get_the_stricter_offsets(fitted: NormaliserFit) -> None:
    spec, vectors = population(seed=1, people=400)
    group = np.array([img.groups["group"] for img in spec.images])
    shift = fitted.normaliser.shift(vectors)
    assert shift[group == "b"].mean() > shift[group == "a"].mean() + 0.1


def test_every_region_averages_fifty_people_and_the_file_records_how_it_was_fitted(fitted: NormaliserFit) -> None:
    p = prepared()
    people = [img.identity or "" for img in p.spec.images]
    found = fitted.normaliser
    assert len(found.fit_sizes) == 5 and found.provenance["bagging"]["kmeans_seeds"] == [0, 1, 2, 3, 4]
    for centroids, _ in found.each_fit():  # each fit's regions pass on their own
        assert check_privacy(centroids, p.vectors, people) == []
    prov = fitted.normaliser.provenance
    assert prov["made_by"] == "facetrust calibrate --normaliser" and prov["model"] == MODEL
    assert prov["parts"] == {
        "synthetic-0: group=a": {"pairs": fitted.parts[0].pairs, "measured": True},
        "synthetic-0: group=b": {"pairs": fitted.parts[1].pairs, "measured": True},
    }
    # 300 people of two images in each group: C(600, 2) pairs less the 300 of one person each
    assert fitted.parts[0].pairs == 600 * 599 // 2 - 300
    cal = fitted.normaliser.calibration
    assert cal is not None and cal.model == fitted.normaliser.score_id
    low, high = cal.provenance["threshold_intervals"]["80"]
    assert low <= cal.score_for_similarity(80.0) <= high


def test_pair_sets_follow_every_analysis_and_leave_out_faceless_images() -> None:
    images = tuple(
        ImageRecord(f"{p}_{k}.png", f"p{p}", {"sex": "f" if p < 3 else "m", "band": "young" if p % 2 else "old"})
        for p in range(6)
        for k in range(2)
    )
    spec = DatasetSpec("two", "csv", images, (Analysis("sex", "sex"), Analysis("band", "band", {}, ("sex",))))
    status = np.full(len(images), FACE, np.int8)
    status[0] = NO_FACE  # p0's first image
    vectors = _unit(np.random.default_rng(0).standard_normal((len(images), DIM))).astype(np.float32)
    p = Prepared(spec, vectors, status, status, 0)

    sets = {s.name: s for s in group_pair_sets(p)}

    # sex=f: p0 (1 face), p1, p2 (2 each): C(5, 2) − 2 mated = 8. band=old within one sex: p0, p2 (f) → 2; p4 (m) → 0
    assert {n: len(s.a) for n, s in sets.items()} == {
        "two: sex=f": 8,
        "two: sex=m": 12,
        "two: band=old": 2,
        "two: band=young": 4,  # p1 (f) alone; p3, p5 (m): 2 × 2
    }
    assert 0 not in np.concatenate([s.a for s in sets.values()] + [s.b for s in sets.values()])


def test_too_few_people_for_a_region_is_an_error_naming_the_rule() -> None:
    with pytest.raises(InvalidParameterError, match="at least 50 different people; these datasets hold 40"):
        fit_normaliser([prepared(people=40)], model=MODEL, replicates=0)


@pytest.mark.parametrize("bag", [0, -1])
def test_a_bag_of_no_fits_is_an_error_naming_the_parameter(bag: int) -> None:
    with pytest.raises(InvalidParameterError, match=f"bag must be at least 1 fit, not {bag}") as caught:
        fit_normaliser([prepared()], model=MODEL, replicates=0, bag=bag)
    assert caught.value.parameter == "bag"


def test_one_fit_gives_a_normaliser_without_fits_whose_shift_is_its_regions_offset() -> None:
    one = fit_normaliser([prepared()], model=MODEL, clusters=8, replicates=0, bag=1).normaliser
    assert one.fits == () and one.fit_sizes == (len(one.centroids),)
    v = prepared().vectors[:50]
    assert np.array_equal(one.shift(v), one.offsets[np.argmax(v @ one.centroids.T, axis=1)])


def test_too_few_pairs_for_an_offset_is_an_error_naming_the_largest_group() -> None:
    most = r"the most is 19,800 \(synthetic-0: group=a\)"  # 100 people of two faces: C(200, 2) − 100 mated
    with pytest.raises(InvalidParameterError, match=r"20,000 same-group impostor pairs .* " + most):
        fit_normaliser([prepared(people=200)], model=MODEL, replicates=0)


def test_an_engine_uses_a_normaliser_file_from_the_settings(fitted: NormaliserFit, tmp_path: Path) -> None:
    path = tmp_path / "normaliser.json"
    fitted.normaliser.save(path)
    engine = FaceEngine(
        FakeDetector(), FakeRecogniser(), calibration=fake_calibration(),
        settings=Settings(flip_augment=False, normaliser_file=path),
    )  # fmt: skip

    assert isinstance(engine.normaliser, ClusterNormaliser) and engine.normalisation == "cluster"
    assert engine.normaliser.score_id == fitted.normaliser.score_id
    _, vectors = population(seed=2, people=4)
    u, v = (FaceEmbedding(vector=vectors[i], model=MODEL) for i in (0, 2))  # two people of group "b"
    found = engine.compare_embeddings(u, v)
    raw, normalised = fitted.normaliser.score(vectors[0], vectors[2])
    assert fitted.normaliser.calibration is not None
    assert found.score == pytest.approx(raw)
    assert found.similarity == pytest.approx(fitted.normaliser.calibration.similarity(normalised), abs=1e-3)


def _engine(**files: Path) -> FaceEngine:
    settings = Settings(flip_augment=False).replace(**files)
    return FaceEngine(FakeDetector(), FakeRecogniser(), calibration=fake_calibration(), settings=settings)


def test_an_engine_refuses_a_normaliser_file_made_for_another_model(fitted: NormaliserFit, tmp_path: Path) -> None:
    data = json.loads(fitted.normaliser.to_json())
    data["model"] = "sface-2021dec:fb143eea0783+flip"
    data["calibration"] = None
    path = tmp_path / "other.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InvalidParameterError, match=r"is for model 'sface-2021dec:fb143eea0783\+flip'"):
        _engine(normaliser_file=path)


def test_an_engine_refuses_a_normaliser_file_without_a_calibration(fitted: NormaliserFit, tmp_path: Path) -> None:
    path = tmp_path / "plain.json"
    path.write_text(json.dumps({**json.loads(fitted.normaliser.to_json()), "calibration": None}))
    with pytest.raises(InvalidParameterError, match="has no calibration of normalised scores"):
        _engine(normaliser_file=path)


@pytest.mark.parametrize("content", [b"not json", b"\xff\xfe", b'{"format": "something else"}'])
def test_an_unreadable_normaliser_file_is_a_configuration_error_naming_the_setting(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(ConfigurationError) as caught:
        _engine(normaliser_file=path)
    assert caught.value.setting == "normaliser_file" and str(path) in caught.value.message


def test_a_missing_normaliser_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"missing\.json is not a readable normaliser file"):
        _engine(normaliser_file=tmp_path / "missing.json")


def test_a_normaliser_file_and_a_cohort_file_together_are_refused(fitted: NormaliserFit, tmp_path: Path) -> None:
    path = tmp_path / "normaliser.json"
    fitted.normaliser.save(path)
    with pytest.raises(ConfigurationError, match="cohort_file or normaliser_file, not both"):
        _engine(normaliser_file=path, cohort_file=tmp_path / "cohort.npz")


def _other_models_file(fitted: NormaliserFit, path: Path) -> Path:
    data = json.loads(fitted.normaliser.to_json())
    data["model"] = "fused-sface-dlib:a5ff4225b9ac"
    data["calibration"] = None  # its calibration would name the other model's scores
    path.write_text(json.dumps(data))
    return path


def test_a_folder_of_normaliser_files_serves_each_engine_the_one_made_for_its_model(
    fitted: NormaliserFit, tmp_path: Path
) -> None:
    folder = tmp_path / "normalisers"
    folder.mkdir()
    fitted.normaliser.save(folder / "default.json")
    _other_models_file(fitted, folder / "accurate.json")

    engine = _engine(normaliser_file=folder)

    assert isinstance(engine.normaliser, ClusterNormaliser) and engine.normaliser.model == MODEL
    assert engine.score_id == fitted.normaliser.score_id


def test_a_folder_without_a_file_for_the_engines_model_is_refused_naming_what_it_holds(
    fitted: NormaliserFit, tmp_path: Path
) -> None:
    _other_models_file(fitted, tmp_path / "accurate.json")
    with pytest.raises(InvalidParameterError) as caught:
        _engine(normaliser_file=tmp_path)
    assert caught.value.message == (
        f"The folder {tmp_path} holds no normaliser file for model {MODEL!r} (it holds files for "
        "'fused-sface-dlib:a5ff4225b9ac')"
    )


def test_a_folder_with_two_files_for_one_model_or_none_at_all_is_a_configuration_error(
    fitted: NormaliserFit, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match=r"holds no normaliser file \(\*\.json\)") as caught:
        _engine(normaliser_file=tmp_path)
    assert caught.value.setting == "normaliser_file"
    fitted.normaliser.save(tmp_path / "a.json")
    fitted.normaliser.save(tmp_path / "b.json")
    with pytest.raises(ConfigurationError, match=r"two normaliser files for model .* \(a\.json, b\.json\); keep one"):
        _engine(normaliser_file=tmp_path)


def test_the_held_out_check_measures_each_group_under_the_refit_and_under_the_current_scoring(
    fitted: NormaliserFit,
) -> None:
    raw_table = fit_table([prepared()], model=MODEL, score_model=MODEL, replicates=0)
    spec, vectors = population(seed=1, people=400)
    faces = np.full(len(vectors), FACE, np.int8)
    held = Prepared(spec, vectors, faces, faces, 0)  # every face, as the first test measures them

    found = {
        g.group: g for g in check_held_out(fitted.normaliser, [held], lambda v: (CosineScorer(v), raw_table, MODEL))
    }

    assert set(found) == {"a", "b"}
    a, b = found["a"], found["b"]
    assert a.name == "synthetic-1: group=a" and a.impostor_pairs == 400 * 399 // 2 - 200  # 200 people, two faces each
    assert b.impostor_pairs == a.impostor_pairs
    assert b.current_fmr.value > 10 * 1e-4 and b.fmr.value <= 3e-4  # raw: far above the promise; refit: within 3×
    assert b.current_fmr.interval.low <= b.current_fmr.value <= b.current_fmr.interval.high
    assert b.tar is not None and b.current_tar is not None  # two faces a person: mated pairs
    assert 0.0 <= b.tar.interval.low <= b.tar.value <= b.tar.interval.high <= 1.0


def test_the_held_out_check_leaves_out_a_group_with_too_few_faces_for_match_rates(fitted: NormaliserFit) -> None:
    raw_table = fit_table([prepared()], model=MODEL, score_model=MODEL, replicates=0)
    spec, vectors = population(seed=1, people=100)
    extra = np.random.default_rng(0).standard_normal((3, vectors.shape[1])).astype(np.float32)
    extra /= np.linalg.norm(extra, axis=1, keepdims=True)
    small = tuple(ImageRecord(f"c{i}.png", f"c{i}", {"group": "c"}) for i in range(3))  # under min_images
    spec = dataclasses.replace(spec, images=(*spec.images, *small))
    vectors = np.vstack([vectors, extra])
    faces = np.full(len(vectors), FACE, np.int8)

    found = check_held_out(
        fitted.normaliser, [Prepared(spec, vectors, faces, faces, 0)], lambda v: (CosineScorer(v), raw_table, MODEL)
    )

    assert {g.group for g in found} == {"a", "b"}  # "c" has no match rates to compare (it was a KeyError)


def test_split_people_keeps_each_persons_faces_together_and_is_seeded() -> None:
    p = prepared(people=100)
    rest, held, count = split_people(p, 0.3, seed=4)

    assert count == 30 and len(held.spec.images) == 60 and len(rest.spec.images) == 140
    assert not {i.identity for i in held.spec.images} & {i.identity for i in rest.spec.images}
    assert [i.path for i in split_people(p, 0.3, seed=4)[1].spec.images] == [i.path for i in held.spec.images]
    row = p.spec.images.index(held.spec.images[0])
    assert np.array_equal(held.vectors[0], p.vectors[row])


def test_a_fit_with_a_holdout_records_what_the_held_out_people_showed(
    fake_faces: Callable[..., Path], tmp_path: Path
) -> None:
    from facetrust.fairness.datasets import load_csv
    from facetrust.models.fake import fake_engine

    spec = load_csv(fake_faces(people=500, per_person=2, missing=()))
    engine = fake_engine()

    fit = fit_cluster_normaliser(engine, [spec], cache_dir=None, clusters=4, replicates=20, holdout=0.4)

    assert fit.held_out is not None and fit.held_out.people == 200
    assert fit.held_out.current == f"raw cosine ({MODEL})"  # the fake engine has no normaliser
    record = fit.normaliser.provenance["held_out"]
    assert record["people"] == 200 and set(record["groups"]) == {"data: group=a", "data: group=b"}
    for g in fit.held_out.groups:  # the file records what the result holds
        kept = record["groups"][g.name]
        assert kept["impostor_pairs"] == g.impostor_pairs > 0
        assert kept["fmr"] == pytest.approx([g.fmr.value, g.fmr.interval.low, g.fmr.interval.high], abs=1e-8)
        assert kept["current_fmr"][0] == pytest.approx(g.current_fmr.value, abs=1e-8)


@pytest.mark.parametrize("holdout", [-0.1, 1.0])
def test_a_holdout_outside_zero_to_one_names_the_parameter(holdout: float) -> None:
    from facetrust.models.fake import fake_engine

    with pytest.raises(InvalidParameterError, match=f"holdout must be a share of the people.*not {holdout}"):
        fit_cluster_normaliser(fake_engine(), [], cache_dir=None, holdout=holdout)


def test_compare_faces_records_which_normaliser_made_its_similarities(fitted: NormaliserFit, tmp_path: Path) -> None:
    from facetrust.governance import audit
    from facetrust.models.fake import face_png
    from facetrust.service import FaceService

    path = tmp_path / "normaliser.json"
    fitted.normaliser.save(path)
    service = FaceService(tmp_path / "data", _engine(normaliser_file=path))

    service.compare_faces(face_png((20, 20, 100, 3)), face_png((20, 20, 100, 3), (200, 40, 80, 5)), threshold=50)

    logged = list(audit.entries(service.store.connection()))[-1].data
    assert logged["operation"] == "CompareFaces" and logged["score_scale"] == fitted.normaliser.score_id


def test_the_normalisers_table_weights_each_group_with_enough_pairs_equally(fitted: NormaliserFit) -> None:
    cal = fitted.normaliser.calibration
    assert cal is not None
    # "b" keeps 88,671 pairs once its near-duplicates are dropped: under the 100,000 a group needs
    assert cal.provenance["table_groups"] == {
        "weighted_equally": ["synthetic-0: a"], "left_out": ["synthetic-0: b"], "min_pairs": 100_000
    }  # fmt: skip
    assert cal.dataset.startswith("1 group weighted equally (")


def test_a_group_too_small_for_the_table_is_left_out_of_it_and_named() -> None:
    import dataclasses

    spec, vectors = population(seed=0, people=600)
    images = tuple(
        dataclasses.replace(img, groups={"group": "a" if k < 1000 else "b"}) for k, img in enumerate(spec.images)
    )  # 500 people in "a" (499,000 pairs), 100 in "b" (19,800)
    p = prepare(dataclasses.replace(spec, images=images), MODEL, vectors, np.full(len(vectors), FACE, np.int8))

    cal = fit_table([p], model=MODEL, score_model=MODEL, replicates=0, groups_equal=True)

    assert cal.provenance["table_groups"]["weighted_equally"] == ["synthetic-0: a"]
    assert cal.provenance["table_groups"]["left_out"] == ["synthetic-0: b"]
    pooled = fit_table([p], model=MODEL, score_model=MODEL, replicates=0)
    assert "table_groups" not in pooled.provenance and pooled.impostor_pairs > cal.impostor_pairs


def test_where_a_dataset_has_identities_groups_without_them_stay_out_of_the_table() -> None:
    import dataclasses

    spec, vectors = population(seed=3, people=600)
    anonymous = dataclasses.replace(
        spec, name="anonymous", images=tuple(dataclasses.replace(i, identity=None) for i in spec.images)
    )
    faces = np.full(len(vectors), FACE, np.int8)
    named, unnamed = prepare(spec, MODEL, vectors, faces), prepare(anonymous, MODEL, vectors, faces)

    both = fit_table([named, unnamed], model=MODEL, score_model=MODEL, replicates=0, groups_equal=True)
    alone = fit_table([unnamed], model=MODEL, score_model=MODEL, replicates=0, groups_equal=True)

    # one person twice counts as a false match without identities: such groups set no table beside named ones
    assert both.provenance["table_groups"]["weighted_equally"] == ["synthetic-3: a"]
    assert "anonymous: a" in both.provenance["table_groups"]["left_out"]
    assert alone.provenance["table_groups"]["weighted_equally"] == ["anonymous: a"]  # no dataset has identities


def _repeats_and_a_crowd(rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """Rows 0–5: three people photographed twice (pairs 0–1, 2–3, 4–5 nearly alike); rows 6–15:
    ten faces crowded around one direction (every pair of them high); then 40 spread-out faces."""
    people = _unit(rng.standard_normal((3, DIM)))
    repeats = np.repeat(people, 2, axis=0) + 0.05 * rng.standard_normal((6, DIM))
    crowd = _unit(np.ones(DIM)) + 0.05 * rng.standard_normal((10, DIM))
    spread = rng.standard_normal((40, DIM))
    vectors = _unit(np.concatenate([repeats, crowd, spread])).astype(np.float32)
    return vectors, ["repeat"] * 6 + ["crowd"] * 10 + ["spread"] * 40


def test_repeat_pairs_are_small_cliques_of_high_pairs_and_a_crowd_is_not_one() -> None:
    vectors, _ = _repeats_and_a_crowd(np.random.default_rng(3))
    a, b = np.triu_indices(len(vectors), 1)

    found = repeat_pairs(vectors, a, b, same_person=0.8)

    assert sorted(zip(a[found].tolist(), b[found].tolist(), strict=True)) == [(0, 1), (2, 3), (4, 5)]
    crowd = (a >= 6) & (a < 16) & (b >= 6) & (b < 16)
    assert (np.einsum("ij,ij->i", vectors[a[crowd]], vectors[b[crowd]]) >= 0.8).all()  # all high, none a repeat


def test_pair_sets_leave_out_presumed_repeats_only_where_the_dataset_has_no_identities() -> None:
    vectors, groups = _repeats_and_a_crowd(np.random.default_rng(4))
    status = np.full(len(vectors), FACE, np.int8)
    for identities in (False, True):
        images = tuple(
            ImageRecord(f"{i}.png", f"p{i}" if identities else None, {"kind": g}) for i, g in enumerate(groups)
        )
        spec = DatasetSpec("mixed", "csv", images, (Analysis("kind", "kind"),))
        p = Prepared(spec, vectors, status, status, 0)

        kept = {s.name: len(s.a) for s in group_pair_sets(p, same_person=0.8)}

        assert kept == {
            "mixed: kind=crowd": 45,  # C(10, 2): every pair of the crowd stays a false match
            "mixed: kind=repeat": 15 - (0 if identities else 3),  # C(6, 2), less the three repeats
            "mixed: kind=spread": 780,
        }
        assert {s.name: len(s.a) for s in group_pair_sets(p)} == {**kept, "mixed: kind=repeat": 15}


def test_a_fit_told_the_same_person_score_leaves_out_repeats_of_anonymous_faces_and_records_them() -> None:
    spec, vectors = population(seed=0, people=600)  # two photos a person; group "b" crowded
    anonymous = DatasetSpec(
        "anonymous", "csv", tuple(replace(img, identity=None) for img in spec.images), spec.analyses
    )
    p = prepare(anonymous, MODEL, vectors, np.full(len(vectors), FACE, np.int8))
    same = np.einsum("ij,ij->i", vectors[0::2], vectors[1::2])  # each person's two photos
    group = np.array([img.groups["group"] for img in spec.images[0::2]])
    assert (same[group == "a"] >= 0.8).mean() > 0.95  # a's people stand apart: their repeats are isolated

    fit = fit_normaliser([p], model=MODEL, clusters=8, replicates=0, same_person=0.8)

    left = {part.name: part.repeats_left_out for part in fit.parts}
    # every repeat of "a" (those at 0.9 or above were already dropped as near-duplicates by ``prepare``)
    assert left["anonymous: group=a"] == int(((same >= 0.8) & (same < 0.9) & (group == "a")).sum()) > 150
    assert left["anonymous: group=b"] < 0.2 * (group == "b").sum()  # b's high pairs are a web: kept
    record = fit.normaliser.provenance["repeats"]
    assert record["pairs_left_out"] == sum(left.values()) and record["same_person_score"] == 0.8
    assert fit_normaliser([p], model=MODEL, clusters=8, replicates=0).normaliser.provenance["repeats"] is None
