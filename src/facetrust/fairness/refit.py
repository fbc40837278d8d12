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
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facetrust.calibration import Calibration, fit_calibration
from facetrust.errors import InvalidParameterError
from facetrust.fairness.audit import groups_of
from facetrust.fairness.datasets import Analysis, DatasetSpec
from facetrust.fairness.embedding import FACE, embed_images
from facetrust.fairness.pairs import CosineScorer, PairScorer, build_group_pairs
from facetrust.fairness.runner import ProgressFactory, embed_spec

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from facetrust.engine import FaceEngine
    from facetrust.fairness.normalise import CohortNormaliser

__all__ = ["fit_for_datasets", "load_cohort", "same_group_impostors"]


def _analysis_for_calibration(spec: DatasetSpec) -> Analysis:
    if spec.analyses:
        return spec.analyses[0]
    return Analysis("", "all pairs")


def same_group_impostors(
    spec: DatasetSpec, status: np.ndarray, scorer: PairScorer
) -> tuple[np.ndarray, dict[str, int]]:
    """Scores of the same-group impostor pairs of ``spec``'s first analysis, and the count per group."""
    import numpy as np

    analysis = _analysis_for_calibration(spec)
    chunks, counts = [], {}
    for g in groups_of(spec, status, analysis, everyone=not analysis.column):
        keep = g.has_face
        pairs = build_group_pairs(scorer, g.name, g.rows[keep], g.identity[keep], g.cell[keep], mated=False)
        chunks.append(pairs.impostor_scores)
        counts[g.name] = int(pairs.impostor_scores.size)
    return (np.concatenate(chunks) if chunks else np.zeros(0, np.float32)), counts


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


def fit_for_datasets(
    engine: FaceEngine,
    specs: Sequence[DatasetSpec],
    *,
    cache_dir: Path | None,
    workers: int = 1,
    progress: ProgressFactory | None = None,
    normaliser: CohortNormaliser | None = None,
) -> Calibration | CohortNormaliser:
    """Fit a calibration (or, with ``normaliser``, a calibrated normaliser) on ``specs``."""
    import numpy as np

    scores, provenance_sets = [], []
    for spec in specs:
        emb = embed_spec(engine, spec, cache_dir=cache_dir, workers=workers, progress=progress)
        scorer = normaliser.scorer(emb.vectors) if normaliser is not None else CosineScorer(emb.vectors)
        found, counts = same_group_impostors(spec, emb.status, scorer)
        scores.append(found)
        provenance_sets.append(
            {
                "name": spec.name,
                "kind": spec.kind,
                "hash": spec.fingerprint(),
                "images": len(spec.images),
                "pairs": counts,
            }
        )
    pooled = np.concatenate(scores)
    model = normaliser.score_id if normaliser is not None else engine.model_id
    provenance: dict[str, Any] = {
        "made_by": "facetrust calibrate",
        "date": dt.date.today().isoformat(),
        "model": engine.model_id,
        "datasets": provenance_sets,
        "detector_threshold": engine.settings.detection_threshold,
    }
    names = ", ".join(f"{p['name']} ({p['kind']})" for p in provenance_sets)
    cal = fit_calibration(
        pooled,
        model=model,
        dataset=f"{pooled.size:,} same-group impostor pairs of {names}",
        provenance=provenance,
    )
    return normaliser.with_calibration(cal) if normaliser is not None else cal
