"""1:1 scoring candidates for issue 11, fitted on fit halves and measured on held-out halves.

    nice -n 5 .venv/bin/python bench/fairnorm.py     # writes bench/results/fairnorm.{json,md}

Split and fitting: bench/fsn_fit.py (LFW halves by person, UTKFace halves by image,
near-duplicates dropped from both). Methods, each a scorer and a calibration:

* ``shipped``: raw cosine, the shipped table (fitted on *all* of LFW, evaluation people too);
* ``raw-lfw``: raw cosine, a table fitted on the LFW fit half (the honest "before");
* ``pooled`` (b): raw cosine, a table of the equal-weight mixture of LFW and UTKFace fit pairs;
* ``fsn`` (a): cluster-conditional normalisation, its table fitted on LFW fit pairs only;
* ``fsn+pooled`` (c): cluster-conditional normalisation, its table on the mixture;
* ``fsn-bal``: the shipped recipe (``fsn_fit.Recipe()``): each part's tail counted in a cluster
  (``clusterfit.cluster_offsets(balance=True)``), the cluster as strict as its most crowded part
  (``strictest``), the table on LFW women's and men's pairs weighted equally (``table_by_sex``),
  at most 20 photos per LFW person in the offsets' and the table's pairs (``images_per_person``),
  and a region whose measured parts hold under half its faces made as strict as its largest
  unmeasured parts need overall (``min_coverage``, ``uncovered="raise"``; bench/fit_size.py),
  and five k-means fits' offsets averaged (``bag``, shipped since December 3, 2026; bench/fit_chance.py);
* ``fsn-bal-one-fit``: ``fsn-bal`` of one k-means (the shipped recipe from the night of November 30
  to December 3, 2026); every row below it is of one k-means too;
* ``fsn-bal-no-coverage``: ``fsn-bal-one-fit`` without the coverage rule (the shipped recipe in the
  evening of November 30, 2026);
* ``fsn-bal-all-photos``: ``fsn-bal-no-coverage`` with every photo's pairs (the shipped recipe in
  the afternoon of November 30, 2026);
* ``fsn-bal-mean``: the shipped recipe earlier on November 30, 2026: the mean of the parts'
  tails in a cluster and a table on LFW's pooled same-sex pairs; every row below it is that recipe
  with one more change, as measured then;
* ``fsn-bal+pooled``: ``fsn-bal-mean`` with its table on the mixture;
* ``fsn-bal-datasets``: ``fsn-bal`` with the two datasets as the parts, not LFW by sex and
  UTKFace by age band (bench/balance_variants.py);
* ``fsn-bal-all-0.6``: ``fsn-bal-datasets`` with every UTKFace offset pair at raw cosine ≥ 0.6 left
  out, children's too (the shipped recipe until November 30, 2026; bench/exclusion_variants.py).

Every normalised method keeps UTKFace children's offset pairs whole (``fsn_fit.utk_offset_rows``)
except ``fsn-bal-all-0.6``, and splits the pairs into parts by group (``fsn_fit.offset_parts``)
except it and ``fsn-bal-datasets``.

Measured on the evaluation halves only, at Similarity 80 of each method's table: FMR per group
with 95 % identity (UTKFace: image) bootstrap intervals (LFW by sex; UTKFace adults by race,
matched on sex and age band; UTKFace by age band, matched on race and sex), both over all
UTKFace pairs and with pairs at raw cosine ≥ 0.6 counted as non-matches (presumed the same
person, ../shared/FACTS.md), the worst/best ratios over groups with ≥ 10,000 pairs, children
0–12 against all adults, and LFW's TAR (1 − FNMR over mated pairs, ≤ 20 images per person).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fsn_fit as F
import lfw_data as L
from facetrust.calibration import Calibration
from facetrust.config import PROFILES, Settings, default_cache_dir
from facetrust.engine import FaceEngine
from facetrust.fairness.audit import AnalysisResult, AuditOptions, audit_analysis
from facetrust.fairness.pairs import CosineScorer, PairScorer
from facetrust.fairness.runner import embed_spec
from facetrust.service.profiles import profile_of
from host import machine_record, save_result

RESULTS = Path(__file__).resolve().parent / "results"
OPTIONS = AuditOptions(replicates=200, seed=0)
SAME_PERSON = 0.6
MIN_PAIRS = 10_000


class WithoutSamePerson:
    """A scorer that counts pairs at raw cosine ≥ 0.6 (or ``limit``) as non-matches (presumed the same person)."""

    def __init__(self, inner: PairScorer, vectors: np.ndarray, limit: float = SAME_PERSON) -> None:
        self.inner, self.vectors, self.limit = inner, vectors, limit

    def block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        out = self.inner.block(rows, cols)
        return np.where(self.vectors[rows] @ self.vectors[cols].T >= self.limit, -1e9, out)

    def pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = self.inner.pairs(a, b)
        return np.where(np.einsum("ij,ij->i", self.vectors[a], self.vectors[b]) >= self.limit, -1e9, out)


def groups(result: AnalysisResult) -> dict[str, Any]:
    out = {}
    for g in result.groups:
        if "similarity" not in g.fmr:  # too few faces found: no match rates
            continue
        r = g.fmr["similarity"]
        out[g.group] = {
            "pairs": g.impostor_pairs,
            "fmr": [r.value, r.interval.low, r.interval.high],
            "errors": r.errors,
        }
        if "similarity" in g.fnmr and g.mated_pairs:
            f = g.fnmr["similarity"]
            out[g.group]["tar"] = [1 - f.value, 1 - f.interval.high, 1 - f.interval.low]
    return out


def worst_best(found: dict[str, Any], min_pairs: int = MIN_PAIRS) -> float | None:
    values = [g["fmr"][0] for g in found.values() if g["pairs"] >= min_pairs]
    return max(values) / min(values) if values and min(values) > 0 else None


def evaluate(method: str, scorer_of: Any, cal: Calibration, held: dict[str, F.Part]) -> dict[str, Any]:
    started = time.perf_counter()
    t80 = cal.score_for_similarity(80)
    out: dict[str, Any] = {"threshold": t80, "calibration_pairs": cal.impostor_pairs, "floor": cal.floor_fmr}
    lfw = held["lfw"]
    res = audit_analysis(lfw.spec, lfw.emb, scorer_of(lfw.emb.vectors), lfw.spec.analyses[0], t80, OPTIONS, 0)
    fnmr = res.overall_fnmr["similarity"]
    out["lfw_sex"] = {"groups": groups(res), "tar": 1 - fnmr.value, "ratio": worst_best(groups(res))}
    box = [r.interval for r in res.ratios if r.metric == "fmr" and r.point == "similarity"]
    if box:  # the bootstrap interval of female/male (the two groups, replicate by replicate)
        out["lfw_sex"]["ratio_interval"] = [out["lfw_sex"]["ratio"], box[0].low, box[0].high]
    utk = held["utk"]
    for label, wrap in (("all", False), ("without_same_person", True)):
        scorer = scorer_of(utk.emb.vectors)
        if wrap:
            scorer = WithoutSamePerson(scorer, utk.rule)
        race = audit_analysis(utk.spec, utk.emb, scorer, utk.spec.analyses[0], t80, OPTIONS, 1)
        age = audit_analysis(utk.spec, utk.emb, scorer, utk.spec.analyses[2], t80, OPTIONS, 2)
        adults = race.overall_fmr["similarity"]
        kids = groups(age)["0-12"]["fmr"][0]
        out[f"utk_{label}"] = {
            "race": groups(race),
            "race_ratio": worst_best(groups(race)),
            "age": groups(age),
            "adults": [adults.value, adults.interval.low, adults.interval.high],
            "children_vs_adults": kids / adults.value if adults.value > 0 else None,
        }
    out["seconds"] = round(time.perf_counter() - started, 1)
    print(f"{method}: {out['seconds']} s, threshold {t80:.4f}", file=sys.stderr)
    return out


_BEFORE = {
    "strictest": False,
    "table_by_sex": False,
    "images_per_person": 0,
    "min_coverage": 0.0,
    "bag": 1,
}  # the recipe shipped earlier on November 30: mean tails, a pooled table, every photo, one k-means
NORMALISED = {  # name: the recipe (bench/fsn_fit.py); "fsn-bal" is the shipped one
    "fsn": F.Recipe(balance=False, **_BEFORE),
    "fsn+pooled": F.Recipe(pooled=True, balance=False, **_BEFORE),
    "fsn-bal": F.Recipe(),
    "fsn-bal-one-fit": F.Recipe(bag=1),
    "fsn-bal-no-coverage": F.Recipe(min_coverage=0.0, bag=1),
    "fsn-bal-all-photos": F.Recipe(images_per_person=0, min_coverage=0.0, bag=1),
    "fsn-bal-mean": F.Recipe(**_BEFORE),
    "fsn-bal+pooled": F.Recipe(pooled=True, **_BEFORE),
    "fsn-bal-datasets": F.Recipe(by_group=False, **_BEFORE),
    "fsn-bal-all-0.6": F.Recipe(keep_children=False, by_group=False, **_BEFORE),
}
ALL = ("shipped", "raw-lfw", "pooled", *NORMALISED)
ACCURATE = ("shipped", "raw-lfw", "fsn-bal", "fsn-bal-one-fit")  # what --profile accurate measures


def method(engine: FaceEngine, fit: dict[str, F.Part], name: str) -> tuple[Any, Calibration, dict[str, Any]]:
    """(scorer factory, calibration, notes) of one method; ``NORMALISED`` maps a name to its recipe."""
    if name == "shipped":
        return CosineScorer, engine.calibration, {}
    if name in ("raw-lfw", "pooled"):
        return CosineScorer, F.fit_raw(engine.model_id, fit, pooled=name == "pooled"), {}
    n = F.fit_normaliser(engine.model_id, fit, recipe=NORMALISED[name])
    assert n.calibration is not None
    info = {"clusters": len(n.centroids), "offsets": [float(np.min(n.offsets)), float(np.max(n.offsets))]}
    return n.scorer, n.calibration, info


def fmt(r: list[float]) -> str:
    return f"{r[0]:.1e} ({r[1]:.1e}–{r[2]:.1e})"


def ratio(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}×"


def render(result: dict[str, Any]) -> str:
    ms = result["methods"]
    accurate = profile_of(result.get("model", "")) == "accurate"
    lines = [
        "# 1:1 scoring candidates on held-out halves (bench/fairnorm.py"
        + (" --profile accurate: SFace fused with dlib)" if accurate else ")"),
        "",
        f"Machine: {json.dumps(result['machine'])}. Near-duplicates dropped: {json.dumps(result['duplicates'])}.",
        *(
            [
                f"Model {result['model']}. 'shipped' is the fused raw table (bench/calibrate.py --profile accurate, "
                "fitted on all of LFW, people of both halves); '≥0.6' is the fused vectors' SFace part's cosine."
            ]
            if accurate
            else []
        ),
        "FMR at Similarity 80 of each method's own table (promise: 1e-4), 95 % bootstrap intervals.",
        "",
        "In the evaluation halves only UTKFace's White adults have ≥ 10,000 same-group pairs, so the race "
        "ratio is over the groups with ≥ 2,000 (Asian, Indian, Others, White; Black: 206 pairs).",
        "",
        "| method | Sim-80 score | LFW female | LFW male | LFW f/m | LFW TAR | UTK race worst/best (all; w/o ≥0.6) "
        "| UTK adults (all) | UTK children 0–12 (all) | children/adults (all; w/o ≥0.6) |",
        "|" + "---|" * 10,
    ]
    for m, r in ms.items():
        sex, ua, un = r["lfw_sex"], r["utk_all"], r["utk_without_same_person"]
        lines.append(
            f"| {m} | {r['threshold']:.4f} | {fmt(sex['groups']['female']['fmr'])} "
            f"| {fmt(sex['groups']['male']['fmr'])} | {ratio(sex['ratio'])} | {100 * sex['tar']:.2f} % "
            f"| {ratio(worst_best(ua['race'], 2000))}; {ratio(worst_best(un['race'], 2000))} "
            f"| {fmt(ua['adults'])} | {fmt(ua['age']['0-12']['fmr'])} "
            f"| {ratio(ua['children_vs_adults'])}; {ratio(un['children_vs_adults'])} |"
        )
    lines += ["", "UTKFace adults by race, FMR at Similarity 80 (all pairs / without pairs at raw cosine ≥ 0.6):", ""]
    races = list(next(iter(ms.values()))["utk_all"]["race"])
    lines.append("| method | " + " | ".join(races) + " |")
    lines.append("|" + "---|" * (len(races) + 1))
    for m, r in ms.items():
        cells = [
            f"{fmt(r['utk_all']['race'][g]['fmr'])} / {r['utk_without_same_person']['race'][g]['fmr'][0]:.1e}"
            for g in races
        ]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    pairs = {g: v["pairs"] for g, v in next(iter(ms.values()))["utk_all"]["race"].items()}
    lines += ["", f"Impostor pairs per race group: {json.dumps(pairs)}.", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=ALL, help="rerun these methods, keep the others' saved results")
    parser.add_argument("--render-only", action="store_true", help="rewrite fairnorm.md from fairnorm.json")
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        default="default",
        help="accurate: the fused SFace + dlib templates, methods " + ", ".join(ACCURATE) + " (fairnorm-accurate.*)",
    )
    args = parser.parse_args()
    stem = "fairnorm" if args.profile == "default" else f"fairnorm-{args.profile}"
    methods = ALL if args.profile == "default" else ACCURATE
    if args.render_only:
        (RESULTS / f"{stem}.md").write_text(render(json.loads((RESULTS / f"{stem}.json").read_text())))
        return
    engine = FaceEngine.load(Settings.load().replace(calibration_file=None, profile=args.profile))
    specs = F.datasets(L.data_root())
    embs = {n: embed_spec(engine, s, cache_dir=default_cache_dir(), workers=1) for n, s in specs.items()}
    parts = F.split_parts(specs, embs)
    fit = {n: p[0] for n, p in parts.items()}
    held = {n: p[1] for n, p in parts.items()}
    out: dict[str, Any] = {
        "machine": machine_record(),
        "duplicates": {
            f"{n} {h}": p[i].duplicates_dropped for n, p in parts.items() for i, h in enumerate(("fit", "eval"))
        },
        "methods": {},
    }
    if args.only:  # add to (or replace in) the saved results
        saved = json.loads((RESULTS / f"{stem}.json").read_text())
        out["methods"] = saved["methods"]
    for name in args.only or methods:
        scorer_of, cal, info = method(engine, fit, name)
        out["methods"][name] = {**info, **evaluate(name, scorer_of, cal, held)}
    out["methods"] = {m: out["methods"][m] for m in methods if m in out["methods"]}
    out["model"] = engine.model_id
    save_result(RESULTS / f"{stem}.json", out)
    (RESULTS / f"{stem}.md").write_text(render(out))


if __name__ == "__main__":
    main()
