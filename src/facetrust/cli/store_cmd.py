"""``facetrust store``: reclaim erased rows' storage (vacuum) and copy a SQLite store to PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from facetrust.cli.context import cli_state, renders_errors
from facetrust.errors import InvalidParameterError
from facetrust.service.governed import attempt
from facetrust.store.anchor import HeadFile
from facetrust.store.sqlite import Store

__all__ = ["store"]


@contextmanager
def _opened(data_dir: Path, url: str | None) -> Iterator[Store]:
    from facetrust.service.faceservice import DB_NAME
    from facetrust.store.postgres import open_store

    found = open_store(data_dir / DB_NAME, url)
    try:
        yield found
    finally:
        found.close()


@click.group(short_help="Vacuum the store; copy a SQLite store to PostgreSQL.")
def store() -> None:
    """The store that holds collections, faces, the audit log and API keys: SQLite in the data
    directory, or PostgreSQL with `--store postgresql://…` (docs/store.md)."""


@store.command(short_help="Reclaim the storage of erased rows now.")
@renders_errors()
def vacuum() -> None:
    """Rewrite the tables so that no erased face, template, crop or identity remains in the
    database's files: on SQLite, VACUUM (erasure already overwrites rows in place); on
    PostgreSQL, VACUUM FULL of the tables that hold them, which an erasure's rows need before
    their storage is reclaimed. It locks those tables while it runs. Logged in the audit log."""
    state = cli_state()
    settings = state.settings()
    with (
        _opened(settings.resolved_data_dir, settings.store) as found,
        attempt(found, state.actor(), "VacuumStore") as rec,
    ):
        done = found.vacuum()
        rec.details = {"vacuumed": done}
    click.echo(f"Vacuumed: {done}")


def _sqlite_dir(value: str) -> Path:
    from facetrust.service.faceservice import DB_NAME

    if not value.startswith("sqlite:") or len(value) == len("sqlite:"):
        raise InvalidParameterError(f"--from must be sqlite:DIR (a data directory); got {value!r}", parameter="--from")
    folder = Path(value[len("sqlite:") :]).expanduser()
    if not (folder / DB_NAME).is_file():
        raise InvalidParameterError(
            f"--from {value}: {folder} holds no facetrust database ({DB_NAME})", parameter="--from"
        )
    return folder


@store.command(name="copy", short_help="Copy a SQLite data directory's store into an empty PostgreSQL.")
@click.option("--from", "source", required=True, metavar="sqlite:DIR", help="The data directory to copy from.")
@click.option(
    "--to", "target", required=True, metavar="postgresql://…", help="The empty PostgreSQL database to copy into."
)
@renders_errors()
def copy(source: str, target: str) -> None:
    """Copy everything in the SQLite store of data directory DIR (collections, faces with their
    templates still sealed, users, consents, reviews, people, crops, video jobs, the audit log,
    and the API keys of DIR/keys.db) into an empty PostgreSQL database, keeping every id, in one
    transaction. The audit log is copied entry for entry, so `facetrust --store URL audit-log
    verify` passes on the copy; the heads recorded in DIR's head file are added to the head file
    of the data directory (`--data`), and the copy itself is logged in the copy's audit log."""
    from facetrust.server.keys import KEYS_FILE, copy_keys_into
    from facetrust.service.faceservice import DB_NAME
    from facetrust.store.copy import copy_store
    from facetrust.store.pg_conn import is_postgres_url
    from facetrust.store.postgres import PostgresStore, redact_url

    folder = _sqlite_dir(source)
    if not is_postgres_url(target):
        raise InvalidParameterError(f"--to must be a postgresql:// URL; got {redact_url(target)!r}", parameter="--to")
    state = cli_state()
    with _opened(folder, "sqlite") as src:
        dst = PostgresStore(state.settings().resolved_data_dir / DB_NAME, target)
        try:
            report = copy_store(src, dst, lambda conn: copy_keys_into(conn, folder / KEYS_FILE))
            _copy_anchors(src.heads, dst.heads)
            with attempt(dst, state.actor(), "CopyStore") as rec:
                rec.details = {
                    "source": str(folder),
                    "rows": report.rows,
                    "keys": report.keys,
                    "head": str(report.head),
                }
        finally:
            dst.close()
    total = sum(report.rows.values())
    click.echo(
        f"Copied {total} rows of {len(report.rows)} tables and {report.keys} API keys from {folder} to "
        f"{redact_url(target)}; audit head {report.head}"
    )


def _copy_anchors(source: HeadFile, target: HeadFile) -> None:
    """The source's recorded heads anchor the copied chain too: add them to the target's head file."""
    if source.path.resolve() == target.path.resolve() or not source.exists():
        return
    for found in sorted(source.heads(), key=lambda h: h.seq):
        target.record(found)
