"""``facetrust compare``: the largest face of A against every face of B, calibrated."""

from __future__ import annotations

import click

from facetrust.calibration import DEFAULT_THRESHOLD
from facetrust.cli import render
from facetrust.cli.context import cli_state, renders_errors, similarity_option
from facetrust.errors import InvalidImageError, InvalidParameterError

__all__ = ["EXIT_ERROR", "EXIT_MATCH", "EXIT_NO_MATCH", "compare"]

EXIT_MATCH, EXIT_NO_MATCH, EXIT_ERROR = 0, 1, 2


@click.command(short_help="Compare faces of two images (exit 0 match, 1 no match, 2 error).")
@click.argument("source", metavar="A")
@click.argument("target", metavar="B")
@similarity_option(
    DEFAULT_THRESHOLD,
    "Similarity (0–100) a face of B must reach to match; higher is stricter. "
    "80 ≈ an estimated false-match rate of 1 in 10,000.",
)
@click.option(
    "--purpose",
    help="The policy purpose this comparison serves (default: the policy's default_purpose); "
    "a forbidden purpose refuses it. Recorded in the audit log.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
@renders_errors(exit_code=EXIT_ERROR)
def compare(source: str, target: str, threshold: float, purpose: str | None, as_json: bool) -> None:
    """Compare the largest face in image A with every face in image B.

    Runs under a purpose of the deployment policy and is recorded in the audit log of the
    data directory (docs/governance.md). Prints, for each recognisable face of B: similarity
    (0–100), the estimated false-match rate at that similarity ("≤" when it is only an upper
    bound), the raw cosine score, and whether it matches.

    \b
    Exit status:
      0  at least one face of B matches
      1  no face of B matches (or B has no recognisable face)
      2  error: unreadable image, no recognisable face in A, bad option
    """
    state = cli_state()
    try:
        result = state.service().compare_faces(
            source, target, threshold=threshold, purpose=purpose, actor=state.actor()
        )
    except InvalidParameterError as exc:
        if exc.parameter != "SourceImage":
            raise
        raise InvalidImageError("no recognisable face found in image A", source=source) from exc
    click.echo(render.compare_json(source, target, result) if as_json else render.compare_text(source, target, result))
    click.get_current_context().exit(EXIT_MATCH if result.is_match else EXIT_NO_MATCH)
