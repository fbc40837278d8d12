"""``facetrust audit``: per-group error rates of the engine on labelled datasets, a report folder, a gate."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from facetrust.cli.context import PathType, cli_state, renders_errors
from facetrust.errors import FacetrustError, InvalidParameterError
from facetrust.fairness.datasets import DATASET_TYPES
from facetrust.fairness.results import one_line

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.fairness.audit import AnalysisResult, DatasetAudit, Rate
    from facetrust.fairness.datasets import DatasetSpec
    from facetrust.fairness.gate import Bound, GateCheck

__all__ = ["audit", "audit_text", "load_specs", "progress_bar", "worker_count"]


@contextmanager
def progress_bar(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A click progress bar on stderr (hidden when stderr is not a terminal)."""
    stderr = sys.stderr
    with click.progressbar(length=total, label=label, file=stderr, hidden=not stderr.isatty()) as bar:
        yield bar.update


# ``--workers`` of the commands that embed datasets (audit, calibrate); ``worker_count`` reads it
workers_option = click.option(
    "--workers", type=click.IntRange(1, 64), help="Embedding processes, 1–64 (default: 2 on 2+ cores)."
)


def worker_count(requested: int | None) -> int:
    """Processes for embedding: as asked, else 1 for an injected engine, else up to 2 (one per core)."""
    if requested is not None:
        return requested
    if "engine" in cli_state().obj:
        return 1
    return max(1, min(2, os.cpu_count() or 1))


def load_specs(datasets: tuple[Path, ...], kind: str | None, limit: int | None, seed: int) -> list[DatasetSpec]:
    from facetrust.fairness.datasets import load_dataset

    specs = [load_dataset(path, kind) for path in datasets]
    return [s.limited(limit, seed) for s in specs] if limit is not None else specs


def _rate(rate: Rate | None, width: int = 22) -> str:
    if rate is None:
        return "–".rjust(width)
    text = f"{rate.value:.2e} ({rate.interval.low:.1e}–{rate.interval.high:.1e})"
    return text.rjust(width)


def _analysis_text(result: AnalysisResult) -> list[str]:
    points = result.points
    lines = [f"  by {result.analysis.label}: " + "; ".join(f"{p.label} → score {p.threshold:.4f}" for p in points)]
    head = f"    {'group':<10} {'images':>7} {'people':>7} {'FTD':>22}"
    for p in points:
        head += f" {'FMR@' + p.key:>22} {'FNMR@' + p.key:>22}"
    lines.append(head)
    for g in result.groups:
        row = f"    {one_line(g.group):<10} {g.images:>7,} {g.identities:>7,} {_rate(g.failure_to_detect)}"
        for p in points:
            row += f" {_rate(g.fmr.get(p.key))} {_rate(g.fnmr.get(p.key))}"
        lines.append(row)
    for r in result.ratios:
        d = r.differential
        at = f" at {r.point}" if r.point else ""
        bound = " (lower bound)" if d.ratio_is_bound else ""
        lines.append(
            f"    {r.metric.upper()} ratio{at}: {d.ratio:.2f}{bound} {one_line(d.worst)}/{one_line(d.best)} "
            f"(95 % {r.interval_text})"
        )
    if result.unmeasured:
        names = ", ".join(one_line(n) for n in result.unmeasured)
        lines.append(f"    too few faces found to measure match rates (failure to detect is measured): {names}")
    return lines


def audit_text(datasets: tuple[DatasetAudit, ...]) -> str:
    """The human summary of an audit: one block per dataset and analysis."""
    lines: list[str] = []
    for d in datasets:
        lines.append(
            f"{d.name} ({d.kind}): {d.images:,} images, {d.unreadable:,} unreadable, hash {d.fingerprint[:16]}"
        )
        for result in d.analyses:
            lines.extend(_analysis_text(result))
    return "\n".join(lines)


def _parse_gate(expr: str | None) -> tuple[Bound, ...]:
    from facetrust.fairness.gate import parse_gate

    if expr is None:
        return ()
    try:
        return parse_gate(expr)
    except InvalidParameterError as exc:
        raise click.BadParameter(exc.message, param_hint="'--gate'") from None


