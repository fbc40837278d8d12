"""``facetrust templates``: make a template key, and re-seal stored templates with the current one."""

from __future__ import annotations

import click

from facetrust.cli.context import cli_state, renders_errors
from facetrust.cli.render_collections import plural
from facetrust.governance.crypto import generate_key

__all__ = ["KEY_ADVICE", "templates"]

KEY_ADVICE = (
    "Put this key in a file outside the data directory, readable only by the facetrust user (chmod 600),\n"
    "and name it with the template_key_file setting (FACETRUST_TEMPLATE_KEY_FILE), or set FACETRUST_TEMPLATE_KEY.\n"
    "To rotate: put the new key on the first line of the key file, keep the old keys below it,\n"
    "run `facetrust templates rotate`, then remove the old lines."
)


@click.group(short_help="Template keys and rotation.")
def templates() -> None:
    """Templates (embeddings) at rest are sealed with AES-256-GCM: with the configured template
    key, else the per-user default one (docs/governance.md)."""


@templates.command(short_help="Print a new random template key.")
def keygen() -> None:
    """Print a new random 256-bit key, base64-encoded, on stdout (and where to put it on stderr)."""
    click.echo(generate_key())
    click.echo(KEY_ADVICE, err=True)


@templates.command(short_help="Re-seal stored templates with the current key.")
@renders_errors()
def rotate() -> None:
    """Re-seal every stored template with the current template key (the first in the key
    file), in batches, so searches go on meanwhile; plain templates are sealed. Prints how
    many were re-sealed."""
    service = cli_state().service()
    count = service.rotate_templates(actor=cli_state().actor())
    key = service.store.keyring.current.key_id.hex() if service.store.keyring else "?"
    click.echo(f"Re-sealed {plural(count, 'template')} with key {key}")
    if count and service.store.resealed:
        click.echo(service.store.resealed)
