"""``facetrust store``: reclaim erased rows' storage (vacuum) and copy a store into another (cli/store_copy.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from facetrust.cli.context import cli_state, renders_errors
from facetrust.service.vacuumer import vacuum_store
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


@click.group(short_help="Vacuum the store; copy a store into another (SQLite, PostgreSQL).")
def store() -> None:
    """The store that holds collections, faces, the audit log and API keys: SQLite in the data
    directory, or PostgreSQL with `--store postgresql://…` (docs/store.md)."""


@store.command(short_help="Reclaim the storage of erased rows now.")
@renders_errors()
def vacuum() -> None:
    """Rewrite the tables so that no erased face, template, crop or identity remains in the
    database's files: on SQLite, VACUUM (an erasure overwrites its rows in place, not the copies
    left in unused page space when rows moved between pages); on PostgreSQL, VACUUM FULL of the
    tables that hold them. An erasure's storage is reclaimed then; a running server also vacuums
    by itself within `vacuum_seconds` of an erasure. It locks those tables while it runs. Logged
    in the audit log."""
    state = cli_state()
    settings = state.settings()
    with _opened(settings.resolved_data_dir, settings.store) as found:
        done = vacuum_store(found, state.actor())
    click.echo(f"Vacuumed: {done}")


@store.command(name="copy", short_help="Copy a store into an empty one: SQLite or PostgreSQL, either way.")
@click.option("--from", "source", required=True, metavar="sqlite:DIR|postgresql://…", help="The store to copy from.")
@click.option(
    "--to", "target", required=True, metavar="sqlite:DIR|postgresql://…", help="The empty store to copy into."
)
@renders_errors()
def copy(source: str, target: str) -> None:
    """Copy everything in one store (collections, faces with their templates still sealed, users,
    consents, reviews, people, crops, video jobs, the audit log and the API keys) into an empty
    one, keeping every id, in one transaction. Each side is `sqlite:DIR`, the SQLite store and
    keys.db of data directory DIR, or a `postgresql://…` URL, that database and its keys table,
    whose head file is the data directory's (`--data`). The audit log is copied entry for entry,
    so `audit-log verify` passes on the copy; the heads recorded in the source's head file are
    added to the target's, and the copy itself is logged in the copy's audit log. Run it with the
    template key and server.key the target will be used with: they must open what the source sealed."""
    from facetrust.cli.store_copy import copy_between, side

    state = cli_state()
    data = state.settings().resolved_data_dir
    src, dst = side(source, "--from", data), side(target, "--to", data)
    report = copy_between(src, dst, settings=state.settings(), actor=state.actor())
    total = sum(report.rows.values())
    click.echo(
        f"Copied {total} rows of {len(report.rows)} tables and {report.keys} API keys from {src} to {dst}; "
        f"audit head {report.head}"
    )
    if report.source_moved:
        click.echo(
            f"Warning: the source was written to while it was copied: its {report.source_moved} audit "
            f"entries after {report.head.seq} (and what they did) are not in the copy; stop every writer "
            "and copy again to carry them",
            err=True,
        )
