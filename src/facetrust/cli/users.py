"""``facetrust users``: users (named groups of one person's faces), and searching by them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from facetrust.calibration import DEFAULT_THRESHOLD
from facetrust.cli import render_collections as render
from facetrust.cli.context import all_pages, cli_state, renders_errors, report_error, similarity_option
from facetrust.cli.faces import not_done
from facetrust.service.users import ASSOCIATE_THRESHOLD

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.service import AssociateResult

__all__ = ["users"]

client_token_option = click.option(
    "--client-token",
    default=None,
    metavar="TOKEN",
    help="Carry this out once: rerun with the same token and arguments within a day, it reports the first "
    "answer and changes nothing (1–64 characters from a-z A-Z 0-9 _ -).",
)


@click.group(short_help="Create users and associate faces with them.")
def users() -> None:
    """Users: up to 100 faces of one person in a collection, searched as one (Rekognition's
    user vectors)."""


@users.command(short_help="Create a user in a collection.")
@click.argument("collection")
@click.argument("user_id")
@client_token_option
@renders_errors()
def create(collection: str, user_id: str, client_token: str | None) -> None:
    """Create user USER_ID (1–128 characters from a-z A-Z 0-9 _ . - :) in COLLECTION."""
    cli_state().service().create_user(collection, user_id, client_token=client_token, actor=cli_state().actor())
    click.echo(f"Created user {user_id} in collection {collection}")


@users.command(short_help="Delete a user (its faces stay, unassociated).")
@click.argument("collection")
@click.argument("user_id")
@client_token_option
@renders_errors()
def delete(collection: str, user_id: str, client_token: str | None) -> None:
    """Delete user USER_ID from COLLECTION. Its faces stay in the collection, associated
    with no user (delete them with `facetrust faces delete`)."""
    cli_state().service().delete_user(collection, user_id, client_token=client_token, actor=cli_state().actor())
    click.echo(f"Deleted user {user_id} from collection {collection}")


@users.command(name="list", short_help="List the users of a collection.")
@click.argument("collection")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@renders_errors()
def list_users(collection: str, as_json: bool) -> None:
    """Every user in COLLECTION, by id, with how many faces are associated with each."""
    service = cli_state().service()
    pages = all_pages(
        lambda token: service.list_users(collection, next_token=token, max_results=500, actor=cli_state().actor())
    )
    found = [user for page in pages for user in page.users]
    click.echo(render.users_json(collection, found) if as_json else render.users_text(collection, found))


def _report(verb: str, result: AssociateResult) -> None:
    click.echo(render.associate_text(verb, result))
    for failed in result.unsuccessful:
        report_error(not_done(verb, failed.face_id, failed.reasons, failed.user_id))
    if result.unsuccessful:
        click.get_current_context().exit(1)


@users.command(short_help="Associate faces with a user.")
@click.argument("collection")
@click.argument("user_id")
@click.argument("face_ids", nargs=-1, required=True, metavar="FACE_ID...")
@similarity_option(
    ASSOCIATE_THRESHOLD,
    "Similarity (0–100) a new face must reach against one of the user's faces "
    "(UserMatchThreshold; the purpose's min_threshold applies).",
)
@client_token_option
@renders_errors()
def associate(
    collection: str, user_id: str, face_ids: tuple[str, ...], threshold: float, client_token: str | None
) -> None:
    """Associate the faces FACE_ID... of COLLECTION with user USER_ID.

    Once the user has faces, a new face must match one of them at --threshold (Similarity 75
    unless given) or it is refused (LOW_MATCH_CONFIDENCE). Faces refused are reported on stderr
    and the others are still associated; the exit status is then 1.
    """
    service, actor = cli_state().service(), cli_state().actor()
    _report(
        "associated",
        service.associate_faces(
            collection,
            user_id,
            list(face_ids),
            user_match_threshold=threshold,
            client_token=client_token,
            actor=actor,
        ),
    )


@users.command(short_help="Disassociate faces from a user.")
@click.argument("collection")
@click.argument("user_id")
@click.argument("face_ids", nargs=-1, required=True, metavar="FACE_ID...")
@client_token_option
@renders_errors()
def disassociate(collection: str, user_id: str, face_ids: tuple[str, ...], client_token: str | None) -> None:
    """Remove the faces FACE_ID... from user USER_ID (the faces stay in COLLECTION). Faces
    that are not the user's are reported on stderr; the exit status is then 1."""
    service, actor = cli_state().service(), cli_state().actor()
    _report(
        "disassociated",
        service.disassociate_faces(collection, user_id, list(face_ids), client_token=client_token, actor=actor),
    )


@users.command(name="search", short_help="Find users matching a user or a stored face.")
@click.argument("collection")
@click.option("--user-id", help="Search with the faces of this user (other users are listed).")
@click.option("--face-id", help="Search with this stored face.")
@similarity_option(DEFAULT_THRESHOLD, "Similarity (0–100) a user's best face must reach to be listed.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
@renders_errors()
def search_users(collection: str, user_id: str | None, face_id: str | None, threshold: float, as_json: bool) -> None:
    """The users of COLLECTION whose faces match user USER_ID's faces or stored face FACE_ID
    (SearchUsers); give exactly one of --user-id and --face-id. Exit status 0 whether or not
    anything matched."""
    if (user_id is None) == (face_id is None):
        raise click.UsageError("Give exactly one of --user-id and --face-id.")
    result = (
        cli_state()
        .service()
        .search_users(collection, user_id=user_id, face_id=face_id, threshold=threshold, actor=cli_state().actor())
    )
    click.echo(render.user_search_json(None, result) if as_json else render.user_search_text(None, result))
