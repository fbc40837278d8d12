"""``facetrust faces``: list and delete the faces stored in a collection."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from facetrust.cli import render_collections as render
from facetrust.cli.context import all_pages, cli_state, renders_errors, report_error
from facetrust.errors import NotFoundError

if TYPE_CHECKING:  # pragma: no cover
    pass

__all__ = ["faces", "not_done"]


@click.group(short_help="List and delete stored faces.")
def faces() -> None:
    """The faces stored in a collection: metadata only (the images are never stored)."""


@faces.command(name="list", short_help="List the faces of a collection.")
@click.argument("collection")
@click.option("--user-id", help="Only the faces associated with this user.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@renders_errors()
def list_faces(collection: str, user_id: str | None, as_json: bool) -> None:
    """Every face in COLLECTION, oldest first: face id, external image id, user, box as
    fractions of the image, detector confidence, brightness and sharpness."""
    service = cli_state().service()
    pages = all_pages(
        lambda token: service.list_faces(
            collection, next_token=token, user_id=user_id, max_results=4096, actor=cli_state().actor()
        )
    )
    found = [face for page in pages for face in page.faces]
    model = pages[-1].model
    click.echo(render.faces_json(collection, model, found) if as_json else render.faces_text(collection, found))


def not_done(action: str, face_id: str, reasons: tuple[str, ...], user_id: str | None = None) -> NotFoundError:
    """The error reported for one face an operation could not apply to."""
    owner = f" (user {user_id})" if user_id else ""
    return NotFoundError(f"face {face_id} not {action}: {', '.join(reasons)}{owner}", resource=face_id)


@faces.command(short_help="Delete faces from a collection.")
@click.argument("collection")
@click.argument("face_ids", nargs=-1, required=True, metavar="FACE_ID...")
@renders_errors()
def delete(collection: str, face_ids: tuple[str, ...]) -> None:
    """Delete the faces FACE_ID... from COLLECTION. A face that is not there is reported on
    stderr and the others are still deleted; the exit status is then 1."""
    result = cli_state().service().delete_faces(collection, list(face_ids), actor=cli_state().actor())
    for face_id in result.deleted:
        click.echo(f"deleted {face_id}")
    for failed in result.unsuccessful:
        report_error(not_done("deleted", failed.face_id, failed.reasons, failed.user_id))
    click.echo(f"{collection}: {len(result.deleted)} of {len(set(face_ids))} faces deleted")
    if result.unsuccessful:
        click.get_current_context().exit(1)
