"""People clustering benchmark: quality on LFW against its identity labels, and speed at scale.

    nice -n 5 .venv/bin/python bench/cluster.py                 # writes bench/results/cluster.{json,md}
    nice -n 5 .venv/bin/python bench/cluster.py --full-sizes 100000 --assign-size 1000000

LFW (13,233 images, 5,749 people): the embeddings of ``facetrust audit`` (its cache under
``~/.cache/facetrust/audit``; the script embeds what is missing, with 2 workers). Images
without a usable face are left out. The people are split in two halves by a seeded shuffle:
the threshold is chosen on half A only (the highest pairwise F with pairwise precision ≥ 0.97)
and then reported on half B and on the whole set, each clustered as its own collection. A face
left unclustered counts as a cluster of one. Metrics: pairwise precision/recall/F over all
pairs of faces, and BCubed precision/recall/F. The full pass is what ``FaceService`` runs: the
collection's exact index searched for 17 neighbours of every face, then ``people.cluster``.

Incremental: the full pass clusters a seeded 90 % of LFW, then the other 10 % are placed one
at a time with ``people.assign`` (as ``FaceService`` does for faces indexed since a pass),
and the result is scored like a full pass.

Scale: synthetic faces as bench/search.py makes them (a multivariate normal with the mean and
covariance of the real embeddings, L2-normalised) added to the real ones. A full pass (exact
kNN + clustering) at ``--full-sizes``, and incremental assignment (batched kNN on a pq index,
then ``assign`` per face) into a gallery of ``--assign-size``. Peak RSS is recorded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw_data as L
from facetrust.config import Settings
from facetrust.engine import FaceEngine
from facetrust.fairness.datasets import load_lfw
from facetrust.fairness.embedding import FACE
from facetrust.fairness.runner import embed_spec
from facetrust.index import choose_backend, create_index
from facetrust.people.cluster import Faces, assign, cluster, cosine
from host import cpu_model, load_avg

RESULTS = Path(__file__).resolve().parent / "results"
SEED = 20261129
NEIGHBOURS = 16
RECALL_SAMPLE = 2000  # faces whose pq neighbours are checked against exact search
SWEEP = (70.0, 75.0, 80.0, 85.0, 90.0)  # edge threshold, Similarity
LINKAGES = (0.45, 0.5, 0.55, 0.6, 0.65, 0.7)  # centroid cosine
GOAL = {"pairwise_f": 0.90, "pairwise_precision": 0.97, "full_pass_s": 30.0}


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def lfw_faces(engine: FaceEngine) -> tuple[np.ndarray, np.ndarray]:
    spec = load_lfw(L.data_root() / "lfw")
    emb = embed_spec(engine, spec, cache_dir=engine.settings.resolved_cache_dir, workers=2)
    keep = emb.status == FACE
    ids = np.array([r.identity for r in spec.images])
    return emb.vectors[keep].astype(np.float32), ids[keep]


def knn(vectors: np.ndarray, k: int = NEIGHBOURS + 1, backend: str = "exact") -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest faces of every face (itself included), as the service's full pass finds
    them: one ``search_batch`` of every face on the collection's index (``auto`` picks the backend
    by size, as a collection does; building the index is not counted here)."""
    index = create_index(backend, vectors.shape[1], expected_size=len(vectors))
    index.add(np.arange(len(vectors)), vectors)
    hits = index.search_batch(vectors, k)
    return np.asarray(hits.keys), np.asarray(hits.scores)


def labels_of(n: int, groups: list[list[int]]) -> np.ndarray:
    """A label per face: its cluster's number, or a fresh one of its own when unclustered."""
    labels = np.arange(len(groups), len(groups) + n)
    for i, members in enumerate(groups):
        labels[members] = i
    return labels


def _pairs(counts: np.ndarray) -> float:
    return float((counts * (counts - 1) / 2).sum())


