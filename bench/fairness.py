"""Fairness numbers for the README and docs/fairness.md: per-group error rates of the default
engine on LFW (by sex) and UTKFace (by race among adults, and by age band), the runtime of the
full audit, and the label-free mitigation measured before/after on held-apart data.

    .venv/bin/python bench/fairness.py            # writes bench/results/fairness.{json,md} and PNGs
    .venv/bin/python bench/fairness.py --cold     # also times the full audit with an empty cache

Data: ../shared/data/lfw and ../shared/data/utkface (or $FACETRUST_DATA). Embeddings are
cached outside the repository (the audit's cache, under the user cache directory).

* Full audit: `facetrust audit lfw utkface` as shipped (default calibration, raw scores),
  timed as a command (warm cache by default; `--cold` with an empty cache directory).
* Mitigation on held-apart data: the people (UTKFace: the images, each its own person) are
  split by a seeded shuffle into a cohort part (1/4), a calibration part (3/8) and an
  evaluation part (3/8), for several seeds. Methods, each calibrated on the calibration
  part's same-group impostor pairs: raw cosine (before); AS-norm with 3,000 cohort-part
  images, K = 50 (what facetrust ships as `cohort_file`); FairCal with 100 k-means clusters of
  the calibration part (a bench-only comparison). Reported on the evaluation part only:
  FMR per group at the default operating point (Similarity 80 through that calibration),
  FMR per group at the threshold giving FMR 1e-3 over the evaluation part's impostor pairs,
  the worst/best ratios, and the overall FNMR at FMR 1e-3.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw_data as L
from facetrust.calibration import fit_calibration
from facetrust.engine import FaceEngine
from facetrust.fairness.audit import AnalysisResult, AuditOptions, audit_analysis
from facetrust.fairness.datasets import DatasetSpec, load_lfw, load_utkface
from facetrust.fairness.embedding import FACE, DatasetEmbeddings
from facetrust.fairness.pairs import CosineScorer, PairScorer
from facetrust.fairness.refit import same_group_impostors
from facetrust.fairness.runner import embed_spec
from facetrust.normalise import CohortNormaliser
from faircal import faircal
from lfw import machine

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent
OPTIONS = AuditOptions(replicates=200, seed=0)


CAP = 20  # the audit's cap for mated pairs, also the normaliser fit's per-person cap


def full_audit(cold: bool, capped: bool = False) -> dict[str, Any]:
    """Run the shipped command on both datasets; its report and wall time. ``capped``: LFW only, at
    most ``CAP`` photos of a person in every pair (``--max-per-identity``)."""
    root = L.data_root()
    with tempfile.TemporaryDirectory() as tmp:
        cache = ["--cache-dir", str(Path(tmp) / "cache")] if cold else []
        data = (
            [str(root / "lfw"), "--max-per-identity", str(CAP)]
            if capped
            else [str(root / "lfw"), str(root / "utkface")]
        )
        cmd = [str(REPO / ".venv/bin/facetrust"), *cache, "audit", *data]
        start = time.perf_counter()
        subprocess.run([*cmd, "--out", str(Path(tmp) / "report")], check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        report = json.loads((Path(tmp) / "report" / "report.json").read_text())
    return {"cold_cache": cold, "seconds": round(seconds, 1), "report": report}


def subset(spec: DatasetSpec, emb: DatasetEmbeddings, rows: np.ndarray) -> tuple[DatasetSpec, DatasetEmbeddings]:
    images = tuple(spec.images[i] for i in rows)
    sub = DatasetEmbeddings(emb.model, emb.vectors[rows], emb.status[rows])
    return dataclasses.replace(spec, images=images), sub


def split(
    spec: DatasetSpec, seed: int, parts: tuple[float, float] = (0.25, 0.375)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of the cohort, calibration and evaluation parts (fractions: ``parts`` and the rest), by person.

    A seeded shuffle of the people (of the images, without identities). The cohort is kept
    apart from the calibration pairs: a cohort holding other photos of the same people would
    raise their cohort statistics and make the calibration of normalised scores optimistic.
    """
    keys = [r.identity or f"\0{i}" for i, r in enumerate(spec.images)]
    people = np.array(sorted(set(keys)))
    np.random.default_rng(seed).shuffle(people)
    cut = [int(parts[0] * len(people)), int((parts[0] + parts[1]) * len(people))]
    part = {p: 0 if i < cut[0] else 1 if i < cut[1] else 2 for i, p in enumerate(people.tolist())}
    which = np.array([part[k] for k in keys])
    return np.flatnonzero(which == 0), np.flatnonzero(which == 1), np.flatnonzero(which == 2)


