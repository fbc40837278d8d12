"""report.html: the audit for a reader who is not a biometrics specialist."""

from __future__ import annotations

import html
import math
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.fairness.audit import AnalysisResult, AuditOptions, DatasetAudit, Rate, RatioResult
    from facetrust.fairness.runner import AuditRun

__all__ = ["render_html", "stem"]

STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.note{background:#fff8e1;padding:.5rem 1rem;border-left:4px solid #f0b400}
img{max-width:100%;border:1px solid #eee;margin:.5rem 0}code{background:#f3f3f3;padding:0 .2rem}
"""

EXPLAIN = """
<h2>What the numbers mean</h2>
<p>Face recognition compares two faces and gives a score; above a <em>threshold</em> the two are
declared the same person. It can be wrong in two ways:</p>
<ul>
<li><b>False match rate (FMR)</b>: of pairs of photos of <em>different</em> people, the fraction
declared the same person. A false match can mean someone is wrongly identified. 1e-4 means 1 in 10,000.</li>
<li><b>False non-match rate (FNMR)</b>: of pairs of photos of the <em>same</em> person, the fraction
not recognised. A false non-match can mean someone is wrongly refused.</li>
<li><b>Failure to detect (FTD)</b>: the fraction of photos in which no usable face was found at all.</li>
</ul>
<p>Each rate is measured separately for each group. Impostor pairs (different people) are only formed
<em>within</em> a group: pairs across groups almost never match and would make the system look better
than it is for the comparisons that matter. The <b>ratio</b> is the worst group's rate divided by the
best group's (ISO/IEC 19795-10, NIST IR 8280): 1 means equal treatment, 2 means one group suffers
twice the error rate of another.</p>
<p>Every rate comes with a <b>95&nbsp;% interval</b> from a bootstrap over <em>people</em>: photos of the
same person are not independent evidence, so the people are resampled, not the pairs. Wide intervals
mean few people: treat such differences as unresolved, not as absent.</p>
<p>Two thresholds are shown: the product's default (Similarity 80, meant to give an FMR of about 1e-4
on the calibration data) and the threshold at which all the analysis's impostor pairs together have
an FMR of 1e-3.</p>
"""

CANNOT = """
<h2>What this data cannot show</h2>
<ul>
<li>Groups are only those the dataset labels. Labels such as race or sex are coarse, assigned by the
dataset's authors, and used here only to audit error rates; facetrust never infers them.</li>
<li>A dataset without identities (e.g. UTKFace) treats every photo as a different person: it measures
false matches and detection failures, but no false non-matches.</li>
<li>Results hold for this population and these photos. Lighting, cameras, ages and poses in a
deployment differ; run the audit on data that resembles it.</li>
<li>A small group gives a wide interval: the ratio can then be large or small by chance.</li>
</ul>
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _rate(rate: Rate | None) -> str:
    if rate is None:
        return "–"
    if math.isnan(rate.value):
        return "not measured"
    return f"{rate.value:.2e}<br><small>({rate.interval.low:.1e}–{rate.interval.high:.1e})</small>"


def _ratio(r: RatioResult) -> str:
    d = r.differential
    bound = " (at least; the best group had no errors)" if d.ratio_is_bound else ""
    return (
        f"{_e(r.metric.upper())}: <b>{d.ratio:.2f}×</b>{bound} — {_e(d.worst)} {d.worst_rate:.2e} vs "
        f"{_e(d.best)} {d.best_rate:.2e}; 95&nbsp;% interval {_e(r.interval_text)}"
    )


def _table(result: AnalysisResult) -> str:
    heads = ["group", "images", "people", "FTD", "impostor pairs"]
    heads += [f"FMR at {p.label}" for p in result.points]
    mated = any(g.mated_pairs for g in result.groups)
    if mated:
        heads += ["mated pairs"] + [f"FNMR at {p.label}" for p in result.points]
    rows = ["<tr>" + "".join(f"<th>{_e(h)}</th>" for h in heads) + "</tr>"]
    for g in result.groups:
        cells = [_e(g.group), f"{g.images:,}", f"{g.identities:,}", _rate(g.failure_to_detect), f"{g.impostor_pairs:,}"]
        cells += [_rate(g.fmr.get(p.key)) for p in result.points]
        if mated:
            cells += [f"{g.mated_pairs:,}"] + [_rate(g.fnmr.get(p.key)) for p in result.points]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _analysis(dataset: DatasetAudit, result: AnalysisResult, plots: dict[str, str]) -> str:
    parts = [f"<h3>{_e(dataset.name)}: by {_e(result.analysis.label)}</h3>"]
    if result.analysis.match_on:
        parts.append(f"<p>Impostor pairs also share: {_e(', '.join(result.analysis.match_on))}.</p>")
    parts.append(_table(result))
    for point in result.points:
        here = [r for r in result.ratios if r.point == point.key]
        if here:
            items = "".join(f"<li>{_ratio(r)}</li>" for r in here)
            parts.append(
                f"<p>Worst/best ratios at {_e(point.label)} (score {point.threshold:.4f}):</p><ul>{items}</ul>"
            )
    ftd = [r for r in result.ratios if r.metric == "ftd"]
    if ftd:
        parts.append(f"<p>{_ratio(ftd[0])}</p>")
    if result.unmeasured:
        names = _e(", ".join(result.unmeasured))
        parts.append(f"<p>Too few faces found to measure match rates (failure to detect is measured): {names}.</p>")
    for kind in ("fmr", "det", "scores"):
        if kind in plots:
            parts.append(f'<img src="{_e(plots[kind])}" alt="{_e(kind)} plot">')
    return "\n".join(parts)


def _header(run: AuditRun) -> str:
    models = "".join(
        f"<li>{_e(m['role'])}: <code>{_e(m['id'])}</code> (SHA-256 {_e(m['sha256'])})</li>" for m in run.models
    )
    cal = run.calibration
    norm = run.normaliser
    norm_text = (
        f"on: AS-norm, top {norm['top_k']} of a {norm['cohort_size']:,}-face cohort "
        f"(<code>{_e(norm['score_id'])}</code>)"
        if norm and "top_k" in norm
        else f"on: cluster-conditional, {_regions(norm)} (<code>{_e(norm['score_id'])}</code>)"
        if norm
        else "off (raw cosine scores)"
    )
    return (
        f"<p>Made {_e(run.created)} by facetrust {_e(run.facetrust_version)}. "
        f"Score id <code>{_e(run.score_id)}</code>.</p>"
        f"<ul>{models}<li>calibration: {_e(cal['dataset'])} ({cal['impostor_pairs']:,} impostor pairs)</li>"
        f"<li>score normalisation: {norm_text}</li>"
        f"<li>seed {run.options.seed}, {run.options.replicates} bootstrap replicates</li>"
        f"<li>images per identity: {_per_identity(run.options)}</li></ul>"
    )


def _per_identity(options: AuditOptions) -> str:
    impostor = options.impostor_max_per_identity
    return (
        f"at most {impostor} in impostor pairs" if impostor is not None else "every image in impostor pairs"
    ) + f", at most {options.max_per_identity} in mated pairs"


def stem(dataset: DatasetAudit, analysis: AnalysisResult) -> str:
    """A file-name-safe ``<dataset>-<column>`` for the analysis's plots."""
    raw = f"{dataset.name}-{analysis.analysis.column}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", raw)


