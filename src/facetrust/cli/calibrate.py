"""``facetrust calibrate``: refit the score → FMR calibration on a deployment's labelled data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from facetrust.calibration import fmr_from_similarity
from facetrust.cli.audit import load_specs, progress_bar, worker_count, workers_option
from facetrust.cli.context import FloatRange, PathType, check_output_file, cli_state, renders_errors
from facetrust.errors import InvalidParameterError
from facetrust.fairness.datasets import DATASET_TYPES
from facetrust.files import atomic_write_text

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.calibration import Calibration
    from facetrust.engine import FaceEngine
    from facetrust.fairness.datasets import DatasetSpec
    from facetrust.fairness.normfit import HeldOut
    from facetrust.fairness.results import Rate

__all__ = ["calibrate"]


def _replicates(value: int) -> int:
    """0 (no intervals) or enough replicates for a 95 % interval to mean something (10 or more)."""
    if 0 < value < 10:
        raise click.BadParameter(f"{value} replicates give no 95 % interval: give 0 (none) or at least 10")
    return value


@click.command(short_help="Refit the score → FMR calibration on your own labelled data.")
@click.argument("datasets", nargs=-1, required=True, type=PathType(exists=True, path_type=Path), metavar="DATASET...")
@click.option(
    "--out",
    required=True,
    type=PathType(dir_okay=False, path_type=Path),
    help="The file to write: a calibration (.json), with --cohort a cohort normaliser (.npz), "
    "with --normaliser a cluster normaliser (.json).",
)
@click.option("--dataset-type", type=click.Choice(DATASET_TYPES), help="The dataset layout (default: guessed).")
@click.option(
    "--cohort",
    type=PathType(exists=True, path_type=Path),
    help="Unlabelled faces for score normalisation: a folder of images or a `facetrust embed` .npz.",
)
@click.option("--top-k", type=click.IntRange(min=2), default=50, show_default=True, help="Cohort scores per face.")
@click.option(
    "--normaliser",
    is_flag=True,
    help="Fit the 1:1 cluster normaliser (the shipped recipe) on these datasets instead of a table: "
    "its regions, their offsets from every group's impostor pairs, and its calibration (.json).",
)
@click.option(
    "--clusters",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="With --normaliser: regions asked of the k-means (fewer remain where each must average 50 people).",
)
@click.option(
    "--bag",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="With --normaliser: k-means fits (seeded --seed, --seed + 1, ...) whose offsets are averaged, so that "
    "no one fit's region borders decide a face's offset (1: one fit).",
)
@click.option(
    "--holdout",
    type=FloatRange(0.0, 1.0, min_open=True, max_open=True),
    help="With --normaliser: keep this share of each dataset's people (seeded) out of the fit, and "
    "report every group's FMR and TAR at Similarity 80 on them, beside the current scoring's.",
)
@click.option(
    "--leave-out-repeats",
    is_flag=True,
    help="With --normaliser: in datasets without identities, leave out of the offsets' fit the pairs that look "
    "like one person photographed twice (a high score, each face in at most two such pairs). Some TAR back, "
    "a slightly more lenient normaliser (docs/fairness.md).",
)
@click.option("--limit", type=click.IntRange(min=1), help="Use a seeded subset of about N images per dataset.")
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seeds the subset, --max-per-identity's choice and --holdout's people.",
)
@workers_option
@click.option(
    "--max-per-identity",
    type=click.IntRange(min=1),
    help="At most N (seeded) images of each identity in the impostor pairs, so that a few "
    "much-photographed people do not set the table (default: every image; with --normaliser 20).",
)
@click.option(
    "--replicates",
    type=click.IntRange(min=0),
    default=200,
    show_default=True,
    callback=lambda ctx, param, value: _replicates(value),
    help="Bootstrap replicates for the threshold intervals (0: none; else at least 10).",
)
@renders_errors()
def calibrate(
    datasets: tuple[Path, ...],
    out: Path,
    dataset_type: str | None,
    cohort: Path | None,
    top_k: int,
    normaliser: bool,
    clusters: int,
    bag: int,
    holdout: float | None,
    leave_out_repeats: bool,
    limit: int | None,
    seed: int,
    workers: int | None,
    max_per_identity: int | None,
    replicates: int,
) -> None:
    """Fit the table that turns scores into Similarity and FMR on each DATASET's impostor pairs.

    Impostor pairs are pairs of different people within one group (as in `facetrust audit`).
    The file records the model id, the dataset hashes, pair counts and the date. Use it
    with the setting calibration_file (FACETRUST_CALIBRATION_FILE), made with --cohort,
    cohort_file (FACETRUST_COHORT_FILE), or, made with --normaliser, normaliser_file
    (FACETRUST_NORMALISER_FILE); an engine refuses a file made for another model.

    With --normaliser, 1:1 scores are normalised by regions of the embedding space fitted on
    these faces (docs/fairness.md): refit it when your people are unlike LFW's and UTKFace's.
    """
    from facetrust.calibration import Calibration
    from facetrust.fairness.refit import fit_for_datasets, load_cohort
    from facetrust.normalise import CohortNormaliser

    if normaliser and cohort is not None:
        raise click.UsageError("--normaliser and --cohort are two ways to normalise scores; choose one")
    if holdout is not None and not normaliser:
        raise click.UsageError("--holdout checks a refitted normaliser: use it with --normaliser")
    if leave_out_repeats and not normaliser:
        raise click.UsageError("--leave-out-repeats is a rule of the normaliser's fit: use it with --normaliser")
    check_output_file(out, "--out")  # before a fit of minutes, not after
    specs = load_specs(datasets, dataset_type, limit, seed)
    state = cli_state()
    count = worker_count(workers)
    engine = state.engine()
    cache = state.settings().resolved_cache_dir
    if normaliser:
        _fit_normaliser(
            engine, specs, out, cache, count, clusters, max_per_identity, replicates, seed, holdout or 0.0,
            leave_out_repeats, bag,
        )  # fmt: skip
        return
    cohort_normaliser = None
    if cohort is not None:
        vectors = load_cohort(engine, cohort, cache_dir=cache, workers=count)
        cohort_normaliser = CohortNormaliser(engine.model_id, vectors, top_k, provenance={"cohort": str(cohort)})
    fitted = fit_for_datasets(
        engine,
        specs,
        cache_dir=cache,
        workers=count,
        progress=progress_bar,
        normaliser=cohort_normaliser,
        replicates=replicates,
        max_per_identity=max_per_identity,
        seed=seed,
    )
    if isinstance(fitted, Calibration):
        _write(out, lambda: atomic_write_text(out, fitted.to_json() + "\n"))
        cal, setting = fitted, "FACETRUST_CALIBRATION_FILE"
    else:
        _write(out, lambda: fitted.save(out))
        assert fitted.calibration is not None  # fit_for_datasets always calibrates a normaliser
        cal, setting = fitted.calibration, "FACETRUST_COHORT_FILE"
    click.echo(
        f"{out}: calibration for {cal.model} from {cal.impostor_pairs:,} impostor pairs, "
        f"floor FMR {cal.floor_fmr:.1e}; {_similarity_80(cal)}"
    )
    _table_lines(cal, max_per_identity)
    click.echo(f"use it: {setting}={out}")


def _write(out: Path, write: Callable[[], None]) -> None:
    """Run ``write`` (atomic: a failure leaves any earlier file at ``out`` as it was), turning an
    ``OSError`` into an error naming ``--out``."""
    try:
        write()
    except OSError as exc:
        raise InvalidParameterError(
            f"Cannot write {out}: {exc.strerror or exc}; nothing was written there", parameter="--out"
        ) from None


def _similarity_80(cal: Calibration) -> str:
    """Where the table puts Similarity 80, or that it never reaches it."""
    if cal.reaches(80.0):
        return f"Similarity 80 at score {cal.score_for_similarity(80.0):.4f}"
    return f"Similarity 80 out of reach (no score gets above Similarity {cal.top_similarity:.1f})"


def _table_lines(cal: Calibration, max_per_identity: int | None) -> None:
    dropped = sum(int(d.get("duplicates_dropped", 0)) for d in cal.provenance.get("datasets", []))
    click.echo(f"near-duplicate images dropped (cosine ≥ 0.9 to an image of someone else): {dropped:,}")
    if max_per_identity is not None:
        over = sum(int(d.get("over_identity_limit", 0)) for d in cal.provenance.get("datasets", []))
        click.echo(f"images left out, over {max_per_identity} of one identity: {over:,}")
    interval = cal.provenance.get("threshold_intervals", {}).get("80")
    if interval is not None:
        click.echo(f"Similarity 80 score, 95 % bootstrap interval: {interval[0]:.4f}–{interval[1]:.4f}")
    if not cal.reaches(80.0):
        click.echo(
            f"warning: {cal.impostor_pairs:,} impostor pairs resolve FMR down to {cal.floor_fmr:.1e} only, "
            f"not the 1e-4 of Similarity 80: with this table nothing matches at the default threshold (80), "
            f"only at thresholds up to {cal.top_similarity:.1f}; add faces for a table that reaches 80"
        )


def _fit_normaliser(
    engine: FaceEngine,
    specs: list[DatasetSpec],
    out: Path,
    cache: Path,
    workers: int,
    clusters: int,
    max_per_identity: int | None,
    replicates: int,
    seed: int,
    holdout: float,
    leave_out_repeats: bool,
    bag: int,
) -> None:
    from facetrust.fairness.normfit import MAX_PER_IDENTITY, fit_cluster_normaliser
    from facetrust.fairness.refit import TABLE_GROUP_PAIRS

    per_identity = MAX_PER_IDENTITY if max_per_identity is None else max_per_identity
    fit = fit_cluster_normaliser(
        engine, specs, cache_dir=cache, workers=workers, progress=progress_bar, clusters=clusters,
        max_per_identity=per_identity, replicates=replicates, seed=seed, holdout=holdout,
        leave_out_repeats=leave_out_repeats, bag=bag,
    )  # fmt: skip
    found = fit.normaliser
    _write(out, lambda: found.save(out))
    cal = found.calibration
    assert cal is not None  # fit_normaliser always calibrates it
    click.echo(
        f"{out}: cluster normaliser for {found.model}: {_regions(found.fit_sizes)} (asked {clusters}), "
        f"{len(found.unreliable)} marked unreliable"
    )
    measured = [p for p in fit.parts if p.measured]
    click.echo(f"offsets from {len(measured)} of {len(fit.parts)} groups (those with 20,000 impostor pairs or more):")
    for p in fit.parts:
        click.echo(
            f"  {p.name}: {p.pairs:,} pairs"
            + (f" ({p.repeats_left_out:,} presumed repeats left out)" if p.repeats_left_out else "")
            + ("" if p.measured else " (too few to count on their own)")
        )
    click.echo(
        f"calibration of normalised scores from {cal.impostor_pairs:,} impostor pairs, floor FMR "
        f"{cal.floor_fmr:.1e}; {_similarity_80(cal)}"
    )
    table = cal.provenance.get("table_groups")
    if table is None:
        click.echo(f"table: every group's pairs pooled (no group has {TABLE_GROUP_PAIRS:,} pairs to be weighted alone)")
    else:
        left = (
            f"; left out: {', '.join(table['left_out'])} (a group needs {TABLE_GROUP_PAIRS:,} pairs, and identities "
            "where another dataset has them)"
            if table["left_out"]
            else ""
        )
        click.echo(f"table: {', '.join(table['weighted_equally'])} weighted equally{left}")
    _table_lines(cal, per_identity)
    if fit.held_out is not None:
        _held_out_lines(fit.held_out)
    click.echo(f"use it: FACETRUST_NORMALISER_FILE={out}")


def _regions(sizes: tuple[int, ...]) -> str:
    if len(sizes) == 1:
        return f"{sizes[0]} regions"
    return f"{len(sizes)} fits averaged of {', '.join(map(str, sizes))} regions"


def _held_out_lines(held: HeldOut) -> None:
    from facetrust.fairness.normfit import UNRELIABLE_SIMILARITY, UNRELIABLE_TOLERANCE

    promise = fmr_from_similarity(UNRELIABLE_SIMILARITY)
    click.echo(
        f"held out of the fit: {held.people:,} people ({held.fraction:.0%} of each dataset's); at Similarity "
        f"{UNRELIABLE_SIMILARITY:g} (FMR {promise:.0e} promised), 95 % intervals; now: {held.current}"
    )

    def rate(r: Rate) -> str:
        return f"{r.value:.1e} ({r.interval.low:.1e}–{r.interval.high:.1e})"

    above = []
    for g in held.groups:
        line = f"  {g.name}: {g.impostor_pairs:,} pairs: FMR {rate(g.fmr)}, now {rate(g.current_fmr)}"
        if g.tar is not None and g.current_tar is not None:
            line += f"; TAR {100 * g.tar.value:.2f} %, now {100 * g.current_tar.value:.2f} %"
        click.echo(line)
        if g.fmr.interval.low > UNRELIABLE_TOLERANCE:
            above.append(g.name)
    if above:
        click.echo(
            f"warning: held out, {', '.join(above)} matched above {UNRELIABLE_TOLERANCE:.0e} (3 × the promise) even "
            "at the low end of the interval: the refitted normaliser does not keep its promise there"
        )
