"""facetrust audit: the report folder, the summary, and the gate's exit statuses (over the fake engine)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

Invoke = Callable[..., Result]
MakeImage = Callable[..., str]


@pytest.fixture
def dataset(make_image: MakeImage, tmp_path: Path) -> Path:
    """40 fake people, two images each, in groups "a" and "b"; one image without a face."""
    rows = ["path,identity,group"]
    for p in range(40):
        for k in range(2):
            faces = [] if (p, k) == (3, 0) else [(10 + 5 * k, 10, 64 + 4 * k, p)]
            path = make_image(f"faces/p{p}_{k}.png", faces, width=120, height=120)
            rows.append(f"{Path(path).name},p{p},{'a' if p % 2 else 'b'}")
    csv = tmp_path / "faces" / "data.csv"
    csv.write_text("\n".join(rows) + "\n")
    return csv


def audit(invoke: Invoke, tmp_path: Path, *args: str) -> Result:
    return invoke("--cache-dir", str(tmp_path / "cache"), "audit", *args, "--replicates", "50")


def test_audit_writes_the_report_folder_and_prints_a_summary(invoke: Invoke, dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"

    result = audit(invoke, tmp_path, str(dataset), "--out", str(out))

    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith("data (csv): 80 images, 0 unreadable, hash ")
    report = json.loads((out / "report.json").read_text())
    threshold = report["datasets"][0]["analyses"][0]["points"][1]["threshold"]
    assert lines[1] == (
        "  by group: Similarity 80 (calibrated FMR 1e-04) → score 0.6000; "
        f"FMR 1e-03 over these impostor pairs → score {threshold:.4f}"
    )
    assert lines[-1] == f"report: {out / 'report.html'} (and report.json, plots beside it)"
    assert sorted(p.name for p in out.iterdir()) == [
        "data-group-det.png",
        "data-group-fmr.png",
        "data-group-scores.png",
        "report.html",
        "report.json",
    ]
    assert report["models"][1]["id"] == "fake-recogniser:0"
    assert report["datasets"][0]["analyses"][0]["groups"][0]["failure_to_detect"]["errors"] == 1


def test_a_rerun_uses_the_embedding_cache(invoke: Invoke, dataset: Path, tmp_path: Path) -> None:
    audit(invoke, tmp_path, str(dataset), "--out", str(tmp_path / "r1"))
    audit(invoke, tmp_path, str(dataset), "--out", str(tmp_path / "r2"))
    report = json.loads((tmp_path / "r2" / "report.json").read_text())
    assert report["datasets"][0]["extra"]["embeddings_cached"] is True


def test_a_gate_that_holds_exits_0_and_says_so(invoke: Invoke, dataset: Path, tmp_path: Path) -> None:
    result = audit(invoke, tmp_path, str(dataset), "--out", str(tmp_path / "r"), "--gate", "ftd<=0.5,fnmr_ratio<=10")

    assert result.exit_code == 0
    gate = [line for line in result.stdout.splitlines() if line.startswith("gate: ")]
    assert gate == [
        "gate: ftd<=0.5: ftd = 0.025 (data, group, a) ok",
        "gate: fnmr_ratio<=10: fnmr_ratio@similarity = 1 (data, group, a/b) ok",
    ]


def test_a_gate_that_fails_exits_1_and_names_the_bound(invoke: Invoke, dataset: Path, tmp_path: Path) -> None:
    result = audit(invoke, tmp_path, str(dataset), "--out", str(tmp_path / "r"), "--gate", "ftd<0.01,ftd_ratio<=1e9")

    assert result.exit_code == 1
    assert "gate: ftd<0.01: ftd = 0.025 (data, group, a) FAILED\n" in result.stdout
    assert result.stderr == "Error: audit gate failed: ftd<0.01: ftd = 0.025 (data, group, a) FAILED\n"
    assert (tmp_path / "r" / "report.json").is_file()  # the report is written either way


def test_a_negative_seed_is_a_usage_error(invoke: Invoke, dataset: Path, tmp_path: Path) -> None:
    result = audit(invoke, tmp_path, str(dataset), "--seed", "-5")

    assert result.exit_code == 2 and "--seed" in result.stderr and "Traceback" not in result.output


def test_a_gate_clause_that_cannot_be_read_is_a_usage_error_naming_it(
    invoke: Invoke, dataset: Path, tmp_path: Path
) -> None:
    result = audit(invoke, tmp_path, str(dataset), "--gate", "fmr_ratio<=2,fmr_raito<=3")

    assert result.exit_code == 2
    assert result.stderr.endswith(
        "Error: Invalid value for '--gate': Gate clause 'fmr_raito<=3' has unknown metric 'fmr_raito'; "
        "known: fmr_ratio, fnmr_ratio, ftd_ratio, fmr, fnmr, ftd\n"
    )
    assert not (tmp_path / "facetrust-audit").exists()


def test_limit_audits_a_seeded_subset(invoke: Invoke, dataset: Path, tmp_path: Path) -> None:
    result = audit(invoke, tmp_path, str(dataset), "--out", str(tmp_path / "r"), "--limit", "30", "--seed", "4")

    assert result.exit_code == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["datasets"][0]["images"] == 30
    assert report["datasets"][0]["notes"][-1] == "seeded subset (--limit 30, seed 4): 30 of 80 images"
    assert report["options"]["seed"] == 4


def test_max_per_identity_caps_impostor_and_mated_pairs_and_says_so(
    invoke: Invoke, dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r"
    result = audit(invoke, tmp_path, str(dataset), "--out", str(out), "--max-per-identity", "1")

    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert (report["options"]["max_per_identity"], report["options"]["impostor_max_per_identity"]) == (1, 1)
    groups = report["datasets"][0]["analyses"][0]["groups"]
    # One image of each of a group's 20 people (19 with a face in group "b"): no mated pairs.
    assert [(g["group"], g["images"], g["impostor_pairs"], g["mated_pairs"]) for g in groups] == [
        ("a", 40, 20 * 19 // 2, 0),
        ("b", 40, 20 * 19 // 2, 0),
    ]
    assert "at most 1 in impostor pairs, at most 1 in mated pairs" in (out / "report.html").read_text()


def test_max_per_identity_below_1_is_a_usage_error_naming_it(invoke: Invoke, dataset: Path, tmp_path: Path) -> None:
    result = audit(invoke, tmp_path, str(dataset), "--max-per-identity", "0")
    assert result.exit_code == 2
    assert "--max-per-identity" in result.stderr and not (tmp_path / "r").exists()


def test_an_unknown_layout_is_an_error_asking_for_the_dataset_type(invoke: Invoke, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = audit(invoke, tmp_path, str(tmp_path / "empty"))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: Cannot tell the layout of dataset {tmp_path / 'empty'}; pass --dataset-type (lfw, utkface, csv)\n"
    )


def test_a_calibration_that_never_reaches_similarity_80_is_audited_as_the_service_uses_it(
    dataset: Path, tmp_path: Path
) -> None:
    import click.testing

    from facetrust.calibration import Calibration
    from facetrust.cli.app import cli
    from facetrust.engine import FaceEngine
    from facetrust.models.fake import fake_engine

    engine = fake_engine()
    # a small site's table: 1,000 impostor pairs resolve FMR down to 1e-2 only (Similarity 40)
    short = Calibration(engine.calibration.model, (0.0, 0.5), (0.0, -2.0), 1e-2, 1_000, "a small site")
    engine = FaceEngine(engine.detector, engine.recogniser, calibration=short, settings=engine.settings)
    assert not short.reaches(80.0) and short.similarity(0.99) == pytest.approx(40.0)
    out = tmp_path / "report"
    args = ["--cache-dir", str(tmp_path / "cache"), "audit", str(dataset), "--out", str(out), "--replicates", "50"]

    result = click.testing.CliRunner().invoke(cli, args, obj={"engine": engine})

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    # not "calibrated FMR 1e-04 → score 0.5000": the service matches nothing at Similarity 80 with it
    assert lines[1].startswith(
        "  by group: Similarity 80 (out of the calibration's reach: nothing matches) → score inf;"
    )
    report = json.loads((out / "report.json").read_text())
    for group in report["datasets"][0]["analyses"][0]["groups"]:
        assert group["fmr"]["similarity"]["errors"] == 0
        assert group["fnmr"]["similarity"]["value"] == 1.0


def test_an_audit_where_no_image_could_be_read_fails_and_writes_no_report(invoke: Invoke, tmp_path: Path) -> None:
    csv = tmp_path / "gone.csv"
    csv.write_text("path,identity,group\n" + "".join(f"missing{i}.png,p{i},{'ab'[i % 2]}\n" for i in range(12)))
    out = tmp_path / "report"

    result = audit(invoke, tmp_path, str(csv), "--out", str(out))

    assert result.exit_code == 1
    assert "Error: No image of gone (12 images) could be read" in result.stderr
    assert "Traceback" not in result.output and not out.exists()


def test_a_group_name_with_a_newline_stays_on_its_line(invoke: Invoke, dataset: Path, tmp_path: Path) -> None:
    text = dataset.read_text().replace(",a\n", ',"a\nb"\n')
    dataset.write_text(text)

    result = audit(invoke, tmp_path, str(dataset), "--out", str(tmp_path / "r"))

    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.startswith("    a")]
    assert rows and rows[0].startswith("    a\\nb ")
