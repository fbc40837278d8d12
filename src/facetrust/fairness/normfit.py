"""Fit the 1:1 cluster normaliser on a deployment's own labelled data (``facetrust calibrate --normaliser``).

The shipped normalisers were fitted on LFW and UTKFace (bench/fsn_fit.py). A normaliser protects
a group only where its fit held enough of that group's impostor pairs (bench/leave_out.py:
children left out of the fit match each other at 0.24 again at Similarity 80), so a deployment
whose people crowd regions of the embedding space that LFW and UTKFace leave thin should refit it
on its own labelled faces. The recipe is the shipped one (docs/fairness.md), for any datasets:

1. **Regions.** Seeded spherical k-means over every face (near-duplicates dropped), at most 5
   faces per person, every centroid averaging at least 50 people with none above 10 % of its faces
   (``clusterfit.fit_centroids``, re-checked by ``check_privacy``).
2. **Offsets** at FMR 1e-3 (``clusterfit.cluster_offsets``). The parts are the groups of every
   analysis of every dataset (a CSV: each group column's values; LFW: sex; UTKFace: race and sex
   among adults, and age bands of all ages), each with its same-group impostor pairs, at most
   ``max_per_identity`` faces of each person. A part counts in a region where it has 20,000
   pairs there; a region is as strict as its most crowded part needs; a region whose measured
   parts hold under half of its faces is made at least as strict as its largest unmeasured
   parts need overall.
3. **Table** of the normalised scores on the same-group impostor pairs of each dataset's first
   analysis (near-duplicates dropped), every group with ``refit.TABLE_GROUP_PAIRS`` (100,000)
   pairs weighted equally, as the shipped table weights LFW's women and men equally (a group with
   fewer, or of a dataset without identities beside one with them, is left out of the table and
   named; with no such group, the pairs pooled), with identity-bootstrap intervals on the
   thresholds (``refit.fit_table``).
   Steps 1 and 2 run ``bag`` times (5 by default), the k-means seeded ``seed``, ``seed + 1``, …;
   a face's offset is the mean of its nearest region's in each fit (``ClusterNormaliser.fits``),
   so that no one k-means decides where a region's border falls.
4. **Unreliable regions**: those whose pairs (over every part) still reach the normalised
   Similarity 80 more often than 3 × its promised 1e-4, at the low end of a 95 % Wilson interval.
   A 1:1 comparison of a face there (in more than half of the fits) says its estimate is unreliable.

Where it differs from bench/fsn_fit.py: the parts are every analysis's groups (the shipped offsets'
were LFW by sex and UTKFace by three age bands), the table's groups are the first analysis's (the
shipped table's were LFW's sexes only), and by default no pair is presumed the same person. In a
dataset without identities, a person photographed twice makes a pair that counts as a false match;
that makes the normaliser stricter, never more lenient, so give identities where you have them.
``same_person`` (``facetrust calibrate --leave-out-repeats``) leaves out the offsets' pairs that
look like such repeats (``repeat_pairs``), as the shipped fit leaves out UTKFace adults' pairs at
SFace cosine 0.6, but by how the high pairs connect rather than by an age label. Labels
decide only which pairs are formed and which part they count in: nothing at run time reads one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facetrust.errors import InvalidParameterError
from facetrust.fairness.audit import groups_of
from facetrust.fairness.clusterfit import (
    MAX_PERSON_SHARE,
    MIN_PEOPLE,
    PairSet,
    check_privacy,
    cluster_offsets,
    fit_centroids,
    tail_counts,
    unreliable_clusters,
)
from facetrust.fairness.datasets import Analysis, DatasetSpec
from facetrust.fairness.embedding import FACE
from facetrust.fairness.pairs import PairScorer
from facetrust.fairness.refit import Prepared, fit_about, fit_table, prepare_datasets
from facetrust.fairness.results import Rate
from facetrust.fairness.runner import ProgressFactory

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from facetrust.calibration import Calibration
    from facetrust.clusternorm import ClusterNormaliser
    from facetrust.engine import FaceEngine

__all__ = [
    "BAG",
    "CLUSTERS",
    "MAX_PER_IDENTITY",
    "MAX_REPEAT_PARTNERS",
    "MIN_TAIL",
    "OFFSET_FMR",
    "REPEAT_FMR",
    "UNRELIABLE_SIMILARITY",
    "UNRELIABLE_TOLERANCE",
    "HeldOut",
    "HeldOutGroup",
    "NormaliserFit",
    "PartSummary",
    "bagging_record",
    "check_held_out",
    "cluster_counts",
    "fit_cluster_normaliser",
    "fit_normaliser",
    "group_pair_sets",
    "impostor_rows",
    "mark_unreliable",
    "repeat_pairs",
    "shuffled_people",
    "split_people",
]

BAG = 5  # k-means fits averaged (bagging): docs/fairness.md, "Bagging"
CLUSTERS = 64  # regions asked of the k-means (fewer remain where the privacy rule needs it)
MAX_PER_IDENTITY = 20  # faces per person in the pairs: a pair count grows with the square of one's photos
OFFSET_FMR = 1e-3
MIN_TAIL = 20  # pairs at or above the offset's score a part needs in a region: 20,000 pairs at FMR 1e-3
UNRELIABLE_SIMILARITY = 80.0
UNRELIABLE_TOLERANCE = 3e-4  # 3 × the 1e-4 that Similarity 80 promises: issue 11's tolerance
CHUNK = 2_000_000
REPEAT_FMR = 1e-6  # the raw score a pair must reach to be presumed one person: FMR 1e-6 on the engine's table
MAX_REPEAT_PARTNERS = 2  # a face in at most this many high pairs: one person photographed up to three times


@dataclass(frozen=True)
class PartSummary:
    """One group's impostor pairs in the offsets' fit: how many, and whether they count on their own
    (at least ``MIN_TAIL / OFFSET_FMR`` pairs in all)."""

    name: str
    pairs: int
    measured: bool
    repeats_left_out: int = 0  # pairs presumed one person twice (``fit_normaliser(same_person=…)``)


@dataclass(frozen=True)
class HeldOutGroup:
    """One group of the held-out people: its FMR (and TAR, where it has mated pairs) at Similarity 80
    under the refitted normaliser, and under the engine's scoring as it stands (``current``)."""

    dataset: str
    analysis: str
    group: str
    impostor_pairs: int
    fmr: Rate
    current_fmr: Rate
    tar: Rate | None = None
    current_tar: Rate | None = None

    @property
    def name(self) -> str:
        return f"{self.dataset}: {self.analysis}={self.group}" if self.analysis else f"{self.dataset}: {self.group}"


