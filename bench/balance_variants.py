"""Weighting demographic groups equally inside a cluster's offset, as datasets already are (issue 11).

    nice -n 5 .venv/bin/python bench/balance_variants.py                  # seed 0: balance-variants.{json,md}
    nice -n 5 .venv/bin/python bench/balance_variants.py --split-seed 1   # replications on other splits
    nice -n 5 .venv/bin/python bench/balance_variants.py --render-only

The shipped offsets weight each dataset's fraction of pairs equally inside a cluster, so that
UTKFace's few colour pairs are not drowned by LFW's 150× more (``clusterfit.cluster_offsets``,
``balance``). Inside each dataset one group still dominates: LFW's same-sex pairs are 92 % men's,
UTKFace adults' same-group pairs 70–80 % White adults'. These variants split the fit pairs further,
by the labels the pairs are already formed on (fit time only; nothing at run time changes: 63
centroids and 63 offsets), and weight every part equally where it has the 20,000 pairs a 1e-3 tail
needs in a cluster (a smaller part is left out there, as a dataset is):

* ``datasets``: LFW and UTKFace (the recipe shipped in the morning of November 30, 2026, children's
  pairs kept: the reference);
* ``lfw-by-sex``: LFW women's and men's pairs as two parts, and UTKFace;
* ``by-group``: LFW by sex; UTKFace by age band (0–12, 13–17, 18+) and, among adults, by race;
* ``by-age``: LFW by sex; UTKFace by age band only (0–12, 13–17, 18+), adults of every race
  together: shipped since (``fsn_fit.offset_parts``, ``clusterfit.cluster_offsets``), the same
  offsets as ``by-group`` on every split measured;
* ``utk-by-age``: LFW as one part; UTKFace by age band, as ``by-age``;
* ``datasets-faces50``: ``datasets``, but a dataset counts in a cluster only where at least 50 of
  its faces are nearest that cluster (``clusterfit.MIN_PEOPLE``, the faces a centroid must
  average). A pair counts for the clusters of both its faces, and an LFW face takes part in
  thousands of same-sex pairs, so a handful of LFW faces give a cluster the 20,000 LFW pairs that
  make it "measured", and their ordinary tail then sets the offset of a region that is mostly
  children (bench/results: ``clusters_per_part``; docs/fairness.md).
* ``by-age-strictest`` (measured after the choice above, not shipped): ``by-age``'s parts, but a cluster's
  threshold is the highest of its parts' own thresholds instead of the threshold of their mean
  tail (a cluster is as strict as its most crowded part needs), and the overall threshold the
  highest part's overall one.
* ``by-age-table-by-sex`` (measured after the choice above, not shipped): ``by-age``, with the table
  fitted on LFW women's and men's normalised pairs weighted equally (``exclusion_variants.measure``,
  ``table_by_sex``) instead of pooled (92 % men's pairs).
* ``by-age-strictest-table-by-sex``: both of the last two (shipped in the afternoon of November 30, 2026).
* ``by-age-strictest-table-by-sex-cap20``: the same, with at most 20 faces per LFW person (a
  seeded choice; the audit's cap for mated pairs) in the offsets' and the table's pairs
  (``fsn_fit.Recipe.images_per_person``). LFW's impostor pairs grow with the square of a
  person's photos: on the shipped split, 3,112 of the fit half's 4,150 male pairs at the shipped
  Similarity 80 are George W. Bush (530 photos) with Jeb Bush (bench/sex_gap.py), so one pair of
  brothers sets most of where the men's tail lands. Shipped on the evening of November 30, 2026.

The overall threshold an offset is measured from (a thin cluster's offset) is the mean over the
parts with at least 20,000 pairs in all; for ``datasets`` that is both datasets, as shipped. Same
split, centroids, exclusion rule, table recipe and held-out measurement as
bench/exclusion_variants.py.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import exclusion_variants as EV
import fsn_fit as F
import fsn_variants as FV
from facetrust.fairness import clusterfit as CF
from host import machine_record, save_result

RESULTS = FV.RESULTS
ALL = (
    "datasets",
    "lfw-by-sex",
    "by-group",
    "by-age",
    "utk-by-age",
    "datasets-faces50",
    "by-age-strictest",
    "by-age-table-by-sex",
    "by-age-strictest-table-by-sex",
    "by-age-strictest-table-by-sex-cap20",
)
CAP = 20  # the audit's cap on a person's images in mated pairs, fixed before this was run
MIN_FACES = 50  # clusterfit.MIN_PEOPLE: the faces a centroid must average, fixed before this was run


def race_part(groups: Mapping[str, str]) -> str:
    """``fsn_fit.age_part``, with adults further split by race."""
    part = F.age_part(groups)
    return f"adult {groups.get('race', '?')}" if part == "adult" else part


def parts(fit: dict[str, F.Part], datasets: list[CF.PairSet], name: str) -> list[CF.PairSet]:
    """The parts of one variant; ``datasets``: ``fsn_fit.offset_parts(fit, by_group=False)``."""
    if name.startswith("by-age"):
        return F.offset_parts(fit)  # the shipped recipe's parts (its photo cap: ``pair_data``)
    lfw, utk = datasets
    if name.startswith("datasets"):
        return [lfw, utk]
    by_sex = F.split_by(lfw, fit["lfw"], F.sex_part)
    if name == "lfw-by-sex":
        return [*by_sex, utk]
    if name == "utk-by-age":
        return [lfw, *F.split_by(utk, fit["utk"], F.age_part)]
    return [*by_sex, *F.split_by(utk, fit["utk"], race_part)]  # by-group


def offsets(
    centroids: np.ndarray, pair_sets: list[CF.PairSet], min_faces: int = 0, strictest: bool = False
) -> tuple[np.ndarray, dict[str, Any]]:
    """``FV.offsets`` with the overall threshold over the parts with ``MIN_TAIL / FMR`` pairs in all;
    with ``min_faces``, a part counts in a cluster only where that many of its faces are nearest it;
    ``strictest`` as in ``clusterfit.cluster_offsets``."""
    zero = [np.zeros(len(ps.vectors)) for ps in pair_sets]
    counts, overall = FV.histograms(centroids, pair_sets, zero)
    big = overall.sum(axis=1) * FV.FMR >= FV.MIN_TAIL
    base = CF._combined(CF._tail(overall[big]), FV.FMR, strictest)
    usable = counts.sum(axis=2) * FV.FMR >= FV.MIN_TAIL
    if min_faces:
        usable &= np.stack([CF._faces_per_cluster(centroids, ps) for ps in pair_sets]) >= min_faces
    tails = CF._tail(counts)
    out = np.full(len(centroids), np.nan)
    for c in range(len(centroids)):
        sets = np.flatnonzero(usable[:, c])
        if len(sets):
            out[c] = CF._combined(tails[sets, c], FV.FMR, strictest) - base
    info = {
        "parts": {ps.name: int(len(ps.a)) for ps in pair_sets},
        "parts_in_base": [ps.name for ps, b in zip(pair_sets, big) if b],
        "clusters_per_part": {ps.name: int(usable[j].sum()) for j, ps in enumerate(pair_sets)},
    }
    return out, info


def run(seed: int, names: list[str], stem: str) -> dict[str, Any]:
    fit, held, _ = FV.split_data(seed)
    vectors, people = F.cluster_input([fit["lfw"], fit["utk"]])
    centroids = CF.fit_centroids(vectors, people, F.K, seed=seed)[0]
    datasets = F.offset_parts(fit, by_group=False)
    result: dict[str, Any] = {"machine": machine_record(), "split_seed": seed, "variants": {}}
    if (RESULTS / f"{stem}.json").exists() and set(names) != set(ALL):
        result["variants"] = json.loads((RESULTS / f"{stem}.json").read_text())["variants"]
    capped = F.pair_data(fit, F.Recipe(images_per_person=CAP), seed)
    for name in names:
        pairs_fit = capped if name.endswith("cap20") else fit
        off, info = offsets(
            centroids,
            parts(pairs_fit, datasets, name),
            MIN_FACES if name.endswith("faces50") else 0,
            strictest="strictest" in name,
        )
        result["variants"][name] = EV.measure(
            name,
            centroids,
            off,
            np.flatnonzero(np.isnan(off)),
            pairs_fit,
            held,
            info,
            table_by_sex="table-by-sex" in name,
        )
        save_result(RESULTS / f"{stem}.json", result)
        print(f"seed {seed}, {name}: done", file=sys.stderr)
    result["variants"] = {n: result["variants"][n] for n in ALL if n in result["variants"]}
    save_result(RESULTS / f"{stem}.json", result)
    return result


def main() -> None:
    title = "Groups weighted equally inside a cluster's offset (bench/balance_variants.py)"
    footer = 'What it means: docs/fairness.md, "Groups weighted equally inside a cluster".'
    EV.cli(__doc__ or "", "balance-variants", ALL, run, title, footer)


if __name__ == "__main__":
    main()
