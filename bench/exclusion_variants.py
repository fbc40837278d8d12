"""Which UTKFace pairs the cluster offsets' fit leaves out as "presumed the same person" (issue 11).

    nice -n 5 .venv/bin/python bench/exclusion_variants.py                  # seed 0: exclusion-variants.{json,md}
    nice -n 5 .venv/bin/python bench/exclusion_variants.py --split-seed 1   # a replication on another split
    nice -n 5 .venv/bin/python bench/exclusion_variants.py --render-only

UTKFace has no identities, so the shipped recipe (bench/fsn_fit.py) drops every UTKFace pair at
raw cosine ≥ 0.6 from the pairs the offsets are fitted on, presuming them the same person. Among
adults that is a few pairs in ten thousand; among children 0–12, about 3 % of all same-cell pairs
(1,620 images), far more than repeat photos could make. With those pairs gone, a children's
cluster's 1e-3 tail is cut at 0.6, so its offset is capped below what its real impostor tail needs.
This script refits the recipe (same split, centroids, LFW pairs, table recipe and held-out
measurement as bench/fsn_variants.py) with other exclusion rules for the UTKFace fit pairs only:

* ``all-0.6``: ≥ 0.6 left out for every pair (the default until November 30, 2026; the reference);
* ``keep-children``: ≥ 0.6 left out for pairs of people 13 and older, children's pairs all kept
  (the age label is read at fit time only, as the same-group pairing already does): the rule
  shipped since, ``fsn_fit.utk_offset_rows`` (the default also splits the pairs by group:
  bench/balance_variants.py);
* ``limit-0.7``: ≥ 0.7 left out for every pair;
* ``keep-all``: nothing left out.

Every offset is a cluster's threshold less the overall threshold of all pairs (the datasets
weighted equally), and a thin cluster (no dataset with 20,000 pairs in it) gets 0: the overall
threshold. Keeping children's pairs raises that overall threshold, so it moves every estimated
offset down by the same amount and leaves the thin clusters where they were: relative to the
rest, stricter. ``keep-children-thin-before`` separates the two effects: ``keep-children`` with
the thin clusters moved down with the others (their offset the shift of the estimated ones,
their median change against ``all-0.6``), i.e. where they sat relative to the rest before.

The measurement is unchanged: held-out halves, every pair (and, as a second reading, without the
pairs at ≥ 0.6). What would ship is unchanged in kind: 63 centroids and 63 offsets.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fairnorm as FN
import fsn_fit as F
import fsn_variants as FV
from facetrust.fairness import clusterfit as CF
from host import machine_record, save_result

RESULTS = FV.RESULTS
RULES: dict[str, tuple[float, bool]] = {  # name: (limit, children's pairs kept whole)
    "all-0.6": (F.SAME_PERSON, False),
    "keep-children": (F.SAME_PERSON, True),
    "limit-0.7": (0.7, False),
    "keep-all": (9.0, False),
    "keep-children-thin-before": (F.SAME_PERSON, True),
}
ALL = tuple(RULES)


def measure(
    name: str,
    centroids: np.ndarray,
    off: np.ndarray,
    thin: np.ndarray,
    fit: dict[str, F.Part],
    held: dict[str, F.Part],
    info: dict[str, Any],
    table_by_sex: bool = False,
) -> dict[str, Any]:
    """One variant's saved entry: its table fitted on the LFW fit half's normalised scores (with
    ``table_by_sex``, women's and men's pairs weighted equally), then the held-out measurement of
    bench/fsn_variants.py (``thin``: the clusters without an estimate)."""
    norm = FV.Shifted(centroids, np.nan_to_num(off), 0.0)
    scores = F.calibration_scores(fit["lfw"], norm.scorer(fit["lfw"].emb.vectors))
    scored = F.split_by_sex(scores, fit["lfw"]) if table_by_sex else [scores]
    cal = CF.fit_mixture_calibration(scored, model=name, dataset="lfw fit half, normalised")
    measured = FN.evaluate(name, norm.scorer, cal, held)
    measured["race_ratio_intervals"] = FV.race_ratio_intervals(
        norm.scorer, measured["threshold"], held["utk"], measured
    )
    info["thin_clusters"] = thin.tolist()
    info["offsets"] = {"min": round(float(np.nanmin(off)), 4), "max": round(float(np.nanmax(off)), 4)}
    return {"info": info, "threshold": measured["threshold"], "summary": FV.summary(measured)}


def run(seed: int, names: list[str], stem: str) -> dict[str, Any]:
    fit, held, sets = FV.split_data(seed)
    vectors, people = F.cluster_input([fit["lfw"], fit["utk"]])
    centroids = CF.fit_centroids(vectors, people, F.K, seed=seed)[0]
    result: dict[str, Any] = {"machine": machine_record(), "split_seed": seed, "variants": {}}
    if (RESULTS / f"{stem}.json").exists() and set(names) != set(ALL):
        result["variants"] = json.loads((RESULTS / f"{stem}.json").read_text())["variants"]
    lfw_set = sets[0]
    for name in names:
        limit, keep = RULES[name]
        a, b, counts = F.utk_offset_rows(fit["utk"], limit, keep)
        pair_sets = [lfw_set, CF.PairSet("utk", fit["utk"].emb.vectors, a, b)]
        zero = [np.zeros(len(ps.vectors)) for ps in pair_sets]
        off = FV.offsets(FV.histograms(centroids, pair_sets, zero), hottest=False)
        thin = np.flatnonzero(np.isnan(off))
        info: dict[str, Any] = dict(counts)
        if name == "keep-children-thin-before":
            before_rows = F.utk_offset_rows(fit["utk"], *RULES["all-0.6"])[:2]
            before_sets = [lfw_set, CF.PairSet("utk", fit["utk"].emb.vectors, *before_rows)]
            before = FV.offsets(FV.histograms(centroids, before_sets, zero), hottest=False)
            info["thin_offset"] = round(float(np.nanmedian(off - before)), 4)
            off[thin] = info["thin_offset"]
        result["variants"][name] = measure(name, centroids, off, thin, fit, held, info)
        save_result(RESULTS / f"{stem}.json", result)
        print(f"seed {seed}, {name}: done", file=sys.stderr)
    result["variants"] = {n: result["variants"][n] for n in ALL if n in result["variants"]}
    save_result(RESULTS / f"{stem}.json", result)
    return result


def cli(doc: str, stem: str, names: tuple[str, ...], run: Any, title: str, footer: str) -> None:
    """The command line of this script and of bench/balance_variants.py: ``run(seed, names, stem)``
    measures and saves, and the .md is rendered from the .json."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=names, help="rerun these variants, keep the others' saved results")
    parser.add_argument("--split-seed", type=int, default=F.SEED, help="another split of the halves: a replication")
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from its .json")
    args = parser.parse_args()
    stem = stem if args.split_seed == F.SEED else f"{stem}-split{args.split_seed}"
    FV.CHUNK = 1_000_000  # the same counts in smaller chunks: under 4 GB of memory
    result = (
        json.loads((RESULTS / f"{stem}.json").read_text())
        if args.render_only
        else run(args.split_seed, list(args.only or names), stem)
    )
    (RESULTS / f"{stem}.md").write_text(FV.render(result, title, footer))


def main() -> None:
    title = "Exclusion rules for the cluster offsets' UTKFace fit pairs (bench/exclusion_variants.py)"
    footer = 'What it means: docs/fairness.md, "The children\'s pairs in the fit".'
    cli(__doc__ or "", "exclusion-variants", ALL, run, title, footer)


if __name__ == "__main__":
    main()
