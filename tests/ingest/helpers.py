"""Shared pieces of the ingestion tests: a governed service over the fake engine, and an album."""

from __future__ import annotations

from pathlib import Path

from facetrust.governance import audit
from facetrust.governance.policy import Policy, Purpose
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService

POLICY = Policy(
    purposes={
        "general": Purpose("general", min_threshold=0),
        "access": Purpose("access", consent_required=True, retention_days=30),
    },
    default_purpose="general",
)


def open_service(tmp_path: Path) -> FaceService:
    svc = FaceService(tmp_path / "data", fake_engine(), policy=POLICY)
    svc.create_collection("people")
    svc.create_collection("staff", purpose="access")
    return svc


def album(folder: Path, count: int) -> list[str]:
    """``count`` PNGs named img00.png… each with one distinct fake person (pattern = index + 1)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"img{i:02d}.png"
        path.write_bytes(face_png((20 + i, 20, 100, i + 1)))
        paths.append(str(path))
    return paths


def bad_image(folder: Path, name: str = "bad.png") -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"not an image")
    return str(path)


def external_ids(svc: FaceService, collection: str = "people") -> list[str | None]:
    """ExternalImageIds of the stored faces in the order they were written."""
    return [f.external_image_id for f in svc.list_faces(collection).faces]


def audit_tail(svc: FaceService, count: int) -> list[dict[str, object]]:
    """The last entries' data without what differs from run to run (time, ids, hashes)."""
    out = []
    for entry in list(audit.entries(svc.store.connection()))[-count:]:
        data = {k: v for k, v in entry.data.items() if k not in ("details", "request_id")}
        out.append(data)
    return out
