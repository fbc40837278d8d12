"""1:N honesty of probe-tail score normalisation, on held-apart data, per group.

    nice -n 5 .venv/bin/python bench/tail1n.py     # writes bench/results/tail1n.{json,md}
    nice -n 5 .venv/bin/python bench/tail1n.py --max-per-identity 20   # tail1n-cap20.json
    nice -n 5 .venv/bin/python bench/tail1n.py --profile accurate      # tail1n-accurate.json

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
  same gallery), each side counted at most at Similarity 100 and the nearer where both pass it:
  facetrust's search with ``symmetric_scores`` on (per-face statistics stored at enrolment,
  ``service.tails``; ``ProbeScale.global_score``).

Flagged unreliable: the share of probes whose own tail is crowded (one decade, as
``service.scoring``; ``crowding`` here is log10 of the FMR at the K-th score over K/N, so a
crowded face has crowding ≤ −1), and with the candidate side too (or a candidate they accept is crowded
against the rest of the gallery, as facetrust's search flags it from the stored statistics).

Reported on the evaluation parts (LFW: the other half of the people; UTKFace: all images,
near-duplicates dropped): per group, the FMR of same-group impostor pairs (each ordered
pair, probe side normalised), the fraction of probes with at least one wrong candidate
(measured FPIR; UTKFace both over all candidates and without candidates at raw cosine ≥ 0.6,
presumed the same person), the FPIR the search would report (mean over probes), the
fraction flagged unreliable, and on LFW the TAR of mated pairs. Intervals: 95 % bootstrap
over probes (people on LFW).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw_data as L
from facetrust.calibration import Calibration, default_calibration, fit_calibration
from facetrust.config import PROFILES, Settings, default_cache_dir
from facetrust.engine import FaceEngine
from facetrust.fairness.datasets import DatasetSpec, load_lfw, load_utkface
from facetrust.fairness.embedding import FACE, NO_FACE
from facetrust.fairness.refit import limit_per_identity
from facetrust.fairness.robustfit import duplicate_rows
from facetrust.fairness.runner import embed_spec
from facetrust.fairness.tailnorm import anchor, mapped, top_scores_stats
from facetrust.models.fused import sface_vectors
from host import machine_record, save_result

RESULTS = Path(__file__).resolve().parent / "results"
K = 50
PRESUMED_SAME = 0.6
REPLICATES = 500


@dataclass(frozen=True)
class Side:
    """Probes or gallery: embeddings, identity and matching cell of each."""

    vectors: np.ndarray
    ident: np.ndarray
    cell: np.ndarray
    rule: np.ndarray  # SFace's vectors (a fused template's SFace part), for the presumed-same rule


def tails(s: np.ndarray, cal: Calibration, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, m, crowding) of each row of scores against a gallery of ``size`` (self already −inf)."""
    stats = top_scores_stats(-np.partition(-s, K - 1, axis=1)[:, :K], size)
    crowding = np.interp(stats.u, cal.scores, cal.log10_fmr) - np.log10(K / size)
    return stats.u, stats.m, crowding


