"""``facetrust keys``: create, list and revoke the API keys the server's SigV4 authentication accepts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

from facetrust.cli.context import cli_state, renders_errors
from facetrust.cli.render import dumps, table
from facetrust.cli.render_collections import timestamp_or_none
from facetrust.governance.recorder import Record
from facetrust.server.keys import KeyRecord, KeyStore
from facetrust.server.roles import ROLES
from facetrust.service.governed import attempt

__all__ = ["keys"]

SECRET_WARNING = "Warning: the secret is shown only this once and cannot be recovered; store it now."


@contextmanager
def _store() -> Iterator[KeyStore]:
    settings = cli_state().settings()
    store = KeyStore.open(settings.resolved_data_dir, store=settings.store)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _audited(operation: str) -> Iterator[Record]:
    """The key change, logged (refusals included) in the data directory's audit log with who made it."""
    from facetrust.service.faceservice import DB_NAME
    from facetrust.store.postgres import open_store

    state = cli_state()
    settings = state.settings()
    log = open_store(settings.resolved_data_dir / DB_NAME, settings.store)
    try:
        with attempt(log, state.actor(), operation) as rec:
            yield rec
    finally:
        log.close()


def _record_json(record: KeyRecord) -> dict[str, Any]:
    return {
        "key_id": record.key_id,
        "role": record.role,
        "description": record.description,
        "created": timestamp_or_none(record.created_at),
        "revoked": timestamp_or_none(record.revoked_at),
    }


def _list_text(records: Sequence[KeyRecord]) -> str:
    if not records:
        return "No keys; create one with `facetrust keys create --role ROLE`"
    rows = [[r.key_id, r.role, timestamp_or_none(r.created_at) or "", _status(r), r.description] for r in records]
    return table(("key id", "role", "created", "status", "description"), rows)


def _status(record: KeyRecord) -> str:
    return "active" if record.revoked_at is None else f"revoked {timestamp_or_none(record.revoked_at)}"


@click.group(short_help="Create, list and revoke API keys.")
def keys() -> None:
    """API keys for the server: each is an access key id and secret for an AWS SDK (SigV4),
    with a role that decides which operations it may call. Kept in the data directory's
    keys.db (`facetrust --data DIR`)."""


@keys.command(short_help="Create a key and print its secret (once).")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the key may do: " + ", ".join(ROLES) + ".")
@click.option("--description", default="", help="A note on whom or what the key is for.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@renders_errors()
def create(role: str, description: str, as_json: bool) -> None:
    """Create a key with ROLE and print its access key id and secret.

    The secret is shown only this once: facetrust cannot show it again."""
    with _store() as store, _audited("CreateKey") as rec:
        rec.details = {"key_role": role}
        key_id, secret = store.create(role, description)
        record = store.get(key_id)
        rec.details["created_key_id"] = key_id
    if as_json:
        click.echo(dumps({"key_id": key_id, "secret": secret, **_record_json(record)}))
    else:
        click.echo(
            f"Created key {key_id} (role {role})\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}"
        )
    click.echo(SECRET_WARNING, err=True)


@keys.command(name="list", short_help="List the keys (never their secrets).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@renders_errors()
def list_keys(as_json: bool) -> None:
    """Every key, active and revoked, oldest first: id, role, times (UTC), description."""
    with _store() as store:
        records = store.list()
    click.echo(dumps([_record_json(r) for r in records]) if as_json else _list_text(records))


@keys.command(short_help="Revoke a key.")
@click.argument("key_id")
@renders_errors()
def revoke(key_id: str) -> None:
    """Revoke KEY_ID: the server refuses requests signed with it from now on."""
    with _store() as store, _audited("RevokeKey") as rec:
        rec.details = {"revoked_key_id": key_id}
        before = store.get(key_id)
        record = store.revoke(key_id)
    if before.revoked_at is not None:
        click.echo(f"Key {key_id} was already revoked at {timestamp_or_none(before.revoked_at)}")
    else:
        click.echo(f"Revoked key {key_id} (role {record.role})")