@dataclass(frozen=True)
class HeldOut:
    """What a fit held out (``people``, ``fraction`` of each dataset's people, seeded) and what it measured."""

    people: int
    fraction: float
    current: str
    groups: tuple[HeldOutGroup, ...]


@dataclass(frozen=True)
class NormaliserFit:
    """A fitted, calibrated cluster normaliser and what it was fitted on.

    ``pairs`` and ``high``: per region, the fit pairs one of its faces takes part in and those at
    or above the normalised Similarity 80 (what its unreliable flag was judged on). ``held_out``:
    the check on people kept out of the fit (``fit_cluster_normaliser(holdout=…)``), if any."""

    normaliser: ClusterNormaliser
    parts: tuple[PartSummary, ...]
    pairs: np.ndarray
    high: np.ndarray
    held_out: HeldOut | None = None


def impostor_rows(rows: np.ndarray, identity: np.ndarray, cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dataset rows (a, b) of every pair of different identities inside one cell."""
    import numpy as np

    a, b = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for c in np.unique(cell):
        members = np.flatnonzero(cell == c)
        i, j = np.triu_indices(len(members), 1)
        keep = identity[members[i]] != identity[members[j]]
        a.append(rows[members[i[keep]]])
        b.append(rows[members[j[keep]]])
    return np.concatenate(a), np.concatenate(b)


def repeat_pairs(vectors: np.ndarray, a: np.ndarray, b: np.ndarray, same_person: float) -> np.ndarray:
    """Which pairs (a, b) look like one person photographed again: raw score at ``same_person`` or
    above, and each of the two faces in at most ``MAX_REPEAT_PARTNERS`` such pairs of the set.

    A person photographed k times makes a small clique, k − 1 partners a face; a crowded group
    (UTKFace's children) makes a web in which faces have many partners, and those pairs are false
    matches the fit must keep."""
    import numpy as np

    high = np.einsum("ij,ij->i", vectors[a], vectors[b]) >= same_person
    degree = np.bincount(np.concatenate([a[high], b[high]]), minlength=len(vectors))
    out: np.ndarray = high & (degree[a] <= MAX_REPEAT_PARTNERS) & (degree[b] <= MAX_REPEAT_PARTNERS)
    return out


def group_pair_sets(p: Prepared, *, label: str | None = None, same_person: float | None = None) -> list[PairSet]:
    """One ``PairSet`` per group of every analysis of ``p``'s dataset (one set of all pairs when it
    has no analysis): the same-group impostor pairs among its faces (``p.status``), matched on the
    analysis's columns as the audit matches them. Sets are named ``"<label>: <column>=<group>"``.

    ``same_person`` (a raw score): in a dataset without identities, the pairs ``repeat_pairs``
    presumes one person twice are left out."""
    return [s for s, _ in _pair_sets_and_repeats(p, label, same_person)]


def _pair_sets_and_repeats(p: Prepared, label: str | None, same_person: float | None) -> list[tuple[PairSet, int]]:
    """``group_pair_sets``, each set with the number of its pairs left out as repeats."""
    name = label or p.spec.name
    analyses = p.spec.analyses or (Analysis("", "all pairs"),)
    out = []
    for analysis in analyses:
        for g in groups_of(p.spec, p.status, analysis, everyone=not analysis.column):
            keep = g.has_face
            a, b = impostor_rows(g.rows[keep], g.identity[keep], g.cell[keep])
            dropped = 0
            if same_person is not None and not p.spec.has_identities and len(a):
                kept = ~repeat_pairs(p.vectors, a, b, same_person)
                a, b, dropped = a[kept], b[kept], int(len(kept) - kept.sum())
            if len(a):
                title = f"{analysis.column}={g.name}" if analysis.column else g.name
                out.append((PairSet(f"{name}: {title}", p.vectors, a, b), dropped))
    return out


def cluster_counts(
    normaliser: ClusterNormaliser, sets: Sequence[PairSet], similarity: float = UNRELIABLE_SIMILARITY
) -> tuple[np.ndarray, np.ndarray]:
    """Per region, over ``sets``: (pairs one of its faces takes part in, those at ``similarity`` or
    above). A bagged normaliser's pairs count in each fit's regions."""
    import numpy as np

    if normaliser.calibration is None:
        raise InvalidParameterError("The normaliser has no calibration to read Similarity from", parameter="normaliser")
    t = normaliser.calibration.match_score(similarity)
    k = len(normaliser.centroids)
    n, high = np.zeros(k, np.int64), np.zeros(k, np.int64)
    for ps in sets:
        regions, scorer = normaliser.regions(ps.vectors), normaliser.scorer(ps.vectors)
        for s in range(0, len(ps.a), CHUNK):
            a, b = ps.a[s : s + CHUNK], ps.b[s : s + CHUNK]
            scores = scorer.pairs(a, b)
            for nearest in regions.T:
                dn, dh = tail_counts(nearest, scores, a, b, t, k)
                n, high = n + dn, high + dh
    return n, high


def mark_unreliable(
    normaliser: ClusterNormaliser, sets: Sequence[PairSet], tolerance: float = UNRELIABLE_TOLERANCE
) -> tuple[ClusterNormaliser, np.ndarray, np.ndarray]:
    """``normaliser`` with its unreliable regions marked (``unreliable_clusters`` at ``tolerance``
    over ``sets``), and the per-region counts they were judged on. Scores do not change."""
    n, high = cluster_counts(normaliser, sets)
    return normaliser.with_unreliable(unreliable_clusters(n, high, tolerance)), n, high


def _cluster_input(prepared: Sequence[Prepared]) -> tuple[np.ndarray, list[str]]:
    """Every face (near-duplicates dropped) and its person: an image without identity is its own."""
    import numpy as np

    vectors: list[np.ndarray] = []
    people: list[str] = []
    for k, p in enumerate(prepared):
        rows = np.flatnonzero(p.faces == FACE)
        vectors.append(p.vectors[rows])
        people.extend(f"{k}:" + (p.spec.images[i].identity or "\0" + str(i)) for i in rows)
    if not vectors:
        raise InvalidParameterError("No dataset was given to fit the normaliser on", parameter="datasets")
    return np.concatenate(vectors), people


def fit_normaliser(
    prepared: Sequence[Prepared],
    *,
    model: str,
    clusters: int = CLUSTERS,
    seed: int = 0,
    replicates: int = 200,
    about: dict[str, Any] | None = None,
    groups_equal: bool = True,
    same_person: float | None = None,
    bag: int = BAG,
) -> NormaliserFit:
    """The cluster normaliser of embeddings of ``model`` fitted on ``prepared`` (the module docstring).

    ``bag``: the number of k-means fits (seeded ``seed``, ``seed + 1``, …) whose offsets are averaged;
    1 fits one.

    ``groups_equal``: the table weights the first analysis's groups (those with
    ``refit.TABLE_GROUP_PAIRS`` pairs) equally; else it pools their pairs.

    ``same_person`` (a raw score; off by default): in datasets without identities, the offsets'
    pairs that ``repeat_pairs`` presumes one person photographed twice are left out. Measured
    (docs/fairness.md): it gives back some TAR and makes the normaliser a little more lenient.

    ``InvalidParameterError`` when the faces hold fewer than 50 people, when no group has the
    20,000 same-group impostor pairs an offset needs, or when the table has too few pairs.
    """
    import numpy as np

    from facetrust.clusternorm import ClusterNormaliser

    if clusters < 1:
        raise InvalidParameterError(f"clusters must be at least 1, not {clusters}", parameter="clusters")
    if bag < 1:
        raise InvalidParameterError(f"bag must be at least 1 fit, not {bag}", parameter="bag")
    vectors, people = _cluster_input(prepared)
    if (found := len(set(people))) < MIN_PEOPLE:
        raise InvalidParameterError(
            f"Every region of the normaliser must average at least {MIN_PEOPLE} different people; these datasets "
            f"hold {found} with a face (an image without an identity counts as one person)",
            parameter="datasets",
        )
    asked = min(clusters, found // MIN_PEOPLE)  # more regions than that could not each hold 50 people
    names = [p.spec.name for p in prepared]
    labels = [n if names.count(n) == 1 else f"{n} #{k + 1}" for k, n in enumerate(names)]
    counted = [
        x for p, label in zip(prepared, labels, strict=True) for x in _pair_sets_and_repeats(p, label, same_person)
    ]
    sets = [s for s, _ in counted]
    need = int(MIN_TAIL / OFFSET_FMR)
    parts = tuple(PartSummary(s.name, len(s.a), len(s.a) >= need, n) for s, n in counted)
    if not any(p.measured for p in parts):
        most = max(parts, key=lambda p: p.pairs, default=PartSummary("none", 0, False))
        raise InvalidParameterError(
            f"No group has the {need:,} same-group impostor pairs a region's offset at FMR {OFFSET_FMR:g} needs; "
            f"the most is {most.pairs:,} ({most.name}). Add faces, or fit a calibration table instead",
            parameter="datasets",
        )
    each = [_one_fit(vectors, people, sets, asked, seed + f) for f in range(bag)]
    centroids = np.concatenate([c for c, _ in each])
    offsets = np.concatenate([o for _, o in each])
    sizes = tuple(len(c) for c, _ in each)
    provenance: dict[str, Any] = {
        "made_by": "facetrust calibrate --normaliser",
        "method": "cluster-conditional score normalisation (Terhörst et al. 2020), the shipped recipe "
        "(facetrust.fairness.normfit)",
        "date": dt.date.today().isoformat(),
        "model": model,
        "datasets": [
            {
                "name": p.spec.name,
                "kind": p.spec.kind,
                "hash": p.spec.fingerprint(),
                "images": len(p.spec.images),
                "duplicates_dropped": p.duplicates_dropped,
                **({"over_identity_limit": p.over_identity_limit} if p.over_identity_limit is not None else {}),
            }
            for p in prepared
        ],
        "k_requested": clusters,
        "k_asked": asked,
        "seed": seed,
        "bagging": bagging_record(seed, sizes),
        "images_per_person": "at most 5 per person in the k-means",
        "offset_fmr": OFFSET_FMR,
        "offsets": "each region: the highest of its parts' own thresholds (a part counts where it has "
        f"{need:,} pairs); regions whose measured parts hold under half its faces: at least as strict as "
        "their largest unmeasured parts overall",
        "parts": {
            p.name: {"pairs": p.pairs, "measured": p.measured}
            | ({"repeats_left_out": p.repeats_left_out} if same_person is not None else {})
            for p in parts
        },
        "repeats": (
            {
                "same_person_score": round(same_person, 5),
                "max_partners": MAX_REPEAT_PARTNERS,
                "pairs_left_out": sum(p.repeats_left_out for p in parts),
                "rule": "in datasets without identities, offset pairs at the score or above whose two faces are "
                f"each in at most {MAX_REPEAT_PARTNERS} such pairs of their group: presumed one person twice",
            }
            if same_person is not None
            else None
        ),
        "privacy": {"min_people": MIN_PEOPLE, "max_person_share": MAX_PERSON_SHARE},
        "unreliable_rule": f"Wilson 95 % low end of a region's FMR at Similarity {UNRELIABLE_SIMILARITY:g} "
        f"above {UNRELIABLE_TOLERANCE:g}",
        **(about or {}),
    }
    plain = ClusterNormaliser(
        model, np.round(centroids, 5), np.round(offsets, 5), None, provenance, fits=sizes if bag > 1 else ()
    )
    table = fit_table(
        prepared, model=model, score_model=plain.score_id, scorer_of=plain.scorer, replicates=replicates,
        about=about, groups_equal=groups_equal,
    )  # fmt: skip
    marked, n, high = mark_unreliable(plain.with_calibration(table), sets)
    return NormaliserFit(marked, parts, n, high)


def bagging_record(seed: int, sizes: Sequence[int]) -> dict[str, Any]:
    """The provenance of a bagged fit: its fits' k-means seeds (``seed`` on) and region counts, and the rule."""
    return {
        "fits": len(sizes),
        "kmeans_seeds": list(range(seed, seed + len(sizes))),
        "regions": list(sizes),
        "rule": "a face's offset is the mean of its nearest region's offset in each fit; it is unreliable "
        "when its nearest region is marked in more than half of the fits",
    }


