"""UTKFace adults' "false matches" at Similarity 80, looked at: how many are one person twice (issue 11).

    .venv/bin/python bench/utk_review.py --sheets /tmp/utk-review   # contact sheets of the matches, to review
    nice -n 5 .venv/bin/python bench/utk_review.py                  # the measurement: utk-review.{json,md}
    nice -n 5 .venv/bin/python bench/utk_review.py --group children # children 0-12: utk-review-children.*
    nice -n 5 .venv/bin/python bench/utk_review.py --tag bagged     # utk-review-bagged.*: a rerun kept apart
    FACETRUST_PROFILE=accurate nice -n 5 .venv/bin/python bench/utk_review.py --tag accurate  # that profile's file
    .venv/bin/python bench/utk_review.py --render-only

UTKFace has no identities: every pair of its images in one cell (same race, sex and age band) is
counted as an impostor pair, and its README says only that every image is a different capture.
Many of its adults are well-known people photographed again and again, so some "false matches"
are the same person twice. This script lists the default engine's matches at Similarity 80
(the shipped cluster normaliser and its table) among the same-cell pairs of UTKFace adults in
the evaluation half that bench/fsn_fit.py never fitted on (``--group children``: the audit's
same-cell pairs of children 0–12), and draws them as numbered contact sheets (``--sheets DIR``:
outside the repository; images and crops are never committed).

A reviewer judges each pair ``same``, ``different`` or ``unsure`` in
``bench/review/utk-{adults,children}-sim80.csv`` (file names and a judgement only). The measurement then
reads the held-out FMR three ways, each with the audit's bootstrap over images:

* ``as measured``: every pair, as bench/fairnorm.py and the audit count them;
* ``without same``: the pairs judged the same person left out (unsure ones stay false matches:
  the upper bound);
* ``without same or unsure``: only pairs judged different people count (the lower bound).

A match the file does not judge counts as a false match in every reading, and is listed. The
judgements are one reviewer's visual ones, not identity labels: the sheets let anyone redo them.

A second model checks them: dlib's recogniser (the 'accurate' profile's second part, from
bench/fused_data.py's caches, used only if they are filled) never took part in the review. How
well its cosine separates the pairs judged one person from those judged two (AUC) is set beside
how well it separates LFW's known same and different people at the same SFace scores.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fairnorm as FN
import fsn_fit as F
import lfw_data as L
from facetrust.clusternorm import ClusterNormaliser, shipped_normaliser
from facetrust.config import Settings, default_cache_dir
from facetrust.engine import FaceEngine
from facetrust.fairness.audit import audit_analysis
from facetrust.fairness.pairs import PairScorer
from facetrust.fairness.runner import embed_spec
from facetrust.models.fused import sface_vectors
from faircal import impostor_index_pairs
from host import machine_record, save_result

RESULTS = Path(__file__).resolve().parent / "results"
REVIEWS = Path(__file__).resolve().parent / "review"
JUDGEMENTS = ("same", "different", "unsure")


@dataclass(frozen=True)
class Group:
    """Whose matches are reviewed: the pairs of one of UTKFace's analyses (0: race among adults,
    matched on sex and age band; 2: age band, matched on race and sex), within one band or all."""

    key: str
    title: str
    analysis: int
    band: str | None

    @property
    def review(self) -> Path:
        return REVIEWS / f"utk-{self.key}-sim80.csv"

    @property
    def stem(self) -> str:
        return "utk-review" if self.key == "adults" else f"utk-review-{self.key}"


GROUPS = {
    "adults": Group("adults", "UTKFace adults", 0, None),
    "children": Group("children", "UTKFace children 0–12", 2, "0-12"),
}
MIN_PAIRS = 2_000  # the race ratio's groups, as bench/fsn_variants.py
READINGS = {"as measured": (), "without same": ("same",), "without same or unsure": ("same", "unsure")}


class Without:
    """``inner`` with the listed pairs of images scored as non-matches."""

    def __init__(self, inner: PairScorer, drop: set[tuple[int, int]]) -> None:
        self.inner = inner
        self.partners: dict[int, set[int]] = {}
        for a, b in drop:
            self.partners.setdefault(a, set()).add(b)
            self.partners.setdefault(b, set()).add(a)

    def block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        out = np.array(self.inner.block(rows, cols), copy=True)
        where_col = {int(c): j for j, c in enumerate(cols)}
        for i, r in enumerate(rows):
            for b in self.partners.get(int(r), ()):
                if b in where_col:
                    out[i, where_col[b]] = -1e9
        return out

    def pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.array(self.inner.pairs(a, b), copy=True)
        hit = np.array([int(y) in self.partners.get(int(x), ()) for x, y in zip(a, b)], dtype=bool)
        out[hit] = -1e9
        return out


def held_out() -> tuple[F.Part, ClusterNormaliser]:
    engine = FaceEngine.load(Settings.load().replace(calibration_file=None))
    normaliser = shipped_normaliser(engine.model_id)
    if normaliser is None or normaliser.calibration is None:
        raise SystemExit(f"no shipped normaliser for {engine.model_id}")
    spec = F.datasets(L.data_root())["utk"]
    emb = embed_spec(engine, spec, cache_dir=default_cache_dir(), workers=1)
    return F.part(spec, emb, F.halves(spec)[1]), normaliser  # the evaluation half, as fsn_fit.split_parts


def matches(p: F.Part, normaliser: ClusterNormaliser, group: Group) -> list[dict[str, Any]]:
    """The Similarity-80 matches among the half's same-cell pairs of ``group``, file names in order."""
    assert normaliser.calibration is not None
    a, b = impostor_index_pairs(p.spec, p.status, group.analysis)
    if group.band is not None:
        inside = np.array([img.groups.get("age_band") == group.band for img in p.spec.images])[a]
        a, b = a[inside], b[inside]
    scores = normaliser.scorer(p.emb.vectors).pairs(a, b)
    sface = sface_vectors(p.emb.model, p.emb.vectors)  # the 0.6 rule is SFace's, for both profiles
    raw = np.einsum("ij,ij->i", sface[a], sface[b])
    out = []
    for i in np.flatnonzero(scores >= normaliser.calibration.score_for_similarity(80)):
        x, y = sorted(
            [(Path(p.spec.images[a[i]].path).name, int(a[i])), (Path(p.spec.images[b[i]].path).name, int(b[i]))]
        )
        out.append(
            {
                "a": x[0],
                "b": y[0],
                "rows": (x[1], y[1]),
                "raw": round(float(raw[i]), 4),
                "race": p.spec.images[a[i]].groups["race"],
            }
        )
    return out