def rate(r: Any) -> list[float] | None:
    return None if r is None else [r.value, r.interval.low, r.interval.high]


def summary(result: AnalysisResult) -> dict[str, Any]:
    """The numbers of one analysis that the tables need."""
    ratios = {
        f"{r.metric}_ratio@{r.point or 'all'}": [
            r.differential.ratio,
            r.interval.low,
            r.interval.high,
            r.differential.ratio_is_bound,
        ]
        for r in result.ratios
    }
    return {
        "analysis": result.analysis.label,
        "thresholds": {p.key: p.threshold for p in result.points},
        "groups": {
            g.group: {
                "images": g.images,
                "people": g.identities,
                "impostor_pairs": g.impostor_pairs,
                "mated_pairs": g.mated_pairs,
                "ftd": rate(g.failure_to_detect),
                **{f"fmr@{k}": rate(v) for k, v in g.fmr.items()},
                **{f"fnmr@{k}": rate(v) for k, v in g.fnmr.items()},
            }
            for g in result.groups
        },
        "ratios": ratios,
        "overall": {
            **{f"fmr@{k}": rate(v) for k, v in result.overall_fmr.items()},
            **{f"fnmr@{k}": rate(v) for k, v in result.overall_fnmr.items()},
        },
    }


def method_scorers(
    method: str, cohort: DatasetEmbeddings, a: tuple[DatasetSpec, DatasetEmbeddings], b: DatasetEmbeddings, seed: int
) -> tuple[PairScorer, PairScorer]:
    """(scorer over the calibration part, over the evaluation part); nothing fitted on the evaluation part."""
    spec_a, emb_a = a
    if method == "raw":
        return CosineScorer(emb_a.vectors), CosineScorer(b.vectors)
    if method == "asnorm":
        face = np.flatnonzero(cohort.status == FACE)
        pick = np.random.default_rng(seed).choice(face, min(3000, len(face) - 1), replace=False)
        normaliser = CohortNormaliser(cohort.model, cohort.vectors[np.sort(pick)], top_k=50)
        return normaliser.scorer(emb_a.vectors), normaliser.scorer(b.vectors)
    return faircal(spec_a, emb_a, emb_a.vectors, 100, seed), faircal(spec_a, emb_a, b.vectors, 100, seed)


