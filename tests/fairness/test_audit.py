"""The audit runner on synthetic embeddings: counts, operating points, ratios, intervals."""

from __future__ import annotations

import numpy as np
import pytest

from facetrust.fairness.audit import AuditOptions, audit_dataset
from facetrust.fairness.datasets import Analysis, DatasetSpec, ImageRecord
from facetrust.fairness.embedding import FACE, NO_FACE, UNREADABLE, DatasetEmbeddings
from facetrust.fairness.pairs import CosineScorer

from .conftest import Synthetic

FAST = AuditOptions(replicates=200, seed=1)


def test_every_group_is_measured_at_both_operating_points(synth: Synthetic) -> None:
    spec, emb = synth
    result = audit_dataset(spec, emb, CosineScorer(emb.vectors), 0.5, FAST).analyses[0]

    assert [p.key for p in result.points] == ["similarity", "fmr"]
    assert result.points[0].threshold == 0.5
    assert [g.group for g in result.groups] == ["a", "b"]
    for g in result.groups:
        assert set(g.fmr) == set(g.fnmr) == {"similarity", "fmr"}
        for rate in (*g.fmr.values(), *g.fnmr.values(), g.failure_to_detect):
            assert rate.interval.low <= rate.value <= rate.interval.high


def test_counts_match_a_direct_computation(synth: Synthetic) -> None:
    spec, emb = synth
    result = audit_dataset(spec, emb, CosineScorer(emb.vectors), 0.5, FAST).analyses[0]
    a = result.groups[0]
    rows = [i for i, r in enumerate(spec.images) if r.groups["g"] == "a"]
    face = [i for i in rows if emb.status[i] == FACE]
    who = [spec.images[i].identity for i in face]
    impostor = [
        float(emb.vectors[i] @ emb.vectors[j])
        for x, i in enumerate(face)
        for y, j in enumerate(face)
        if x < y and who[x] != who[y]
    ]
    assert a.images == len(rows)
    assert a.failure_to_detect.errors == len(rows) - len(face)
    assert a.impostor_pairs == len(impostor)
    assert a.fmr["similarity"].errors == sum(s >= 0.5 for s in impostor)


def test_the_second_point_gives_overall_fmr_1e3_over_the_pooled_impostors(synth: Synthetic) -> None:
    spec, emb = synth
    result = audit_dataset(spec, emb, CosineScorer(emb.vectors), 0.5, FAST).analyses[0]
    pooled = result.overall_fmr["fmr"]
    assert pooled.value <= 1e-3
    assert pooled.trials == sum(g.impostor_pairs for g in result.groups)


def test_the_noisier_group_has_the_higher_fnmr_and_the_ratio_names_it(synth: Synthetic) -> None:
    spec, emb = synth
    result = audit_dataset(spec, emb, CosineScorer(emb.vectors), 0.5, FAST).analyses[0]
    fnmr = next(r for r in result.ratios if r.metric == "fnmr" and r.point == "similarity")
    assert (fnmr.differential.worst, fnmr.differential.best) == ("b", "a")
    assert fnmr.differential.ratio > 1.5
    assert fnmr.interval.low <= fnmr.differential.ratio <= fnmr.interval.high


def test_the_audit_is_reproducible_with_the_same_seed(synth: Synthetic) -> None:
    spec, emb = synth
    first = audit_dataset(spec, emb, CosineScorer(emb.vectors), 0.5, FAST)
    again = audit_dataset(spec, emb, CosineScorer(emb.vectors), 0.5, FAST)
    assert first == again