def read_review(path: Path) -> dict[tuple[str, str], str]:
    out = {}
    with path.open(newline="") as f:
        for n, row in enumerate(csv.DictReader(f), start=2):
            if row["judgement"] not in JUDGEMENTS:
                raise SystemExit(f"{path}:{n}: judgement {row['judgement']!r} is not one of {', '.join(JUDGEMENTS)}")
            out[tuple(sorted((row["image_a"], row["image_b"])))] = row["judgement"]
    return out


def sheets(found: list[dict[str, Any]], folder: Path, seed: int = 7) -> None:
    """Numbered contact sheets (12 pairs each, a seeded order) and index.csv, in ``folder``."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    images = L.data_root() / "utkface" / "images"
    order = np.random.default_rng(seed).permutation(len(found))
    with (folder / "index.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["number", "image_a", "image_b", "raw", "race"])
        for n, i in enumerate(order):
            w.writerow([n, found[i]["a"], found[i]["b"], found[i]["raw"], found[i]["race"]])
    for sheet in range(0, len(order), 12):
        canvas = Image.new("RGB", (3 * 420, 4 * 220), "white")
        draw = ImageDraw.Draw(canvas)
        for j, i in enumerate(order[sheet : sheet + 12]):
            x, y = (j % 3) * 420, (j // 3) * 220
            for k, name in enumerate((found[i]["a"], found[i]["b"])):
                canvas.paste(Image.open(images / name).convert("RGB").resize((200, 200)), (x + 202 * k, y))
            draw.text((x + 2, y + 202), f"{sheet + j}  raw {found[i]['raw']:.2f}  {found[i]['race']}", fill="black")
        canvas.save(folder / f"sheet{sheet // 12:02d}.png")
    print(f"{len(found)} pairs on {(len(order) + 11) // 12} sheets in {folder}", file=sys.stderr)


WINDOW = (0.4, 0.6)  # SFace raw cosine: where the matches below the presumed-same rule lie


def auc(a: np.ndarray, b: np.ndarray) -> float | None:
    """P(a random value of ``a`` exceeds one of ``b``), ties half."""
    if not len(a) or not len(b):
        return None
    return float(((a[:, None] > b[None, :]).sum() + 0.5 * (a[:, None] == b[None, :]).sum()) / (len(a) * len(b)))


def quartiles(x: np.ndarray) -> list[float] | str:
    return np.round(np.percentile(x, [25, 50, 75]), 4).tolist() if len(x) else "–"


def lfw_reference(fused: Any) -> dict[str, Any]:
    """dlib cosines of LFW View-2 image pairs whose default SFace cosine lies in ``WINDOW``, by truth."""
    sv, dv = fused.default_vectors(), fused.dlib
    ok = np.linalg.norm(sv, axis=1) > 0
    people = np.array([p.split("/")[0] for p in fused.paths])
    same, diff = [], []
    for s in range(0, len(sv), 1000):
        r, c = np.nonzero((sv[s : s + 1000] @ sv.T >= WINDOW[0]) & (sv[s : s + 1000] @ sv.T < WINDOW[1]))
        r = r + s
        keep = (c > r) & ok[r] & ok[c]
        d = np.einsum("ij,ij->i", dv[r[keep]], dv[c[keep]])
        one = people[r[keep]] == people[c[keep]]
        same.append(d[one])
        diff.append(d[~one])
    a, b = np.concatenate(same), np.concatenate(diff)
    return {"same": [len(a), quartiles(a)], "different": [len(b), quartiles(b)], "auc": auc(a, b)}


def second_model(found: list[dict[str, Any]], judged: list[str]) -> dict[str, Any] | None:
    """dlib's view of the judged pairs and of LFW at the same SFace scores (None: no dlib cache)."""
    import fused_data as FD

    root = L.data_root()
    utk = FD.embed_fused("utkface", root / "utkface" / "images", FD.utkface_images(root / "utkface"), compute=False)
    lfw = FD.embed_fused("lfw-view2", root / "lfw" / "images", FD.lfw_view2_images(root / "lfw"), compute=False)
    if utk is None or lfw is None:
        return None
    row = {Path(p).name: i for i, p in enumerate(utk.paths)}
    have = [(m, j) for m, j in zip(found, judged) if m["a"] in row and m["b"] in row]
    d = {
        j: np.array([float(utk.dlib[row[m["a"]]] @ utk.dlib[row[m["b"]]]) for m, k in have if k == j])
        for j in JUDGEMENTS
    }
    raw = {j: np.array([m["raw"] for m, k in have if k == j]) for j in JUDGEMENTS}
    w = {j: d[j][(raw[j] >= WINDOW[0]) & (raw[j] < WINDOW[1])] for j in JUDGEMENTS}
    return {
        "window": list(WINDOW),
        "pairs": len(have),
        "utk": {j: {"all": [len(d[j]), quartiles(d[j])], "window": [len(w[j]), quartiles(w[j])]} for j in JUDGEMENTS},
        "auc_same_over_different": {"all": auc(d["same"], d["different"]), "window": auc(w["same"], w["different"])},
        "lfw": lfw_reference(lfw),
    }


