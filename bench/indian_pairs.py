"""Which held-out impostor pairs carry a 1:1 method's false matches at Similarity 80 (issue 11).

    nice -n 5 .venv/bin/python bench/indian_pairs.py                   # seeds 0 and 1: indian-pairs.{json,md}
    nice -n 5 .venv/bin/python bench/indian_pairs.py --seeds 0         # one split only
    nice -n 5 .venv/bin/python bench/indian_pairs.py --render-only     # rewrite the .md from the .json

Every label-free 1:1 variant that lowers children's false matches raises held-out Indian adults'
FMR at Similarity 80, and the evaluation halves hold only about 210 Indian adult images. This asks
whether that rise is broad or carried by a few images. For the default (``shipped``: cluster offsets
on raw faces) and ``whiten+fsn`` (whitening, then the offsets refitted on whitened faces), each
built exactly as bench/whiten_variants.py builds them (``prepare``; whitening's ``c`` read from that
script's saved result for the seed, else chosen again on the fit halves), and each group of the
held-out UTKFace half (Indian and White adults: same race, matched on sex and age band; children
0–12: matched on race and sex), over the same-group impostor pairs scoring at or above the method's
own Similarity 80:

* false-match pairs and the distinct images in them; the share of those pairs that touch one of
  the top 1 / 5 / 10 images (ranked by their false-match pairs), and the Gini coefficient of false
  matches per image over the group's images;
* the pairs by raw cosine: ≥ 0.6 (presumed the same person), 0.5–0.6 (possibly unlabelled
  same-person pairs just under that exclusion), < 0.5;
* the false-match images by the kind of cluster (the method's own k-means clusters) nearest to
  them: thin (no offset: offset 0), unreliable (``fsn_fit``'s in-sample rule until November 30,
  2026, on the fit pairs at the method's Similarity 80), ordinary; and the same shares over all the group's images;
* FMR with its 95 % bootstrap interval (the audit's, over images, 200 replicates; the group alone
  is audited, so the interval's random stream differs slightly from the full audit's, the value
  does not) over all pairs, without pairs at raw cosine ≥ 0.6 and ≥ 0.5, and after leaving out the
  top 1 / 3 / 5 images of either method (each method's FMR without the same images).

Only aggregates are written: counts, shares and rates, never an image, a name or a score per image.
Results: bench/results/indian-pairs.{json,md}; what they mean: docs/fairness.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cohort_variants as CV
import fairnorm as FN
import fsn_fit as F
import fsn_variants as FV
import whiten_variants as WV
from facetrust.fairness import clusterfit as CF
from facetrust.fairness.audit import Group, audit_analysis, groups_of
from facetrust.fairness.embedding import FACE, NO_FACE, DatasetEmbeddings
from facetrust.fairness.pairs import CosineScorer, impostor_blocks
from host import machine_record, save_result

RESULT = FV.RESULTS / "indian-pairs.json"
METHODS = {"shipped": "default (cluster offsets)", "whiten+fsn": "whitening + offsets"}
GROUPS = {"Indian adults": (0, "Indian"), "White adults": (0, "White"), "children 0-12": (2, "0-12")}
TOP = (1, 5, 10)
LEAVE_OUT = (1, 3, 5)
LIMITS = (0.6, 0.5)
CHUNK = 500_000
BANDS = ((">=0.6", 0.6, 9.0), ("0.5-0.6", 0.5, 0.6), ("<0.5", -9.0, 0.5))


class Method:
    """One method on one split: its scorer factory, Similarity-80 score and each face's cluster kind."""

    def __init__(self, name: str, fit: dict[str, F.Part], sets: list[CF.PairSet], seed: int) -> None:
        saved = CV.result_file("whiten-variants", seed)
        if name != "shipped" and saved.exists() and ("whiten", seed) not in WV.CHOSEN:
            info = json.loads(saved.read_text())["variants"][name]["info"]
            WV.CHOSEN["whiten", seed] = (info["c"], info)
        tr, shifted, self.info = WV.prepare(name, fit, sets, seed)
        assert shifted is not None  # both methods refit the offsets
        self.tr, self.shifted = tr, shifted
        cal = CF.fit_mixture_calibration([CV.table_scores(fit, self.scorer)], model=name, dataset="lfw fit half")
        self.t80 = cal.score_for_similarity(80)
        self.thin = set(self.info.get("thin_clusters", []))
        self.unreliable = set(self.unreliable_clusters(sets))

    def scorer(self, vectors: np.ndarray) -> Any:
        return self.shifted.scorer(self.tr(vectors))

    def nearest(self, vectors: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.argmax(self.tr(vectors) @ self.shifted.centroids.T, axis=1)
        return out

    def unreliable_clusters(self, sets: list[CF.PairSet]) -> tuple[int, ...]:
        """The in-sample rule bench/fsn_fit.py used until November 30, 2026: on the fit pairs, at this
        method's Similarity 80."""
        k = len(self.shifted.centroids)
        n, high = np.zeros(k, np.int64), np.zeros(k, np.int64)
        for ps in sets:
            nearest, scorer = self.nearest(ps.vectors), self.scorer(ps.vectors)
            for s in range(0, len(ps.a), CHUNK):
                a, b = ps.a[s : s + CHUNK], ps.b[s : s + CHUNK]
                dn, dh = CF.tail_counts(nearest, scorer.pairs(a, b), a, b, self.t80, k)
                n, high = n + dn, high + dh
        return CF.unreliable_clusters(n, high, F.UNRELIABLE_TOLERANCE)

    def kinds(self, vectors: np.ndarray) -> np.ndarray:
        c = self.nearest(vectors)
        return np.array(["thin" if x in self.thin else "unreliable" if x in self.unreliable else "ordinary" for x in c])


def group_of(utk: F.Part, group: str) -> Group:
    analysis, name = GROUPS[group]
    return next(g for g in groups_of(utk.spec, utk.status, utk.spec.analyses[analysis]) if g.name == name)


def group_rows(utk: F.Part, group: str) -> np.ndarray:
    g = group_of(utk, group)
    out: np.ndarray = g.rows[g.has_face]
    return out


def false_matches(m: Method, utk: F.Part, group: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows (a, b) of the group's impostor pairs at or above ``m``'s Similarity 80, and the pair count."""
    g = group_of(utk, group)
    rows, ident, cell = g.rows[g.has_face], g.identity[g.has_face], g.cell[g.has_face]
    scorer, a, b, total = m.scorer(utk.emb.vectors), [], [], 0
    for scores, i, j in impostor_blocks(scorer, rows, ident, cell):
        hit = scores >= m.t80
        a.append(rows[i[hit]])
        b.append(rows[j[hit]])
        total += len(scores)
    return np.concatenate(a), np.concatenate(b), total


def bands(raw: np.ndarray) -> dict[str, int]:
    """Pairs by raw cosine: ≥ 0.6 (presumed the same person), 0.5–0.6, < 0.5."""
    return {name: int(np.sum((raw >= low) & (raw < high))) for name, low, high in BANDS}


def all_pair_bands(utk: F.Part, group: str) -> dict[str, int]:
    """``bands`` over every impostor pair of the group, matching or not."""
    g, out = group_of(utk, group), dict.fromkeys((b[0] for b in BANDS), 0)
    keep = g.has_face
    for raw, _, _ in impostor_blocks(CosineScorer(utk.emb.vectors), g.rows[keep], g.identity[keep], g.cell[keep]):
        out = {k: out[k] + n for k, n in bands(raw).items()}
    return out


def lfw_bands(lfw: F.Part) -> dict[str, int]:
    """``bands`` over the held-out LFW half's same-sex impostor pairs (identities known: a reference)."""
    a, b = F.pair_rows(lfw, F.CALIBRATION_ANALYSIS)
    out = dict.fromkeys((x[0] for x in BANDS), 0)
    for s in range(0, len(a), CHUNK):
        raw = CosineScorer(lfw.emb.vectors).pairs(a[s : s + CHUNK], b[s : s + CHUNK])
        out = {k: out[k] + n for k, n in bands(raw).items()}
    return out


def ranked(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(images, their false-match pairs), most first (ties by row: deterministic)."""
    rows, counts = np.unique(np.concatenate([a, b]), return_counts=True)
    order = np.lexsort((rows, -counts))
    return rows[order], counts[order]


def gini(counts: np.ndarray, images: int) -> float:
    """Gini coefficient of false matches per image over all ``images`` of the group (zeros included)."""
    x = np.sort(np.concatenate([counts, np.zeros(images - len(counts))]))
    if x.sum() == 0:
        return 0.0
    i = np.arange(1, len(x) + 1)
    return float(2 * np.sum(i * x) / (len(x) * x.sum()) - (len(x) + 1) / len(x))


def shares(kinds: np.ndarray) -> dict[str, float]:
    return {k: round(float(np.mean(kinds == k)), 3) if len(kinds) else 0.0 for k in ("thin", "unreliable", "ordinary")}


def describe(m: Method, utk: F.Part, group: str) -> tuple[dict[str, Any], np.ndarray]:
    """The aggregates of one method's false matches in one group, and its images ranked (not saved)."""
    a, b, total = false_matches(m, utk, group)
    images, per_image = ranked(a, b)
    members = group_rows(utk, group)
    v = utk.emb.vectors
    raw = np.einsum("ij,ij->i", v[a], v[b])
    out = {
        "images": len(members),
        "pairs": total,
        "false_matches": len(a),
        "fmr": len(a) / max(total, 1),
        "images_in_false_matches": len(images),
        "top_share": {str(k): round(float(np.mean(np.isin(a, images[:k]) | np.isin(b, images[:k]))), 3) for k in TOP}
        if len(a)
        else {},
        "top_pairs": [int(x) for x in per_image[: max(TOP)]],
        "gini": round(gini(per_image, len(members)), 3),
        "raw_cosine": bands(raw),
        "clusters_of_false_match_images": shares(m.kinds(v[images])),
        "clusters_of_group_images": shares(m.kinds(v[members])),
    }
    return out, images


def audited(m: Method, utk: F.Part, group: str, drop: np.ndarray, limit: float | None = None) -> list[float]:
    """FMR at ``m``'s Similarity 80 (value, 95 % interval) of the group alone, ``drop`` left out and, with
    ``limit``, pairs at raw cosine ≥ ``limit`` counted as non-matches."""
    analysis, name = GROUPS[group]
    status = np.full_like(utk.status, NO_FACE)
    keep = np.setdiff1d(group_rows(utk, group), drop)
    status[keep] = FACE
    emb = DatasetEmbeddings(utk.emb.model, utk.emb.vectors, status)
    scorer = m.scorer(utk.emb.vectors)
    if limit is not None:
        scorer = FN.WithoutSamePerson(scorer, utk.emb.vectors, limit)
    res = audit_analysis(utk.spec, emb, scorer, utk.spec.analyses[analysis], m.t80, FN.OPTIONS, analysis)
    r = next(g for g in res.groups if g.group == name and "similarity" in g.fmr).fmr["similarity"]
    return [r.value, r.interval.low, r.interval.high]


def run_seed(seed: int) -> dict[str, Any]:
    fit, held, sets = FV.split_data(seed)
    utk = held["utk"]
    methods = {name: Method(name, fit, sets, seed) for name in METHODS}
    out: dict[str, Any] = {
        name: {"threshold": m.t80, "thin_clusters": sorted(m.thin), "unreliable_clusters": sorted(m.unreliable)}
        for name, m in methods.items()
    }
    out["raw_cosine_all_pairs"] = {group: all_pair_bands(utk, group) for group in GROUPS}
    out["raw_cosine_all_pairs"]["LFW held-out, same sex"] = lfw_bands(held["lfw"])
    for group in GROUPS:
        top = {}
        for name, m in methods.items():
            found, images = describe(m, utk, group)
            found["fmr_all"] = audited(m, utk, group, np.zeros(0, np.int64))
            found["fmr_without"] = {str(x): audited(m, utk, group, np.zeros(0, np.int64), x) for x in LIMITS}
            out[name][group], top[name] = found, images
        for name, m in methods.items():
            out[name][group]["fmr_leaving_out"] = {
                f"{k} of {by}": audited(m, utk, group, top[by][:k]) for by in METHODS for k in LEAVE_OUT
            }
        print(f"seed {seed}, {group}: done", file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1], help="split seeds (0: the shipped split)")
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from the .json")
    args = parser.parse_args()
    FV.CHUNK = CHUNK  # the offsets' histograms in smaller chunks: the same counts, under 4 GB of memory
    if not args.render_only:
        result: dict[str, Any] = {"machine": machine_record(), "seeds": {}}
        for seed in args.seeds:
            result["seeds"][str(seed)] = run_seed(seed)
            save_result(RESULT, result)
    RESULT.with_suffix(".md").write_text(render(json.loads(RESULT.read_text())))


def render(result: dict[str, Any]) -> str:
    def f(r: list[float]) -> str:
        return f"{r[0]:.1e} ({r[1]:.1e}–{r[2]:.1e})"

    lines = [
        "# Which held-out impostor pairs carry the false matches at Similarity 80 (bench/indian_pairs.py)",
        "",
        f"Machine: {json.dumps(result['machine'])}. Split seeds {', '.join(result['seeds'])} (0: the split the "
        "shipped normaliser was fitted on). Held-out UTKFace half; each method at its own Similarity 80; "
        "FMR with 95 % bootstrap intervals over images (200 replicates). Aggregates only.",
    ]
    for seed, per in result["seeds"].items():
        lines += ["", f"## Split seed {seed}", ""]
        lines += [
            "| method | group | images | pairs | false matches | images in them | top 1 / 5 / 10 images' share "
            "| pairs of the top 10 images | Gini | raw ≥ 0.6 / 0.5–0.6 / < 0.5 "
            "| FM images thin / unreliable / ordinary | group images thin / unreliable / ordinary |",
            "|" + "---|" * 12,
        ]
        for name in METHODS:
            for group in GROUPS:
                g = per[name][group]
                top = " / ".join(f"{100 * g['top_share'].get(str(k), 0):.0f} %" for k in TOP)
                raw = " / ".join(str(g["raw_cosine"][k]) for k in (">=0.6", "0.5-0.6", "<0.5"))
                kinds = [
                    " / ".join(f"{100 * g[c][k]:.0f} %" for k in ("thin", "unreliable", "ordinary"))
                    for c in ("clusters_of_false_match_images", "clusters_of_group_images")
                ]
                lines.append(
                    f"| {METHODS[name]} | {group} | {g['images']} | {g['pairs']:,} | {g['false_matches']} "
                    f"| {g['images_in_false_matches']} | {top} | {', '.join(map(str, g['top_pairs']))} | {g['gini']} "
                    f"| {raw} | {kinds[0]} | {kinds[1]} |"
                )
        lines += ["", "All impostor pairs by raw cosine (≥ 0.6 / 0.5–0.6 / < 0.5), matching or not:", ""]
        for group, b in per.get("raw_cosine_all_pairs", {}).items():
            lines.append(f"* {group}: " + " / ".join(f"{b[k]:,}" for k, _, _ in BANDS))
        lines += [
            "",
            "FMR at Similarity 80: all pairs; without pairs at raw cosine ≥ 0.6 / ≥ 0.5; leaving out "
            "the top k images (ranked by the method named):",
            "",
        ]
        cols = [f"{k} of {METHODS[by]}" for by in METHODS for k in LEAVE_OUT]
        lines += [
            "| method | group | all | w/o ≥ 0.6 | w/o ≥ 0.5 | " + " | ".join(f"without top {c}" for c in cols) + " |"
        ]
        lines += ["|" + "---|" * (5 + len(cols))]
        for name in METHODS:
            for group in GROUPS:
                g = per[name][group]
                out = [f(g["fmr_leaving_out"][f"{k} of {by}"]) for by in METHODS for k in LEAVE_OUT]
                lines.append(
                    f"| {METHODS[name]} | {group} | {f(g['fmr_all'])} | {f(g['fmr_without']['0.6'])} "
                    f"| {f(g['fmr_without']['0.5'])} | " + " | ".join(out) + " |"
                )
    lines += ["", 'What it means: docs/fairness.md, "Where the Indian adults\' false matches come from".']
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
