"""Shared pieces of the ingestion tests: a governed service over the fake engine, and an album."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from facetrust.governance import audit
from facetrust.governance.policy import Policy, Purpose
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService

BAD_FORMAT = "not a supported image format (expected JPEG or PNG; first bytes 6e6f7420616e2069)"

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


def run_child_and_kill(command: list[str], wanted: int, delay: float) -> list[list[str]]:
    """Run ``command`` (a child that prints a line per acknowledged image, then ``done``), kill -9 it
    ``delay`` seconds after its ``wanted``-th line, and return every line it printed, split."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    reported: list[list[str]] = []
    deadline = time.monotonic() + 120
    while len(reported) < wanted and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line or line.strip() == "done":
            break
        reported.append(line.split())
    time.sleep(delay)  # kill at an arbitrary point of a later batch
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    reported += [line.split() for line in proc.stdout.read().splitlines() if line.strip() and line != "done"]
    proc.stdout.close()
    assert len(reported) >= wanted, "the child process stopped early"
    return reported


def stored_by_image(service: FaceService, collection: str = "c") -> dict[str, list[str]]:
    """The stored face ids of each image id (every page of ListFaces)."""
    by_image: dict[str, list[str]] = {}
    token = None
    while True:
        page = service.list_faces(collection, max_results=500, next_token=token)
        for face in page.faces:
            by_image.setdefault(face.image_id, []).append(face.face_id)
        token = page.next_token
        if token is None:
            return by_image
