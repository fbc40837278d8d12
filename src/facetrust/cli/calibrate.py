"""``facetrust calibrate``: refit the score → FMR calibration on a deployment's labelled data."""

from __future__ import annotations

from pathlib import Path

import click

from facetrust.cli.audit import load_specs, progress_bar, worker_count
from facetrust.cli.context import cli_state, renders_errors
from facetrust.fairness.datasets import DATASET_TYPES

__all__ = ["calibrate"]


@click.command(short_help="Refit the score → FMR calibration on your own labelled data.")
@click.argument("datasets", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path), metavar="DATASET...")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The file to write: a calibration (.json), or with --cohort a cohort normaliser (.npz).",
)
@click.option("--dataset-type", type=click.Choice(DATASET_TYPES), help="The dataset layout (default: guessed).")
@click.option(
    "--cohort",
    type=click.Path(exists=True, path_type=Path),
    help="Unlabelled faces for score normalisation: a folder of images or a `facetrust embed` .npz.",
)
@click.option("--top-k", type=click.IntRange(min=2), default=50, show_default=True, help="Cohort scores per face.")
@click.option("--limit", type=click.IntRange(min=1), help="Use a seeded subset of about N images per dataset.")
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seeds the subset and --max-per-identity's choice."
)
@click.option("--workers", type=click.IntRange(min=1), help="Embedding processes (default: 2 on 2+ cores).")
@click.option(
    "--max-per-identity",
    type=click.IntRange(min=1),
    help="At most N (seeded) images of each identity in the impostor pairs, so that a few "
    "much-photographed people do not set the table (default: every image).",
)
@click.option(
    "--replicates",
    type=click.IntRange(min=0),
    default=200,
    show_default=True,
    help="Bootstrap replicates for the threshold intervals (0: none).",
)
@renders_errors()
def calibrate(
    datasets: tuple[Path, ...],
    out: Path,
    dataset_type: str | None,
    cohort: Path | None,
    top_k: int,
    limit: int | None,
    seed: int,
    workers: int | None,
    max_per_identity: int | None,
    replicates: int,
) -> None:
    """Fit the table that turns scores into Similarity and FMR on each DATASET's impostor pairs.

    Impostor pairs are pairs of different people within one group (as in `facetrust audit`).
    The file records the model id, the dataset hashes, pair counts and the date. Use it
    with the setting calibration_file (FACETRUST_CALIBRATION_FILE), or, made with --cohort,
    cohort_file (FACETRUST_COHORT_FILE); an engine refuses a file made for another model.
    """
    from facetrust.calibration import Calibration
    from facetrust.fairness.refit import fit_for_datasets, load_cohort
    from facetrust.normalise import CohortNormaliser

    specs = load_specs(datasets, dataset_type, limit, seed)
    state = cli_state()
    count = worker_count(workers)
    engine = state.engine()
    cache = state.settings().resolved_cache_dir
    normaliser = None
    if cohort is not None:
        vectors = load_cohort(engine, cohort, cache_dir=cache, workers=count)
        normaliser = CohortNormaliser(engine.model_id, vectors, top_k, provenance={"cohort": str(cohort)})
    fitted = fit_for_datasets(
        engine,
        specs,
        cache_dir=cache,
        workers=count,
        progress=progress_bar,
        normaliser=normaliser,
        replicates=replicates,
        max_per_identity=max_per_identity,
        seed=seed,
    )
    if isinstance(fitted, Calibration):
        out.write_text(fitted.to_json() + "\n")
        cal, setting = fitted, "FACETRUST_CALIBRATION_FILE"
    else:
        fitted.save(out)
        assert fitted.calibration is not None  # fit_for_datasets always calibrates a normaliser
        cal, setting = fitted.calibration, "FACETRUST_COHORT_FILE"
    click.echo(
        f"{out}: calibration for {cal.model} from {cal.impostor_pairs:,} impostor pairs, "
        f"floor FMR {cal.floor_fmr:.1e}; Similarity 80 at score {cal.score_for_similarity(80.0):.4f}"
    )
    dropped = sum(int(d.get("duplicates_dropped", 0)) for d in cal.provenance.get("datasets", []))
    click.echo(f"near-duplicate images dropped (cosine ≥ 0.9 to an image of someone else): {dropped:,}")
    if max_per_identity is not None:
        over = sum(int(d.get("over_identity_limit", 0)) for d in cal.provenance.get("datasets", []))
        click.echo(f"images left out, over {max_per_identity} of one identity: {over:,}")
    interval = cal.provenance.get("threshold_intervals", {}).get("80")
    if interval is not None:
        click.echo(f"Similarity 80 score, 95 % bootstrap interval: {interval[0]:.4f}–{interval[1]:.4f}")
    click.echo(f"use it: {setting}={out}")