def held_apart(
    spec: DatasetSpec, emb: DatasetEmbeddings, seed: int, methods: tuple[str, ...], parts: tuple[float, float]
) -> dict[str, Any]:
    """Every method on one split: cohort and calibration from their parts, audit of the evaluation part."""
    rows_c, rows_a, rows_b = split(spec, seed, parts)
    cohort = subset(spec, emb, rows_c)[1]
    a, (spec_b, emb_b) = subset(spec, emb, rows_a), subset(spec, emb, rows_b)
    out: dict[str, Any] = {
        "seed": seed,
        "images": {"cohort": len(rows_c), "calibration": len(rows_a), "evaluation": len(rows_b)},
    }
    for method in methods:
        started = time.perf_counter()
        scorer_a, scorer_b = method_scorers(method, cohort, a, emb_b, seed)
        impostors, counts = same_group_impostors(a[0], a[1].status, scorer_a)
        cal = fit_calibration(impostors, model=method, dataset=f"calibration part, seed {seed}")
        t80 = cal.score_for_similarity(OPTIONS.similarity)
        results = [audit_analysis(spec_b, emb_b, scorer_b, an, t80, OPTIONS, i) for i, an in enumerate(spec.analyses)]
        out[method] = {
            "calibration_pairs": counts,
            "analyses": [summary(r) for r in results],
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(f"  split {seed} {method}: {out[method]['seconds']} s", file=sys.stderr)
    return out


def dataset_embeddings(engine: FaceEngine, spec: DatasetSpec) -> DatasetEmbeddings:
    """The audit's own cached embeddings of ``spec`` (``facetrust audit`` has made them)."""
    from facetrust.config import default_cache_dir

    return embed_spec(engine, spec, cache_dir=default_cache_dir(), workers=2)


def fmt_rate(r: list[float] | None, pct: bool = False) -> str:
    if r is None:
        return "–"
    if pct:
        return f"{100 * r[0]:.2f} % ({100 * r[1]:.2f}–{100 * r[2]:.2f})"
    return f"{r[0]:.2e} ({r[1]:.1e}–{r[2]:.1e})"


def triple(rate: dict[str, Any] | None) -> list[float] | None:
    """[value, low, high] of a rate in report.json."""
    return None if rate is None else [rate["value"], rate["interval"]["low"], rate["interval"]["high"]]


def audit_table(analysis: dict[str, Any], mated: bool) -> list[str]:
    """A per-group table from one analysis of the CLI's report.json."""
    head = "| group | images | people | failure to detect | impostor pairs | FMR @ Similarity 80 | FMR @ FMR 1e-3 |"
    lines = [head + (" mated pairs | FNMR @ Similarity 80 | FNMR @ FMR 1e-3 |" if mated else ""), ""]
    lines[1] = "|" + "---|" * (lines[0].count("|") - 1)
    for g in analysis["groups"]:
        ftd = g["failure_to_detect"]
        row = (
            f"| {g['group']} | {g['images']:,} | {g['identities']:,} | {fmt_rate(triple(ftd), pct=True)} | "
            f"{g['impostor_pairs']:,} | {fmt_rate(triple(g['fmr'].get('similarity')))} | "
            f"{fmt_rate(triple(g['fmr'].get('fmr')))} |"
        )
        if mated:
            row += (
                f" {g['mated_pairs']:,} | {fmt_rate(triple(g['fnmr'].get('similarity')), True)} | "
                f"{fmt_rate(triple(g['fnmr'].get('fmr')), True)} |"
            )
        lines.append(row)
    for ratio in analysis["ratios"]:
        d = ratio["differential"]
        where = {"similarity": " at Similarity 80", "fmr": " at FMR 1e-3", "": ""}[ratio["point"]]
        bound = " (lower bound: best group had no errors)" if d["ratio_is_bound"] else ""
        iv = ratio["interval"]
        interval = (
            f"95 % {iv['low']:.2f}–{iv['high']:.2f}"
            if iv["low"] is not None and iv["high"] is not None
            else "95 % unbounded: no group made an error"
        )
        lines.append(
            f"\n{ratio['metric'].upper()} ratio{where}: **{d['ratio']:.2f}×**{bound} "
            f"({d['worst']}/{d['best']}; {interval})"
        )
    return lines


def spread(values: list[float]) -> str:
    return f"{np.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def ratio_cell(ratios: list[list[Any]]) -> str:
    """Median ratio over splits; "≥" when any split's best group had no error (a lower bound)."""
    values = [r[0] for r in ratios]
    mark = "≥" if any(r[3] for r in ratios) else ""
    return f"{mark}{np.median(values):.2f}×"


def lfw_mitigation_table(splits: list[dict[str, Any]], methods: tuple[str, ...]) -> list[str]:
    lines = [
        "| method | FMR ratio @ Similarity 80 | overall FMR @ Similarity 80 | FMR ratio @ FMR 1e-3 "
        "| FNMR @ FMR 1e-3 | FNMR change vs raw |",
        "|---|---|---|---|---|---|",
    ]
    for m in methods:
        a = [s[m]["analyses"][0] for s in splits]
        raw = [s["raw"]["analyses"][0] for s in splits]
        r80 = [x["ratios"]["fmr_ratio@similarity"][0] for x in a]
        r3 = [x["ratios"]["fmr_ratio@fmr"][0] for x in a]
        f80 = [x["overall"]["fmr@similarity"][0] for x in a]
        fn3 = [x["overall"]["fnmr@fmr"][0] for x in a]
        rel = [x["overall"]["fnmr@fmr"][0] / y["overall"]["fnmr@fmr"][0] - 1 for x, y in zip(a, raw)]
        lines.append(
            f"| {m} | {spread(r80)} | {np.median(f80):.1e} ({min(f80):.1e}–{max(f80):.1e}) | {spread(r3)} | "
            f"{100 * np.median(fn3):.2f} % ({100 * min(fn3):.2f}–{100 * max(fn3):.2f}) | "
            f"{100 * np.median(rel):+.1f} % ({100 * min(rel):+.1f} to {100 * max(rel):+.1f}) |"
        )
    return lines


def pooled(splits: list[dict[str, Any]], method: str, index: int, group: str, key: str) -> tuple[float, int]:
    """FMR of one group pooled over the splits' evaluation parts (errors and pairs summed), and the pairs."""
    pairs = [s[method]["analyses"][index]["groups"][group]["impostor_pairs"] for s in splits]
    rates = [s[method]["analyses"][index]["groups"][group][f"fmr@{key}"][0] for s in splits]
    total = sum(pairs)
    return (sum(r * n for r, n in zip(rates, pairs)) / total if total else float("nan")), total


def utk_mitigation_table(splits: list[dict[str, Any]], methods: tuple[str, ...], index: int) -> list[str]:
    groups = list(splits[0]["raw"]["analyses"][index]["groups"])
    head = "| group | pairs | " + " | ".join(f"{m} FMR @ Sim 80 | {m} FMR @ 1e-3" for m in methods) + " |"
    lines = [head, "|" + "---|" * (2 + 2 * len(methods))]
    table = {(m, k, g): pooled(splits, m, index, g, k) for m in methods for k in ("similarity", "fmr") for g in groups}
    for g in groups:
        cells = [f"{table[(m, k, g)][0]:.1e}" for m in methods for k in ("similarity", "fmr")]
        lines.append(f"| {g} | {table[(methods[0], 'fmr', g)][1]:,} | " + " | ".join(cells) + " |")
    ratios = []
    for m in methods:
        for k in ("similarity", "fmr"):
            values = [table[(m, k, g)][0] for g in groups]
            best = min(values)
            ratios.append(f"{max(values) / best:.2f}×" if best > 0 else "∞ (a group without errors)")
    lines.append("| worst/best | | " + " | ".join(ratios) + " |")
    return lines


def cold_text(result: dict[str, Any]) -> str:
    cold = result.get("cold_audit")
    if not cold:
        return ""
    warm = result["full_audit"]["seconds"]
    idle = (cold["cpu_seconds"] - warm) / 2 + warm
    return (
        "With an empty cache (embedding all 18,110 images, 2 worker processes) it took "
        f"{cold['seconds'] / 60:.1f} min "
        f"on this machine while other jobs ran (it got {100 * cold['cpu_share']:.0f} % of the 2 cores; "
        f"{cold['cpu_seconds']:.0f} CPU-seconds): about {idle / 60:.1f} min on an idle 2-core machine "
        "(estimate: embedding CPU time over 2 cores, plus the analysis)."
    )


def capped_text(result: dict[str, Any]) -> list[str]:
    """The LFW table again with at most ``CAP`` photos of a person in every pair, when it was run."""
    if "full_audit_capped" not in result:
        return []
    lfw = result["full_audit_capped"]["report"]["datasets"][0]
    return [
        f"LFW by sex again, at most {CAP} photos of a person in impostor and mated pairs "
        f"(`--max-per-identity {CAP}`, a seeded choice): a much-photographed person weighs like anyone else.",
        "",
        *audit_table(lfw["analyses"][0], mated=True),
        "",
    ]


def render(result: dict[str, Any]) -> str:
    audit = result["full_audit"]
    report = audit["report"]
    lfw, utk = report["datasets"]
    methods = tuple(result["methods"])
    lines = [
        "# Fairness audit of the default engine (bench/fairness.py)",
        "",
        f"Machine: {result['machine']}"
        + (f" (full audit rerun: {result['full_audit_machine']})" if "full_audit_machine" in result else "")
        + f". Scores `{report['score_id']}`, calibration: {report['calibration']['dataset']}.",
        "",
        "**Full audit** (`facetrust audit ../shared/data/lfw ../shared/data/utkface`, "
        f"{report['options']['replicates']} bootstrap replicates): {audit['seconds']:.0f} s with "
        f"{'an empty' if audit['cold_cache'] else 'a warm'} embedding cache. {cold_text(result)}",
        "",
        f"## LFW by sex ({lfw['images']:,} images; grayscale; all same-sex impostor pairs)",
        "",
        *audit_table(lfw["analyses"][0], mated=True),
        "",
        *capped_text(result),
        "## UTKFace by race, adults 18+ (impostors matched on sex and age band; no identities, so no FNMR)",
        "",
        *audit_table(utk["analyses"][0], mated=False),
        "",
        "## UTKFace by age band (impostors matched on race and sex)",
        "",
        *audit_table(utk["analyses"][2], mated=False),
        "",
        "## Mitigation on held-apart data",
        "",
        f"LFW: people split by {len(result['lfw_splits'])} seeds into a cohort part (1/4; 3,000 images used), a "
        "calibration part (3/8) and an evaluation part (3/8). Median (range) over the splits, evaluation part only:",
        "",
        *lfw_mitigation_table(result["lfw_splits"], methods),
        "",
        "Targets (issue 5): FMR ratio at the default operating point ≤ 1.5×, FNMR at FMR 1e-3 at most 10 % "
        "(relative) worse than raw.",
        "",
        f"UTKFace, race among adults: images (each its own person) split by {len(result['utk_splits'])} seeds into "
        "cohort (1/4), calibration (1/4) and evaluation (1/2) parts; FMR on the evaluation parts, errors and "
        "pairs pooled over the splits (pairs: summed over the splits):",
        "",
        *utk_mitigation_table(result["utk_splits"], methods, 0),
        "",
        "UTKFace by age band (children 0-12 included), FMR pooled over the splits the same way:",
        "",
        *utk_mitigation_table(result["utk_splits"], methods, 2),
        "",
    ]
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    """LFW female/male FMR ratio per split and method; UTKFace FMR per race (adults) and per age band, pooled."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    methods = result["methods"]
    fig = Figure(figsize=(15, 4.4), dpi=100)
    FigureCanvasAgg(fig)
    left = fig.add_subplot(1, 3, 1)
    for j, (key, label) in enumerate((("similarity", "at Similarity 80"), ("fmr", "at FMR 1e-3"))):
        for i, m in enumerate(methods):
            ys = [s[m]["analyses"][0]["ratios"][f"fmr_ratio@{key}"][0] for s in result["lfw_splits"]]
            left.plot([i + 0.15 * (2 * j - 1)] * len(ys), ys, "o", color=f"C{j}", label=label if i == 0 else None)
    left.axhline(1.5, color="grey", linestyle=":", label="target 1.5")
    left.set_xticks(range(len(methods)), methods)
    left.set_ylabel("FMR ratio female/male, one point per split")
    left.set_title("LFW by sex (evaluation part)")
    left.legend()
    for k, (index, title) in enumerate(((0, "UTKFace adults by race"), (2, "UTKFace by age band"))):
        ax = fig.add_subplot(1, 3, 2 + k)
        groups = list(result["utk_splits"][0]["raw"]["analyses"][index]["groups"])
        for i, m in enumerate(methods):
            ys = [pooled(result["utk_splits"], m, index, g, "fmr")[0] for g in groups]
            ax.bar(np.arange(len(groups)) + 0.27 * (i - 1), ys, width=0.27, label=m)
        ax.set_xticks(range(len(groups)), groups)
        ax.set_ylabel("FMR at the overall FMR 1e-3 threshold (pooled)")
        ax.set_title(f"{title} (evaluation parts)")
        ax.legend()
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.1, top=0.92, wspace=0.28)
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", action="store_true", help="time the full audit with an empty cache")
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--cold-seconds", type=float, help="wall time of a separate empty-cache run, to record")
    parser.add_argument("--cold-cpu-seconds", type=float, help="its user+system CPU time")
    parser.add_argument("--cold-cpu-share", type=float, help="the share of the 2 cores it got (time -v)")
    parser.add_argument("--render-only", action="store_true", help="rewrite fairness.md/png from fairness.json")
    parser.add_argument(
        "--audit-only", action="store_true", help="rerun the full audit of the default engine, keep the saved splits"
    )
    args = parser.parse_args()
    if args.audit_only:
        saved = json.loads((RESULTS / "fairness.json").read_text())
        saved["full_audit"] = full_audit(args.cold)
        saved["full_audit_capped"] = full_audit(False, capped=True)
        from host import machine_record

        saved["full_audit_machine"] = {**machine_record(), "date": time.strftime("%Y-%m-%d")}
        (RESULTS / "fairness.json").write_text(json.dumps(saved, indent=1, default=float) + "\n")
        (RESULTS / "fairness.md").write_text(render(saved))
        plot(saved, RESULTS / "fairness.png")
        return
    if args.render_only:
        saved = json.loads((RESULTS / "fairness.json").read_text())
        (RESULTS / "fairness.md").write_text(render(saved))
        plot(saved, RESULTS / "fairness.png")
        return
    started = time.perf_counter()
    audit = full_audit(args.cold)
    print(f"full audit: {audit['seconds']} s", file=sys.stderr)
    from facetrust.config import Settings

    engine = FaceEngine.load(Settings.load())
    root = L.data_root()
    methods = ("raw", "asnorm", "faircal")
    out: dict[str, Any] = {"machine": machine(), "full_audit": audit, "methods": methods}
    out["full_audit_capped"] = full_audit(False, capped=True)
    if args.cold_seconds:
        out["cold_audit"] = {
            "seconds": args.cold_seconds,
            "cpu_seconds": args.cold_cpu_seconds,
            "cpu_share": args.cold_cpu_share,
        }
    datasets = (("lfw", load_lfw(root / "lfw"), (0.25, 0.375)), ("utk", load_utkface(root / "utkface"), (0.25, 0.25)))
    for name, spec, parts in datasets:
        emb = dataset_embeddings(engine, spec)
        out[f"{name}_parts"] = parts
        out[f"{name}_splits"] = [held_apart(spec, emb, seed, methods, parts) for seed in range(args.splits)]
    out["bench_seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fairness.json").write_text(json.dumps(out, indent=1, default=float) + "\n")
    (RESULTS / "fairness.md").write_text(render(out))
    plot(out, RESULTS / "fairness.png")
    print(render(out))


if __name__ == "__main__":
    main()
