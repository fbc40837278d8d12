"""1:N: does the 1:1 cluster normaliser narrow the race spread of wrong candidates? (issue 11)

    nice -n 5 .venv/bin/python bench/cluster1n.py     # writes bench/results/cluster1n.{json,md}

bench/tail1n.py's protocol on **held-out halves only**: LFW and UTKFace split as
bench/fsn_fit.py splits them (seed 0; LFW by person, UTKFace by image), so that neither the
shipped cluster normaliser (fitted on the fit halves, ``facetrust.clusternorm``) nor any
calibration has seen an evaluation face. UTKFace's evaluation half (near-duplicates dropped)
is one gallery, every image searched exactly against the rest; LFW's evaluation gallery holds
each person's first image and every evaluation image is a probe. Methods, each judged at its
own calibration's Similarity-80 score:

* ``raw``: cosine, the raw table refitted on LFW's fit half (bench/tail1n.py);
* ``probe-tail``: the default, the probe's tail map (K = 50) onto that table; ``probe-tail
  K=20`` / ``K=100``: the same with another K (candidate c);
* ``cluster``: the 1:1 default, ``s − ½(δ_probe + δ_face)`` judged by the normaliser's table;
* ``cluster probe-offset + tail`` (candidate b): ``s − δ_probe``, then the tail map onto the
  normaliser's table. A constant per probe moves its tail statistics with it, so this equals
  the default's tail map read off the normaliser's table instead of the raw one;
* ``cluster + tail`` (candidate a): ``s − ½(δ_probe + δ_face)``, the probe's tail statistics
  from its top 50 *normalised* scores, the tail map onto the normaliser's table;
* ``face-offset + tail``: ``s − δ_face`` (the whole offset on the candidate's side), then the
  tail map onto the normaliser's table.

Two folds: the shipped normaliser measured on bench/fsn_fit.py's evaluation halves, then the
halves swapped (the normaliser refitted by the same recipe, ``fsn_fit.fit_normaliser``, and the
raw table on LFW's other half), so every UTKFace image is an evaluation probe once; the
UTKFace probes of both folds are then pooled (each was searched in its own half's gallery).

Per group: share of probes with at least one wrong candidate (all; without candidates at raw
cosine ≥ 0.6, presumed the same person), 95 % bootstrap over probes (people on LFW); the FPIR
every search reports at Similarity 80 for a gallery this size; race worst/best with a
bootstrap interval (groups resampled independently); children/adults; LFW TAR.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw_data as L
from facetrust.calibration import Calibration, default_calibration
from facetrust.clusternorm import ClusterNormaliser, shipped_normaliser
from facetrust.config import Settings, default_cache_dir
from facetrust.engine import FaceEngine
from facetrust.fairness.datasets import DatasetSpec, load_lfw, load_utkface
from facetrust.fairness.embedding import FACE, DatasetEmbeddings
from facetrust.fairness.robustfit import duplicate_rows
from facetrust.fairness.runner import embed_spec
from facetrust.fairness.tailnorm import anchor, mapped, top_scores_stats
from fsn_fit import fit_normaliser, halves, part
from host import machine_record, save_result
from tail1n import boot as tail_boot
from tail1n import fit_half_calibration

RESULTS = Path(__file__).resolve().parent / "results"
PRESUMED_SAME = 0.6
REPLICATES = 1000
NEIGHBOURS = (51, 128, 256)
LARGE = 100  # probes: the race ratio over groups at least this large too (UTKFace's Black adults are ~50)
PAIRED_LEVEL = 0.30
PAIRED_BASES = ("probe-tail (default)", "probe-tail, shipped raw table")
PAIRED_CANDIDATES = ("face-offset + tail", "face-offset + tail, raw top 256 only", "cluster + tail (a)")
RACES = ("adult Asian", "adult Black", "adult Indian", "adult Others", "adult White")


def tail_map(s: np.ndarray, cal: Calibration, size: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's scores mapped by its own top-k tail onto ``cal``, and each row's crowding
    (decades by which its k-th score is rarer in ``cal`` than k/size; flagged at ≥ 1)."""
    stats = top_scores_stats(-np.partition(-s, k - 1, axis=1)[:, :k], size)
    c, mg = anchor(cal, k, size)
    crowding = np.log10(k / size) - np.interp(stats.u, cal.scores, cal.log10_fmr)
    return mapped(s, stats.u[:, None], stats.m[:, None], c, mg), crowding


