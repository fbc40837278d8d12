"""``facetrust people``: a collection's faces grouped into people, and corrections that persist."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from facetrust.cli.context import cli_state, renders_errors, similarity_option
from facetrust.cli.render_collections import plural

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.people.types import PeoplePage, Person

__all__ = ["people"]


@click.group(short_help="Group a collection's faces into people; merge, split, name.")
def people() -> None:
    """People: clusters of a collection's faces believed to be one person each, found on the
    collection's index without labels. Corrections (merge, split, name) are kept and every
    later pass respects them."""


def _people_text(collection: str, page: PeoplePage) -> str:
    n = len(page.people)
    people = f"{n:,} {'person' if n == 1 else 'people'}"
    head = f"{collection}: {people}, {plural(page.unclustered, 'face')} unclustered (threshold {page.threshold:g})"
    if not page.people:
        return head + "\n"
    lines = [head, f"{'cluster id':36}  faces  cohesion  user"]
    for p in page.people:
        lines.append(f"{p.cluster_id:36}  {p.size:5d}  {p.cohesion:8.1f}  {p.user_id or '-'}")
    return "\n".join(lines) + "\n"


def _person_text(person: Person) -> str:
    lines = [
        f"cluster        {person.cluster_id}",
        f"faces          {person.size}",
        f"cohesion       {person.cohesion:.1f}",
        f"representative {person.representative_face_id or '-'}",
        f"user           {person.user_id or '-'}",
    ]
    return "\n".join([*lines, *person.face_ids]) + "\n"


def _echo_person(person: Person, as_json: bool) -> None:
    click.echo(json.dumps(asdict(person), indent=2) if as_json else _person_text(person), nl=as_json)


@people.command(name="list", short_help="List the people (clusters) of a collection.")
@click.argument("collection")
@click.option("--full", is_flag=True, help="Run a full clustering pass first (corrections are kept).")
@similarity_option(
    None, "Similarity (0–100) two faces need to link, for a full pass (default: the last pass's, or 90)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@renders_errors()
def list_people(collection: str, full: bool, threshold: float | None, as_json: bool) -> None:
    """The clusters of COLLECTION, largest first. Faces indexed since the last pass join a
    cluster or start one; faces that match nobody stay unclustered."""
    if threshold is not None and not full:
        raise click.UsageError("--threshold applies to a full pass: give --full as well.")
    state = cli_state()
    service, actor = state.service(), state.actor()
    page = (
        service.cluster_faces(collection, threshold=threshold, actor=actor)
        if full
        else service.list_people(collection, actor=actor)
    )
    click.echo(json.dumps(asdict(page), indent=2) if as_json else _people_text(collection, page), nl=as_json)


@people.command(short_help="Show one person's faces.")
@click.argument("collection")
@click.argument("cluster_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@renders_errors()
def show(collection: str, cluster_id: str, as_json: bool) -> None:
    """The cluster CLUSTER_ID of COLLECTION: size, cohesion, representative face, user, and
    the ids of its faces (one a line)."""
    _echo_person(cli_state().service().describe_person(collection, cluster_id, actor=cli_state().actor()), as_json)


@people.command(short_help="Merge clusters into one person.")
@click.argument("collection")
@click.argument("cluster_ids", nargs=-1, required=True, metavar="CLUSTER_ID...")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@renders_errors()
def merge(collection: str, cluster_ids: tuple[str, ...], as_json: bool) -> None:
    """Merge two or more clusters into the first named. Refused when their faces include two
    of one image or faces of two different users."""
    _echo_person(cli_state().service().merge_people(collection, list(cluster_ids), actor=cli_state().actor()), as_json)


@people.command(short_help="Take faces out of a cluster (not this person).")
@click.argument("collection")
@click.argument("cluster_id")
@click.argument("face_ids", nargs=-1, required=True, metavar="FACE_ID...")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@renders_errors()
def split(collection: str, cluster_id: str, face_ids: tuple[str, ...], as_json: bool) -> None:
    """Take FACE_ID... out of cluster CLUSTER_ID: no later pass puts them back with its other
    faces (and they leave its user, if named). Prints what remains of the cluster."""
    state = cli_state()
    _echo_person(state.service().split_person(collection, cluster_id, list(face_ids), actor=state.actor()), as_json)


@people.command(short_help="Name a cluster: make it a user.")
@click.argument("collection")
@click.argument("cluster_id")
@click.argument("user_id")
@renders_errors()
def name(collection: str, cluster_id: str, user_id: str) -> None:
    """Create user USER_ID (if new) in COLLECTION and associate the faces of CLUSTER_ID with it
    (up to 100 faces a user; the rest are listed as skipped). Clusters holding the user's other
    faces join this one where no two faces of one image would be together."""
    result = cli_state().service().name_person(collection, cluster_id, user_id, actor=cli_state().actor())
    click.echo(f"Named cluster {cluster_id} {user_id}: {plural(len(result.associated), 'face')} associated")
    for face_id, reason in result.skipped:
        click.echo(f"skipped {face_id}: {reason}")
    for other in result.joined:
        click.echo(f"joined cluster {other} (more faces of {user_id})")