def _one_fit(
    vectors: np.ndarray, people: list[str], sets: Sequence[PairSet], asked: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """One k-means fit of the recipe (steps 1 and 2): its centroids and their offsets."""
    centroids, rows = fit_centroids(vectors, people, asked, seed=seed)
    if check_privacy(centroids, vectors[rows], [people[i] for i in rows]):  # fit_centroids guarantees it
        raise InvalidParameterError("A region breaks the privacy rule", parameter="clusters")
    offsets = cluster_offsets(
        centroids, sets, fmr=OFFSET_FMR, min_tail=MIN_TAIL, balance=True, strictest=True,
        min_coverage=0.5, uncovered="raise",
    )  # fmt: skip
    return centroids, offsets


def shuffled_people(spec: DatasetSpec, seed: int = 0) -> tuple[list[str], list[str]]:
    """Each image's person and the people in a seeded shuffle (an image without identity is its own
    person): take the first ones to split a dataset by person."""
    import numpy as np

    keys = [rec.identity or f"\0{i}" for i, rec in enumerate(spec.images)]
    people = np.array(sorted(set(keys)), dtype=object)
    np.random.default_rng(seed).shuffle(people)
    return keys, people.tolist()


def split_people(p: Prepared, fraction: float, seed: int = 0) -> tuple[Prepared, Prepared, int]:
    """``p`` split by person (``shuffled_people``): the rest, the held-out ``fraction`` of the
    people, and how many people that is."""
    import numpy as np

    keys, people = shuffled_people(p.spec, seed)
    count = int(round(fraction * len(people)))
    held = set(people[:count])
    which = np.array([k in held for k in keys], dtype=bool)
    return _subset(p, np.flatnonzero(~which)), _subset(p, np.flatnonzero(which)), count


def _subset(p: Prepared, rows: np.ndarray) -> Prepared:
    spec = replace(p.spec, images=tuple(p.spec.images[i] for i in rows))
    return Prepared(spec, p.vectors[rows], p.faces[rows], p.status[rows], p.duplicates_dropped, p.over_identity_limit)


def check_held_out(
    normaliser: ClusterNormaliser,
    held: Sequence[Prepared],
    current: Callable[[np.ndarray], tuple[PairScorer, Calibration, str]],
    *,
    similarity: float = UNRELIABLE_SIMILARITY,
    replicates: int = 200,
    seed: int = 0,
) -> tuple[HeldOutGroup, ...]:
    """Every group of every analysis of ``held``, at ``similarity``: FMR (and TAR) under ``normaliser``
    and under ``current`` (``runner.engine_scoring``'s signature), with identity-bootstrap intervals,
    as ``facetrust audit`` measures them."""
    from facetrust.fairness.audit import audit_analysis
    from facetrust.fairness.embedding import DatasetEmbeddings
    from facetrust.fairness.results import AuditOptions

    if normaliser.calibration is None:
        raise InvalidParameterError("The normaliser has no calibration to read Similarity from", parameter="normaliser")
    options = AuditOptions(seed=seed, replicates=max(replicates, 1), similarity=similarity)
    out = []
    for p in held:
        emb = DatasetEmbeddings(normaliser.model, p.vectors, p.status)
        analyses = p.spec.analyses or (Analysis("", "all pairs"),)
        found = []
        for scorer, cal in ((normaliser.scorer(p.vectors), normaliser.calibration), current(p.vectors)[:2]):
            t = cal.match_score(similarity)
            found.append([audit_analysis(p.spec, emb, scorer, a, t, options, k) for k, a in enumerate(analyses)])
        for a, mine, now in zip(analyses, *found, strict=True):
            for g, c in zip(mine.groups, now.groups, strict=True):
                key = "similarity"
                if key not in g.fmr or key not in c.fmr:  # too few faces found: no match rates
                    continue
                out.append(
                    HeldOutGroup(
                        p.spec.name, a.column, g.group, g.impostor_pairs, g.fmr[key], c.fmr[key],
                        _tar(g.fnmr.get(key)) if g.mated_pairs else None,
                        _tar(c.fnmr.get(key)) if c.mated_pairs else None,
                    )
                )  # fmt: skip
    return tuple(out)


def _tar(fnmr: Rate | None) -> Rate | None:
    if fnmr is None:
        return None
    from facetrust.fairness.bootstrap import Interval

    iv = fnmr.interval
    return Rate(
        1.0 - fnmr.value, fnmr.trials - fnmr.errors, fnmr.trials, Interval(1.0 - iv.high, 1.0 - iv.low, iv.level)
    )


def fit_cluster_normaliser(
    engine: FaceEngine,
    specs: Sequence[DatasetSpec],
    *,
    cache_dir: Path | None,
    workers: int = 1,
    progress: ProgressFactory | None = None,
    clusters: int = CLUSTERS,
    max_per_identity: int | None = MAX_PER_IDENTITY,
    replicates: int = 200,
    seed: int = 0,
    holdout: float = 0.0,
    leave_out_repeats: bool = False,
    bag: int = BAG,
) -> NormaliserFit:
    """Embed ``specs`` with ``engine`` (cached) and fit its cluster normaliser on them (``fit_normaliser``).

    With ``holdout`` (0 < holdout < 1), that share of each dataset's people (seeded by ``seed``) is
    kept out of the fit and measured (``check_held_out``) against the engine's scoring as it stands;
    the result, and the file's provenance, say what was found. Use the normaliser with the setting
    ``normaliser_file`` (``NormaliserFit.normaliser.save``).

    ``bag``: ``fit_normaliser``'s. ``leave_out_repeats``: ``fit_normaliser``'s ``same_person`` at the raw
    score where the engine's table estimates FMR ``REPEAT_FMR``."""
    from facetrust.fairness.runner import engine_scoring

    if not 0.0 <= holdout < 1.0:
        raise InvalidParameterError(
            f"holdout must be a share of the people, 0 to 1, not {holdout}", parameter="holdout"
        )
    prepared = prepare_datasets(
        engine, specs, cache_dir=cache_dir, workers=workers, progress=progress,
        max_per_identity=max_per_identity, seed=seed,
    )  # fmt: skip
    about = fit_about(engine, max_per_identity, seed)
    same_person = engine.calibration.score_for_fmr(REPEAT_FMR) if leave_out_repeats else None
    if not holdout:
        return fit_normaliser(
            prepared, model=engine.model_id, clusters=clusters, seed=seed, replicates=replicates, about=about,
            same_person=same_person, bag=bag,
        )  # fmt: skip
    split = [split_people(p, holdout, seed) for p in prepared]
    fit = fit_normaliser(
        [s[0] for s in split], model=engine.model_id, clusters=clusters, seed=seed, replicates=replicates, about=about,
        same_person=same_person, bag=bag,
    )  # fmt: skip
    current = engine.normaliser.score_id if engine.normaliser is not None else f"raw cosine ({engine.model_id})"
    groups = check_held_out(
        fit.normaliser, [s[1] for s in split], lambda v: engine_scoring(engine, v), replicates=replicates, seed=seed
    )
    held = HeldOut(sum(s[2] for s in split), holdout, current, groups)
    provenance = {**fit.normaliser.provenance, "held_out": _held_out_record(held)}
    normaliser = replace(fit.normaliser, provenance=provenance)
    return replace(fit, normaliser=normaliser, held_out=held)


def _held_out_record(held: HeldOut) -> dict[str, Any]:
    def rate(r: Rate | None) -> list[float] | None:
        return None if r is None else [round(r.value, 8), round(r.interval.low, 8), round(r.interval.high, 8)]

    return {
        "people": held.people,
        "fraction": held.fraction,
        "similarity": UNRELIABLE_SIMILARITY,
        "current": held.current,
        "groups": {
            g.name: {
                "impostor_pairs": g.impostor_pairs,
                "fmr": rate(g.fmr),
                "current_fmr": rate(g.current_fmr),
                "tar": rate(g.tar),
                "current_tar": rate(g.current_tar),
            }
            for g in held.groups
        },
    }
