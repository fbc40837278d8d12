"""Helpers for tests of the governance commands: a FaceService with a policy and a fake clock, injected."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from facetrust.governance import audit
from facetrust.governance.crypto import Keyring
from facetrust.governance.policy import Policy, Purpose
from facetrust.models.fake import fake_engine
from facetrust.service import FaceService

from .service_cli import ServiceCli

DAY = 86400.0
START = 1_800_000_000.0  # 2027-01-15T08:00:00Z

POLICY = Policy(
    purposes={
        "access": Purpose("access", min_threshold=90, consent_required=True, retention_days=30),
        "review": Purpose("review", human_review=True, min_threshold=0),
        "police": Purpose("police", forbidden="Moratorium on police use"),
    },
    default_purpose="review",
    source="test policy",
)


class Clock:
    """The service's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class GovernedCli(ServiceCli):
    """``ServiceCli`` over a governed service, with its clock and audit-log helpers."""

    def __init__(self, service: FaceService, folder: Path, clock: Clock) -> None:
        super().__init__(service, folder)
        self.clock = clock
        self.photos = 0

    def index(self, collection: str, subject: str | None, pattern: int = 1) -> str:
        """Index one fake face (as ``subject``) in a new photo; returns its face id. (The same photo
        again under the same subject would not be stored twice.)"""
        self.photos += 1
        image = self.image(f"{pattern}-{self.photos}.png", [(20 + self.photos % 20, 20, 100, pattern)])
        result = self.service.index_faces(collection, image, external_image_id=subject)
        return result.indexed[0].stored.face_id

    def log(self) -> list[audit.AuditEntry]:
        return list(audit.entries(self.service.store.connection()))

    def head(self) -> audit.AuditHead:
        return audit.head(self.service.store.connection())

    def sql(self, statement: str, *args: Any) -> None:
        """Tamper with the database behind the service's back."""
        self.service.store.connection().execute(statement, args)

    def evidence(self, text: str = "signed release #17") -> str:
        path = self.folder / "evidence.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return str(path)

    @staticmethod
    def read_json(path: Path) -> Any:
        return json.loads(path.read_text())


@contextmanager
def governed_cli(tmp_path: Path, *, keyring: Keyring | None = None) -> Iterator[GovernedCli]:
    clock = Clock()
    service = FaceService(tmp_path / "data", fake_engine(), policy=POLICY, keyring=keyring, clock=clock)
    try:
        yield GovernedCli(service, tmp_path / "images", clock)
    finally:
        service.close()