def test_without_identities_there_is_no_fnmr_and_each_image_is_its_own_person() -> None:
    rng = np.random.default_rng(0)
    v = rng.standard_normal((60, 8)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    images = tuple(ImageRecord(f"{i}.jpg", None, {"race": "x" if i < 30 else "y"}) for i in range(60))
    spec = DatasetSpec("u", "utkface", images, (Analysis("race", "race"),))
    result = audit_dataset(spec, DatasetEmbeddings("m", v, np.full(60, FACE, np.int8)), CosineScorer(v), 0.5, FAST)
    groups = result.analyses[0].groups
    assert [(g.identities, g.impostor_pairs, g.mated_pairs, dict(g.fnmr)) for g in groups] == [
        (30, 435, 0, {}),
        (30, 435, 0, {}),
    ]
    assert {r.metric for r in result.analyses[0].ratios} == {"ftd", "fmr"}


def test_where_and_match_on_restrict_images_and_impostor_pairs() -> None:
    v = np.eye(6, dtype=np.float32)
    labels = [("x", "f", "adult"), ("x", "f", "adult"), ("x", "m", "adult"), ("x", "f", "child")]
    labels += [("y", "f", "adult"), ("y", "f", "adult")]
    images = tuple(ImageRecord(f"{i}", None, {"race": r, "sex": s, "age": a}) for i, (r, s, a) in enumerate(labels))
    analysis = Analysis("race", "race", {"age": ("adult",)}, ("sex",))
    spec = DatasetSpec("d", "csv", images, (analysis,))
    emb = DatasetEmbeddings("m", v, np.full(6, FACE, np.int8))
    groups = (
        audit_dataset(spec, emb, CosineScorer(v), 0.5, AuditOptions(replicates=20, min_images=1)).analyses[0].groups
    )
    # x: adults 0, 1 (f) and 2 (m): only the 0–1 pair shares the sex; the child is left out
    assert [(g.group, g.images, g.impostor_pairs) for g in groups] == [("x", 3, 1), ("y", 2, 1)]


def test_small_groups_are_listed_as_unmeasured_and_unreadable_images_left_out(synth: Synthetic) -> None:
    spec, emb = synth
    images = (*spec.images, ImageRecord("c.jpg", "pc", {"g": "c"}), ImageRecord("bad.jpg", "pd", {"g": "a"}))
    vectors = np.vstack([emb.vectors, np.zeros((2, emb.vectors.shape[1]), np.float32)])
    status = np.concatenate([emb.status, np.array([NO_FACE, UNREADABLE], np.int8)])
    bigger = DatasetSpec(spec.name, spec.kind, images, spec.analyses)
    audit = audit_dataset(bigger, DatasetEmbeddings("m", vectors, status), CosineScorer(vectors), 0.5, FAST)
    result = audit.analyses[0]
    assert result.unmeasured == ("c",)
    assert audit.unreadable == 1
    assert result.groups[0].images == sum(1 for r in spec.images if r.groups["g"] == "a")


def test_a_group_whose_faces_are_mostly_missed_keeps_its_failure_to_detect(synth: Synthetic) -> None:
    from facetrust.fairness.gate import check_gate, parse_gate

    spec, emb = synth
    # group "c": 40 images of 20 people, a face found in 9 (under min_images): 31 missed
    extra = tuple(ImageRecord(f"c{i}.jpg", f"pc{i // 2}", {"g": "c"}) for i in range(40))
    status = np.concatenate([emb.status, np.array([FACE] * 9 + [NO_FACE] * 31, np.int8)])
    rng = np.random.default_rng(3)
    more = rng.standard_normal((40, emb.vectors.shape[1])).astype(np.float32)
    vectors = np.vstack([emb.vectors, more / np.linalg.norm(more, axis=1, keepdims=True)])
    bigger = DatasetSpec(spec.name, spec.kind, (*spec.images, *extra), spec.analyses)
    audit = audit_dataset(bigger, DatasetEmbeddings("m", vectors, status), CosineScorer(vectors), 0.5, FAST)
    result = audit.analyses[0]

    assert result.unmeasured == ("c",)
    c = next(g for g in result.groups if g.group == "c")
    assert (c.failure_to_detect.errors, c.failure_to_detect.trials) == (31, 40)
    assert c.fmr == {} and c.fnmr == {} and c.impostor_pairs == c.mated_pairs == 0
    ftd = next(r for r in result.ratios if r.metric == "ftd")
    assert ftd.differential.worst == "c"
    assert [r.metric for r in result.ratios if "c" in (r.differential.worst, r.differential.best)] == ["ftd"]
    (check,) = check_gate(parse_gate("ftd<=0.05"), [audit])
    assert not check.passed and check.value == pytest.approx(31 / 40)


@pytest.mark.parametrize("similarity", [60.0, 80.0])
def test_the_options_label_the_default_point(synth: Synthetic, similarity: float) -> None:
    spec, emb = synth
    options = AuditOptions(replicates=20, similarity=similarity)
    result = audit_dataset(spec, emb, CosineScorer(emb.vectors), 0.5, options).analyses[0]
    assert result.points[0].label.startswith(f"Similarity {similarity:g} ")


def brothers() -> Synthetic:
    """One group: two look-alike people with 30 photos each, and 40 strangers with 2 each."""
    rng = np.random.default_rng(7)
    shared = rng.standard_normal(16)
    records, vectors = [], []
    for who in ("george", "jeb"):
        own = shared + 0.1 * rng.standard_normal(16)
        for k in range(30):
            vectors.append(own + 0.1 * rng.standard_normal(16))
            records.append(ImageRecord(f"{who}_{k}.jpg", who, {"g": "men"}))
    for p in range(40):
        centre = rng.standard_normal(16)
        for k in range(2):
            vectors.append(centre + 0.3 * rng.standard_normal(16))
            records.append(ImageRecord(f"s{p}_{k}.jpg", f"s{p}", {"g": "men"}))
    v = np.array(vectors, dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    spec = DatasetSpec("brothers", "csv", tuple(records), (Analysis("g", "g"),))
    return spec, DatasetEmbeddings("m", v, np.full(len(v), FACE, np.int8))


def test_an_impostor_cap_keeps_a_much_photographed_pair_from_setting_the_fmr() -> None:
    spec, emb = brothers()
    options = AuditOptions(replicates=50, seed=3)
    every = audit_dataset(spec, emb, CosineScorer(emb.vectors), 0.8, options).analyses[0].groups[0]
    capped = (
        audit_dataset(
            spec,
            emb,
            CosineScorer(emb.vectors),
            0.8,
            AuditOptions(replicates=50, seed=3, max_per_identity=2, impostor_max_per_identity=2),
        )
        .analyses[0]
        .groups[0]
    )

    # Every photo: 140 images, 9,730 pairs, of which the brothers' 900 all match. At most two a
    # person: 84 images and 3,444 pairs, of which the brothers' 4 are all that match.
    assert (every.impostor_pairs, every.fmr["similarity"].errors) == (140 * 139 // 2 - 2 * 435 - 40, 900)
    assert (capped.impostor_pairs, capped.fmr["similarity"].errors) == (84 * 83 // 2 - 42, 4)
    assert capped.fmr["similarity"].value < every.fmr["similarity"].value / 50
    assert capped.images == every.images == 140  # images and failures to detect still count every photo
    assert capped.mated_pairs == 42


def test_the_impostor_cap_is_a_seeded_choice() -> None:
    spec, emb = brothers()
    options = AuditOptions(replicates=20, seed=5, impostor_max_per_identity=3)
    first = audit_dataset(spec, emb, CosineScorer(emb.vectors), 0.8, options)
    assert first == audit_dataset(spec, emb, CosineScorer(emb.vectors), 0.8, options)
    again = AuditOptions(replicates=20, seed=6, impostor_max_per_identity=3)
    other = audit_dataset(spec, emb, CosineScorer(emb.vectors), 0.8, again)
    # Another seed picks other photos of the brothers, but as many of them.
    assert first.analyses[0].groups[0].impostor_pairs == other.analyses[0].groups[0].impostor_pairs
    assert first.analyses[0].groups[0].mated_pairs == 2 * 3 + 40


def one_person_and_a_crowd() -> Synthetic:
    """Group "solo": one person with 12 photos, half of them far from the rest (false non-matches);
    group "crowd": 20 people with 2 close photos each."""
    rng = np.random.default_rng(11)
    records, vectors = [], []
    centre = rng.standard_normal(16)
    for k in range(12):
        vectors.append(centre + (2.0 if k % 2 else 0.05) * rng.standard_normal(16))
        records.append(ImageRecord(f"solo_{k}.jpg", "solo", {"g": "solo"}))
    for p in range(20):
        own = rng.standard_normal(16)
        for k in range(2):
            vectors.append(own + 0.05 * rng.standard_normal(16))
            records.append(ImageRecord(f"c{p}_{k}.jpg", f"c{p}", {"g": "crowd"}))
    v = np.array(vectors, dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    spec = DatasetSpec("one", "csv", tuple(records), (Analysis("g", "g"),))
    return spec, DatasetEmbeddings("m", v, np.full(len(v), FACE, np.int8))


def test_errors_of_a_single_person_get_the_whole_interval_not_a_zero_width_one() -> None:
    spec, emb = one_person_and_a_crowd()
    result = audit_dataset(spec, emb, CosineScorer(emb.vectors), 0.8, FAST).analyses[0]
    solo = next(g for g in result.groups if g.group == "solo")
    fnmr = solo.fnmr["similarity"]

    # Every replicate draws the one person 1 time: the percentile interval would be [value, value].
    assert solo.identities == 1 and 0 < fnmr.value < 1
    assert (fnmr.interval.low, fnmr.interval.high) == (0.0, 1.0)
    ratio = next(r for r in result.ratios if r.metric == "fnmr" and r.point == "similarity")
    assert ratio.differential.worst == "solo"
    assert ratio.interval.high == float("inf") and ratio.interval_text.startswith("unbounded")


def _two_groups(spread_b: float) -> tuple[DatasetSpec, DatasetEmbeddings]:
    """Groups a and b of 12 people, 3 images each; a's people far apart, b's ``spread_b`` apart."""
    rng = np.random.default_rng(7)
    vectors, records = [], []
    for name, spread in (("a", 0.0), ("b", spread_b)):
        base = rng.standard_normal(64)
        for p in range(12):
            own = spread * base + rng.standard_normal(64)
            for k in range(3):
                vectors.append(own + 0.02 * rng.standard_normal(64))
                records.append(ImageRecord(f"{name}{p}_{k}.jpg", f"{name}{p}", {"g": name}))
    v = np.array(vectors, dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    spec = DatasetSpec("two", "csv", tuple(records), (Analysis("g", "g"),))
    return spec, DatasetEmbeddings("m", v, np.full(len(v), FACE, np.int8))


def test_a_ratio_where_no_group_made_an_error_is_unbounded_not_one_to_one() -> None:
    spec, emb = _two_groups(spread_b=0.0)
    result = audit_dataset(spec, emb, CosineScorer(emb.vectors), 0.8, FAST).analyses[0]
    assert all(g.fmr["similarity"].errors == 0 for g in result.groups)
    ratio = next(r for r in result.ratios if r.metric == "fmr" and r.point == "similarity")

    assert ratio.differential.ratio == 1.0  # nothing observed apart
    assert (ratio.interval.low, ratio.interval.high) == (0.0, float("inf"))
    assert ratio.interval_text == "unbounded (no group made an error)"
    ftd = next(r for r in result.ratios if r.metric == "ftd")
    assert ftd.interval.high == float("inf")


def test_a_ratio_over_a_group_without_errors_is_open_above() -> None:
    spec, emb = _two_groups(spread_b=3.0)  # b's people resemble one another: b's false matches only
    result = audit_dataset(spec, emb, CosineScorer(emb.vectors), 0.8, FAST).analyses[0]
    a, b = result.groups
    assert a.fmr["similarity"].errors == 0 < b.fmr["similarity"].errors
    ratio = next(r for r in result.ratios if r.metric == "fmr" and r.point == "similarity")

    assert ratio.differential.ratio_is_bound and (ratio.differential.worst, ratio.differential.best) == ("b", "a")
    assert 0.0 < ratio.interval.low <= ratio.differential.ratio and ratio.interval.high == float("inf")
    assert ratio.interval_text.endswith("–unbounded (a made no error)")


def test_groups_without_match_rates_do_not_narrow_the_pooled_interval(synth: Synthetic) -> None:
    spec, emb = synth
    base = audit_dataset(spec, emb, CosineScorer(emb.vectors), 0.5, FAST).analyses[0]
    # 200 more people in group "c", a face found for 2 of them: no pairs, no errors, no match rates
    extra = tuple(ImageRecord(f"c{i}.jpg", f"pc{i}", {"g": "c"}) for i in range(200))
    status = np.concatenate([emb.status, np.array([FACE] * 2 + [NO_FACE] * 198, np.int8)])
    vectors = np.vstack([emb.vectors, np.eye(200, emb.vectors.shape[1], dtype=np.float32)])
    bigger = DatasetSpec(spec.name, spec.kind, (*spec.images, *extra), spec.analyses)
    more = audit_dataset(bigger, DatasetEmbeddings("m", vectors, status), CosineScorer(vectors), 0.5, FAST)
    pooled = more.analyses[0].overall_fmr["similarity"]
    assert more.analyses[0].unmeasured == ("c",)
    assert pooled == base.overall_fmr["similarity"]  # the same pairs, errors and people


def test_a_threshold_nothing_reaches_gets_no_one_to_one_ratio_interval(synth: Synthetic) -> None:
    spec, emb = synth
    result = audit_dataset(spec, emb, CosineScorer(emb.vectors), float("inf"), FAST).analyses[0]
    assert all(g.fnmr["similarity"].value == 1.0 for g in result.groups)
    ratio = next(r for r in result.ratios if r.metric == "fnmr" and r.point == "similarity")
    assert ratio.interval.high == float("inf")
    assert ratio.interval_text == "unbounded (every group erred on every trial)"


def test_names_print_on_one_line_with_only_their_unprintable_characters_escaped() -> None:
    from facetrust.fairness.results import one_line

    assert one_line("Ménière group") == "Ménière group"
    assert one_line("a\nb") == "a\\nb"
    assert one_line("Ménière\u00a0\tgroup") == "Ménière\\xa0\\tgroup"
