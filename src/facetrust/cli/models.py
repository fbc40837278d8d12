"""``facetrust models``: list the pinned models and verify their files."""

from __future__ import annotations

import click

from facetrust.cli import render
from facetrust.cli.context import cli_state, renders_errors
from facetrust.errors import ModelError
from facetrust.models.catalog import available_models
from facetrust.models.files import verify_model

__all__ = ["models"]


@click.group(short_help="List and verify the pinned models.")
def models() -> None:
    """The models facetrust runs: what they are and whether their files check out."""


@models.command(name="list", short_help="List the pinned models.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@renders_errors()
def list_models(as_json: bool) -> None:
    """Every model in the catalog: name, role, version, licence, SHA-256 and source."""
    specs = available_models()
    click.echo(render.models_json(specs) if as_json else render.models_text(specs))


@models.command(short_help="Check the model files against their pinned SHA-256.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@renders_errors()
def verify(as_json: bool) -> None:
    """Check every model file against its pinned SHA-256, preparing the cache if needed.

    Exit status 1 when any model fails; a model of an optional extra that is not installed is
    reported as such, not as a failure. Never touches the network.
    """
    cache = cli_state().settings().resolved_cache_dir
    statuses = [verify_model(spec, cache) for spec in available_models()]
    click.echo(render.verify_json(statuses) if as_json else render.verify_text(statuses))
    failed = [s.name for s in statuses if not render.status_ok(s) and not s.not_installed]
    if failed:
        raise ModelError(f"{len(failed)} of {len(statuses)} models failed verification: {', '.join(failed)}")
