"""``facetrust search``: the stored faces (or users) that match the largest face of an image."""

from __future__ import annotations

import click

from facetrust.calibration import DEFAULT_THRESHOLD
from facetrust.cli import render_collections as render
from facetrust.cli.context import cli_state, renders_errors, similarity_option

__all__ = ["search"]


@click.command(short_help="Search a collection for the largest face of an image.")
@click.argument("collection")
@click.argument("image")
@similarity_option(
    DEFAULT_THRESHOLD, "Similarity (0–100) a stored face must reach to be listed; 80 ≈ an estimated FMR of 1 in 10,000."
)
@click.option(
    "--max-faces",
    type=click.IntRange(1, 4096),
    default=4096,
    help="List at most this many candidates (with --users, at most 500).",
)
@click.option("--users", is_flag=True, help="Search users (each scored by their best face) instead of faces.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
@renders_errors()
def search(collection: str, image: str, threshold: float, max_faces: int, users: bool, as_json: bool) -> None:
    """Search COLLECTION for the largest face in IMAGE (SearchFacesByImage, or
    SearchUsersByImage with --users).

    Prints the face searched, then the candidates at or above the threshold, best first,
    with their similarity and estimated false-match rate (FMR; "≤" when it is only an upper
    bound), and the chance that a list from a gallery this size holds at least one false
    match (FPIR). Exit status 0 whether or not anything matched; 1 for errors, such as an
    image without a searchable face (with --users such an image lists no users, exit 0, as
    SearchUsersByImage answers it).
    """
    from facetrust.service.search import MAX_USERS

    service = cli_state().service()
    if users:
        found = service.search_users_by_image(
            collection, image, threshold=threshold, max_users=min(max_faces, MAX_USERS), actor=cli_state().actor()
        )
        click.echo(render.user_search_json(image, found) if as_json else render.user_search_text(image, found))
    else:
        result = service.search_faces_by_image(
            collection, image, threshold=threshold, max_faces=max_faces, actor=cli_state().actor()
        )
        click.echo(render.search_json(image, result) if as_json else render.search_text(image, result))
