"""Fairness audit: per-group error rates with identity-bootstrap intervals, reports, a gate.

* ``metrics``: pure functions over score arrays (FMR, FNMR, failure to detect, thresholds,
  worst/best differentials).
* ``bootstrap``: confidence intervals that resample identities, not pairs.
* ``datasets``: the dataset spec and its adapters (LFW, UTKFace, CSV).
* ``embedding``: embedding a dataset once, in a process pool, with a resumable cache.
* ``pairs``: same-group impostor and mated pairs, scored in blocks.
* ``audit``: the runner; ``report``/``plots``: report.json, report.html and PNGs;
  ``gate``: pass/fail bounds for CI.
"""

from __future__ import annotations

from facetrust.fairness.metrics import (
    Differential,
    differential,
    failure_to_detect,
    false_match_rate,
    false_non_match_rate,
    threshold_for_fmr,
)

__all__ = [
    "Differential",
    "differential",
    "failure_to_detect",
    "false_match_rate",
    "false_non_match_rate",
    "threshold_for_fmr",
]
