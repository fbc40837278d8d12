"""Prometheus metrics of one app, in its own registry: requests, latency, faces indexed, searches."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "IndexAnswer", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
SEARCHES = frozenset({"SearchFaces", "SearchFacesByImage", "SearchUsers", "SearchUsersByImage"})
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class IndexAnswer(dict[str, Any]):
    """IndexFaces' answer, and how many of its ``FaceRecords`` the call stored: a repeat of an image
    with the same ExternalImageId is answered with faces stored before, which are not stored again."""

    def __init__(self, answer: dict[str, Any], stored: int) -> None:
        super().__init__(answer)
        self.stored = stored


class Metrics:
    """Counters and histograms of one app (never the global registry, so apps and tests stay apart)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "facetrust_requests",
            "Rekognition protocol requests by operation and HTTP status",
            ["operation", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "facetrust_request_duration_seconds",
            "Time to answer a Rekognition protocol request, by operation",
            ["operation"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.faces_indexed = Counter("facetrust_faces_indexed", "Faces stored by IndexFaces", registry=self.registry)
        self.searches = Counter(
            "facetrust_searches", "Completed 1:N searches by operation", ["operation"], registry=self.registry
        )

    def observe(self, operation: str, status: int, seconds: float) -> None:
        self.requests.labels(operation, str(status)).inc()
        self.latency.labels(operation).observe(seconds)

    def completed(self, operation: str, response: dict[str, object]) -> None:
        """Count what a successful operation did."""
        if operation == "IndexFaces":
            records = response.get("FaceRecords")
            if isinstance(response, IndexAnswer):  # faces answered again were stored before
                self.faces_indexed.inc(response.stored)
            else:
                self.faces_indexed.inc(len(records) if isinstance(records, list) else 0)
        elif operation in SEARCHES:
            self.searches.labels(operation).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