def measure(p: F.Part, normaliser: ClusterNormaliser, found: list[dict[str, Any]], group: Group) -> dict[str, Any]:
    assert normaliser.calibration is not None
    review = read_review(group.review)
    judged = [review.get((m["a"], m["b"]), "not reviewed") for m in found]
    t80 = normaliser.calibration.score_for_similarity(80)
    out: dict[str, Any] = {
        "machine": machine_record(),
        "group": group.title,
        "normaliser": normaliser.score_id,
        "threshold": t80,
        "matches": len(found),
        "judgements": dict(Counter(judged)),
        "by_race": {
            race: dict(Counter(j for m, j in zip(found, judged) if m["race"] == race))
            for race in sorted({m["race"] for m in found})
        },
        "at_raw_0.6": {
            side: dict(Counter(j for m, j in zip(found, judged) if (m["raw"] >= F.SAME_PERSON) == high))
            for side, high in (("below", False), ("at or above", True))
        },
        "not_reviewed": [[m["a"], m["b"]] for m, j in zip(found, judged) if j == "not reviewed"],
        "readings": {},
        "second_model": second_model(found, judged),
    }
    for reading, left_out in READINGS.items():
        drop = {m["rows"] for m, j in zip(found, judged) if j in left_out}
        scorer = Without(normaliser.scorer(p.emb.vectors), drop)
        res = audit_analysis(p.spec, p.emb, scorer, p.spec.analyses[group.analysis], t80, FN.OPTIONS, 1)
        groups = FN.groups(res)
        if group.band is None:
            o = res.overall_fmr["similarity"]
            overall = [o.value, o.interval.low, o.interval.high]
        else:
            overall, groups = groups[group.band]["fmr"], {}
        out["readings"][reading] = {
            "left_out": len(drop),
            "overall": overall,
            "race": groups,
            "race_ratio": FN.worst_best(groups, MIN_PAIRS) if groups else None,
        }
        print(f"{reading}: {overall[0]:.2e}", file=sys.stderr)
    return out


