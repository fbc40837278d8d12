"""Refit the score → FMR calibration on a deployment's own labelled data (``facetrust calibrate``).

Impostor pairs are the audit's same-group impostor pairs of each dataset's first analysis
(LFW: same sex; UTKFace: same race, sex and age band among adults; CSV: the first group
column, or all pairs when it has none). With a cohort, the pairs are scored with cohort
normalisation and the result is a ``CohortNormaliser`` carrying a calibration of normalised
scores; without one, a raw-score ``Calibration``. Either records its provenance: dataset
hashes, pair counts, date, model id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facetrust.calibration import Calibration, fit_calibration, fmr_from_similarity
from facetrust.errors import InvalidParameterError
from facetrust.fairness.audit import groups_of
from facetrust.fairness.datasets import Analysis, DatasetSpec
from facetrust.fairness.embedding import FACE, NO_FACE, embed_images
from facetrust.fairness.pairs import CosineScorer, GroupPairs, PairScorer, build_group_pairs
from facetrust.fairness.robustfit import DUPLICATE_COSINE, INTERVAL_SIMILARITIES, duplicate_rows, threshold_intervals
from facetrust.fairness.runner import ProgressFactory, embed_spec

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from facetrust.engine import FaceEngine
    from facetrust.normalise import CohortNormaliser

__all__ = [
    "TABLE_GROUP_PAIRS",
    "Prepared",
    "fit_about",
    "fit_for_datasets",
    "fit_table",
    "impostor_groups",
    "limit_per_identity",
    "load_cohort",
    "prepare",
    "prepare_datasets",
    "same_group_impostors",
    "without_duplicates",
]


TABLE_GROUP_PAIRS = 100_000  # a group weighted equally in a table resolves FMR 1e-4 with 10 pairs on its own


def _analysis_for_calibration(spec: DatasetSpec) -> Analysis:
    if spec.analyses:
        return spec.analyses[0]
    return Analysis("", "all pairs")


def impostor_groups(spec: DatasetSpec, status: np.ndarray, scorer: PairScorer) -> list[GroupPairs]:
    """The same-group impostor pairs of ``spec``'s first analysis, one ``GroupPairs`` per group."""
    analysis = _analysis_for_calibration(spec)
    out = []
    for g in groups_of(spec, status, analysis, everyone=not analysis.column):
        keep = g.has_face
        out.append(build_group_pairs(scorer, g.name, g.rows[keep], g.identity[keep], g.cell[keep], mated=False))
    return out


def same_group_impostors(
    spec: DatasetSpec, status: np.ndarray, scorer: PairScorer
) -> tuple[np.ndarray, dict[str, int]]:
    """Scores of the same-group impostor pairs of ``spec``'s first analysis, and the count per group."""
    import numpy as np

    groups = impostor_groups(spec, status, scorer)
    chunks = [g.impostor_scores for g in groups]
    counts = {g.group: int(g.impostor_scores.size) for g in groups}
    return (np.concatenate(chunks) if chunks else np.zeros(0, np.float32)), counts


def without_duplicates(spec: DatasetSpec, vectors: np.ndarray, status: np.ndarray) -> tuple[np.ndarray, int]:
    """``status`` with near-duplicate images (``robustfit.duplicate_rows``) marked faceless, and how many."""
    import numpy as np

    rows = np.flatnonzero(status == FACE)
    drop = duplicate_rows(vectors, rows, [rec.identity for rec in spec.images])
    out = status.copy()
    out[drop] = NO_FACE
    return out, int(drop.size)