Method = Callable[[np.ndarray, np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray | None, Calibration]]


def methods(raw_cal: Calibration, norm: ClusterNormaliser, shipped: Calibration) -> dict[str, Method]:
    """name → f(scores, probe δ, gallery δ, gallery size) → (scores on the method's table, crowding, table)."""
    assert norm.calibration is not None
    ncal = norm.calibration

    def tail(k: int) -> Method:
        return lambda s, dp, dg, n: (*tail_map(s, raw_cal, n, k), raw_cal)

    return {
        "raw": lambda s, dp, dg, n: (s, None, raw_cal),
        "probe-tail (default)": tail(50),
        "probe-tail, shipped raw table": lambda s, dp, dg, n: (*tail_map(s, shipped, n, 50), shipped),
        "probe-tail K=20": tail(20),
        "probe-tail K=100": tail(100),
        "cluster (1:1 default)": lambda s, dp, dg, n: (s - 0.5 * (dp[:, None] + dg[None, :]), None, ncal),
        "cluster probe-offset + tail (b)": lambda s, dp, dg, n: (*tail_map(s - dp[:, None], ncal, n, 50), ncal),
        "cluster + tail (a)": lambda s, dp, dg, n: (
            *tail_map(s - 0.5 * (dp[:, None] + dg[None, :]), ncal, n, 50),
            ncal,
        ),
        "face-offset + tail": lambda s, dp, dg, n: (*tail_map(s - dg[None, :], ncal, n, 50), ncal),
        **{f"face-offset + tail, raw top {k} only": neighbours_only(k, ncal) for k in NEIGHBOURS},
    }


def neighbours_only(k: int, ncal: Calibration) -> Method:
    """face-offset + tail as a search could run it without a new index: the tail and the
    candidates from the probe's ``k`` highest *raw* scores only (the rest as if unseen)."""

    def method(s: np.ndarray, dp: np.ndarray, dg: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, Calibration]:
        cut = -np.partition(-s, k - 1, axis=1)[:, k - 1 : k]
        adjusted = np.where(s >= cut, s - dg[None, :], -np.inf)
        return (*tail_map(adjusted, ncal, n, 50), ncal)

    return method


def boot(values: np.ndarray, units: np.ndarray, rng: np.random.Generator) -> list[float]:
    """Mean with a 95 % bootstrap interval over ``units`` (bench/tail1n.py's, more replicates)."""
    return tail_boot(values, units, rng, REPLICATES)


def ratio(wrong: dict[str, np.ndarray], names: tuple[str, ...], rng: np.random.Generator) -> list[float]:
    """Worst/best of the groups' means, with a 95 % bootstrap interval (each group resampled)."""
    means = np.array([wrong[g].mean() for g in names])
    reps = np.stack([wrong[g][rng.integers(0, wrong[g].size, (REPLICATES, wrong[g].size))].mean(1) for g in names])
    r = reps.max(0) / np.maximum(reps.min(0), 1e-9)
    return [float(means.max() / max(means.min(), 1e-9)), *np.quantile(r, [0.025, 0.975]).tolist()]


LEVELS = (0.10, 0.175, 0.30)


def matched_levels(
    scored: np.ndarray, other: np.ndarray, presumed: np.ndarray, groups: dict[str, np.ndarray], rng: np.random.Generator
) -> dict[str, Any]:
    """The spreads at thresholds (on the method's own scale) where all adults' (LFW: all probes')
    share of probes with a wrong candidate is each of ``LEVELS``: a method's spread free of the
    level its Similarity 80 happens to sit at (spreads narrow as every group's share rises)."""
    best = np.where(other, scored, -np.inf).max(axis=1)
    best_strict = np.where(other & ~presumed, scored, -np.inf).max(axis=1)
    base = groups.get("adults", np.arange(len(best)))
    races = tuple(g for g in RACES if g in groups)
    names = races or tuple(groups)
    out: dict[str, Any] = {}
    for level in LEVELS:
        t = float(np.quantile(best[base], 1.0 - level))
        ts = float(np.quantile(best_strict[base], 1.0 - level))
        row: dict[str, Any] = {g: float((best[m] >= t).mean()) for g, m in groups.items()}
        row["worst/best"] = ratio({g: (best[groups[g]] >= t).astype(float) for g in names}, names, rng)
        row["worst/best excl presumed same"] = ratio(
            {g: (best_strict[groups[g]] >= ts).astype(float) for g in names}, names, rng
        )
        if "children 0-12" in groups:
            row["children/adults"] = float((best[groups["children 0-12"]] >= t).mean() / level)
        out[f"{level:.3f}"] = row
    return out


