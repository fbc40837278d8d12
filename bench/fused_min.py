"""Would the accurate profile be more even fused by its models' normalised scores? (issue 11)

    nice -n 5 .venv/bin/python bench/fused_min.py       # bench/results/fused-min.{json,md}
    nice -n 5 .venv/bin/python bench/fused_min.py --render-only

The accurate profile fuses SFace and dlib into one template (``models.fused``) and normalises the
fused template's cosine with one cluster normaliser. dlib alone false-matches Asian adults far
more often than SFace does (../shared/FACTS.md), and the fused score inherits that: its race ratio
is 3.65× over five splits against the default's 2.32×. Fusing at the score level instead keeps
each model's own normalisation:

* ``template``: the shipped way, the recipe (``fsn_fit.Recipe()``) fitted on the fused templates;
* ``sface`` and ``dlib``: the recipe fitted on each part alone (the template's unit SFace and dlib
  parts), each with its own table: the two inputs of the next two;
* ``min``: a pair's score is the higher of the two parts' estimated FMRs (the lower Similarity):
  a pair matches only where both models, each normalised, say so;
* ``mean``: the mean of the two parts' log10 FMRs.

``min`` and ``mean`` get a table of their own fitted on the fit half's fused scores as the recipe
fits every table (LFW same-sex pairs, women's and men's weighted equally), so that each method is
read at its own Similarity 80. Each split seed's fit halves fit, its held-out halves measure, as
``bench/fit_size.py --whole --profile accurate`` does. Nothing here changes what ships.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fairnorm as FN
import fsn_fit as F
import fsn_variants as FV
from facetrust.calibration import Calibration
from facetrust.clusternorm import ClusterNormaliser
from facetrust.fairness.embedding import DatasetEmbeddings
from facetrust.models.fused import DLIB_SHARE, SFACE_DIM, sface_part
from host import machine_record, save_result

PATH = FV.RESULTS / "fused-min.json"
METHODS = ("template", "sface", "dlib", "min", "mean")
TABLE_DATA = "lfw fit half, fused normalised scores"


def dlib_part(fused: np.ndarray) -> np.ndarray:
    d = fused[:, SFACE_DIM:] / math.sqrt(DLIB_SHARE)
    out: np.ndarray = (d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    return out


SPLITTERS = {"sface": sface_part, "dlib": dlib_part}


def as_part(p: F.Part, which: str) -> F.Part:
    """``p`` (fused templates) with one model's unit vectors; the rules still read SFace (``p.rule``)."""
    emb = DatasetEmbeddings(f"{which}-part", SPLITTERS[which](p.emb.vectors), p.status)
    return dataclasses.replace(p, emb=emb)


def log10_fmr(cal: Calibration, scores: np.ndarray) -> np.ndarray:
    """``cal.fmr`` for many scores at once, as log10 (the floor beyond the table's last knot)."""
    out = np.interp(scores, cal.scores, cal.log10_fmr)
    out = np.where(scores >= cal.scores[-1], math.log10(cal.floor_fmr), out)
    return np.maximum(np.minimum(out, 0.0), math.log10(cal.floor_fmr))


