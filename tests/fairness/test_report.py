"""The report folder: strict JSON with everything, an HTML page a person can read, PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facetrust.fairness.audit import AuditOptions, audit_dataset
from facetrust.fairness.pairs import CosineScorer
from facetrust.fairness.report import plain, write_report
from facetrust.fairness.runner import AuditRun

from .conftest import synthetic

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run() -> AuditRun:
    spec, emb = synthetic()
    options = AuditOptions(replicates=50)
    audit = audit_dataset(spec, emb, CosineScorer(emb.vectors), 0.5, options)
    return AuditRun(
        created="2026-11-26T00:00:00+00:00",
        facetrust_version="0.1.0",
        models=({"role": "recogniser", "name": "m", "id": "m:1", "sha256": "ab" * 32},),
        score_id="m:1",
        calibration={"model": "m:1", "dataset": "synthetic", "impostor_pairs": 10, "floor_fmr": 0.1, "provenance": {}},
        normaliser=None,
        settings={},
        options=options,
        datasets=(audit,),
    )


@pytest.fixture(scope="module")
def folder(run: AuditRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One report, written once for the module (plotting takes a second or two)."""
    out = tmp_path_factory.mktemp("report") / "out"
    assert write_report(run, out) == {"json": out / "report.json", "html": out / "report.html"}
    return out


def test_write_report_writes_json_html_and_three_plots(folder: Path) -> None:
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "report.html",
        "report.json",
        "synthetic-g-det.png",
        "synthetic-g-fmr.png",
        "synthetic-g-scores.png",
    ]
    for name in names:
        if name.endswith(".png"):
            assert (folder / name).read_bytes().startswith(PNG)


def test_report_json_is_strict_json_with_provenance_and_every_rate(folder: Path) -> None:
    data = json.loads((folder / "report.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert data["format"] == "facetrust-audit/1"
    assert data["models"][0]["sha256"] == "ab" * 32
    assert data["options"]["seed"] == 0 and data["options"]["replicates"] == 50
    dataset = data["datasets"][0]
    assert len(dataset["fingerprint"]) == 64
    group = dataset["analyses"][0]["groups"][0]
    assert set(group["fmr"]) == {"similarity", "fmr"}
    assert set(group["fmr"]["similarity"]) == {"value", "errors", "trials", "interval"}
    assert data["plots"] == {
        "synthetic-g": {"det": "synthetic-g-det.png", "scores": "synthetic-g-scores.png", "fmr": "synthetic-g-fmr.png"}
    }


def test_report_html_explains_the_rates_and_shows_the_table_and_plots(folder: Path) -> None:
    page = (folder / "report.html").read_text()
    for text in (
        "False match rate (FMR)",
        "False non-match rate (FNMR)",
        "What this data cannot show",
        "<th>group</th>",
        'src="synthetic-g-fmr.png"',
        "95&nbsp;% interval",
    ):
        assert text in page


def test_plain_turns_nan_and_infinity_into_null() -> None:
    assert plain({"a": float("nan"), "b": (1.0, float("inf"))}) == {"a": None, "b": [1.0, None]}


def test_group_names_are_drawn_as_written_in_every_plot(tmp_path: Path) -> None:
    import dataclasses

    from facetrust.fairness.datasets import ImageRecord
    from facetrust.fairness.plots import figures, plot_analysis

    spec, emb = synthetic()
    names = {"a": "$20k-$50k", "b": "_unlabelled"}
    relabelled = tuple(ImageRecord(r.path, r.identity, {"g": names[r.groups["g"]]}) for r in spec.images)
    spec = dataclasses.replace(spec, images=relabelled)
    result = audit_dataset(spec, emb, CosineScorer(emb.vectors), 0.5, AuditOptions(replicates=20)).analyses[0]

    drawn = figures(result, "income $")
    assert sorted(drawn) == ["det", "fmr", "scores"]
    legend = [t.get_text() for t in drawn["det"].axes[0].get_legend().get_texts()]
    assert legend == [r"\$20k-\$50k", "_unlabelled"]  # "\$" is drawn as "$"; a leading "_" is kept
    scores = [t.get_text() for t in drawn["scores"].axes[0].get_legend().get_texts()]
    assert "_unlabelled non-mated" in scores
    ticks = [t.get_text() for t in drawn["fmr"].axes[0].get_xticklabels()]
    assert ticks == [r"\$20k-\$50k", "_unlabelled"]
    # a name that is not valid maths once stopped the whole report with a ValueError
    bad = dataclasses.replace(
        result, groups=tuple(dataclasses.replace(g, group=r"$\it{x}_{\unknown}$") for g in result.groups)
    )
    assert sorted(plot_analysis(bad, tmp_path, "bad", r"$\unknown$")) == ["det", "fmr", "scores"]
    assert (tmp_path / "bad-det.png").read_bytes().startswith(PNG)


@pytest.mark.parametrize(
    ("record", "words"),
    [
        ({"clusters": 316, "fits": [63, 64, 63, 63, 63]}, "cluster-conditional, 5 fits averaged, 316 clusters"),
        ({"clusters": 63, "fits": [63]}, "cluster-conditional, 63 clusters"),
        ({"clusters": 63}, "cluster-conditional, 63 clusters"),  # a report written before fits were recorded
    ],
)
def test_the_page_says_how_many_fits_a_cluster_normaliser_averages(
    run: AuditRun, record: dict[str, object], words: str
) -> None:
    from dataclasses import replace

    from facetrust.fairness.html import render_html

    page = render_html(replace(run, normaliser={"score_id": "m:1+fsn-x", "provenance": {}, **record}), {})
    assert words in page
