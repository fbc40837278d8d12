"""Does the shipped normaliser's recipe get fairer with more fit data? (issue 11)

    nice -n 5 .venv/bin/python bench/fit_size.py --whole              # seeds 0-4: fit-size-coverage50.*
    nice -n 5 .venv/bin/python bench/fit_size.py --quarter            # fit-size-quarter-coverage50.*
    nice -n 5 .venv/bin/python bench/fit_size.py --recipe no-coverage  # 1/8, 1/4, 1/2: fit-size-no-coverage.*
    nice -n 5 .venv/bin/python bench/fit_size.py --render-only [--quarter] [--recipe NAME]
    nice -n 5 .venv/bin/python bench/fit_size.py --whole --profile accurate  # fit-size-accurate-coverage50.*

The shipped normaliser is fitted on the fit halves of one split (LFW by person, UTKFace by image),
so that its held-out figures describe the shipped file itself. Would a file fitted on all of the
data do better on people it has never seen?

* Default: each split's fit halves are cut again (by person and by image, the split's own seeded
  rule, ``fsn_fit.halves``) to a quarter and a half of themselves (an eighth and a quarter of the
  data; the "fit data" column is the share of the fit half), the recipe (centroids, offsets and
  table) is fitted on those and on the whole fit half, and each fit is measured on the held-out
  halves as bench/fairnorm.py.
* ``--quarter``: the held-out half is cut in two; the recipe is fitted on the fit half (0.5) and on
  the fit half with one of those quarters (0.75), and both are measured on the last quarter. This
  is the step from half the data to more, which the default cannot show.
* ``--recipe`` (results ``fit-size[-quarter]-<recipe>.{json,md}``): ``coverage50``, the shipped
  recipe (``fsn_fit.Recipe()``: a region whose measured parts hold under half its faces made at
  least as strict as its largest unmeasured parts need overall, ``uncovered="raise"``);
  ``no-coverage``, the recipe shipped on the evening of November 30, 2026, without that rule; and
  two rules not shipped, ``coverage50-strictest`` (such a region gets the strictest offset, 0)
  and ``coverage50-overall`` (``raise``, but also where no part was measured).

Measured (docs/fairness.md, "More fit data"): with ``no-coverage`` more helps up to half the data;
from half to three quarters, children's FMR rises on every split, because LFW's pairs then reach
the 20,000 a region needs in a region that is mostly children's, and give it a typical offset.
``coverage50`` does not degrade so, and on the held-out halves lowers UTKFace adults' FMR on all
five splits at no cost in TAR.
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
from facetrust.config import PROFILES, Settings
from host import machine_record, save_result

FRACTIONS = (0.25, 0.5, 1.0)
RECIPES = {
    "coverage50": F.Recipe(),  # shipped since the night of November 30, 2026
    "no-coverage": F.Recipe(min_coverage=0.0),  # shipped on the evening of November 30
    "coverage50-strictest": F.Recipe(uncovered="strictest"),
    "coverage50-overall": F.Recipe(uncovered="overall"),
}


def cut(p: F.Part, fraction: float, seed: int) -> F.Part:
    """``p`` cut to ``fraction`` of its people (UTKFace: images) by repeated seeded halving."""
    out = p
    for step in range(int(round(np.log2(1 / fraction)))):
        rows = F.halves(out.spec, seed + 1000 * (step + 1))[0]
        out = F.part(out.spec, out.emb, rows)
    return out


def entry(
    name: str, model: str, fit: dict[str, F.Part], held: dict[str, F.Part], recipe: F.Recipe, intervals: bool
) -> dict[str, Any]:
    """One fit's saved entry: ``recipe`` fitted on ``fit``, measured on ``held`` as bench/fairnorm.py
    (with ``intervals``, also the race ratio's bootstrap intervals)."""
    norm = F.fit_normaliser(model, fit, recipe=recipe)
    assert norm.calibration is not None
    measured = FN.evaluate(name, norm.scorer, norm.calibration, held)
    if intervals:
        measured["race_ratio_intervals"] = FV.race_ratio_intervals(
            norm.scorer, measured["threshold"], held["utk"], measured
        )
    faces = {n: int(np.sum(p.status == F.FACE)) for n, p in fit.items()}
    return {"fit_faces": faces, "threshold": measured["threshold"], "summary": FV.summary(measured)}


def measure(seed: int, model: str, recipe: F.Recipe, fractions: tuple[float, ...] = FRACTIONS) -> dict[str, Any]:
    fit, held, _ = FV.split_data(seed)
    return {
        f"{f:g}": entry(f"seed {seed}, {f:g}", model, {n: cut(p, f, seed) for n, p in fit.items()}, held, recipe, True)
        for f in fractions
    }


def measure_quarter(seed: int, model: str, recipe: F.Recipe) -> dict[str, Any]:
    """Half against three quarters of the data, both measured on the last quarter: the held-out half
    is cut in two (``fsn_fit.halves``, seed + 1000), one of its halves joins the fit half."""
    specs, embs = FV.load_data()
    fits: dict[str, dict[str, F.Part]] = {"0.5": {}, "0.75": {}}
    held: dict[str, F.Part] = {}
    for n, spec in specs.items():
        fit_rows, held_rows = F.halves(spec, seed)
        sub = F.part(spec, embs[n], held_rows)
        joined, kept = F.halves(sub.spec, seed + 1000)
        fits["0.5"][n] = F.part(spec, embs[n], fit_rows)
        fits["0.75"][n] = F.part(spec, embs[n], np.sort(np.concatenate([fit_rows, held_rows[joined]])))
        held[n] = F.part(spec, embs[n], held_rows[kept])
    return {f: entry(f"seed {seed}, {f}", model, fit, held, recipe, False) for f, fit in fits.items()}


def worst_fmr(s: dict[str, Any]) -> float:
    """The highest FMR among LFW women and men and UTKFace's race groups with ≥ 2,000 pairs."""
    race = [v[0][0] for v in s["race_fmr"].values() if v[2] >= 2000]
    return max([s["lfw_female"][0], s["lfw_male"][0], *race])


def render(result: dict[str, Any], quarter: bool = False) -> str:
    def x(v: float | None) -> str:
        return "–" if v is None else f"{v:.2f}×"

    title = (
        "a half and three quarters of the data, measured on the last quarter"
        if quarter
        else "a quarter, a half and all of each split's fit halves"
    )
    lines = [
        f"# The recipe `{result.get('recipe', '?')}` fitted on {title} (bench/fit_size.py)",
        "",
        *([f"Model: {result['model']} (`--profile {result['profile']}`).", ""] if "profile" in result else []),
        f"Machine: {json.dumps(result['machine'])}. Held-out "
        + ("quarters" if quarter else "halves")
        + " as bench/fairnorm.py; FMR at each fit's own "
        "Similarity 80 (promise 1e-4). Worst group: the highest FMR among LFW women, LFW men and UTKFace adults "
        "by race (groups with ≥ 2,000 pairs). Race ratio over the same race groups.",
        "",
        "| split seed | fit data | fit faces LFW / UTK | LFW female | LFW male | LFW f/m | LFW TAR | UTK adults "
        "| race worst/best | children 0–12 | children/adults | worst group |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for seed, r in sorted(result["seeds"].items()):
        for fraction, e in r.items():
            s = e["summary"]
            lines.append(
                f"| {seed} | {fraction} | {e['fit_faces']['lfw']:,} / {e['fit_faces']['utk']:,} "
                f"| {s['lfw_female'][0]:.1e} | {s['lfw_male'][0]:.1e} | {x(s['lfw_ratio'])} "
                f"| {100 * s['lfw_tar']:.2f} % "
                f"| {s['utk_adults'][0]:.1e} | {x(s['race_ratio_all'])} | {s['children'][0]:.1e} "
                f"| {x(s['children_vs_adults'])} | {worst_fmr(s):.1e} |"
            )
    lines += ["", "Geometric means over the splits measured:", ""]
    lines += [
        "| fit data | LFW f/m | race worst/best | children/adults | worst group | LFW TAR |",
        "|---|---|---|---|---|---|",
    ]
    for fraction in ("0.5", "0.75") if quarter else (f"{f:g}" for f in FRACTIONS):
        rows = [r[fraction]["summary"] for r in result["seeds"].values() if fraction in r]
        if not rows:
            continue

        def gm(vals: list[float | None]) -> str:
            v = [a for a in vals if a]
            return f"{float(np.exp(np.mean(np.log(v)))):.2f}×" if v else "–"

        lines.append(
            f"| {fraction} | {gm([s['lfw_ratio'] for s in rows])} | {gm([s['race_ratio_all'] for s in rows])} "
            f"| {gm([s['children_vs_adults'] for s in rows])} | "
            f"{float(np.exp(np.mean(np.log([worst_fmr(s) for s in rows])))):.1e} "
            f"| {100 * float(np.mean([s['lfw_tar'] for s in rows])):.2f} % |"
        )
    lines += ["", 'What it means: docs/fairness.md, "More fit data".']
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4], help="split seeds (0: the shipped split)"
    )
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from its .json")
    parser.add_argument(
        "--quarter", action="store_true", help="a half against three quarters of the data, on the last quarter"
    )
    parser.add_argument("--whole", action="store_true", help="only the whole fit halves (no quarter or half of them)")
    parser.add_argument(
        "--recipe", choices=RECIPES, default="coverage50", help="the recipe fitted (default: the shipped one)"
    )
    parser.add_argument(
        "--profile", choices=PROFILES, default="default", help="accurate: the fused templates (fit-size-accurate-*)"
    )
    args = parser.parse_args()
    FV.CHUNK = 1_000_000  # the same counts in smaller chunks: under 4 GB of memory
    FV.PROFILE = args.profile
    profile = "" if args.profile == "default" else f"-{args.profile}"
    path = FV.RESULTS / f"fit-size{profile}{'-quarter' if args.quarter else ''}-{args.recipe}.json"
    if args.render_only:
        path.with_suffix(".md").write_text(render(json.loads(path.read_text()), args.quarter))
        return
    result: dict[str, Any] = (
        json.loads(path.read_text()) if path.exists() else {"machine": machine_record(), "seeds": {}}
    )
    result["recipe"] = args.recipe
    from facetrust.engine import FaceEngine

    model = FaceEngine.load(Settings.load().replace(calibration_file=None, profile=args.profile)).model_id
    if args.profile != "default":  # the default's saved results keep their shape
        result.update(profile=args.profile, model=model)
    for seed in args.seeds:
        result["seeds"][str(seed)] = (
            measure_quarter(seed, model, RECIPES[args.recipe])
            if args.quarter
            else measure(seed, model, RECIPES[args.recipe], (1.0,) if args.whole else FRACTIONS)
        )
        result["machine"] = machine_record()
        save_result(path, result)
    path.with_suffix(".md").write_text(render(result, args.quarter))


if __name__ == "__main__":
    main()