class FusedScores:
    """A pair scorer over fused templates: each part's normalised score read as its log10 FMR, then
    combined (``min``: the higher FMR; ``mean``: their mean), negated so that higher means more alike."""

    def __init__(self, norms: dict[str, ClusterNormaliser], vectors: np.ndarray, how: str) -> None:
        self.parts = {w: (n.scorer(SPLITTERS[w](vectors)), n.calibration) for w, n in norms.items()}
        self.how = how

    def _combine(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out: np.ndarray = -(np.maximum(a, b) if self.how == "min" else 0.5 * (a + b))
        return out

    def _read(self, which: str, scores: np.ndarray) -> np.ndarray:
        cal = self.parts[which][1]
        assert cal is not None
        return log10_fmr(cal, scores.ravel()).reshape(scores.shape)

    def block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        s, d = (self._read(w, sc.block(rows, cols)) for w, (sc, _) in self.parts.items())
        return self._combine(s, d)

    def pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        s, d = (self._read(w, sc.pairs(a, b)) for w, (sc, _) in self.parts.items())
        return self._combine(s, d)


def measure(seed: int, specs: dict[str, Any], embs: dict[str, DatasetEmbeddings], methods: list[str]) -> dict[str, Any]:
    fit, held = F.fit_and_held(specs, embs, seed)
    model = embs["lfw"].model
    out: dict[str, Any] = {}
    if "template" in methods:
        norm = F.fit_normaliser(model, fit)
        assert norm.calibration is not None
        out["template"] = FN.evaluate(f"template, seed {seed}", norm.scorer, norm.calibration, held)
    norms = {w: F.fit_normaliser(f"{w}-part", {n: as_part(p, w) for n, p in fit.items()}) for w in SPLITTERS}
    for w, norm in norms.items():
        if w in methods:
            cal = norm.calibration
            assert cal is not None
            out[w] = FN.evaluate(f"{w}, seed {seed}", lambda v, n=norm, w=w: n.scorer(SPLITTERS[w](v)), cal, held)
    for how in ("min", "mean"):
        if how in methods:
            cal = F.own_table(lambda v, h=how: FusedScores(norms, v, h), fit, model=f"fused-{how}", dataset=TABLE_DATA)
            out[how] = FN.evaluate(f"{how}, seed {seed}", lambda v, h=how: FusedScores(norms, v, h), cal, held)
    return {m: {"threshold": r["threshold"], "summary": FV.summary(r)} for m, r in out.items()}


def x(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}×"


def render(result: dict[str, Any]) -> str:
    lines = [
        "# The accurate profile fused by normalised scores, on held-out halves (bench/fused_min.py)",
        "",
        f"Machine: {json.dumps(result['machine'])}. Model {result['model']}. FMR at each method's own "
        "Similarity 80 (promise 1e-4); race worst/best over UTKFace adults' groups with ≥ 2,000 pairs.",
        "",
        "| method | split seed | LFW female | LFW male | LFW f/m | LFW TAR | UTK adults | race worst/best "
        "| Asian adults | Indian adults | children 0–12 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    means = []
    for method in METHODS:
        rows = []
        for seed, entries in sorted(result["seeds"].items()):
            if method not in entries:
                continue
            s = entries[method]["summary"]
            race = s["race_fmr"]
            rows.append(s)
            lines.append(
                f"| {method} | {seed} | {s['lfw_female'][0]:.1e} | {s['lfw_male'][0]:.1e} | {x(s['lfw_ratio'])} "
                f"| {100 * s['lfw_tar']:.2f} % | {s['utk_adults'][0]:.1e} | {x(s['race_ratio_all'])} "
                f"| {race['Asian'][0][0]:.1e} | {race['Indian'][0][0]:.1e} | {s['children'][0]:.1e} |"
            )
        if rows:
            means.append(f"| {method} | {len(rows)} | {FV.over_splits(rows)} |")
    lines += FV.splits_table("method | splits", means)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4], help="split seeds")
    parser.add_argument("--methods", nargs="*", choices=METHODS, default=list(METHODS))
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from its .json")
    args = parser.parse_args()
    if args.render_only:
        PATH.with_suffix(".md").write_text(render(json.loads(PATH.read_text())))
        return
    specs, embs = FV.accurate_data()
    result: dict[str, Any] = json.loads(PATH.read_text()) if PATH.exists() else {"seeds": {}}
    result.update(machine=machine_record(), model=embs["lfw"].model)
    for seed in args.seeds:
        result["seeds"].setdefault(str(seed), {}).update(measure(seed, specs, embs, args.methods))
        save_result(PATH, result)
        PATH.with_suffix(".md").write_text(render(result))


if __name__ == "__main__":
    main()
