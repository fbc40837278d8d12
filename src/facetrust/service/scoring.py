"""Per-probe scoring of a 1:N search: the probe's own false-match rate against this gallery.

A search already finds the probe's nearest gallery faces. Their scores are the upper tail of
the probe's impostor scores against this gallery (a gallery holds mostly other people), so
they say how often a stranger in *this* gallery reaches a score *for this probe*
(``fairness.tailnorm``): a child's face or a face of a group the model separates less well
has many close strangers and needs a higher raw score for the same Similarity. No label is
inferred or used; the gallery is the cohort, so the statistics follow the deployment's
population as it grows, and cost nothing beyond the search itself.

``probe_scale`` turns the top gallery scores into a ``ProbeScale`` that maps raw scores to
``Comparison``s (calibrated Similarity and FMR for this probe), gives the raw score a
threshold needs, and the probe's FPIR. It falls back to the global calibration, and says the
estimate is unreliable, when the gallery is too small for a tail (``MIN_GALLERY`` faces) or the
probe resembles so many gallery faces that its ``TAIL_K``-th closest one scores as high as only
a ``10^CROWDED_DECADES``-th of the strangers a typical face's would (the map then reaches far
beyond where the calibration was measured for this probe).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from facetrust.calibration import Calibration, fmr_from_similarity
from facetrust.errors import PurposeRefusedError
from facetrust.fairness.tailnorm import anchor, mapped, top_scores_stats
from facetrust.service.types import ProbeEstimate
from facetrust.types import Comparison

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from facetrust.governance.policy import Purpose
    from facetrust.service.context import ServiceContext
    from facetrust.store.sqlite import CollectionRow

__all__ = [
    "MIN_GALLERY",
    "TAIL_K",
    "FaceSide",
    "ProbeScale",
    "crowded",
    "estimate_of",
    "estimate_record",
    "probe_scale",
    "refuse_unreliable",
    "service_scale",
    "stored_face_scales",
]

TAIL_K = 50
FaceSide = tuple[float, float, float, float]
"""A gallery face's ``(u, m, c, m_G)`` against its collection (``service.tails.face_sides``)."""
MIN_GALLERY = 1000
CROWDED_DECADES = 1.0


_HALF_ROUNDING = 5e-5  # a Similarity is reported to four places: one this far below a threshold reaches it


@dataclass(frozen=True)
class ProbeScale:
    """How one probe's raw scores against one gallery become Similarity and FMR.

    ``tail`` is ``(u, m, c, m_G)`` (``fairness.tailnorm``: the probe's K-th highest gallery
    score and median excess, and the global calibration's at the same fraction), or ``None``
    when the global calibration is used as it is; ``unreliable`` says why the estimate should
    not be trusted (``None`` when it can be); ``symmetric``: gallery faces' own sides are
    combined with the probe's where they have statistics (``symmetric_scores``).
    """

    calibration: Calibration
    gallery: int
    tail: tuple[float, float, float, float] | None
    unreliable: str | None = None
    symmetric: bool = False

    @functools.cached_property
    def _top(self) -> float:
        """The global score of Similarity 100, where a symmetric score caps each side (worked out
        once a scale: a search maps every candidate with it)."""
        return self.calibration.score_for_similarity(100.0)

    @property
    def method(self) -> str:
        if self.tail is None:
            return "calibration"
        return "symmetric-tail" if self.symmetric else "probe-tail"

    def global_score(self, score: float, face: FaceSide | None = None) -> float:
        """``score`` on the global calibration's scale: mapped by the probe's tail, and with the
        gallery face's ``face`` side (``service.tails``) the mean of both maps (symmetric), each
        side counted at most at Similarity 100 (so one side far beyond it cannot carry a pair the
        other side puts low, and a search can find every face that reaches a threshold:
        ``candidate_floor``); where both sides are beyond it, the nearer of the two (so the FMR
        still falls to the table's floor, as one-sided)."""
        if self.tail is None:
            return score
        probe = float(mapped(score, *self.tail))
        if face is None:
            return probe
        other = float(mapped(score, *face))
        top = self._top
        if probe >= top and other >= top:
            return min(probe, other)
        return 0.5 * (min(probe, top) + min(other, top))

    def compare(self, score: float, threshold: float | None = None, face: FaceSide | None = None) -> Comparison:
        """The calibration's ``Comparison`` of the mapped score, carrying the raw ``score``."""
        return replace(self.calibration.compare(self.global_score(score, face), threshold), score=float(score))

    def score_for_similarity(self, similarity: float) -> float:
        """The raw score at which this probe reaches ``similarity`` (−inf when every score does)."""
        if similarity <= self.calibration.similarity(-1.0):
            return -math.inf
        target = self.calibration.score_for_similarity(similarity)
        if self.tail is None:
            return target
        u, m, c, m_global = self.tail
        return u + (target - c) * m / m_global

    def candidate_floor(self, similarity: float) -> float:
        """The lowest raw score at which a gallery face can reach ``similarity`` (its Similarity
        rounded to four places): the probe's own score for it, or, symmetric, the score at which
        the probe's side alone is low enough that a face side at Similarity 100 lifts the mean to it."""
        similarity = max(similarity - _HALF_ROUNDING, 0.0)
        if not self.symmetric or self.tail is None or similarity <= self.calibration.similarity(-1.0):
            return self.score_for_similarity(similarity)
        u, m, c, m_global = self.tail
        lowest = 2.0 * self.calibration.score_for_similarity(similarity) - self._top
        return u + (lowest - c) * m / m_global

    def fmr_at(self, threshold: float) -> float:
        """The per-comparison FMR this probe has at ``threshold`` (what its Similarity promises)."""
        if threshold <= self.calibration.similarity(-1.0):
            return min(1.0, float(10.0 ** self.calibration.log10_fmr[0]))
        return max(fmr_from_similarity(threshold), self.calibration.floor_fmr)

    def fpir(self, threshold: float, gallery: int | None = None) -> float:
        """Chance that this probe gets at least one wrong candidate at ``threshold`` from ``gallery``
        faces (default: the gallery its scale was read from)."""
        size = self.gallery if gallery is None else gallery
        if size <= 0:
            return 0.0
        fmr = self.fmr_at(threshold)
        if fmr >= 1.0:
            return 1.0
        return -math.expm1(size * math.log1p(-fmr))


