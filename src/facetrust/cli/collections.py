"""``facetrust collections``: create, list, describe and delete collections of faces."""

from __future__ import annotations

import click

from facetrust.cli import render_collections as render
from facetrust.cli.context import all_pages, cli_state, renders_errors
from facetrust.config import PROFILES

__all__ = ["collections"]


@click.group(short_help="Create, list, describe and delete collections.")
def collections() -> None:
    """Collections of faces (as Rekognition's): each is bound to the embedding model that
    indexed it, and lives in the data directory (`facetrust --data DIR`)."""


@collections.command(short_help="Create an empty collection.")
@click.argument("name")
@click.option("--purpose", help="The policy purpose the collection serves (default: the policy's default_purpose).")
@click.option(
    "--profile",
    type=click.Choice(PROFILES),
    help="Embedding profile: default, or accurate (SFace fused with dlib; needs facetrust[accurate]).",
)
@renders_errors()
def create(name: str, purpose: str | None, profile: str | None) -> None:
    """Create the empty collection NAME (1–255 characters from a-z A-Z 0-9 _ . -), bound for
    life to the embedding model of the profile (default: the setting `profile`) and to one purpose
    of the deployment policy. Later commands on the collection use its profile's model."""
    state = cli_state()
    info = state.service().create_collection(name, purpose=purpose, profile=profile, actor=state.actor())
    click.echo(f"Created collection {info.name} (model {info.model})")


@collections.command(name="list", short_help="List the collections.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@renders_errors()
def list_collections(as_json: bool) -> None:
    """Every collection in the data directory, by name, with the model it is bound to."""
    service = cli_state().service()
    pages = all_pages(
        lambda token: service.list_collections(next_token=token, max_results=4096, actor=cli_state().actor())
    )
    listed = sorted((name, model) for page in pages for name, model in zip(page.names, page.models, strict=True))
    names, models = [name for name, _ in listed], [model for _, model in listed]
    click.echo(render.collections_json(names, models) if as_json else render.collections_text(names, models))


@collections.command(short_help="Show a collection's model and counts.")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@renders_errors()
def describe(name: str, as_json: bool) -> None:
    """The model, creation time (UTC), and numbers of faces and users of collection NAME."""
    info = cli_state().service().describe_collection(name, actor=cli_state().actor())
    click.echo(render.collection_json(info) if as_json else render.collection_text(info))


@collections.command(short_help="Delete a collection with its faces and users.")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@renders_errors()
def delete(name: str, yes: bool) -> None:
    """Delete collection NAME with all its faces and users. Asks first unless --yes."""
    service = cli_state().service()
    if not yes:
        info = service.describe_collection(name, actor=cli_state().actor())
        click.confirm(
            f"Delete collection {name} with its {render.plural(info.face_count, 'face')} and "
            f"{render.plural(info.user_count, 'user')}?",
            abort=True,
            err=True,
        )
    receipt = service.delete_collection(name, actor=cli_state().actor())
    click.echo(f"Deleted collection {name} ({render.plural(len(receipt.face_ids), 'face')} deleted)")


@collections.command(name="catch-up", short_help="Compute faces' own statistics (deferred mode).")
@click.argument("name")
@click.option("--limit", type=click.IntRange(min=1), help="Compute at most this many faces (default: all).")
@click.option(
    "--recompute",
    is_flag=True,
    help="Drop every face's statistics first and compute them all afresh (once, for statistics written "
    "before December 1, 2026).",
)
@renders_errors()
def catch_up(name: str, limit: int | None, recompute: bool) -> None:
    """Compute the per-face statistics (each face's top 50 scores against the collection) of
    every face of NAME that has none or stale ones, in batches: after a bulk import with
    face_tail_stats = "deferred", with "background" and no server running, or after upgrading
    a data directory (docs/collections.md)."""
    from facetrust.service.tails import catch_up as run

    # derived data, like the index: not an audited operation
    done = run(cli_state().service().ctx, name, limit=limit, recompute=recompute)
    click.echo(
        f"Computed the statistics of {render.plural(done.computed, 'face')} of collection {name}; "
        f"{render.plural(done.remaining, 'face')} still without"
    )
