"""Run an audit end to end: embed each dataset (cached), score pairs the way the engine does, measure.

``run_audit`` returns an ``AuditRun``: every number of the report plus what it depends on
(model ids and hashes, calibration provenance, normaliser, dataset hashes, seeds, timings).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facetrust.calibration import Calibration
from facetrust.fairness.audit import AuditOptions, DatasetAudit, audit_dataset
from facetrust.fairness.datasets import DatasetSpec
from facetrust.fairness.embedding import DatasetEmbeddings, embed_images
from facetrust.fairness.pairs import CosineScorer, PairScorer

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from facetrust.engine import FaceEngine

__all__ = [
    "AuditRun",
    "ProgressFactory",
    "embed_spec",
    "engine_scoring",
    "machine",
    "model_records",
    "run_audit",
    "silent_progress",
]

ProgressFactory = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]


@dataclass(frozen=True)
class AuditRun:
    """Everything an audit measured and what it depends on."""

    created: str
    facetrust_version: str
    models: tuple[dict[str, str], ...]
    score_id: str
    calibration: dict[str, Any]
    normaliser: dict[str, Any] | None
    settings: dict[str, Any]
    options: AuditOptions
    datasets: tuple[DatasetAudit, ...]
    timings: dict[str, float] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)


def engine_scoring(engine: FaceEngine, vectors: np.ndarray) -> tuple[PairScorer, Calibration, str]:
    """(scorer, calibration, score id) as ``engine.compare_embeddings`` scores and judges pairs."""
    normaliser = engine.normaliser
    if normaliser is not None and normaliser.calibration is not None:
        return normaliser.scorer(vectors), normaliser.calibration, engine.score_id
    return CosineScorer(vectors), engine.calibration, engine.score_id


def model_records(engine: FaceEngine) -> tuple[dict[str, str], ...]:
    """Role, name, id and pinned SHA-256 (from the catalog when the model is in it) of both models."""
    from facetrust.models.catalog import CATALOG

    out = []
    for role, model in (("detector", engine.detector), ("recogniser", engine.recogniser)):
        spec = CATALOG.get(model.name)
        pinned = spec.sha256 if spec is not None and spec.model_id == model.model_id else "not in the catalog"
        out.append({"role": role, "name": model.name, "id": model.model_id, "sha256": pinned})
    return tuple(out)


def _calibration_record(cal: Calibration) -> dict[str, Any]:
    return {
        "model": cal.model,
        "dataset": cal.dataset,
        "impostor_pairs": cal.impostor_pairs,
        "floor_fmr": cal.floor_fmr,
        "provenance": dict(cal.provenance),
    }


def _normaliser_record(engine: FaceEngine) -> dict[str, Any] | None:
    n = engine.normaliser
    if n is None:
        return None
    from facetrust.normalise import CohortNormaliser

    if isinstance(n, CohortNormaliser):
        return {
            "score_id": n.score_id,
            "top_k": n.top_k,
            "cohort_size": len(n.cohort),
            "provenance": dict(n.provenance),
        }
    return {
        "score_id": n.score_id,
        "clusters": len(n.centroids),
        "fits": list(n.fit_sizes),
        "provenance": dict(n.provenance),
    }


def _settings_record(engine: FaceEngine) -> dict[str, Any]:
    s = engine.settings
    return {
        "flip_augment": s.flip_augment,
        "detection_threshold": s.detection_threshold,
        "min_face_size": s.min_face_size,
        "detector_max_side": s.detector_max_side,
        "calibration_file": str(s.calibration_file) if s.calibration_file else None,
        "cohort_file": str(s.cohort_file) if s.cohort_file else None,
        "normaliser_file": str(s.normaliser_file) if s.normaliser_file else None,
    }


def embed_spec(
    engine: FaceEngine,
    spec: DatasetSpec,
    *,
    cache_dir: Path | None,
    workers: int,
    progress: ProgressFactory | None = None,
) -> DatasetEmbeddings:
    """Embed every image of ``spec``, with a progress bar.

    Cached by the dataset hash and the images' resolved locations: the same files reached by
    another path hit the cache; other files with the same names and labels do not.
    """
    paths = [r.path for r in spec.images]
    where = hashlib.sha256("\n".join(os.path.realpath(p) for p in paths).encode()).hexdigest()
    with (progress or silent_progress)(f"Embedding {spec.name}", len(spec.images)) as advance:
        return embed_images(
            engine,
            paths,
            fingerprint=f"{spec.fingerprint()}:{where}",
            cache_dir=cache_dir,
            workers=workers,
            progress=advance,
        )


@contextmanager
def silent_progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    yield lambda n: None


def machine() -> dict[str, Any]:
    import os

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "system": platform.system()}


def run_audit(
    engine: FaceEngine,
    specs: Sequence[DatasetSpec],
    options: AuditOptions | None = None,
    *,
    cache_dir: Path | None = None,
    workers: int = 1,
    progress: ProgressFactory | None = None,
) -> AuditRun:
    """Embed and audit every dataset with ``engine`` (see ``embed_images`` for ``workers``)."""
    from importlib.metadata import version

    options = options or AuditOptions()
    progress = progress or silent_progress
    audits, timings = [], {}
    calibration, score_id = engine.calibration, engine.model_id
    for spec in specs:
        started = time.perf_counter()
        emb = embed_spec(engine, spec, cache_dir=cache_dir, workers=workers, progress=progress)
        embedded = time.perf_counter()
        scorer, calibration, score_id = engine_scoring(engine, emb.vectors)
        threshold = calibration.match_score(options.similarity)  # infinite where the table never reaches it
        audits.append(audit_dataset(spec, emb, scorer, threshold, options))
        timings[f"{spec.name}: embedding s"] = round(embedded - started, 1)
        timings[f"{spec.name}: analysis s"] = round(time.perf_counter() - embedded, 1)
    return AuditRun(
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        facetrust_version=version("facetrust"),
        models=model_records(engine),
        score_id=score_id,
        calibration=_calibration_record(calibration),
        normaliser=_normaliser_record(engine),
        settings=_settings_record(engine),
        options=options,
        datasets=tuple(audits),
        timings=timings,
        machine=machine(),
    )