def evaluate(
    s: np.ndarray,
    dp: np.ndarray,
    dg: np.ndarray,
    ident: tuple[np.ndarray, np.ndarray],
    groups: dict[str, np.ndarray],
    fns: dict[str, Method],
) -> dict[str, Any]:
    """Per method and group: measured FPIR (all, without presumed same), flagged share, TAR."""
    n = s.shape[1] - int(np.isneginf(s).any())
    other = ident[0][:, None] != ident[1][None, :]
    mated = ~other & np.isfinite(s)
    presumed = s >= PRESUMED_SAME
    out: dict[str, Any] = {"gallery": n, "fpir_reported": float(-np.expm1(n * np.log1p(-1e-4)))}
    kept: dict[str, dict[str, np.ndarray]] = {}
    for name, fn in fns.items():
        rng = np.random.default_rng(0)
        scored, crowding, cal = fn(s, dp, dg, n)
        accept = scored >= cal.score_for_similarity(80.0)
        wrong = (accept & other).any(axis=1).astype(float)
        strict = (accept & other & ~presumed).any(axis=1).astype(float)
        rows: dict[str, Any] = {}
        for g, members in groups.items():
            rows[g] = {
                "probes": int(members.size),
                "fpir_measured": boot(wrong[members], ident[0][members], rng),
                "fpir_measured_excl_presumed_same": boot(strict[members], ident[0][members], rng),
                "flagged": None if crowding is None else float((crowding[members] >= 1.0).mean()),
                "tar": float(accept[members][mated[members]].mean()) if mated[members].any() else None,
            }
        races = tuple(g for g in RACES if g in groups)
        if races:
            rows["race worst/best"] = ratio({g: wrong[groups[g]] for g in races}, races, rng)
            rows["race worst/best excl presumed same"] = ratio({g: strict[groups[g]] for g in races}, races, rng)
            large = tuple(g for g in races if groups[g].size >= LARGE)
            rows[f"race worst/best, groups >= {LARGE} probes"] = ratio({g: wrong[groups[g]] for g in large}, large, rng)
            rows["children/adults"] = ratio(
                {g: wrong[groups[g]] for g in ("children 0-12", "adults")}, ("children 0-12", "adults"), rng
            )
        rows["matched_levels"] = matched_levels(scored, other, presumed, groups, rng)
        out[name] = rows
        best = np.where(other, scored, -np.inf).max(axis=1)
        level = float(np.quantile(best[groups.get("adults", np.arange(best.size))], 1.0 - PAIRED_LEVEL))
        kept[name] = {"similarity 80": wrong, f"matched level {PAIRED_LEVEL}": (best >= level).astype(float)}
        del scored, accept
    races = tuple(g for g in RACES if g in groups)
    if races:
        out["paired"] = paired(kept, groups, races)
        out["_wrong"] = {name: {g: k["similarity 80"][m] for g, m in groups.items()} for name, k in kept.items()}
    return out


