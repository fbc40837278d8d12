"""facetrust calibrate: a calibration file with provenance, or a calibrated cohort normaliser."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from facetrust.calibration import Calibration
from facetrust.clusternorm import ClusterNormaliser
from facetrust.normalise import CohortNormaliser

from .test_audit_cmd import dataset  # noqa: F401  (the fixture)

Invoke = Callable[..., Result]
MakeImage = Callable[..., str]


def test_calibrate_writes_a_calibration_for_the_engines_model(invoke: Invoke, dataset: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "cal.json"

    result = invoke("--cache-dir", str(tmp_path / "cache"), "calibrate", str(dataset), "--out", str(out))

    assert result.exit_code == 0, result.output
    cal = Calibration.load(out)
    assert cal.model == "fake-recogniser:0"
    assert cal.impostor_pairs == 722 + 760
    # 1,482 pairs resolve FMR down to about 1e-2: no score reaches Similarity 80 through this table,
    # and it says so rather than naming the table's last score as Similarity 80's
    assert not cal.reaches(80.0) and cal.reaches(40.0)
    assert set(cal.provenance["threshold_intervals"]) == {"40"}  # no interval on a threshold never met
    top = cal.top_similarity
    assert result.stdout == (
        f"{out}: calibration for fake-recogniser:0 from 1,482 impostor pairs, floor FMR {cal.floor_fmr:.1e}; "
        f"Similarity 80 out of reach (no score gets above Similarity {top:.1f})\n"
        "near-duplicate images dropped (cosine ≥ 0.9 to an image of someone else): 0\n"
        f"warning: 1,482 impostor pairs resolve FMR down to {cal.floor_fmr:.1e} only, not the 1e-4 of Similarity 80: "
        f"with this table nothing matches at the default threshold (80), only at thresholds up to {top:.1f}; "
        "add faces for a table that reaches 80\n"
        f"use it: FACETRUST_CALIBRATION_FILE={out}\n"
    )
    assert max(cal.similarity(s) for s in (0.9, 0.99, 1.0)) == pytest.approx(top, abs=1e-3)
    assert json.loads(out.read_text())["provenance"]["datasets"][0]["kind"] == "csv"


def test_calibrate_with_a_cohort_writes_a_calibrated_normaliser(
    invoke: Invoke,
    dataset: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    out = tmp_path / "cohort.npz"
    cohort = dataset.parent  # any unlabelled faces will do; here the same images

    result = invoke(
        "--cache-dir", str(tmp_path / "cache"), "calibrate", str(dataset), "--cohort", str(cohort), "--top-k", "5",
        "--out", str(out),
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    found = CohortNormaliser.load(out)
    assert found.top_k == 5 and len(found.cohort) == 79
    assert found.calibration is not None and found.calibration.model == found.score_id
    assert result.stdout.endswith(f"use it: FACETRUST_COHORT_FILE={out}\n")


def test_too_few_impostor_pairs_is_an_error(invoke: Invoke, dataset: Path, tmp_path: Path) -> None:  # noqa: F811
    result = invoke(
        "--cache-dir", str(tmp_path), "calibrate", str(dataset), "--limit", "20", "--out", str(tmp_path / "c")
    )

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Need at least 1000 impostor scores to calibrate; got ")


def test_max_per_identity_limits_each_persons_images_and_says_how_many_were_left_out(
    invoke: Invoke, make_image: MakeImage, tmp_path: Path
) -> None:
    rows = ["path,identity,group"]
    for p in range(40):
        for k in range(3):
            path = make_image(f"faces/p{p}_{k}.png", [(10 + 5 * k, 10, 64 + 4 * k, p)], width=120, height=120)
            rows.append(f"{Path(path).name},p{p},{'a' if p % 2 else 'b'}")
    (tmp_path / "faces" / "data.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "cal.json"

    result = invoke(
        "--cache-dir", str(tmp_path / "cache"), "calibrate", str(tmp_path / "faces" / "data.csv"), "--out", str(out),
        "--max-per-identity", "2", "--replicates", "0",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    cal = Calibration.load(out)
    assert cal.impostor_pairs == 760 + 760  # two faces a person, 20 people a group: C(40,2) − 20 mated
    assert "images left out, over 2 of one identity: 40\n" in result.stdout
    assert cal.provenance["max_per_identity"] == 2


@pytest.mark.parametrize(("option", "value"), [("--seed", "-1"), ("--replicates", "1"), ("--replicates", "9")])
def test_a_negative_seed_or_too_few_replicates_is_a_usage_error(
    invoke: Invoke,
    dataset: Path,  # noqa: F811
    tmp_path: Path,
    option: str,
    value: str,
) -> None:
    result = invoke("calibrate", str(dataset), "--out", str(tmp_path / "cal.json"), option, value)

    assert result.exit_code == 2 and option in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "cal.json").exists()


def test_max_per_identity_below_one_is_a_usage_error(invoke: Invoke, dataset: Path, tmp_path: Path) -> None:  # noqa: F811
    result = invoke("calibrate", str(dataset), "--out", str(tmp_path / "cal.json"), "--max-per-identity", "0")

    assert result.exit_code == 2
    assert "--max-per-identity" in result.stderr and not (tmp_path / "cal.json").exists()


@pytest.fixture
def crowd(make_image: MakeImage, tmp_path: Path) -> Path:
    """250 fake people, three images each, in groups "a" and "b": 69,750 impostor pairs a group."""
    rows = ["path,identity,group"]
    for p in range(250):
        for k in range(3):
            path = make_image(f"crowd/p{p}_{k}.png", [(10 + 5 * k, 10, 64 + 4 * k, p)], width=120, height=120)
            rows.append(f"{Path(path).name},p{p},{'a' if p % 2 else 'b'}")
    csv = tmp_path / "crowd" / "data.csv"
    csv.write_text("\n".join(rows) + "\n")
    return csv


def test_calibrate_normaliser_writes_a_calibrated_cluster_normaliser(
    invoke: Invoke, crowd: Path, tmp_path: Path
) -> None:
    out = tmp_path / "normaliser.json"

    result = invoke(
        "--cache-dir", str(tmp_path / "cache"), "calibrate", str(crowd), "--normaliser", "--clusters", "4",
        "--replicates", "20", "--out", str(out),
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    found = ClusterNormaliser.load(out)
    cal = found.calibration
    sizes = found.fit_sizes
    assert found.model == "fake-recogniser:0" and len(sizes) == 5 and all(1 <= k <= 4 for k in sizes)
    assert cal is not None and cal.model == found.score_id
    assert found.provenance["max_per_identity"] == 20 and found.provenance["k_requested"] == 4
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"{out}: cluster normaliser for fake-recogniser:0: 5 fits averaged of {', '.join(map(str, sizes))} regions "
        f"(asked 4), {len(found.unreliable)} marked unreliable"
    )
    assert lines[1:4] == [
        "offsets from 2 of 2 groups (those with 20,000 impostor pairs or more):",
        "  data: group=a: 69,750 pairs",  # 125 people of three faces: C(375, 2) − 125 × 3 mated
        "  data: group=b: 69,750 pairs",
    ]
    assert lines[4].startswith(f"calibration of normalised scores from {2 * 69_750:,} impostor pairs")
    assert lines[5] == "table: every group's pairs pooled (no group has 100,000 pairs to be weighted alone)"
    assert lines[-1] == f"use it: FACETRUST_NORMALISER_FILE={out}"


def test_calibrate_normaliser_with_bag_1_fits_one_k_means(invoke: Invoke, crowd: Path, tmp_path: Path) -> None:
    out = tmp_path / "one.json"

    result = invoke(
        "--cache-dir", str(tmp_path / "cache"), "calibrate", str(crowd), "--normaliser", "--clusters", "4",
        "--bag", "1", "--replicates", "0", "--out", str(out),
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    found = ClusterNormaliser.load(out)
    assert found.fits == () and "fits" not in json.loads(out.read_text())
    assert found.provenance["bagging"]["kmeans_seeds"] == [0]
    assert result.stdout.splitlines()[0].startswith(f"{out}: cluster normaliser for fake-recogniser:0: ")
    assert f"{len(found.centroids)} regions (asked 4)" in result.stdout.splitlines()[0]


def test_calibrate_normaliser_with_a_cohort_is_a_usage_error(invoke: Invoke, dataset: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "n.json"
    result = invoke("calibrate", str(dataset), "--normaliser", "--cohort", str(dataset.parent), "--out", str(out))

    assert result.exit_code == 2
    assert "--normaliser and --cohort" in result.stderr and not out.exists()


def test_calibrate_normaliser_on_too_few_people_says_what_a_region_needs(
    invoke: Invoke,
    dataset: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    out = tmp_path / "n.json"
    result = invoke("--cache-dir", str(tmp_path), "calibrate", str(dataset), "--normaliser", "--out", str(out))

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Every region of the normaliser must average at least 50 different people")
    assert not out.exists()


def test_calibrate_normaliser_with_a_holdout_reports_each_group_on_people_the_fit_never_saw(
    invoke: Invoke, crowd: Path, tmp_path: Path
) -> None:
    out = tmp_path / "normaliser.json"

    result = invoke(
        "--cache-dir", str(tmp_path / "cache"), "calibrate", str(crowd), "--normaliser", "--clusters", "3",
        "--holdout", "0.2", "--replicates", "20", "--out", str(out),
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    held = ClusterNormaliser.load(out).provenance["held_out"]
    assert held["people"] == 50 and held["current"] == "raw cosine (fake-recogniser:0)"
    lines = result.stdout.splitlines()
    start = lines.index(
        "held out of the fit: 50 people (20% of each dataset's); at Similarity 80 (FMR 1e-04 promised), "
        "95 % intervals; now: raw cosine (fake-recogniser:0)"
    )
    for line, group in zip(lines[start + 1 : start + 3], ("a", "b"), strict=True):
        pairs = held["groups"][f"data: group={group}"]["impostor_pairs"]
        assert line.startswith(f"  data: group={group}: {pairs:,} pairs: FMR ")
        assert "; TAR " in line and " %, now " in line


def test_a_holdout_without_normaliser_is_a_usage_error(invoke: Invoke, dataset: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "cal.json"
    result = invoke("calibrate", str(dataset), "--holdout", "0.5", "--out", str(out))

    assert result.exit_code == 2
    assert "--holdout checks a refitted normaliser" in result.stderr and not out.exists()


def test_calibrate_normaliser_names_the_groups_its_table_weights_equally(
    invoke: Invoke, make_image: MakeImage, tmp_path: Path
) -> None:
    rows = ["path,identity,group"]
    for p in range(500):  # 250 people of two faces a group: 124,500 impostor pairs each
        for k in range(2):
            path = make_image(f"big/p{p}_{k}.png", [(10 + 5 * k, 10, 64 + 4 * k, p)], width=120, height=120)
            rows.append(f"{Path(path).name},p{p},{'a' if p % 2 else 'b'}")
    (tmp_path / "big" / "data.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "normaliser.json"

    result = invoke(
        "--cache-dir", str(tmp_path / "cache"), "calibrate", str(tmp_path / "big" / "data.csv"), "--normaliser",
        "--clusters", "4", "--replicates", "0", "--out", str(out),
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "table: data: a, data: b weighted equally\n" in result.stdout
    cal = ClusterNormaliser.load(out).calibration
    assert cal is not None and cal.provenance["table_groups"]["weighted_equally"] == ["data: a", "data: b"]


@pytest.mark.parametrize("normaliser", [False, True])
def test_an_out_that_cannot_be_written_is_refused_before_the_fit(
    invoke: Invoke,
    dataset: Path,  # noqa: F811
    tmp_path: Path,
    normaliser: bool,
) -> None:
    flag = ["--normaliser"] if normaliser else []
    missing = tmp_path / "no-such-folder" / "cal.json"

    result = invoke("--cache-dir", str(tmp_path / "cache"), "calibrate", str(dataset), *flag, "--out", str(missing))

    assert result.exit_code == 2
    assert f"the folder {missing.parent} does not exist" in result.stderr
    assert not (tmp_path / "cache").exists()  # refused before a single image was embedded

    result = invoke("calibrate", str(dataset), *flag, "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "is a directory" in result.stderr


def test_a_refit_replaces_an_earlier_calibration_file_whole(invoke: Invoke, dataset: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "cal.json"
    out.write_text("an earlier table\n")

    result = invoke("--cache-dir", str(tmp_path / "cache"), "calibrate", str(dataset), "--out", str(out))

    assert result.exit_code == 0, result.output
    assert Calibration.load(out).model == "fake-recogniser:0"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_leave_out_repeats_reads_the_same_person_score_off_the_engines_table_and_spares_datasets_with_identities(
    invoke: Invoke, crowd: Path, tmp_path: Path
) -> None:
    out = tmp_path / "normaliser.json"

    result = invoke(
        "--cache-dir", str(tmp_path / "cache"), "calibrate", str(crowd), "--normaliser", "--clusters", "4",
        "--replicates", "0", "--leave-out-repeats", "--out", str(out),
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    repeats = ClusterNormaliser.load(out).provenance["repeats"]
    assert repeats["same_person_score"] == 0.9  # the fake table reaches FMR 1e-6 at cosine 0.9
    assert repeats["pairs_left_out"] == 0  # every image has an identity: no pair is presumed anything
    assert "  data: group=a: 69,750 pairs" in result.stdout.splitlines()


def test_leave_out_repeats_without_normaliser_is_a_usage_error(invoke: Invoke, dataset: Path, tmp_path: Path) -> None:  # noqa: F811
    result = invoke("calibrate", str(dataset), "--leave-out-repeats", "--out", str(tmp_path / "cal.json"))

    assert result.exit_code == 2
    assert "--leave-out-repeats is a rule of the normaliser's fit" in result.stderr
