"""``facetrust store copy``: one store into another, empty one, in any direction, checked first.

A side is ``sqlite:DIR`` (the SQLite store of data directory DIR, its ``keys.db`` and head file)
or a ``postgresql://…`` URL (that database and its ``keys`` table; its head file is the one in
the ``data_dir`` given, as for every command). Before anything is written: the source must be
a facetrust store whose audit chain verifies (against its head file, and against the target's
head file if that already holds heads), the target must be empty, and the template and server
keys configured here must open what the source sealed (the copy keeps the sealed bytes, so the
target needs the same keys). Then ``store/copy.py`` copies it all, the API keys and the
``CopyStore`` audit entry in one transaction, and the source's recorded heads are added to the
target's head file. It lives beside the CLI, in the entry points' layer, because it joins the
store with the API keys of the server's key store (server/keys.py).
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facetrust.config import Settings
from facetrust.errors import ConfigurationError, ConflictError, InvalidParameterError
from facetrust.governance.actor import Actor
from facetrust.governance.audit import verify_chain
from facetrust.governance.recorder import Record
from facetrust.governance.roles import require_role
from facetrust.server.keys import KEY_COLUMNS, KEYS_FILE, KeyStore
from facetrust.store.anchor import HeadFile
from facetrust.store.anchor import head as audit_head
from facetrust.store.copy import CopyReport, KeyRows, StoreWriter, check_sealing, copy_store, holds_store, refuse_filled
from facetrust.store.pg_conn import is_postgres_url
from facetrust.store.postgres import PostgresStore, open_store, redact_url
from facetrust.store.sqlite import HEADS_NAME, Store

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.store.sealing import Keyring

__all__ = ["DB_NAME", "Side", "copy_between", "side"]

DB_NAME = "facetrust.db"  # as service/faceservice.py names it
_Log = Callable[[sqlite3.Connection, CopyReport], None]


@dataclass(frozen=True)
class Side:
    """One side of a copy: PostgreSQL at ``url``, or SQLite (``url`` None) in ``data_dir``;
    ``data_dir`` holds the head file either way."""

    url: str | None
    data_dir: Path

    def __str__(self) -> str:
        return str(self.data_dir) if self.url is None else redact_url(self.url)

    @property
    def store(self) -> str:
        return self.url or "sqlite"


def side(value: str, option: str, data_dir: Path) -> Side:
    """``sqlite:DIR`` or ``postgresql://…`` as given to ``option``; PostgreSQL's head file is in ``data_dir``."""
    if is_postgres_url(value):
        return Side(value, Path(data_dir))
    if value.startswith("sqlite:") and len(value) > len("sqlite:"):
        return Side(None, Path(value[len("sqlite:") :]).expanduser())
    raise InvalidParameterError(
        f"{option} must be sqlite:DIR (a data directory) or a postgresql:// URL; got {redact_url(value)!r}",
        parameter=option,
    )


def copy_between(source: Side, target: Side, *, settings: Settings, actor: Actor) -> CopyReport:
    """Copy the store ``source`` into the empty store ``target`` (module docstring), logged as
    ``CopyStore`` in the copy's audit log by ``actor``."""
    require_role(actor.key_id, actor.role, "CopyStore")
    _check_sides(source, target)
    refuse_filled(target.data_dir / DB_NAME, target.data_dir / KEYS_FILE, target.url)
    with _open(source) as src:
        _check_chain(src, target)
        check_sealing(src, _keyring(settings, target.data_dir))
        keys = _keys(source)
        files = (DB_NAME, KEYS_FILE, HEADS_NAME) if target.url is None else (HEADS_NAME,)
        created = [target.data_dir / f for f in files if not (target.data_dir / f).exists()]
        writer: StoreWriter | None = None
        try:
            writer = _writer(target)  # the target's own checks (its version, in use) first: a refusal exports nothing
            _log_export(src, actor, target)
            report = copy_store(src, writer, keys, _logger(actor, source))
        except BaseException as exc:
            if writer is None or not writer.committed:  # no empty store, keys or head file left behind
                _remove(created)
            if isinstance(exc, sqlite3.Error):
                raise ConfigurationError(f"The copy failed, and nothing was written: {exc}", setting="store") from None
            raise
        finally:
            if writer is not None:
                writer.store.close()
        with src.snapshot() as conn:
            moved = audit_head(conn).seq - report.head.seq  # written to the source after the copy's snapshot
    _carry_heads(src.heads, HeadFile(target.data_dir / HEADS_NAME), report.head.seq)
    return dataclasses.replace(report, source_moved=max(moved, 0))