def limit_per_identity(spec: DatasetSpec, status: np.ndarray, limit: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """``status`` with at most ``limit`` faces of each identity (a seeded choice), the rest marked
    faceless, and how many were. A pair of people makes the product of their photo counts in
    impostor pairs, so one much-photographed person and a look-alike can set a table's tail; a
    dataset without identities is returned as it is."""
    import numpy as np

    if limit < 1:
        raise InvalidParameterError(
            f"max_per_identity must be at least 1 image per identity, not {limit}", parameter="max_per_identity"
        )
    out = status.copy()
    if not spec.has_identities:
        return out, 0
    members: dict[str, list[int]] = {}
    for i in np.flatnonzero(status == FACE):  # an image without an identity is its own person
        members.setdefault(spec.images[i].identity or f"\0{i}", []).append(int(i))
    rng = np.random.default_rng(seed)
    dropped = 0
    for person in sorted(members):
        rows = members[person]
        if len(rows) > limit:
            out[rng.permutation(rows)[limit:]] = NO_FACE
            dropped += len(rows) - limit
    return out, dropped


def load_cohort(engine: FaceEngine, path: Path, *, cache_dir: Path | None, workers: int) -> np.ndarray:
    """Cohort embeddings from a `facetrust embed` .npz (same model) or a folder of images."""
    import numpy as np

    from facetrust.engine import iter_image_paths

    if path.suffix == ".npz" and path.is_file():
        with np.load(path, allow_pickle=False) as data:
            if str(data["model"]) != engine.model_id:
                raise InvalidParameterError(
                    f"Cohort {path} was embedded with {str(data['model'])!r}, not {engine.model_id!r}",
                    parameter="--cohort",
                )
            found: np.ndarray = np.asarray(data["embeddings"][data["face_counts"] > 0], dtype=np.float32)
        return found
    paths = iter_image_paths([str(path)])
    fingerprint = hashlib.sha256("\n".join(paths).encode()).hexdigest()
    emb = embed_images(engine, paths, fingerprint=fingerprint, cache_dir=cache_dir, workers=workers)
    vectors: np.ndarray = emb.vectors[emb.status == FACE]
    return vectors


@dataclass(frozen=True)
class Prepared:
    """One dataset embedded and made ready for fitting.

    ``faces``: the embedding status with near-duplicate images marked faceless; ``status``: the
    same with the images over ``max_per_identity`` marked too (the status impostor pairs are
    formed from)."""

    spec: DatasetSpec
    vectors: np.ndarray
    faces: np.ndarray
    status: np.ndarray
    duplicates_dropped: int
    over_identity_limit: int | None = None


def prepare(
    spec: DatasetSpec,
    model: str,
    vectors: np.ndarray,
    status: np.ndarray,
    *,
    max_per_identity: int | None = None,
    seed: int = 0,
) -> Prepared:
    """``spec``'s embeddings (of ``model``) with near-duplicates dropped (by SFace's cosine, a fused
    template's SFace part) and, with ``max_per_identity``, each identity's faces limited."""
    from facetrust.models.fused import sface_vectors

    faces, dropped = without_duplicates(spec, sface_vectors(model, vectors), status)
    paired, over = faces, None
    if max_per_identity is not None:
        paired, over = limit_per_identity(spec, faces, max_per_identity, seed)
    return Prepared(spec, vectors, faces, paired, dropped, over)


def prepare_datasets(
    engine: FaceEngine,
    specs: Sequence[DatasetSpec],
    *,
    cache_dir: Path | None,
    workers: int = 1,
    progress: ProgressFactory | None = None,
    max_per_identity: int | None = None,
    seed: int = 0,
) -> list[Prepared]:
    """Embed each of ``specs`` (cached) and ``prepare`` it."""
    out = []
    for spec in specs:
        emb = embed_spec(engine, spec, cache_dir=cache_dir, workers=workers, progress=progress)
        out.append(
            prepare(spec, engine.model_id, emb.vectors, emb.status, max_per_identity=max_per_identity, seed=seed)
        )
    return out


def fit_table(
    prepared: Sequence[Prepared],
    *,
    model: str,
    score_model: str,
    scorer_of: Callable[[np.ndarray], PairScorer] | None = None,
    replicates: int = 200,
    about: dict[str, Any] | None = None,
    groups_equal: bool = False,
) -> Calibration:
    """The score → FMR table of the same-group impostor pairs of each dataset's first analysis,
    pooled, scored by ``scorer_of(vectors)`` (raw cosines when None) and recorded under
    ``score_model``, with 95 % identity-bootstrap intervals on the thresholds of Similarity 40,
    60, 80 and 99 (none when ``replicates`` is 0). ``about`` joins the provenance.

    With ``groups_equal``, the table is the equal-weight mixture of the groups with at least
    ``TABLE_GROUP_PAIRS`` pairs (``clusterfit.fit_mixture_calibration``): every such group counts
    as much as any other, however many pairs it has. Where some dataset has identities, only the
    groups of such datasets count: without identities, one person photographed twice makes a
    "false match", and a group of such pairs weighted as much as a large one would set the table
    (UTKFace's White adults beside LFW moved the normalised Similarity 80 from 0.78 to 0.96). The
    other groups are left out of the table and named in its provenance (``table_groups``). With no
    group left, the pooled table."""
    import numpy as np

    groups: list[tuple[PairScorer, GroupPairs]] = []
    labels: list[str] = []
    named: list[bool] = []  # whether each group's dataset has identities
    provenance_sets = []
    for p in prepared:
        scorer = scorer_of(p.vectors) if scorer_of is not None else CosineScorer(p.vectors)
        found = impostor_groups(p.spec, p.status, scorer)
        groups.extend((scorer, g) for g in found)
        labels.extend(f"{p.spec.name}: {g.group}" for g in found)
        named.extend(p.spec.has_identities for _ in found)
        provenance_sets.append(
            {
                "name": p.spec.name,
                "kind": p.spec.kind,
                "hash": p.spec.fingerprint(),
                "images": len(p.spec.images),
                "duplicates_dropped": p.duplicates_dropped,
                **({"over_identity_limit": p.over_identity_limit} if p.over_identity_limit is not None else {}),
                "pairs": {g.group: int(g.impostor_scores.size) for g in found},
            }
        )
    pooled = np.concatenate([g.impostor_scores for _, g in groups] or [np.zeros(0, np.float32)])
    provenance: dict[str, Any] = {
        "made_by": "facetrust calibrate",
        "date": dt.date.today().isoformat(),
        "model": model,
        "datasets": provenance_sets,
        "duplicate_cosine": DUPLICATE_COSINE,
        **(about or {}),
    }
    names = ", ".join(f"{p['name']} ({p['kind']})" for p in provenance_sets)
    dataset = f"{pooled.size:,} same-group impostor pairs of {names}"
    chosen = [
        k
        for k, (_, g) in enumerate(groups)
        if g.impostor_scores.size >= TABLE_GROUP_PAIRS and (named[k] or not any(named))
    ]
    mixture = groups_equal and bool(chosen)
    if mixture:
        from facetrust.fairness.clusterfit import fit_mixture_calibration

        provenance["table_groups"] = {
            "weighted_equally": [labels[k] for k in chosen],
            "left_out": [labels[k] for k in range(len(groups)) if k not in chosen],
            "min_pairs": TABLE_GROUP_PAIRS,
        }
        groups = [groups[k] for k in chosen]
        dataset = f"{len(groups)} group{'' if len(groups) == 1 else 's'} weighted equally ({dataset})"
        cal = fit_mixture_calibration(
            [g.impostor_scores for _, g in groups], model=score_model, dataset=dataset, provenance=provenance
        )
    else:
        cal = fit_calibration(pooled, model=score_model, dataset=dataset, provenance=provenance)
    reached = [s for s in INTERVAL_SIMILARITIES if cal.reaches(s)]  # no interval on a threshold never met
    if replicates > 0 and reached:
        cut = cal.score_for_fmr(min(1.0, 3 * fmr_from_similarity(min(reached))))
        found_iv = threshold_intervals(groups, cut, similarities=reached, replicates=replicates, equal_weights=mixture)
        provenance["threshold_intervals"] = {f"{s:g}": [round(v.low, 4), round(v.high, 4)] for s, v in found_iv.items()}
        provenance["bootstrap"] = {"replicates": replicates, "level": 0.95, "unit": "identity (image without one)"}
        cal = replace(cal, provenance=provenance)
    return cal


def fit_about(engine: FaceEngine, max_per_identity: int | None, seed: int) -> dict[str, Any]:
    """What a fit's provenance records of how the faces were chosen: the detector threshold, and the
    per-identity limit with its seed."""
    about: dict[str, Any] = {"detector_threshold": engine.settings.detection_threshold}
    if max_per_identity is not None:
        about.update(max_per_identity=max_per_identity, seed=seed)
    return about


def fit_for_datasets(
    engine: FaceEngine,
    specs: Sequence[DatasetSpec],
    *,
    cache_dir: Path | None,
    workers: int = 1,
    progress: ProgressFactory | None = None,
    normaliser: CohortNormaliser | None = None,
    replicates: int = 200,
    max_per_identity: int | None = None,
    seed: int = 0,
) -> Calibration | CohortNormaliser:
    """Fit a calibration (or, with ``normaliser``, a calibrated normaliser) on ``specs``.

    Near-duplicate images are dropped first (counted in the provenance, ``duplicates_dropped``; by
    SFace's cosine, a fused template's SFace part for the accurate profile);
    with ``max_per_identity``, each identity keeps at most that many faces (``limit_per_identity``,
    seeded by ``seed``; counted as ``over_identity_limit``). The thresholds of Similarity 40, 60, 80
    and 99 that the table reaches get 95 % identity-bootstrap intervals (``threshold_intervals``;
    none when ``replicates`` is 0, or for a Similarity no score gets: ``Calibration.reaches``).
    """
    prepared = prepare_datasets(
        engine, specs, cache_dir=cache_dir, workers=workers, progress=progress,
        max_per_identity=max_per_identity, seed=seed,
    )  # fmt: skip
    about = fit_about(engine, max_per_identity, seed)
    cal = fit_table(
        prepared,
        model=engine.model_id,
        score_model=normaliser.score_id if normaliser is not None else engine.model_id,
        scorer_of=normaliser.scorer if normaliser is not None else None,
        replicates=replicates,
        about=about,
    )
    return normaliser.with_calibration(cal) if normaliser is not None else cal