def scores_and_maps(
    probes: Side, gallery: Side, self_col: np.ndarray, cal: Calibration
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Probe × gallery cosine (a probe's own gallery face −inf), each pair mapped by the probe's
    tail (``probe``) and by both faces' tails (``symmetric``), and each probe's crowding: log10
    of how much rarer its K-th score is in the calibration population than a fraction K/N (and
    each gallery face's, against the rest of the gallery: the candidate side of the flag)."""
    s = probes.vectors @ gallery.vectors.T
    has_self = self_col >= 0
    s[np.flatnonzero(has_self), self_col[has_self]] = -np.inf
    size = len(gallery.vectors) - int(has_self.any())
    u, m, crowding = tails(s, cal, size)
    c, mg = anchor(cal, K, size)
    probe = mapped(s, u[:, None], m[:, None], c, mg)
    g = gallery.vectors @ gallery.vectors.T
    np.fill_diagonal(g, -np.inf)
    gu, gm, gcrowding = tails(g, cal, len(gallery.vectors) - 1)
    del g
    gc, gmg = anchor(cal, K, len(gallery.vectors) - 1)
    other = mapped(s, gu[None, :], gm[None, :], gc, gmg)
    # each side counted at most at Similarity 100; both beyond it: the nearer (ProbeScale.global_score)
    top = cal.score_for_similarity(100.0)
    both = (probe >= top) & (other >= top)
    symmetric = np.where(both, np.minimum(probe, other), 0.5 * (np.minimum(probe, top) + np.minimum(other, top)))
    del other, both
    return s, probe, symmetric, crowding, gcrowding


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


def boot(values: np.ndarray, units: np.ndarray, rng: np.random.Generator, replicates: int = REPLICATES) -> list[float]:
    """Mean of ``values`` with a 95 % bootstrap interval over ``units``."""
    if values.size == 0:
        return [float("nan")] * 3
    _, unit = np.unique(units, return_inverse=True)
    sums, counts = np.bincount(unit, values), np.bincount(unit)
    w = rng.multinomial(len(sums), np.full(len(sums), 1 / len(sums)), size=replicates)
    reps = (w @ sums) / np.maximum(w @ counts, 1)
    return [float(values.mean()), *np.quantile(reps, [0.025, 0.975]).tolist()]


def evaluate(
    groups: dict[str, np.ndarray], probes: Side, gallery: Side, self_col: np.ndarray, cal: Calibration
) -> dict[str, Any]:
    """Per method and probe group: impostor FMR (probe against same-cell gallery faces of other
    people), measured and reported FPIR, and the TAR of mated (probe, gallery) pairs."""
    rng = np.random.default_rng(0)
    t80 = cal.score_for_similarity(80.0)
    s, probe, symmetric, crowding, gcrowding = scores_and_maps(probes, gallery, self_col, cal)
    n = len(gallery.vectors) - int((self_col >= 0).any())
    other = probes.ident[:, None] != gallery.ident[None, :]
    mated = ~other & np.isfinite(s)
    impostor = other & (probes.cell[:, None] == gallery.cell[None, :])
    presumed = probes.rule @ gallery.rule.T >= PRESUMED_SAME
    out: dict[str, Any] = {"gallery": n, "fpir_reported": float(-np.expm1(n * np.log1p(-1e-4)))}
    for method, scored in (("raw", s), ("probe-tail", probe), ("symmetric-tail", symmetric)):
        accept = scored >= t80
        rows: dict[str, Any] = {}
        for name, members in groups.items():
            acc, imp, oth = accept[members], impostor[members], other[members]
            strict = imp & ~presumed[members]
            units = probes.ident[members]
            rows[name] = {
                "probes": int(len(members)),
                "impostor_pairs": int(imp.sum()),
                "fmr": float((acc & imp).sum() / max(imp.sum(), 1)),
                "fmr_excl_presumed_same": float((acc & strict).sum() / max(strict.sum(), 1)),
                "fpir_measured": boot((acc & oth).any(axis=1).astype(float), units, rng),
                "fpir_measured_excl_presumed_same": boot(
                    (acc & oth & ~presumed[members]).any(axis=1).astype(float), units, rng
                ),
                "tar": float(acc[mated[members]].mean()) if mated[members].any() else None,
                "flagged_probe_side": float((crowding[members] <= -1.0).mean()),
                "flagged_with_candidate_side": float(
                    ((crowding[members] <= -1.0) | (acc & (gcrowding[None, :] <= -1.0)).any(axis=1)).mean()
                ),
                "mated_pairs": int(mated[members].sum()),
            }
        out[method] = rows
    out["crowding_quantiles_10_50_90_99"] = {
        name: np.quantile(crowding[members], [0.1, 0.5, 0.9, 0.99]).round(2).tolist()
        for name, members in groups.items()
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw-only", action="store_true", help="skip UTKFace (its embeddings not cached yet)")
    parser.add_argument(
        "--max-per-identity",
        type=int,
        help="fit the held-apart calibration on at most N photos of each fit-half person (seeded, as "
        "`facetrust calibrate --max-per-identity`); writes tail1n-capN.json",
    )
    parser.add_argument(
        "--profile", choices=PROFILES, default="default", help="accurate: the fused templates (tail1n-accurate.json)"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    engine = FaceEngine.load(Settings.load().replace(profile=args.profile))
    root = L.data_root()
    lfw, utk = load_lfw(root / "lfw"), load_utkface(root / "utkface")
    emb_l = embed_spec(engine, lfw, cache_dir=default_cache_dir(), workers=1)
    shipped80 = default_calibration(engine.model_id).score_for_similarity(80.0)
    fit_rows, eval_rows = lfw_split(lfw, 0)
    fit_rows = fit_rows[emb_l.status[fit_rows] == FACE]
    eval_rows = eval_rows[emb_l.status[eval_rows] == FACE]
    if args.max_per_identity:
        status = np.full(len(lfw.images), NO_FACE)
        status[fit_rows] = FACE
        fit_rows = np.flatnonzero(limit_per_identity(lfw, status, args.max_per_identity)[0] == FACE)
    cal = fit_half_calibration(lfw, emb_l.vectors, fit_rows, engine.model_id)
    raw80 = cal.score_for_similarity(80.0)
    result: dict[str, Any] = {
        "machine": machine_record(),
        "k": K,
        "max_per_identity": args.max_per_identity,
        "calibration_pairs": cal.impostor_pairs,
        "calibration": cal.model,
        "similarity_80_score": raw80,
        "shipped_similarity_80_score": shipped80,
    }
    ident = np.array([lfw.images[i].identity for i in eval_rows])
    sex = np.array([lfw.images[i].groups.get("sex", "?") for i in eval_rows])
    first = np.unique(ident, return_index=True)[1]  # the gallery: each person's first image
    self_col = np.full(len(eval_rows), -1)
    self_col[first] = np.arange(len(first))
    v = emb_l.vectors[eval_rows]
    sv = sface_vectors(engine.model_id, v)
    probes, gallery = Side(v, ident, sex, sv), Side(v[first], ident[first], sex[first], sv[first])
    groups = {g: np.flatnonzero(sex == g) for g in ("female", "male")}
    result["lfw"] = {
        "held_apart_calibration": evaluate(groups, probes, gallery, self_col, cal),
        "shipped_calibration": evaluate(groups, probes, gallery, self_col, default_calibration(engine.model_id)),
    }
    if args.lfw_only:
        print(json.dumps(result, indent=1))
        return
    emb_u = embed_spec(engine, utk, cache_dir=default_cache_dir(), workers=1)
    face = np.flatnonzero(emb_u.status == FACE)
    rule = sface_vectors(engine.model_id, emb_u.vectors)  # the 0.9 and 0.6 rules are SFace's
    dropped = duplicate_rows(rule, face, [None] * len(utk.images))
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
    everyone = Side(emb_u.vectors[rows], np.arange(len(rows)), cell, rule[rows])
    result["utk"] = evaluate(groups_u, everyone, everyone, np.arange(len(rows)), cal)
    result["utk_shipped_calibration"] = evaluate(
        groups_u, everyone, everyone, np.arange(len(rows)), default_calibration(engine.model_id)
    )
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["model"] = engine.model_id
    stem = "tail1n" + (f"-cap{args.max_per_identity}" if args.max_per_identity else "")
    save_result(RESULTS / (stem + ("" if args.profile == "default" else f"-{args.profile}") + ".json"), result)


if __name__ == "__main__":
    main()