def _report_gate(checks: tuple[GateCheck, ...]) -> None:
    for check in checks:
        click.echo("gate: " + check.describe())
    failed = [c for c in checks if not c.passed]
    if failed:
        raise FacetrustError("audit gate failed: " + "; ".join(c.describe() for c in failed))


@click.command(short_help="Measure error rates per demographic group; write a report.")
@click.argument("datasets", nargs=-1, required=True, type=PathType(exists=True, path_type=Path), metavar="DATASET...")
@click.option("--dataset-type", type=click.Choice(DATASET_TYPES), help="The dataset layout (default: guessed).")
@click.option(
    "--out",
    type=PathType(file_okay=False, path_type=Path),
    default=Path("facetrust-audit"),
    show_default=True,
    help="The report folder: report.json, report.html and PNG plots.",
)
@click.option("--gate", "gate_expr", metavar="EXPR", help='Bounds that must hold, e.g. "fmr_ratio<=2,fnmr_ratio<=1.5".')
@click.option("--limit", type=click.IntRange(min=1), help="Audit a seeded subset of about N images per dataset.")
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seeds the subset, the pairs and the bootstrap.",
)
@click.option(
    "--replicates", type=click.IntRange(min=10), default=1000, show_default=True, help="Bootstrap replicates."
)
@click.option(
    "--max-per-identity",
    type=click.IntRange(min=1),
    metavar="N",
    help="At most N images of each identity in impostor and mated pairs, a seeded choice "
    "(default: every image in impostor pairs, 20 in mated pairs).",
)
@workers_option
@renders_errors()
def audit(
    datasets: tuple[Path, ...],
    dataset_type: str | None,
    out: Path,
    gate_expr: str | None,
    limit: int | None,
    seed: int,
    replicates: int,
    max_per_identity: int | None,
    workers: int | None,
) -> None:
    """Audit the engine on each DATASET: FMR, FNMR and failure to detect per group.

    A DATASET is an LFW folder (with male_names.txt / female_names.txt), a UTKFace folder
    (labels.csv or labelled file names) or a CSV file (path,identity,group columns...).
    Impostor pairs are formed within a group only. Intervals are 95 % bootstrap intervals
    over people. Embeddings are cached in the cache directory, so a rerun is fast.
    With --max-per-identity, a much-photographed person weighs in the FMR like anyone else.

    \b
    Exit status:
      0  audit written (and every --gate bound holds)
      1  error, or a --gate bound failed (the failing bound is named)
      2  usage error, e.g. a --gate clause that cannot be read
    """
    from facetrust.fairness.audit import AuditOptions
    from facetrust.fairness.gate import check_gate
    from facetrust.fairness.report import write_report
    from facetrust.fairness.runner import run_audit

    bounds = _parse_gate(gate_expr)
    specs = load_specs(datasets, dataset_type, limit, seed)
    state = cli_state()
    count = worker_count(workers)
    engine = state.engine()
    options = AuditOptions(seed=seed, replicates=replicates)
    if max_per_identity is not None:  # impostor and mated pairs alike
        options = replace(options, max_per_identity=max_per_identity, impostor_max_per_identity=max_per_identity)
    run = run_audit(
        engine,
        specs,
        options,
        cache_dir=state.settings().resolved_cache_dir,
        workers=count,
        progress=progress_bar,
    )
    unread = [d for d in run.datasets if d.unreadable == d.images]
    if unread:  # an audit of nothing is not an audit: no report, exit 1
        names = ", ".join(f"{d.name} ({d.images:,} images)" for d in unread)
        raise InvalidParameterError(
            f"No image of {names} could be read (each is named above): nothing was measured and no report was written",
            parameter="DATASET",
        )
    paths = write_report(run, out)
    click.echo(audit_text(run.datasets))
    click.echo(f"report: {paths['html']} (and {paths['json'].name}, plots beside it)")
    if bounds:
        _report_gate(check_gate(bounds, run.datasets))