def scores(labels: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Pairwise and BCubed precision, recall and F of ``labels`` against ``truth``."""
    _, t = np.unique(truth, return_inverse=True)
    _, joint, both = np.unique(labels.astype(np.int64) * (t.max() + 1) + t, return_inverse=True, return_counts=True)
    _, lab_inv, lab_n = np.unique(labels, return_inverse=True, return_counts=True)
    t_n = np.bincount(t)
    tp, pred, true = _pairs(both), _pairs(lab_n), _pairs(t_n)
    p, r = (tp / pred if pred else 1.0), tp / true
    cell = both[joint]
    bp, br = float((cell / lab_n[lab_inv]).mean()), float((cell / t_n[t]).mean())

    def f(a: float, b: float) -> float:
        return 2 * a * b / (a + b) if a + b else 0.0

    return {
        "pairwise_precision": round(p, 4),
        "pairwise_recall": round(r, 4),
        "pairwise_f": round(f(p, r), 4),
        "bcubed_precision": round(bp, 4),
        "bcubed_recall": round(br, 4),
        "bcubed_f": round(f(bp, br), 4),
        "clusters": int((lab_n > 1).sum()),
        "unclustered": int((lab_n == 1).sum()),
    }


def faces_of(n: int) -> Faces:
    """One face per image (LFW), no users, no corrections."""
    return Faces(image_of={i: str(i) for i in range(n)}, user_of={})


def full_pass(
    vectors: np.ndarray, score: float, linkage: float, backend: str = "exact"
) -> tuple[list[list[int]], tuple[np.ndarray, np.ndarray], float, float, float]:
    """Clusters, the neighbour graph, and the seconds to build the index, find the kNN and cluster."""
    t0 = time.perf_counter()
    index = create_index(backend, vectors.shape[1], expected_size=len(vectors))
    index.add(np.arange(len(vectors)), vectors)
    t1 = time.perf_counter()
    hits = index.search_batch(vectors, NEIGHBOURS + 1)
    graph = np.asarray(hits.keys), np.asarray(hits.scores)
    del index, hits
    t2 = time.perf_counter()
    groups = cluster(np.arange(len(vectors)), vectors, graph, faces_of(len(vectors)), score, linkage)
    return groups, graph, t1 - t0, t2 - t1, time.perf_counter() - t2


def sweep(vectors: np.ndarray, truth: np.ndarray, engine: FaceEngine) -> list[dict[str, Any]]:
    graph = knn(vectors)
    faces = faces_of(len(vectors))
    keys = np.arange(len(vectors))
    out = []
    for sim in SWEEP:
        score = engine.calibration.score_for_similarity(sim)
        for linkage in LINKAGES:
            groups = cluster(keys, vectors, graph, faces, score, linkage)
            out.append({"threshold": sim, "linkage": linkage, **scores(labels_of(len(vectors), groups), truth)})
    return out


def choose(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in rows if r["pairwise_precision"] >= GOAL["pairwise_precision"]]
    return max(ok or rows, key=lambda r: (r["pairwise_f"], r["threshold"], r["linkage"]))


def same(rows: list[dict[str, Any]], like: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in rows if (r["threshold"], r["linkage"]) == (like["threshold"], like["linkage"]))


class Placer:
    """Places new faces one at a time, as ``FaceService`` does (``assign`` with centroid agreement)."""

    def __init__(self, vectors: np.ndarray, groups: list[list[int]], n: int, score: float, linkage: float) -> None:
        self.vectors, self.score, self.linkage = vectors, score, linkage
        self.faces = faces_of(n)
        self.label_of: dict[int, str | None] = {}
        self.members_of = {str(i): list(g) for i, g in enumerate(groups)}
        self.sums = {str(i): vectors[g].sum(axis=0) for i, g in enumerate(groups)}

    def known(self, keys: Any) -> None:
        self.label_of.update(dict.fromkeys(keys))
        for label, members in self.members_of.items():
            self.label_of.update(dict.fromkeys(members, label))

    def place(self, key: int, vec: np.ndarray, found: list[tuple[int, float]]) -> None:
        def agrees(what: str | int) -> bool:
            return cosine(vec, self.sums[what] if isinstance(what, str) else self.vectors[what]) >= self.linkage

        label, mate = assign(key, found, self.label_of, self.members_of, self.faces, self.score, agrees)
        if mate is not None:
            label = f"n{key}"
            self.members_of[label], self.sums[label] = [mate], self.vectors[mate].copy()
            self.label_of[mate] = label
        if label is not None:
            self.members_of[label].append(key)
            self.sums[label] = self.sums[label] + vec
        self.label_of[key] = label

    def groups(self) -> list[list[int]]:
        return [m for m in self.members_of.values() if len(m) > 1]


def incremental(vectors: np.ndarray, truth: np.ndarray, score: float, linkage: float) -> dict[str, Any]:
    rng = np.random.default_rng(SEED + 1)
    order = rng.permutation(len(vectors))
    cut = int(0.9 * len(vectors))
    base, new = np.sort(order[:cut]), order[cut:]
    nb, sc = knn(vectors[base])
    graph = (np.where(nb >= 0, base[np.maximum(nb, 0)], -1), sc)
    groups = cluster(base, vectors[base], graph, faces_of(len(vectors)), score, linkage)
    placer = Placer(vectors, groups, len(vectors), score, linkage)
    placer.known(base.tolist())
    all_nb, all_sc = knn(vectors)  # the index holds every face; unplaced ones are skipped
    t0 = time.perf_counter()
    for key in new.tolist():
        placer.place(key, vectors[key], list(zip(all_nb[key].tolist(), all_sc[key].tolist())))
    took = time.perf_counter() - t0
    return {
        "placed": len(new),
        "assign_s": round(took, 3),
        "assign_faces_per_s": round(len(new) / took, 1),
        **scores(labels_of(len(vectors), placer.groups()), truth),
    }


def synthetic(real: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    mean, cov = real.mean(axis=0, dtype=np.float64), np.cov(real, rowvar=False)
    out = np.empty((n, real.shape[1]), np.float32)
    for start in range(0, n, 100_000):
        x = rng.multivariate_normal(mean, cov, size=min(100_000, n - start), method="cholesky")
        out[start : start + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def neighbour_recall(vectors: np.ndarray, graph: tuple[np.ndarray, np.ndarray], score: float) -> dict[str, Any]:
    """How many of the true (exact) neighbours of a seeded sample of faces the graph holds: all
    ``NEIGHBOURS + 1`` of them, and those at or above the edge threshold (the ones clustering uses)."""
    rng = np.random.default_rng(SEED + 3)
    real = np.arange(min(RECALL_SAMPLE // 2, len(vectors)))  # real faces come first: they have close neighbours
    sample = np.union1d(
        rng.choice(real, min(len(real), RECALL_SAMPLE // 2), replace=False),
        rng.choice(len(vectors), min(len(vectors), RECALL_SAMPLE // 2), replace=False),
    )
    exact = create_index("exact", vectors.shape[1])
    exact.add(np.arange(len(vectors)), vectors)
    truth = exact.search_batch(vectors[sample], NEIGHBOURS + 1)
    del exact
    found = [set(graph[0][i].tolist()) for i in sample.tolist()]
    hit = [[key in f for key in row.tolist()] for f, row in zip(found, truth.keys)]
    strong = truth.scores >= score
    return {
        "sample": len(sample),
        "recall_at_k": round(float(np.mean(hit)), 4),
        "edges_at_threshold": int(strong.sum()),
        "recall_of_edges": round(float(np.asarray(hit)[strong].mean()), 4) if strong.any() else None,
    }


def scale_full(real: np.ndarray, truth: np.ndarray, size: int, score: float, linkage: float) -> dict[str, Any]:
    """A full pass over ``size`` faces (the real LFW ones first, then synthetic) on the index ``auto``
    picks for that size; the real faces' clustering quality inside it; pq neighbour recall."""
    vectors = np.vstack([real, synthetic(real, size - len(real), np.random.default_rng(SEED + size))])
    backend = choose_backend(size)
    load = load_avg()
    groups, graph, build_s, knn_s, cluster_s = full_pass(vectors, score, linkage, backend)
    out = {
        "faces": size,
        "backend": backend,
        "index_build_s": round(build_s, 2),
        "knn_s": round(knn_s, 2),
        "cluster_s": round(cluster_s, 2),
        "total_s": round(knn_s + cluster_s, 2),
        "clusters": len(groups),
        "load_before": load,
        "load_after_pass": load_avg(),
        "peak_rss_mb": peak_rss_mb(),
        "real_faces": scores(labels_of(size, groups)[: len(real)], truth),
    }
    if backend != "exact":
        out["recall_vs_exact"] = neighbour_recall(vectors, graph, score)
    return out


def scale_assign(real: np.ndarray, size: int, score: float, linkage: float, new: int = 2000) -> dict[str, Any]:
    """Place ``new`` faces (half held-out real, half synthetic) into a gallery of ``size`` faces."""
    rng = np.random.default_rng(SEED + 2)
    held = rng.choice(len(real), new // 2, replace=False)
    kept = np.setdiff1d(np.arange(len(real)), held)
    gallery = np.vstack([real[kept], synthetic(real, size - len(kept), rng), real[held]])
    gallery[len(gallery) - len(held) :] = real[held]
    queries = np.vstack([real[held], synthetic(real, new - len(held), rng)])
    everything = np.vstack([gallery[:size], queries])
    del gallery
    groups = cluster(np.arange(len(kept)), real[kept], knn(real[kept]), faces_of(len(kept)), score, linkage)
    t0 = time.perf_counter()
    index = create_index("pq", everything.shape[1])
    index.add(np.arange(len(everything)), everything)
    build_s = time.perf_counter() - t0
    placer = Placer(everything, groups, len(everything), score, linkage)
    placer.known(range(size))
    load = load_avg()
    t0 = time.perf_counter()
    for start in range(0, new, 256):
        hits = index.search(queries[start : start + 256], NEIGHBOURS + 1)
        for j in range(len(hits)):
            found = list(zip(*(a.tolist() for a in hits[j])))
            placer.place(size + start + j, queries[start + j], found)
    took = time.perf_counter() - t0
    placed = [placer.label_of[size + i] is not None for i in range(new)]
    return {
        "gallery": size,
        "placed": new,
        "index_build_s": round(build_s, 1),
        "assign_s": round(took, 2),
        "faces_per_s": round(new / took, 1),
        "real_new_faces_clustered": round(sum(placed[: new // 2]) / (new // 2), 3),
        "synthetic_new_faces_clustered": round(sum(placed[new // 2 :]) / (new - new // 2), 4),
        "load_before": load,
        "peak_rss_mb": peak_rss_mb(),
    }


def lfw_part(engine: FaceEngine, vectors: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    people = np.unique(truth)
    half = set(np.random.default_rng(SEED).permutation(people)[: len(people) // 2].tolist())
    in_a = np.array([t in half for t in truth])
    tuning = sweep(vectors[in_a], truth[in_a], engine)
    chosen = choose(tuning)
    score, linkage = engine.calibration.score_for_similarity(chosen["threshold"]), chosen["linkage"]
    held = sweep(vectors[~in_a], truth[~in_a], engine)
    a_keys = np.flatnonzero(in_a)
    single = cluster(  # the same threshold without the centroid test: plain single-link clustering
        np.arange(len(a_keys)), vectors[a_keys], knn(vectors[a_keys]), faces_of(len(a_keys)), score, -1.0
    )
    load = load_avg()
    groups, _, _, knn_s, cluster_s = full_pass(vectors, score, linkage)
    return {
        "faces": len(vectors),
        "people": len(people),
        "half_a": {"faces": int(in_a.sum()), "people": len(half)},
        "half_b": {"faces": int((~in_a).sum()), "people": len(people) - len(half)},
        "threshold": chosen["threshold"],
        "threshold_cosine": round(score, 4),
        "linkage": linkage,
        "tuned_on_a": chosen,
        "held_out_b": same(held, chosen),
        "best_on_b": choose(held),
        "single_link_on_a": scores(labels_of(len(a_keys), single), truth[in_a]),
        "all": {**scores(labels_of(len(vectors), groups), truth), "knn_s": round(knn_s, 2)},
        "full_pass_s": round(knn_s + cluster_s, 2),
        "full_pass_load_before": load,
        "incremental": incremental(vectors, truth, score, linkage),
        "sweep_a": tuning,
        "sweep_b": held,
    }


def render(r: dict[str, Any]) -> str:
    lfw = r["lfw"]
    lines = [
        "# People clustering (bench/cluster.py)",
        "",
        f"Machine: {r['machine']['cpu']}, {r['machine']['cores']} cores; load average before "
        f"{r['machine']['load_before']}, after {r['machine'].get('load_after')}. {r['machine']['when']}.",
        "",
        f"LFW: {lfw['faces']} faces with a usable face, {lfw['people']} people. Threshold chosen on half A "
        f"({lfw['half_a']['people']} people): edges at Similarity {lfw['threshold']:g} (cosine "
        f"{lfw['threshold_cosine']}), centroid linkage cosine {lfw['linkage']}.",
        "",
        "| set | pairwise P | pairwise R | pairwise F | BCubed P | BCubed R | BCubed F | clusters | unclustered |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [
        ("half A (tuning)", lfw["tuned_on_a"]),
        ("half B (held out)", lfw["held_out_b"]),
        ("all LFW", lfw["all"]),
        ("all LFW, 10 % placed incrementally", lfw["incremental"]),
    ]
    for name, m in rows:
        lines.append(
            f"| {name} | {m['pairwise_precision']} | {m['pairwise_recall']} | {m['pairwise_f']} | "
            f"{m['bcubed_precision']} | {m['bcubed_recall']} | {m['bcubed_f']} | {m['clusters']} | {m['unclustered']} |"
        )
    b = lfw["best_on_b"]
    lines += [
        "",
        f"Plain single-link clustering (no centroid test) at the same threshold on half A: pairwise P "
        f"{lfw['single_link_on_a']['pairwise_precision']}, F {lfw['single_link_on_a']['pairwise_f']}.",
        f"Best setting on half B alone (for comparison, not used): Similarity {b['threshold']:g}, linkage "
        f"{b['linkage']} "
        f"(pairwise P {b['pairwise_precision']}, F {b['pairwise_f']}).",
        f"Full pass on all LFW: {lfw['full_pass_s']} s (kNN {lfw['all']['knn_s']} s), load before "
        f"{lfw['full_pass_load_before']}. Incremental placement: {lfw['incremental']['assign_faces_per_s']} faces/s "
        "(assignment only; kNN precomputed).",
        "",
        "## Scale (real + synthetic faces)",
        "",
        "Full pass as `FaceService` runs it: `search_batch` of every face on the index `auto` picks, then "
        "`people.cluster`. Real LFW faces inside the gallery: pairwise P / R / F of their clustering.",
        "",
        "| faces | index | index build s | kNN s | clustering s | full pass s | peak RSS MB | real LFW P / R / F | "
        "load before | load after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in sorted(r["full"], key=lambda s: s["faces"]):
        q = s.get("real_faces", {})
        lines.append(
            f"| {s['faces']:,} | {s.get('backend', 'exact')} | {s.get('index_build_s', '')} | {s['knn_s']} | "
            f"{s['cluster_s']} | {s['total_s']} | {s['peak_rss_mb']} | {q.get('pairwise_precision')} / "
            f"{q.get('pairwise_recall')} / {q.get('pairwise_f')} | {s['load_before']} | {s.get('load_after_pass')} |"
        )
    for s in r["full"]:
        if "recall_vs_exact" in s:
            rc = s["recall_vs_exact"]
            lines += [
                "",
                f"Neighbours of the pq pass at {s['faces']:,} against exact search, {rc['sample']} sampled faces "
                f"(half real): recall@{NEIGHBOURS + 1} {rc['recall_at_k']}; of the {rc['edges_at_threshold']} "
                f"true neighbours at or above the edge threshold, {rc['recall_of_edges']} found.",
            ]
    for a in r["assign"]:
        lines += [
            "",
            f"Incremental assignment into {a['gallery']:,} faces (pq index, built in {a['index_build_s']} s): "
            f"{a['placed']} faces in {a['assign_s']} s = **{a['faces_per_s']} faces/s** (batched kNN + assign); "
            f"held-out real faces clustered {a['real_new_faces_clustered']}, synthetic "
            f"{a['synthetic_new_faces_clustered']}; peak RSS {a['peak_rss_mb']} MB; load before {a['load_before']}.",
        ]
    lines += ["", f"Goal: {r['goal']}.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full-sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--assign-size", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    machine = {
        "cpu": cpu_model(),
        "cores": len(__import__("os").sched_getaffinity(0)),
        "python": platform.python_version(),
        "load_before": load_avg(),
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    engine = FaceEngine.load(Settings())
    vectors, truth = lfw_faces(engine)
    result: dict[str, Any] = {"machine": machine, "seed": SEED, "goal": GOAL, "model": engine.model_id}
    result["lfw"] = lfw_part(engine, vectors, truth)
    print(json.dumps({k: v for k, v in result["lfw"].items() if not k.startswith("sweep")}, indent=1), flush=True)
    score, linkage = result["lfw"]["threshold_cosine"], result["lfw"]["linkage"]
    result["full"], result["assign"] = [], []
    save(result, args.out)  # after every stage, so a long run leaves what it finished
    for n in args.full_sizes:
        result["full"].append(scale_full(vectors, truth, n, score, linkage))
        save(result, args.out)
    for n in args.assign_size:
        result["assign"].append(scale_assign(vectors, n, score, linkage))
        save(result, args.out)
    print(render(result))


def save(result: dict[str, Any], out: Path) -> None:
    result["machine"]["load_after"] = load_avg()
    result["peak_rss_mb"] = peak_rss_mb()
    out.mkdir(parents=True, exist_ok=True)
    (out / "cluster.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "cluster.md").write_text(render(result))


if __name__ == "__main__":
    main()
