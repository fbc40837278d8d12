"""Label-free score normalisation against an unlabelled cohort (adaptive symmetric, "AS-norm").

For a face ``x``, its *cohort statistics* are the mean ``μ(x)`` and standard deviation
``σ(x)`` of its ``top_k`` highest cosine scores against a cohort of faces of people who are
(mostly) not the ones being compared. A raw score ``s(a, b)`` becomes

    z(a, b) = ½ · [(s − μ(a)) / σ(a) + (s − μ(b)) / σ(b)]

so a face that resembles many strangers (a crowded region of the embedding space, where a
group's impostor scores run high) needs a higher raw score to match. It needs no
demographic labels, at enrolment or at comparison time. Normalised scores are on another
scale than cosine, so they get their own calibration, recorded under ``score_id`` (the
model id plus ``+asnorm<K>-<cohort digest>``): a raw calibration can never be applied to
normalised scores or the reverse.

A normaliser file (``.npz``) holds the cohort embeddings (biometric data: keep it as private
as the gallery it came from), ``top_k``, the model id, the calibration fitted on normalised
scores, and provenance.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facetrust.calibration import Calibration
from facetrust.errors import ConfigurationError, InvalidParameterError
from facetrust.files import atomic_write, read_regular

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["CohortNormaliser", "NormalisedScorer"]

FORMAT = "facetrust-cohort/1"
SELF_MATCH = 0.9999  # cohort scores this high are the face itself (a cohort drawn from the gallery)


@dataclass(frozen=True, eq=False)
class CohortNormaliser:
    """AS-norm over ``cohort`` (M, dim) unit vectors of model ``model``; see the module docstring."""

    model: str
    cohort: np.ndarray
    top_k: int = 50
    calibration: Calibration | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.cohort.ndim != 2 or len(self.cohort) <= self.top_k:
            raise InvalidParameterError(
                f"A cohort needs more than top_k={self.top_k} embeddings; got shape {self.cohort.shape}",
                parameter="cohort",
            )
        if self.top_k < 2:
            raise InvalidParameterError(f"top_k {self.top_k} must be at least 2", parameter="top_k")
        if self.calibration is not None and self.calibration.model != self.score_id:
            raise ConfigurationError(
                f"Normaliser calibration is for {self.calibration.model!r}, not for {self.score_id!r}",
                setting="cohort_file",
            )

    @property
    def digest(self) -> str:
        """12 hex of the SHA-256 of the cohort: which cohort, without storing it."""
        import numpy as np

        data = np.ascontiguousarray(self.cohort, dtype=np.float32).tobytes()
        return hashlib.sha256(data).hexdigest()[:12]

    @property
    def score_id(self) -> str:
        """The id normalised scores (and their calibration) are recorded under."""
        return f"{self.model}+asnorm{self.top_k}-{self.digest}"

    def stats(self, vectors: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
        """(μ, σ) of each row's top-k cohort scores (the face itself left out)."""
        import numpy as np

        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        mu = np.empty(len(vectors), dtype=np.float32)
        sd = np.empty(len(vectors), dtype=np.float32)
        k = self.top_k
        for start in range(0, len(vectors), chunk):
            scores = vectors[start : start + chunk] @ self.cohort.T
            scores[scores >= SELF_MATCH] = -1.0
            top = -np.partition(-scores, k - 1, axis=1)[:, :k]
            mu[start : start + chunk] = top.mean(axis=1)
            sd[start : start + chunk] = np.maximum(top.std(axis=1), 1e-4)
        return mu, sd

    def normalise(self, raw: Any, a: tuple[Any, Any], b: tuple[Any, Any]) -> Any:
        """z from raw score(s) and the (μ, σ) of each side (scalars or broadcastable arrays)."""
        return 0.5 * ((raw - a[0]) / a[1] + (raw - b[0]) / b[1])

    def score(self, u: np.ndarray, v: np.ndarray) -> tuple[float, float]:
        """(raw cosine, normalised score) of two embeddings."""
        import numpy as np

        raw = float(np.dot(u, v))
        mu, sd = self.stats(np.stack([u, v]))
        return raw, float(self.normalise(raw, (mu[0], sd[0]), (mu[1], sd[1])))

    def with_calibration(self, calibration: Calibration) -> CohortNormaliser:
        return CohortNormaliser(self.model, self.cohort, self.top_k, calibration, dict(self.provenance))

    def save(self, path: Path) -> None:
        """Write the normaliser file atomically, owner-only (the cohort is biometric data)."""
        import numpy as np

        meta = {"format": FORMAT, "model": self.model, "top_k": self.top_k, "provenance": self.provenance}
        cal = self.calibration.to_json() if self.calibration is not None else ""
        atomic_write(
            path,
            lambda fh: np.savez(
                fh, cohort=self.cohort.astype(np.float32), meta=np.array(json.dumps(meta)), calibration=np.array(cal)
            ),
        )

    @classmethod
    def load(cls, path: Path) -> CohortNormaliser:
        """A cohort file (``facetrust calibrate --cohort``); ``ConfigurationError`` naming the setting
        ``cohort_file`` when it cannot be read or is not one."""
        import io

        import numpy as np

        def refuse(why: str) -> ConfigurationError:
            return ConfigurationError(f"{path} is not a {FORMAT} file: {why}", setting="cohort_file")

        try:
            raw = read_regular(path)
        except OSError as exc:
            raise ConfigurationError(
                f"{path} is not a readable cohort file: {exc.strerror or exc}", setting="cohort_file"
            ) from None
        if not raw.startswith(b"PK\x03\x04"):
            raise refuse("it is not an .npz archive")
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                cohort = np.asarray(data["cohort"], dtype=np.float32)
                cal_text = str(data["calibration"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise refuse(str(exc)) from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise refuse(f"its format is not {FORMAT!r}")
        model, top_k, provenance = meta.get("model"), meta.get("top_k"), meta.get("provenance", {})
        if not isinstance(model, str) or isinstance(top_k, bool) or not isinstance(top_k, int):
            raise refuse("model must be text and top_k a whole number")
        if not isinstance(provenance, dict):
            raise refuse("provenance must be an object")
        if cohort.ndim != 2 or not np.isfinite(cohort).all():
            raise refuse("the cohort must be a table of finite numbers, one embedding a row")
        calibration = Calibration.from_json(cal_text, origin=str(path)) if cal_text else None
        try:
            return cls(model, cohort, top_k, calibration, provenance)
        except InvalidParameterError as exc:
            raise refuse(exc.message) from None

    def scorer(self, vectors: np.ndarray) -> NormalisedScorer:
        return NormalisedScorer(self, vectors)


class NormalisedScorer:
    """A ``PairScorer`` of normalised scores over one dataset's embeddings (stats computed once)."""

    def __init__(self, normaliser: CohortNormaliser, vectors: np.ndarray) -> None:
        self.normaliser = normaliser
        self.vectors = vectors
        self.mu, self.sd = normaliser.stats(vectors)

    def block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        raw = self.vectors[rows] @ self.vectors[cols].T
        a = (self.mu[rows][:, None], self.sd[rows][:, None])
        b = (self.mu[cols][None, :], self.sd[cols][None, :])
        out: np.ndarray = self.normaliser.normalise(raw, a, b)
        return out

    def pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        import numpy as np

        raw = np.einsum("ij,ij->i", self.vectors[a], self.vectors[b])
        out: np.ndarray = self.normaliser.normalise(raw, (self.mu[a], self.sd[a]), (self.mu[b], self.sd[b]))
        return out
