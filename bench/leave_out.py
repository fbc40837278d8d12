"""Does the 1:1 cluster normaliser help a group its fit never saw? (issue 11)

    nice -n 5 .venv/bin/python bench/leave_out.py     # writes bench/results/leave-out.{json,md}

The project's owners measure the promise on people who are not in ../shared. The nearest this
data can come: the shipped recipe (``fsn_fit.Recipe()``) refitted on bench/fsn_fit.py's fit
halves with one group's images taken out of them, measured on the evaluation halves, which are
the same for every variant. The evaluation half still holds that group, so its FMR at
Similarity 80 shows how the normaliser treats faces like none it was fitted on:

* ``shipped recipe``: nothing taken out (the shipped normaliser's fit);
* ``without UTKFace``: centroids and offsets from LFW's fit half only (no colour photos, no
  children, few faces that are not White);
* ``without children 0-12``: UTKFace's fit-half images of children taken out;
* ``without <race>``: UTKFace's fit-half images of one race label taken out, all ages.

The labels decide only which fit images are taken out; nothing at run time reads them. Each
variant's table is refitted with it (on LFW, as the recipe's is). FMR per group with 95 %
bootstrap intervals over people (UTKFace: images), as bench/fairnorm.py measures.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fsn_fit as F
import lfw_data as L
from facetrust.config import Settings, default_cache_dir
from facetrust.engine import FaceEngine
from facetrust.fairness.embedding import NO_FACE, DatasetEmbeddings
from facetrust.fairness.runner import embed_spec
from fairnorm import evaluate
from host import machine_record, save_result

RESULTS = Path(__file__).resolve().parent / "results"
RACES = ("Asian", "Black", "Indian", "Others", "White")
MIN_RACE_PAIRS = 2_000  # as bench/fairnorm.py's race ratio


def without(p: F.Part, drop: np.ndarray) -> F.Part:
    """``p`` with the images where ``drop`` holds marked faceless (out of every pair and the k-means)."""
    status = np.where(drop, NO_FACE, p.status)
    return dataclasses.replace(p, status=status, emb=DatasetEmbeddings(p.emb.model, p.emb.vectors, status))


def summary(r: dict[str, Any]) -> dict[str, Any]:
    race = {g: v for g, v in r["utk_all"]["race"].items() if v["pairs"] >= MIN_RACE_PAIRS}
    rates = [v["fmr"][0] for v in race.values()]
    sex = r["lfw_sex"]["groups"]
    return {
        "lfw_female_male": [sex["female"]["fmr"][0], sex["male"]["fmr"][0]],
        "lfw_ratio": r["lfw_sex"]["ratio"],
        "lfw_tar": r["lfw_sex"]["tar"],
        "utk_adults": r["utk_all"]["adults"][0],
        "race": {g: v["fmr"] for g, v in r["utk_all"]["race"].items()},
        "race_ratio": max(rates) / min(rates) if rates and min(rates) > 0 else None,
        "children": r["utk_all"]["age"]["0-12"]["fmr"],
        "children_vs_adults": r["utk_all"]["children_vs_adults"],
    }


SUMMARY_COLUMNS = (
    "LFW f / m | f/m | LFW TAR | UTK adults | Asian | Indian | Others | White | race worst/best (≥ 2,000 pairs) "
    "| children 0–12 | children/adults"
)


def summary_cells(s: dict[str, Any]) -> str:
    """A ``summary`` as the cells of ``SUMMARY_COLUMNS`` (a markdown row's middle)."""

    def cell(x: list[float]) -> str:
        return f"{x[0]:.1e} ({x[1]:.1e}–{x[2]:.1e})"

    def times(x: float | None) -> str:
        return "–" if x is None else f"{x:.2f}×"

    return (
        f"{s['lfw_female_male'][0]:.1e} / {s['lfw_female_male'][1]:.1e} | {times(s['lfw_ratio'])} "
        f"| {100 * s['lfw_tar']:.2f} % | {s['utk_adults']:.1e} | "
        + " | ".join(cell(s["race"][g]) for g in ("Asian", "Indian", "Others", "White"))
        + f" | {times(s['race_ratio'])} | {cell(s['children'])} | {times(s['children_vs_adults'])}"
    )


def render(result: dict[str, Any]) -> str:
    vs = result["variants"]
    lines = [
        "# 1:1 normaliser, fitted without one group (bench/leave_out.py)",
        "",
        f"Machine: {json.dumps(result['machine'])}. Model {result['model']}. Evaluation halves the same for every "
        "variant; FMR at each variant's own Similarity 80 (promise 1e-4), 95 % bootstrap intervals.",
        "",
        f"| fitted without | images taken out | {SUMMARY_COLUMNS} |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    for name, v in vs.items():
        lines.append(f"| {name} | {v['taken_out']:,} | {summary_cells(v['summary'])} |")
    lines += ["", "Black adults (206 pairs in the evaluation half) are in the JSON only.", ""]
    return "\n".join(lines)


def fit_data(
    workers: int = 1,
) -> tuple[FaceEngine, dict[str, F.Part], dict[str, F.Part], dict[str, np.ndarray]]:
    """The default engine, bench/fsn_fit.py's fit and evaluation halves, and per variant the UTKFace
    fit-half images it takes out (a mask for ``without``; none for the shipped recipe)."""
    engine = FaceEngine.load(Settings.load().replace(calibration_file=None, profile="default"))
    specs = F.datasets(L.data_root())
    embs = {n: embed_spec(engine, s, cache_dir=default_cache_dir(), workers=workers) for n, s in specs.items()}
    parts = F.split_parts(specs, embs)
    fit = {n: p[0] for n, p in parts.items()}
    held = {n: p[1] for n, p in parts.items()}
    utk = fit["utk"]
    labels = {k: np.array([img.groups.get(k, "") for img in utk.spec.images]) for k in ("race", "age_band")}
    drops = {
        "nothing (shipped recipe)": np.zeros(len(utk.status), bool),
        "UTKFace": np.ones(len(utk.status), bool),
        "children 0-12": labels["age_band"] == "0-12",
        **{f"{race} (all ages)": labels["race"] == race for race in RACES},
    }
    return engine, fit, held, drops


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--render-only", action="store_true", help="rewrite leave-out.md from leave-out.json")
    if parser.parse_args().render_only:
        (RESULTS / "leave-out.md").write_text(render(json.loads((RESULTS / "leave-out.json").read_text())))
        return
    engine, fit, held, drops = fit_data()
    utk = fit["utk"]
    variants = {
        name: ({**fit, "utk": without(utk, drop)} if drop.any() else fit, int((drop & (utk.status != NO_FACE)).sum()))
        for name, drop in drops.items()
    }
    out: dict[str, Any] = {"machine": machine_record(), "model": engine.model_id, "variants": {}}
    for name, (data, taken) in variants.items():
        normaliser = F.fit_normaliser(engine.model_id, data)
        assert normaliser.calibration is not None
        r = evaluate(name, normaliser.scorer, normaliser.calibration, held)
        out["variants"][name] = {"taken_out": taken, "clusters": len(normaliser.centroids), "summary": summary(r)}
    save_result(RESULTS / "leave-out.json", out)
    (RESULTS / "leave-out.md").write_text(render(out))


if __name__ == "__main__":
    main()