def paired(kept: dict[str, dict[str, np.ndarray]], groups: dict[str, np.ndarray], races: tuple[str, ...]) -> Any:
    """Race worst/best of each candidate minus the default's, on the same bootstrap resamples of
    the probes (each group resampled): a 95 % interval above 0 means the candidate is narrower."""
    rng = np.random.default_rng(1)
    picks = {g: rng.integers(0, groups[g].size, (REPLICATES, groups[g].size)) for g in races}
    large = tuple(g for g in races if groups[g].size >= LARGE)

    def reps(wrong: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
        means = np.stack([wrong[groups[g]][picks[g]].mean(1) for g in names])
        out: np.ndarray = means.max(0) / np.maximum(means.min(0), 1e-9)
        return out

    result: dict[str, Any] = {}
    for base in PAIRED_BASES:
        for cand in PAIRED_CANDIDATES:
            for point in kept[base]:
                for label, names in (("all groups", races), (f"groups >= {LARGE} probes", large)):
                    diff = reps(kept[base][point], names) - reps(kept[cand][point], names)
                    key = f"{base} minus {cand}, {point}, {label}"
                    result[key] = [float(np.median(diff)), *np.quantile(diff, [0.025, 0.975]).tolist()]
    return result


@dataclass(frozen=True)
class Fold:
    """Which half is fitted on and which measured (``swap``: bench/fsn_fit.py's halves the other way
    round, the normaliser refitted by its recipe on the evaluation half), and what was fitted."""

    swap: bool
    norm: ClusterNormaliser
    cal: Calibration


def fold_rows(spec: DatasetSpec, swap: bool) -> tuple[np.ndarray, np.ndarray]:
    fit, held = halves(spec)
    return (held, fit) if swap else (fit, held)


def make_fold(engine: FaceEngine, data: dict[str, tuple[DatasetSpec, DatasetEmbeddings]], swap: bool) -> Fold:
    """The shipped normaliser (read through ``clusternorm``) or, swapped, one refitted on the other halves."""
    spec, emb = data["lfw"]
    fit_rows, _ = fold_rows(spec, swap)
    cal = fit_half_calibration(spec, emb.vectors, fit_rows[emb.status[fit_rows] == FACE], engine.model_id)
    if not swap:
        norm = shipped_normaliser(engine.model_id)
        if norm is None:
            raise SystemExit(f"No cluster normaliser ships for {engine.model_id}")
        return Fold(swap, norm, cal)
    parts = {name: part(s, e, fold_rows(s, swap)[0]) for name, (s, e) in data.items()}
    return Fold(swap, fit_normaliser(engine.model_id, parts), cal)


def lfw_part(engine: FaceEngine, data: tuple[DatasetSpec, DatasetEmbeddings], fold: Fold) -> dict[str, Any]:
    spec, emb = data
    _, eval_rows = fold_rows(spec, fold.swap)
    eval_rows = eval_rows[emb.status[eval_rows] == FACE]
    ident = np.array([spec.images[i].identity for i in eval_rows])
    sex = np.array([spec.images[i].groups.get("sex", "?") for i in eval_rows])
    first = np.unique(ident, return_index=True)[1]
    v = emb.vectors[eval_rows]
    s = v @ v[first].T
    s[first, np.arange(first.size)] = -np.inf
    d = fold.norm.shift(v)
    groups = {g: np.flatnonzero(sex == g) for g in ("female", "male")}
    fns = methods(fold.cal, fold.norm, default_calibration(engine.model_id))
    return evaluate(s, d, d[first], (ident, ident[first]), groups, fns)


def utk_part(engine: FaceEngine, data: tuple[DatasetSpec, DatasetEmbeddings], fold: Fold) -> dict[str, Any]:
    spec, emb = data
    _, held = fold_rows(spec, fold.swap)
    face = held[emb.status[held] == FACE]
    rows = np.setdiff1d(face, duplicate_rows(emb.vectors, face, [None] * len(spec.images)))
    recs = [spec.images[i].groups for i in rows]
    band = np.array([g.get("age_band", "") for g in recs])
    race = np.array([g.get("race", "") for g in recs])
    adult = np.isin(band, ("18-39", "40-59", "60+"))
    groups = {f"adult {g}": np.flatnonzero(adult & (race == g)) for g in sorted(set(race[adult].tolist()))}
    groups["children 0-12"] = np.flatnonzero(band == "0-12")
    groups["adults"] = np.flatnonzero(adult)
    v = emb.vectors[rows]
    s = v @ v.T
    np.fill_diagonal(s, -np.inf)
    d = fold.norm.shift(v)
    ident = np.arange(len(rows))
    fns = methods(fold.cal, fold.norm, default_calibration(engine.model_id))
    out = evaluate(s, d, d, (ident, ident), groups, fns)
    out["images"] = int(len(rows))
    return out


def pooled(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Both folds' UTKFace probes together (each searched in its own half): per method and group the
    share with a wrong candidate at Similarity 80, the race worst/best, and the paired differences."""
    rng = np.random.default_rng(2)
    wrong = {
        name: {g: np.concatenate([f["_wrong"][name][g] for f in folds]) for g in folds[0]["_wrong"][name]}
        for name in folds[0]["_wrong"]
    }
    races = tuple(g for g in RACES if g in wrong["raw"])
    large = tuple(g for g in races if wrong["raw"][g].size >= LARGE)
    out: dict[str, Any] = {}
    for name, by_group in wrong.items():
        rows: dict[str, Any] = {g: boot(w, np.arange(w.size), rng) for g, w in by_group.items()}
        rows["probes"] = {g: int(w.size) for g, w in by_group.items()}
        rows["race worst/best"] = ratio(by_group, races, rng)
        rows[f"race worst/best, groups >= {LARGE} probes"] = ratio(by_group, large, rng)
        rows["children/adults"] = ratio(by_group, ("children 0-12", "adults"), rng)
        out[name] = rows
    groups = {g: np.arange(w.size) for g, w in wrong["raw"].items()}
    kept = {name: {"similarity 80": np.concatenate([by_group[g] for g in groups])} for name, by_group in wrong.items()}
    offsets = np.cumsum([0] + [w.size for w in wrong["raw"].values()])
    index = {g: np.arange(offsets[i], offsets[i + 1]) for i, g in enumerate(groups)}
    out["paired"] = paired(kept, index, races)
    return out


def main() -> None:
    # no options: --help says what the script does and writes, instead of running it
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    started = time.perf_counter()
    engine = FaceEngine.load(Settings.load())
    root = L.data_root()
    data: dict[str, tuple[DatasetSpec, DatasetEmbeddings]] = {}
    for name, spec in (("lfw", load_lfw(root / "lfw")), ("utk", load_utkface(root / "utkface"))):
        data[name] = (spec, embed_spec(engine, spec, cache_dir=default_cache_dir(), workers=1))
    result: dict[str, Any] = {"machine": machine_record()}
    folds = []
    for swap in (False, True):
        fold = make_fold(engine, data, swap)
        part_result = {
            "normaliser": fold.norm.score_id,
            "raw_calibration": fold.cal.model + " (LFW fit half of this fold, same-sex impostor pairs)",
            "lfw": lfw_part(engine, data["lfw"], fold),
            "utk": utk_part(engine, data["utk"], fold),
        }
        folds.append(part_result["utk"])
        result["swapped" if swap else "shipped"] = part_result
    result["pooled_utk"] = pooled(folds)
    for f in folds:
        del f["_wrong"]
    result["seconds"] = round(time.perf_counter() - started, 1)
    save_result(RESULTS / "cluster1n.json", result)
    (RESULTS / "cluster1n.md").write_text(render(result))


def pct(x: list[float]) -> str:
    return f"{100 * x[0]:.1f} % ({100 * x[1]:.1f}–{100 * x[2]:.1f})"


def times(x: list[float]) -> str:
    if x[0] > 1e6:
        return "– (a group had none)"
    high = f"{x[2]:.2f}" if x[2] < 100 else "unbounded"
    return f"{x[0]:.2f}× ({x[1]:.2f}–{high})"


def render(result: dict[str, Any]) -> str:
    """The results as Markdown: each fold's tables, then both folds' UTKFace probes pooled."""
    lines = [
        "# 1:N with the cluster normaliser's offsets (bench/cluster1n.py)",
        "",
        f"Machine: {json.dumps(result['machine'])}; {result['seconds']} s. Held-out halves only: fold 1 is "
        "bench/fsn_fit.py's split with the shipped normaliser; fold 2 swaps the halves and refits the "
        "normaliser by the same recipe (bench/fsn_fit.py `fit_normaliser`) on fold 1's evaluation halves. Share "
        "of probes with a wrong candidate at each method's own Similarity 80, 95 % bootstrap intervals over "
        "probes (LFW: people); race worst/best over the five adult groups (and over those with ≥ 100 probes); "
        "'matched 30 %': the race worst/best at the threshold where 30 % of adults get a wrong candidate.",
    ]
    for key, title in (("shipped", "Fold 1 (shipped normaliser)"), ("swapped", "Fold 2 (halves swapped)")):
        lines += ["", f"## {title}: {result[key]['normaliser']}, raw table {result[key]['raw_calibration']}", ""]
        lines += render_fold(result[key])
    lines += ["", "## Both folds' UTKFace probes pooled", "", "| method | adults | children 0–12 | White | Asian | "]
    lines[-1] += "Indian | Others | Black | race worst/best (all; ≥ 100 probes) | children/adults |"
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    pool = result["pooled_utk"]
    for name, rows in pool.items():
        if name == "paired":
            continue
        cells = [pct(rows[g]) for g in ("adults", "children 0-12")]
        cells += [pct(rows[f"adult {g}"]) for g in ("White", "Asian", "Indian", "Others", "Black")]
        cells.append(f"{times(rows['race worst/best'])}; {times(rows[f'race worst/best, groups >= {LARGE} probes'])}")
        cells.append(times(rows["children/adults"]))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Paired, pooled: the default's race worst/best minus the candidate's (> 0: candidate narrower).", ""]
    lines += ["| comparison | median (95 %) |", "|---|---|"]
    lines += [f"| {k} | {v[0]:.2f} ({v[1]:.2f} – {v[2]:.2f}) |" for k, v in pool["paired"].items()]
    return "\n".join(lines) + "\n"


def render_fold(result: dict[str, Any]) -> list[str]:
    """One fold's UTKFace and LFW tables and its paired differences."""
    utk, lfw = result["utk"], result["lfw"]
    lines = [
        f"UTKFace evaluation half: one gallery of {utk['images']:,} images (every candidate is wrong; brackets: "
        f"without candidates at raw cosine ≥ 0.6); every search reports FPIR {100 * utk['fpir_reported']:.1f} %.",
        "",
        "| method | adults | children 0–12 | White | Asian | Indian | Others | Black | race worst/best "
        "(all; w/o ≥ 0.6; ≥ 100 probes) | matched 30 % | children flagged |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rows in utk.items():
        if not isinstance(rows, dict) or "adults" not in rows:
            continue
        cells = [pct(rows[g]["fpir_measured"]) for g in ("adults", "children 0-12")]
        cells += [f"{100 * rows[f'adult {g}']['fpir_measured'][0]:.1f} %" for g in ("White", "Asian", "Indian")]
        cells += [f"{100 * rows[f'adult {g}']['fpir_measured'][0]:.1f} %" for g in ("Others", "Black")]
        ratios = "; ".join(
            times(rows[k])
            for k in (
                "race worst/best",
                "race worst/best excl presumed same",
                f"race worst/best, groups >= {LARGE} probes",
            )
        )
        flagged = rows["children 0-12"]["flagged"]
        cells += [ratios, times(rows["matched_levels"]["0.300"]["worst/best"])]
        cells.append("–" if flagged is None else f"{100 * flagged:.0f} %")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"LFW evaluation half: gallery of {lfw['gallery']:,} (each person's first image); every search reports "
        f"FPIR {100 * lfw['fpir_reported']:.1f} %.",
        "",
        "| method | female | male | female/male | TAR female / male |",
        "|---|---|---|---|---|",
    ]
    for name, rows in lfw.items():
        if not isinstance(rows, dict) or "female" not in rows:
            continue
        f, m = rows["female"], rows["male"]
        rates = (f["fpir_measured"][0], m["fpir_measured"][0])
        lines.append(
            f"| {name} | {pct(f['fpir_measured'])} | {pct(m['fpir_measured'])} | {max(rates) / min(rates):.2f}× | "
            f"{100 * f['tar']:.2f} % / {100 * m['tar']:.2f} % |"
        )
    lines += [
        "",
        "Paired (same resamples): the default's race worst/best minus the candidate's (> 0: candidate narrower).",
        "",
    ]
    lines += ["| comparison | median (95 %) |", "|---|---|"]
    lines += [f"| {k} | {v[0]:.2f} ({v[1]:.2f} – {v[2]:.2f}) |" for k, v in utk["paired"].items()]
    return lines


if __name__ == "__main__":
    main()
