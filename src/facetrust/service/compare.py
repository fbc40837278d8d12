"""CompareFaces: a 1:1 comparison under a purpose (the request's, or the policy's default), audited.

A comparison is a biometric use, so it runs on the governed path like a search: the purpose
must be declared and not forbidden, its minimum threshold applies, and the audit log records
who compared, for which purpose and case, at which threshold, how many faces, with which
similarities (never an image or an embedding). A pair whose false-match estimate is unreliable
(``FaceMatch.unreliable``: a face in a region the cluster normaliser marks) is recorded with
why, and a purpose with ``refuse_unreliable`` refuses the comparison.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facetrust.errors import InvalidImageError, InvalidParameterError, PurposeRefusedError
from facetrust.governance.actor import Actor
from facetrust.images import named_image
from facetrust.service.governed import governed
from facetrust.service.quality import check_quality_filter, rejection_reasons
from facetrust.service.validate import check_threshold

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from facetrust.engine import FaceEngine
    from facetrust.governance.policy import Purpose
    from facetrust.images import ImageSource
    from facetrust.service.context import ServiceContext
    from facetrust.types import ImageComparison

__all__ = ["CompareRequest", "compare_faces"]


def _load(engine: FaceEngine, image: ImageSource, name: str) -> np.ndarray:
    with named_image(name):  # a file names itself; bytes (a pixel bomb among them) are SourceImage/TargetImage
        return engine.load_image(image)


@dataclass(frozen=True)
class CompareRequest:
    """What a CompareFaces call asks: two images, the threshold, the quality filter, the purpose
    (None: the actor's declared purpose, then the policy's default) and the embedding profile
    (None: the service's own, the setting ``profile``)."""

    source: ImageSource
    target: ImageSource
    threshold: float = 80.0
    quality_filter: str = "NONE"
    purpose: str | None = None
    profile: str | None = None


def compare_faces(service: ServiceContext, actor: Actor, ask: CompareRequest) -> ImageComparison:
    """The largest face of ``source`` against every face of ``target`` that passes the quality filter.

    ``InvalidImageError`` naming the image (its path, or SourceImage/TargetImage for bytes)
    when one cannot be decoded; ``InvalidParameterError`` (parameter ``SourceImage``) when
    ``source`` has no recognisable face or it fails the quality filter. ``ask.profile`` picks the
    embedding profile's engine (default: the service's own, the setting ``profile``).
    """
    source, target, threshold, quality_filter = ask.source, ask.target, ask.threshold, ask.quality_filter
    profile = ask.profile
    with governed(service, actor, "CompareFaces", purpose=ask.purpose) as step:
        threshold = check_threshold(threshold, "SimilarityThreshold")
        level = check_quality_filter(quality_filter)
        rules = step.purpose
        if rules is not None and threshold < rules.min_threshold:
            raise PurposeRefusedError(
                f"Purpose {rules.name!r} requires a similarity threshold of at least {rules.min_threshold:g}; "
                f"got {threshold:g}",
                purpose=rules.name,
                rule="min_threshold",
            )
        if profile is not None:
            step.record.details = {"profile": profile}  # what was asked, when it is refused
        engine = service.engine if profile is None else service.engines.get(profile)
        first, second = _load(engine, source, "SourceImage"), _load(engine, target, "TargetImage")
        try:
            result = engine.compare(first, second, threshold=threshold)
        except InvalidImageError:  # both decoded, so the source has no recognisable face
            raise InvalidParameterError(
                "There is no recognisable face in SourceImage", parameter="SourceImage"
            ) from None
        if level != "NONE":
            if rejection_reasons(result.source_face, level):
                raise InvalidParameterError(
                    f"The largest face in SourceImage does not pass QualityFilter {level}", parameter="SourceImage"
                )
            result = dataclasses.replace(
                result,
                matches=tuple(m for m in result.matches if not rejection_reasons(m.face, level)),
                unmatched=tuple(m for m in result.unmatched if not rejection_reasons(m.face, level)),
            )
        step.record.details = {
            "threshold": threshold,
            "target_faces": len(result.matches) + len(result.unmatched),
            "similarities": [round(m.comparison.similarity, 4) for m in result.matches],
            "unreliable": [m.unreliable for m in result.matches + result.unmatched if m.unreliable is not None],
            "score_scale": engine.score_id,  # which normaliser and table made these similarities
            **({"profile": profile} if profile is not None else {}),
        }
        if rules is not None:
            _refuse_unreliable(rules, result)
        return result


def _refuse_unreliable(purpose: Purpose, result: ImageComparison) -> None:
    """Refuse the comparison when its purpose refuses unreliable estimates and one of its pairs has one."""
    reason = next((m.unreliable for m in result.matches + result.unmatched if m.unreliable is not None), None)
    if purpose.refuse_unreliable and reason is not None:
        raise PurposeRefusedError(
            f"Purpose {purpose.name!r} refuses comparisons whose false-match estimate is unreliable: {reason}",
            purpose=purpose.name,
            rule="refuse_unreliable",
        )
