"""Bulk ingestion: images → faces in a collection, in order, resumable, on this process or on Ray.

``ingest(service, collection, paths, options, runner=...)`` is what ``facetrust index`` runs;
``RayRunner`` moves detection and embedding to Ray workers (``facetrust index --ray``), while
every write still goes through the service's governed path (``facetrust.service.ingest``).
"""

from facetrust.ingest.prepare import EngineFactory, ImageFailure, Job, prepare
from facetrust.ingest.run import ImageOutcome, IngestOptions, external_id_for, ingest
from facetrust.ingest.runners import LocalRunner, RayRunner, Runner, check_ray_address

__all__ = [
    "EngineFactory",
    "ImageFailure",
    "ImageOutcome",
    "IngestOptions",
    "Job",
    "LocalRunner",
    "RayRunner",
    "Runner",
    "check_ray_address",
    "external_id_for",
    "ingest",
    "prepare",
]
