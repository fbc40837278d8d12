"""``facetrust review record``: a person's decision on a search that needs human review."""

from __future__ import annotations

import click

from facetrust.cli import render_governance as render
from facetrust.cli.context import cli_state, renders_errors
from facetrust.service.review import REVIEW_DECISIONS

__all__ = ["review"]


@click.group(short_help="Record human review decisions.")
def review() -> None:
    """Human review: for purposes with human_review = true a search returns a candidate list
    that needs review, never an identification; its audit entry number (audit_seq) is what a
    reviewer's decision is recorded against."""


@review.command(short_help="Record the decision on a search.")
@click.argument("search_seq", type=click.IntRange(1, 2**63 - 1))
@click.option("--decision", required=True, type=click.Choice(REVIEW_DECISIONS), help="What the reviewer decided.")
@click.option("--note", default="", help="The reviewer's reasons (at most 2000 characters).")
@renders_errors()
def record(search_seq: int, decision: str, note: str) -> None:
    """Record a review decision against the search whose audit entry is SEARCH_SEQ. A search
    is reviewed once; a second decision is an error."""
    click.echo(
        render.review_text(
            cli_state().service().record_review(search_seq, decision=decision, note=note, actor=cli_state().actor())
        )
    )
