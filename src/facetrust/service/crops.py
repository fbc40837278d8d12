"""Face crops for human review, kept only where the collection's purpose sets ``keep_face_crops``.

A crop is the face aligned to a small square (``CROP_SIZE`` pixels), JPEG-encoded, sealed with
the template key and stored beside its face; erasing or expiring the face erases it. Reading
one is audited, like any access to biometric data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from facetrust.errors import NotFoundError
from facetrust.governance.actor import LOCAL, Actor
from facetrust.service.governed import usable
from facetrust.service.people import people_step
from facetrust.service.validate import check_face_ids
from facetrust.store import crops as table

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from facetrust.service.context import ServiceContext
    from facetrust.types import Face

__all__ = ["CROP_SIZE", "face_crop", "make_crops"]

CROP_SIZE = 64


def make_crops(rgb: np.ndarray, faces: Sequence[Face]) -> list[bytes]:
    """JPEG bytes of each face, aligned to ``CROP_SIZE`` × ``CROP_SIZE``."""
    import io

    from PIL import Image

    from facetrust.align import align_face

    out = []
    for face in faces:
        buf = io.BytesIO()
        Image.fromarray(align_face(rgb, face.landmarks, size=CROP_SIZE)).save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def face_crop(service: ServiceContext, collection: str, face_id: str, *, actor: Actor = LOCAL) -> bytes:
    """The JPEG crop of a stored face; ``NotFoundError`` when the face has none."""
    with people_step(service, actor, "GetFaceCrop", collection, model_check=False) as (rec, row, purpose):
        (wanted,) = check_face_ids([face_id], parameter="FaceId", most=1)
        rec.details = {"face_ids": [wanted]}
        with service.store.snapshot() as conn:
            face = service.store.faces_by_ids(row.id, [wanted], conn).get(wanted)
            live = face is not None and usable(face, service.clock())  # an expired face's crop is unusable too
            image = table.read_crop(conn, service.store.keyring, row.id, wanted) if live else None
        if image is None:
            raise NotFoundError(
                f"Face {wanted!r} has no stored crop in collection {row.name!r} (its purpose "
                f"{purpose.name!r} {'keeps' if purpose.keep_face_crops else 'does not keep'} face crops)",
                resource=wanted,
            )
        return image