def render(r: dict[str, Any]) -> str:
    races = sorted(r["readings"]["as measured"]["race"])
    ratio_head = ["worst/best (groups of ≥ 2,000 pairs)"] if races else []

    def counts(c: dict[str, int]) -> str:
        return ", ".join(f"{k} {c.get(k, 0)}" for k in (*JUDGEMENTS, "not reviewed") if c.get(k, 0) or k in JUDGEMENTS)

    lines = [
        f"# {r['group']}: matches at Similarity 80, reviewed (bench/utk_review.py)",
        "",
        f"Machine: {json.dumps(r['machine'])}. Scores: `{r['normaliser']}`, Similarity 80 at normalised "
        f"{r['threshold']:.4f}. Pairs: the audit's same-cell pairs of {r['group']} in the "
        "evaluation half (split seed 0, never fitted on).",
        "",
        f"Matches: {r['matches']}; judged {counts(r['judgements'])} (at raw cosine below 0.6: "
        f"{counts(r['at_raw_0.6']['below'])}; at or above: {counts(r['at_raw_0.6']['at or above'])}).",
        "",
        "| race | " + " | ".join(JUDGEMENTS) + " |",
        "|---|" + "---|" * len(JUDGEMENTS),
    ]
    for race, counts in r["by_race"].items():
        lines.append(f"| {race} | " + " | ".join(str(counts.get(j, 0)) for j in JUDGEMENTS) + " |")
    lines += [
        "",
        "FMR at Similarity 80 (95 % bootstrap interval over images), each reading:",
        "",
        "| " + " | ".join(["reading", "pairs left out", r["group"], *races, *ratio_head]) + " |",
        "|---" * (3 + len(races) + len(ratio_head)) + "|",
    ]
    for reading, x in r["readings"].items():
        cells = [FN.fmt(x["race"][g]["fmr"]) + f" [{x['race'][g]['pairs']}]" for g in races]
        ratio = [f"{x['race_ratio']:.2f}×" if x["race_ratio"] else "–"] if races else []
        lines.append("| " + " | ".join([reading, str(x["left_out"]), FN.fmt(x["overall"]), *cells, *ratio]) + " |")
    lines += second_model_lines(r.get("second_model"))
    lines += [
        "",
        '[pairs] per group; worst/best "–": a group of ≥ 2,000 pairs had no false match left. '
        "Judgements: one reviewer's, by eye, from the contact sheets "
        "(`--sheets`); `unsure` where two photos could be one person or two. Not reviewed: "
        f'{len(r["not_reviewed"])}. What it means: docs/fairness.md, "UTKFace\'s adults: one person twice".',
    ]
    return "\n".join(lines) + "\n"


def second_model_lines(m: dict[str, Any] | None) -> list[str]:
    if m is None:
        return ["", "Second model: no dlib cache (bench/fused_data.py lfw utkface fills it)."]
    lo, hi = m["window"]
    out = [
        "",
        f"Second model, dlib (never seen in the review), cosine quartiles [25 %, median, 75 %] of the judged "
        f"pairs ({m['pairs']} with a dlib embedding), all and at SFace raw cosine {lo}–{hi}:",
        "",
        "| judgement | pairs | dlib quartiles | pairs in window | dlib quartiles in window |",
        "|---|---|---|---|---|",
    ]
    for j, v in m["utk"].items():
        out.append(f"| {j} | {v['all'][0]} | {v['all'][1]} | {v['window'][0]} | {v['window'][1]} |")
    a, ref = m["auc_same_over_different"], m["lfw"]

    def fmt(x: float | None) -> str:
        return "–" if x is None else f"{x:.3f}"

    out += [
        "",
        f"AUC of dlib's cosine, judged one person over judged two: {fmt(a['all'])} (all), {fmt(a['window'])} "
        f"(window). LFW View-2 image pairs at SFace {lo}–{hi}, by truth: same person {ref['same'][0]} pairs, "
        f"dlib {ref['same'][1]}; different people {ref['different'][0]}, dlib {ref['different'][1]}; "
        f"AUC {fmt(ref['auc'])} (LFW here is grayscale and UTKFace colour: compare the separations, not the levels).",
    ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--group", choices=GROUPS, default="adults", help="whose matches (default: adults)")
    parser.add_argument("--sheets", type=Path, help="draw the matches as contact sheets into this folder and stop")
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from the saved .json")
    parser.add_argument("--tag", help="write utk-review[-group]-TAG.* instead, beside the saved results")
    args = parser.parse_args()
    group = GROUPS[args.group]
    stem = group.stem + (f"-{args.tag}" if args.tag else "")
    if args.render_only:
        result = json.loads((RESULTS / f"{stem}.json").read_text())
    else:
        p, normaliser = held_out()
        found = matches(p, normaliser, group)
        if args.sheets:
            sheets(found, args.sheets)
            return
        result = measure(p, normaliser, found, group)
        save_result(RESULTS / f"{stem}.json", result)
    (RESULTS / f"{stem}.md").write_text(render(result))


if __name__ == "__main__":
    main()