def probe_scale(calibration: Calibration, top_scores: Sequence[float], gallery: int) -> ProbeScale:
    """The probe's scale from its highest scores against a gallery of ``gallery`` faces.

    ``top_scores`` are the probe's best scores against distinct gallery faces (any order; the
    probe's own face left out), at least ``TAIL_K`` of them for a tail estimate.
    """
    if gallery < MIN_GALLERY or len(top_scores) < TAIL_K:
        faces = f"{gallery:,} face{'s' * (gallery != 1)}"
        small = f"gallery of {faces} is below the {MIN_GALLERY:,} needed for a per-probe estimate"
        return ProbeScale(calibration, gallery, None, small)
    stats = top_scores_stats(sorted(top_scores, reverse=True)[:TAIL_K], gallery)
    u, m = float(stats.u[0]), float(stats.m[0])
    c, m_global = anchor(calibration, TAIL_K, gallery)
    return ProbeScale(calibration, gallery, (u, m, c, m_global), crowded(calibration, u, gallery, "the probe"))


def crowded(calibration: Calibration, u: float, gallery: int, who: str) -> str | None:
    """Why ``who``'s estimate is unreliable when its ``TAIL_K``-th closest of ``gallery`` faces scores
    ``u``, which ``10^CROWDED_DECADES`` times fewer strangers reach than a typical face's; else None."""
    crowding = math.log10(TAIL_K / gallery) - math.log10(calibration.fmr(u)[0])
    if crowding < CROWDED_DECADES:
        return None
    return (
        f"{who} resembles many gallery faces: its {TAIL_K}th closest gallery face scores {u:.3f}, which "
        f"{10**crowding:.0f}× fewer strangers reach than a typical face's {TAIL_K}th closest in a gallery this size"
    )


def estimate_of(scale: ProbeScale, threshold: float) -> ProbeEstimate:
    """What a search result says about its own estimate."""
    return ProbeEstimate(scale.method, scale.fmr_at(threshold), scale.unreliable)


def estimate_record(scale: ProbeScale, threshold: float, gallery: int) -> dict[str, object]:
    """What the audit log keeps of a search's estimate: its method, FPIR and why it is unreliable."""
    return {"estimate": scale.method, "fpir": scale.fpir(threshold, gallery), "unreliable": scale.unreliable}


def refuse_unreliable(purpose: Purpose, scale: ProbeScale) -> None:
    """Refuse the search when the purpose requires a reliable per-probe estimate and this one is not."""
    if purpose.refuse_unreliable and scale.unreliable is not None:
        raise PurposeRefusedError(
            f"Purpose {purpose.name!r} refuses probes whose false-match estimate is unreliable: {scale.unreliable}",
            purpose=purpose.name,
            rule="refuse_unreliable",
        )


def service_scale(service: ServiceContext, row: CollectionRow, seen: dict[int, float], gallery: int) -> ProbeScale:
    """A probe's scale from its top scores ``seen`` among ``gallery`` faces of collection ``row``, on the
    calibration of the collection's own profile (global calibration when the engine's settings turn
    probe normalisation off)."""
    engine = service.engine_for(row)
    cal = engine.calibration
    if not engine.settings.probe_normalisation:
        return ProbeScale(cal, gallery, None)
    scale = probe_scale(cal, list(seen.values()), gallery)
    return replace(scale, symmetric=engine.settings.symmetric_scores) if scale.tail is not None else scale


def stored_face_scales(
    service: ServiceContext, row: CollectionRow, keys: list[int], vectors: np.ndarray
) -> list[ProbeScale]:
    """Each stored face's scale against its collection, itself left out: what a SearchFaces with
    that face would read (AssociateFaces' matching scores its new faces with these)."""
    hits, size = service.indexes.get(row).search(vectors, TAIL_K + 1)
    out = []
    for key, found, scores in zip(keys, hits.keys, hits.scores):
        seen = {k: s for k, s in zip(found.tolist(), scores.tolist()) if k >= 0 and k != key}
        out.append(service_scale(service, row, seen, max(size - 1, 0)))
    return out
