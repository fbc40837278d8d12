"""1:N honesty of probe-tail score normalisation, on held-apart data, per group.

    nice -n 5 .venv/bin/python bench/tail1n.py     # writes bench/results/tail1n.{json,md}

Every image of an evaluation part is searched against the rest of that part (the gallery),
exactly, in numpy (the same arithmetic as facetrust's search; the HTTP run is
bench/search_fairness.py). Methods:

* ``raw``: cosine against the shipped calibration's Similarity-80 score (what facetrust did).
  The calibration is refitted on the **LFW fit half only** (people split in two by a seeded
  shuffle; same-sex impostor pairs): nothing is fitted on an evaluation part, and UTKFace is
  never used for fitting, so it measures transfer to another population.
* ``probe-tail``: the probe's score mapped onto that calibration by its own tail against the
  gallery (``fairness.tailnorm``: the K = 50 highest gallery scores; what facetrust's search
  does by default, ``service.scoring``).
* ``symmetric-tail``: the mean of both faces' mapped scores (each face's tail against the
  same gallery), as a 1:1 comparison with per-face cohort statistics would do.

Reported on the evaluation parts (LFW: the other half of the people; UTKFace: all images,
near-duplicates dropped): per group, the FMR of same-group impostor pairs (each ordered
pair, probe side normalised), the fraction of probes with at least one wrong candidate
(measured FPIR; UTKFace both over all candidates and without candidates at raw cosine ≥ 0.6,
presumed the same person), the FPIR the search would report (mean over probes), the
fraction flagged unreliable, and on LFW the TAR of mated pairs. Intervals: 95 % bootstrap
over probes (people on LFW).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw_data as L
from facetrust.calibration import Calibration, default_calibration, fit_calibration
from facetrust.config import Settings, default_cache_dir
from facetrust.engine import FaceEngine
from facetrust.fairness.datasets import DatasetSpec, load_lfw, load_utkface
from facetrust.fairness.embedding import FACE
from facetrust.fairness.robustfit import duplicate_rows
from facetrust.fairness.runner import embed_spec
from facetrust.fairness.tailnorm import anchor, mapped, top_scores_stats
from host import cpu_model, load_avg

RESULTS = Path(__file__).resolve().parent / "results"
K = 50
PRESUMED_SAME = 0.6
REPLICATES = 500


def scores_and_maps(vectors: np.ndarray, cal: Calibration) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All-against-all cosine (self −inf), and each pair mapped by its row face's tail
    (one-sided, ``probe``) and by both faces' tails (``symmetric``)."""
    s = vectors @ vectors.T
    np.fill_diagonal(s, -np.inf)
    top = -np.partition(-s, K - 1, axis=1)[:, :K]
    stats = top_scores_stats(top, len(vectors) - 1)
    c, mg = anchor(cal, K, len(vectors) - 1)
    probe = mapped(s, stats.u[:, None], stats.m[:, None], c, mg)
    symmetric = 0.5 * (probe + mapped(s, stats.u[None, :], stats.m[None, :], c, mg))
    return s, probe, symmetric


