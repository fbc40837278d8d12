"""The gate: parsing (errors name the clause) and checking against an audit."""

from __future__ import annotations

import math

import pytest

from facetrust.errors import InvalidParameterError
from facetrust.fairness.audit import AuditOptions, DatasetAudit, audit_dataset
from facetrust.fairness.gate import Bound, check_gate, parse_gate
from facetrust.fairness.pairs import CosineScorer

from .conftest import Synthetic


@pytest.fixture
def audited(synth: Synthetic) -> DatasetAudit:
    spec, emb = synth
    return audit_dataset(spec, emb, CosineScorer(emb.vectors), 0.5, AuditOptions(replicates=50))


def test_parse_reads_clauses_with_default_and_explicit_points() -> None:
    assert parse_gate("fmr_ratio<=2, fnmr_ratio@fmr < 1.5,ftd>=0") == (
        Bound("fmr_ratio", "similarity", "<=", 2.0, "fmr_ratio<=2"),
        Bound("fnmr_ratio", "fmr", "<", 1.5, "fnmr_ratio@fmr < 1.5"),
        Bound("ftd", "similarity", ">=", 0.0, "ftd>=0"),
    )


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("fmr_ratio<=2,fmr_raito<=3", "Gate clause 'fmr_raito<=3' has unknown metric 'fmr_raito'"),
        ("fmr_ratio=2", "Gate clause 'fmr_ratio=2' is not METRIC[@POINT]<=NUMBER (or <, >=, >)"),
        ("fmr_ratio<=2,", "Gate clause '' is empty"),
        ("fmr@sim80<=1e-3", "Gate clause 'fmr@sim80<=1e-3' has unknown operating point 'sim80'"),
        ("fmr<=1e-3e", "Gate clause 'fmr<=1e-3e' has a bad number '1e-3e'"),
        ("fmr<=inf", "Gate clause 'fmr<=inf' is not METRIC[@POINT]<=NUMBER (or <, >=, >)"),
    ],
)
def test_parse_errors_name_the_bad_clause(expr: str, message: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        parse_gate(expr)
    assert caught.value.message.startswith(message)
    assert caught.value.parameter == "--gate"


def test_a_bound_that_holds_passes_and_one_that_does_not_fails(audited: DatasetAudit) -> None:
    fnmr = next(r for r in audited.analyses[0].ratios if r.metric == "fnmr" and r.point == "similarity")
    ratio = fnmr.differential.ratio
    checks = check_gate(parse_gate(f"fnmr_ratio<={ratio + 0.01},fnmr_ratio<{ratio - 0.01}"), [audited])
    assert [c.passed for c in checks] == [True, False]
    assert checks[1].value == pytest.approx(ratio)
    assert checks[1].describe() == (
        f"fnmr_ratio<{ratio - 0.01}: fnmr_ratio@similarity = {ratio:.4g} (synthetic, g, b/a) FAILED"
    )


def test_a_rate_bound_checks_the_worst_group(audited: DatasetAudit) -> None:
    groups = audited.analyses[0].groups
    worst = max(g.fnmr["fmr"].value for g in groups)
    (check,) = check_gate(parse_gate("fnmr@fmr<=1"), [audited])
    assert check.passed and check.value == pytest.approx(worst)


def test_a_bound_nothing_measured_fails(audited: DatasetAudit) -> None:
    empty = DatasetAudit("u", "utkface", "h", 0, 0, False, (), ())
    (check,) = check_gate(parse_gate("fnmr_ratio<=2"), [empty])
    assert not check.passed and math.isnan(check.value)
    assert check.describe() == "fnmr_ratio<=2: not measured by any analysis"


def test_a_group_name_with_a_newline_keeps_a_gate_line_on_one_line() -> None:
    from facetrust.fairness.gate import Bound, GateCheck

    check = GateCheck(Bound("fmr", "similarity", "<=", 1e-3, "fmr<=1e-3"), 2e-3, "d, g, a\nb", False)
    assert check.describe() == "fmr<=1e-3: fmr@similarity = 0.002 (d, g, a\\nb) FAILED"