def render_html(run: AuditRun, plots: dict[str, dict[str, str]]) -> str:
    """The whole report as one HTML page; plots are referenced by file name beside it."""
    body = ["<h1>Face recognition fairness audit</h1>", _header(run), EXPLAIN]
    for dataset in run.datasets:
        body.append(f"<h2>Dataset {_e(dataset.name)} ({_e(dataset.kind)})</h2>")
        body.append(
            f"<p>{dataset.images:,} images ({dataset.unreadable:,} unreadable, left out); dataset hash "
            f"<code>{_e(dataset.fingerprint[:16])}</code>.</p>"
        )
        for note in dataset.notes:
            body.append(f'<p class="note">{_e(note)}</p>')
        for result in dataset.analyses:
            body.append(_analysis(dataset, result, plots.get(stem(dataset, result), {})))
    body.append(CANNOT)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>facetrust fairness audit</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _regions(norm: dict[str, Any]) -> str:
    """A cluster normaliser's regions in words: "63 clusters", or "5 fits averaged, 316 clusters"."""
    fits = norm.get("fits") or [norm["clusters"]]  # reports written before December 3, 2026 have none
    if len(fits) == 1:
        return f"{norm['clusters']} clusters"
    return f"{len(fits)} fits averaged, {norm['clusters']} clusters"