def _check_sides(source: Side, target: Side) -> None:
    if source.url is None and not (source.data_dir / DB_NAME).is_file():
        raise InvalidParameterError(
            f"--from sqlite:{source.data_dir}: {source.data_dir} holds no facetrust database ({DB_NAME})",
            parameter="--from",
        )
    same = source.url == target.url if source.url else target.url is None and _same(source.data_dir, target.data_dir)
    if same:
        raise InvalidParameterError(f"--from and --to name the same store ({source})", parameter="--to")


def _same(a: Path, b: Path) -> bool:
    return a.expanduser().resolve() == b.expanduser().resolve()


@contextmanager
def _open(found: Side) -> Iterator[Store]:
    """The source store (on PostgreSQL, only if the database holds a facetrust store)."""
    if found.url is not None and not holds_store(found.url):
        raise InvalidParameterError(
            f"--from {found}: the database holds no facetrust store (no audit_log table)", parameter="--from"
        )
    store = open_store(found.data_dir / DB_NAME, found.store)
    try:
        yield store
    finally:
        store.close()


def _check_chain(src: Store, target: Side) -> None:
    """The source's chain must verify against its own head file, and against the target's when that
    already holds heads (which must then be heads of this chain, or the copy would not verify there)."""
    anchors = HeadFile(target.data_dir / HEADS_NAME)
    try:
        heads = src.heads.heads() + ([] if _same(anchors.path, src.heads.path) else anchors.heads())
    except ValueError as exc:
        raise ConflictError(f"Copy refused: {exc}") from None
    found = verify_chain(src.connection(), anchors=heads)
    if not found.ok:
        raise ConflictError(
            f"Copy refused: the source's audit log does not verify against the head files {src.heads.path} and "
            f"{anchors.path}: {found.problem}; check it with `facetrust audit-log verify`, or copy into a new data "
            "directory"
        )


def _keyring(settings: Settings, data_dir: Path) -> Keyring | None:
    from facetrust.governance.crypto import default_keyring, load_keyring

    ring = load_keyring(
        key_file=settings.template_key_file, env_value=os.environ.get("FACETRUST_TEMPLATE_KEY"), data_dir=data_dir
    )
    return default_keyring(data_dir) if ring is None and settings.template_encryption else ring


def _keys(source: Side) -> KeyRows:
    """The source's API keys, secrets still sealed; opening them checks that the server key here sealed them."""
    if source.url is None and not (source.data_dir / KEYS_FILE).is_file():
        return KeyRows(KEY_COLUMNS, ())
    with KeyStore.open(source.data_dir, store=source.store) as keys:
        return KeyRows(KEY_COLUMNS, tuple(keys.sealed_rows()))


def _writer(target: Side) -> StoreWriter:
    """The target opened for the copy: its schema and its keys table made, at their versions."""
    KeyStore.open(target.data_dir, store=target.store).close()
    if target.url is None:  # empty, about to hold the source's chain: not checked against a head file
        return StoreWriter(Store(target.data_dir / DB_NAME, check_anchors=False), target.data_dir / KEYS_FILE)
    return StoreWriter(PostgresStore(target.data_dir / DB_NAME, target.url, check_anchors=False))


def _log_export(src: Store, actor: Actor, target: Side) -> None:
    """Every template is about to leave the source: its own log says so (``CopyStore``, ``copy_to``),
    before the copy, so the copy's chain holds the entry too and the head files of both agree."""
    rec = Record(actor, "CopyStore")
    rec.details = {"copy_to": str(target)}
    with src.transaction() as conn:
        rec.commit(conn)


def _logger(actor: Actor, source: Side) -> _Log:
    def log(conn: sqlite3.Connection, report: CopyReport) -> None:
        rec = Record(actor, "CopyStore")
        rec.details = {"source": str(source), "rows": report.rows, "keys": report.keys, "head": str(report.head)}
        rec.commit(conn)

    return log


def _carry_heads(source: HeadFile, target: HeadFile, upto: int) -> None:
    """The source's recorded heads anchor the copied chain too: add them to the target's head file,
    those up to the copied head only (``upto``): a head the source recorded after its snapshot names
    an entry the copy does not hold, or holds differently (its own CopyStore entry)."""
    if _same(source.path, target.path) or not source.exists():
        return
    for found in sorted(source.heads(), key=lambda h: h.seq):
        if found.seq <= upto:
            target.record(found)


def _remove(paths: list[Path]) -> None:
    for path in paths:
        for name in (path.name, path.name + "-wal", path.name + "-shm", path.name + "-journal"):
            path.with_name(name).unlink(missing_ok=True)
