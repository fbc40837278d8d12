"""Parameters and files of the governance commands: ISO 8601 times, audit heads, receipt files."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import click

from facetrust.errors import InvalidParameterError
from facetrust.files import atomic_write_text
from facetrust.governance.audit import AuditHead
from facetrust.service.types import ErasureReceipt
from facetrust.service.validate import LAST_TIME, read_iso_time

__all__ = ["AUDIT_HEAD", "ISO8601", "read_receipt", "receipt_document", "write_receipt"]


class Iso8601(click.ParamType[float]):
    """An ISO 8601 date or time (``2027-01-15``, ``2027-01-15T08:00:00Z``) → seconds since the
    epoch, read as the HTTP API reads one (``read_iso_time``). A time without an offset is UTC."""

    name = "ISO8601"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        what = param.opts[0] if param is not None and param.opts else "value"
        try:
            return read_iso_time(str(value), what)
        except InvalidParameterError as exc:  # its message names the option: not click's "Invalid value for"
            raise click.UsageError(exc.message, ctx) from None


class AuditHeadType(click.ParamType[AuditHead]):
    """``SEQ:HASH`` as printed by ``facetrust audit-log head``."""

    name = "SEQ:HASH"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> AuditHead:
        if isinstance(value, AuditHead):
            return value
        try:
            return AuditHead.parse(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


ISO8601 = Iso8601()
AUDIT_HEAD = AuditHeadType()

_FIELDS: dict[str, type | tuple[type, ...]] = {
    "what": str,
    "target": str,
    "collections": list,
    "face_ids": list,
    "at": (int, float),
    "by": str,
    "audit_seq": int,
    "audit_hash": str,
}


def receipt_document(receipt: ErasureReceipt) -> dict[str, Any]:
    """The receipt as JSON data, its time unrounded (and also as ISO 8601 UTC, ``when``)."""
    from facetrust.cli.render_collections import timestamp

    return {
        "what": receipt.what,
        "target": receipt.target,
        "collections": list(receipt.collections),
        "face_ids": list(receipt.face_ids),
        "at": receipt.at,
        "when": timestamp(receipt.at),
        "by": receipt.by,
        "audit_seq": receipt.audit_seq,
        "audit_hash": receipt.audit_hash,
    } | (
        ({"crop_face_ids": list(receipt.crop_face_ids)} if receipt.crop_face_ids else {})
        | ({"storage": receipt.storage} if receipt.storage else {})
        | ({"video_jobs_rewritten": receipt.video_jobs_rewritten} if receipt.video_jobs_rewritten else {})
    )


def write_receipt(receipt: ErasureReceipt, path: Path) -> None:
    """Write the receipt file of ``--receipt-out``. Call it after printing the receipt: the
    erasure has happened either way, so a path that cannot be written must not hide it.

    A file is replaced whole (a temporary file moved over it, owner-only, flushed to the disk),
    so a crash or a full disk never leaves half a receipt. A pipe or a terminal
    (``/dev/stdout``, a shell's ``>(…)``) is written as it is, and a pipe that nothing reads is
    an error at once, where it waited for a reader without end."""
    text = json.dumps(receipt_document(receipt), indent=2, ensure_ascii=False) + "\n"
    try:
        if path.exists() and not path.is_file():
            _write_stream(path, text)
        else:
            atomic_write_text(path, text, durable=True)
    except OSError as exc:
        reason = "it is a pipe that nothing reads" if exc.errno == errno.ENXIO else exc.strerror or str(exc)
        raise InvalidParameterError(
            f"The erasure is done (receipt printed above, and in the audit log as entry "
            f"{receipt.audit_seq}), but the receipt file {path} could not be written: {reason}",
            parameter="--receipt-out",
        ) from None


def _write_stream(path: Path, text: str) -> None:
    """Write ``text`` to a pipe or device. Opened without blocking, so a pipe with no reader fails
    (ENXIO) instead of waiting; then blocking again, so a full pipe waits for its reader."""
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.set_blocking(fd, True)
        with os.fdopen(fd, "w", encoding="utf-8", closefd=False) as fh:
            fh.write(text)
    finally:
        os.close(fd)


# an erasure's receipt as the HTTP API gives it (docs/http.md), by the names of the file's
_HTTP_NAMES = {
    "What": "what",
    "Target": "target",
    "Collections": "collections",
    "FaceIds": "face_ids",
    "ErasedAt": "at",
    "ErasedBy": "by",
    "AuditSequence": "audit_seq",
    "AuditHash": "audit_hash",
    "CropFaceIds": "crop_face_ids",
    "Storage": "storage",
    "VideoJobsRewritten": "video_jobs_rewritten",
}


def _from_http(data: dict[str, Any]) -> dict[str, Any]:
    """A receipt saved from an HTTP response (the response, or its ``Receipt``) in the file's names;
    any other document as it is."""
    inner = data.get("Receipt", data)
    if not isinstance(inner, dict) or "AuditSequence" not in inner:
        return data
    return {_HTTP_NAMES.get(str(key), str(key)): value for key, value in inner.items()}


def read_receipt(path: Path) -> ErasureReceipt:
    """A receipt file written by ``--receipt-out`` (or the JSON of ``--json``)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidParameterError(f"Cannot read receipt {path}: {exc}", parameter="RECEIPT") from None
    except ValueError:
        raise InvalidParameterError(f"Receipt {path} is not JSON", parameter="RECEIPT") from None
    if not isinstance(data, dict):
        raise InvalidParameterError(f"Receipt {path} is not a JSON object", parameter="RECEIPT")
    data = _from_http(data)
    for key, kind in _FIELDS.items():
        value = data.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InvalidParameterError(
                f"Receipt {path} is not an erasure receipt: {key!r} is missing or of the wrong type",
                parameter="RECEIPT",
            )
    if not 1 <= data["audit_seq"] < 2**63 or not 0 <= data["at"] <= LAST_TIME:
        raise InvalidParameterError(
            f"Receipt {path} is not an erasure receipt: its audit_seq or at is out of range", parameter="RECEIPT"
        )
    unknown = sorted(set(data) - set(_FIELDS) - {"when", "crop_face_ids", "storage", "video_jobs_rewritten"})
    if unknown:
        raise InvalidParameterError(
            f"Receipt {path} is not an erasure receipt: unknown field {unknown[0]!r}", parameter="RECEIPT"
        )
    from facetrust.cli.render_collections import timestamp

    if "when" in data and (isinstance(data["at"], bool) or data["when"] != timestamp(float(data["at"]))):
        raise InvalidParameterError(
            f"Receipt {path} does not verify: its 'when' ({data['when']!r}) is not its 'at' ({data['at']!r})",
            parameter="RECEIPT",
        )
    crops = data.get("crop_face_ids", [])
    if not isinstance(crops, list) or not all(
        isinstance(v, str) for v in (*data["collections"], *data["face_ids"], *crops)
    ):
        raise InvalidParameterError(
            f"Receipt {path} is not an erasure receipt: collections, face_ids and crop_face_ids must be lists "
            "of strings",
            parameter="RECEIPT",
        )
    rewritten = data.get("video_jobs_rewritten", 0)
    if not isinstance(rewritten, int) or isinstance(rewritten, bool) or rewritten < 0:
        raise InvalidParameterError(
            f"Receipt {path} is not an erasure receipt: video_jobs_rewritten must be a count (0 or more)",
            parameter="RECEIPT",
        )
    return ErasureReceipt(
        data["what"],
        data["target"],
        tuple(data["collections"]),
        tuple(data["face_ids"]),
        float(data["at"]),
        data["by"],
        data["audit_seq"],
        data["audit_hash"],
        tuple(crops),
        str(data.get("storage", "")),
        rewritten,
    )