def lfw_split(spec: DatasetSpec, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the fit and evaluation halves, people split by a seeded shuffle."""
    people = np.array(sorted({r.identity or "" for r in spec.images}))
    np.random.default_rng(seed).shuffle(people)
    fit = set(people[: len(people) // 2].tolist())
    which = np.array([r.identity in fit for r in spec.images])
    return np.flatnonzero(which), np.flatnonzero(~which)


def fit_half_calibration(spec: DatasetSpec, vectors: np.ndarray, rows: np.ndarray, model: str) -> Calibration:
    """The raw calibration refitted on the fit half's same-sex impostor pairs (as bench/calibrate.py)."""
    v = vectors[rows]
    ident = np.array([spec.images[i].identity for i in rows])
    sex = np.array([spec.images[i].groups.get("sex", "") for i in rows])
    chunks = []
    for start in range(0, len(rows), 1024):
        s = v[start : start + 1024] @ v.T
        i = np.arange(start, min(start + 1024, len(rows)))[:, None]
        keep = (np.arange(len(rows))[None, :] > i) & (ident[i] != ident[None, :])
        keep &= (sex[i] == sex[None, :]) & (sex[i] != "")
        chunks.append(s[keep])
    return fit_calibration(np.concatenate(chunks), model=model, dataset="LFW fit half, same-sex impostor pairs")


def boot(values: np.ndarray, units: np.ndarray, rng: np.random.Generator) -> list[float]:
    """Mean of ``values`` with a 95 % bootstrap interval over ``units``."""
    if values.size == 0:
        return [float("nan")] * 3
    _, unit = np.unique(units, return_inverse=True)
    sums, counts = np.bincount(unit, values), np.bincount(unit)
    w = rng.multinomial(len(sums), np.full(len(sums), 1 / len(sums)), size=REPLICATES)
    reps = (w @ sums) / np.maximum(w @ counts, 1)
    return [float(values.mean()), *np.quantile(reps, [0.025, 0.975]).tolist()]


def evaluate(
    groups: dict[str, np.ndarray], ident: np.ndarray, vectors: np.ndarray, cal: Calibration, match_cell: np.ndarray
) -> dict[str, Any]:
    """Per method and group: impostor FMR, measured and reported FPIR, TAR of mated pairs."""
    rng = np.random.default_rng(0)
    t80 = cal.score_for_similarity(80.0)
    s, probe, symmetric = scores_and_maps(vectors, cal)
    n = len(vectors) - 1
    other = ident[:, None] != ident[None, :]
    np.fill_diagonal(other, False)
    same_cell = match_cell[:, None] == match_cell[None, :]
    presumed = s >= PRESUMED_SAME
    reported = -np.expm1(n * np.log1p(-1e-4))
    out: dict[str, Any] = {"gallery": len(vectors), "fpir_reported": float(reported)}
    for method, scored in (("raw", s), ("probe-tail", probe), ("symmetric-tail", symmetric)):
        accept = scored >= t80
        rows: dict[str, Any] = {}
        for name, members in groups.items():
            imp = other[members][:, members] & same_cell[members][:, members]
            acc = accept[members][:, members]
            wrong_any = (accept[members] & other[members]).any(axis=1)
            wrong_strict = (accept[members] & other[members] & ~presumed[members]).any(axis=1)
            mated = ~other[members]
            mated[np.arange(len(members)), members] = False
            units = ident[members]
            row_fm = (acc & imp).sum(axis=1).astype(float)
            row_n = imp.sum(axis=1).astype(float)
            imp_strict = imp & ~presumed[members][:, members]
            rows[name] = {
                "probes": int(len(members)),
                "impostor_pairs": int(row_n.sum()),
                "fmr": float(row_fm.sum() / max(row_n.sum(), 1)),
                "fmr_excl_presumed_same": float((acc & imp_strict).sum() / max(imp_strict.sum(), 1)),
                "fpir_measured": boot(wrong_any.astype(float), units, rng),
                "fpir_measured_excl_presumed_same": boot(wrong_strict.astype(float), units, rng),
                "tar": float(accept[members][mated].mean()) if mated.any() else None,
            }
        out[method] = rows
    return out


def main() -> None:
    started = time.perf_counter()
    engine = FaceEngine.load(Settings.load())
    root = L.data_root()
    lfw, utk = load_lfw(root / "lfw"), load_utkface(root / "utkface")
    emb_l = embed_spec(engine, lfw, cache_dir=default_cache_dir(), workers=1)
    emb_u = embed_spec(engine, utk, cache_dir=default_cache_dir(), workers=1)
    shipped80 = default_calibration(engine.model_id).score_for_similarity(80.0)
    fit_rows, eval_rows = lfw_split(lfw, 0)
    fit_rows = fit_rows[emb_l.status[fit_rows] == FACE]
    eval_rows = eval_rows[emb_l.status[eval_rows] == FACE]
    cal = fit_half_calibration(lfw, emb_l.vectors, fit_rows, engine.model_id)
    raw80 = cal.score_for_similarity(80.0)
    result: dict[str, Any] = {
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "load_before": load_avg()},
        "k": K,
        "calibration": cal.model,
        "similarity_80_score": raw80,
        "shipped_similarity_80_score": shipped80,
    }
    ident = np.array([lfw.images[i].identity for i in eval_rows])
    sex = np.array([lfw.images[i].groups.get("sex", "?") for i in eval_rows])
    groups = {g: np.flatnonzero(sex == g) for g in ("female", "male")}
    result["lfw"] = evaluate(groups, ident, emb_l.vectors[eval_rows], cal, sex)
    face = np.flatnonzero(emb_u.status == FACE)
    dropped = duplicate_rows(emb_u.vectors, face, [None] * len(utk.images))
    rows = np.setdiff1d(face, dropped)
    recs = [utk.images[i] for i in rows]
    band = np.array([r.groups.get("age_band", "") for r in recs])
    race = np.array([r.groups.get("race", "") for r in recs])
    sex_u = np.array([r.groups.get("sex", "") for r in recs])
    adult = np.isin(band, ("18-39", "40-59", "60+"))
    groups_u = {f"adult {g}": np.flatnonzero(adult & (race == g)) for g in sorted(set(race.tolist()))}
    groups_u["children 0-12"] = np.flatnonzero(band == "0-12")
    groups_u["adults"] = np.flatnonzero(adult)
    cell = np.char.add(np.char.add(race, sex_u), band)
    result["utk_duplicates_dropped"] = int(dropped.size)
    result["utk"] = evaluate(groups_u, np.arange(len(rows)).astype(str), emb_u.vectors[rows], cal, cell)
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["machine"]["load_after"] = load_avg()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tail1n.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
