"""Cluster-conditional score normalisation for 1:1 comparisons (Fair Score Normalization).

After Terhörst et al., "Post-comparison mitigation of demographic bias in face recognition
using fair score normalization" (2020): the embedding space is split into clusters by
k-means over unlabelled faces; each cluster ``c`` gets an offset ``δ_c = t_c − t``, where
``t_c`` is the score at which the impostor pairs that one of its faces takes part in reach
``offset_fmr`` and ``t`` the same over all pairs. A pair's score becomes

    s' = s − ½ (δ_a + δ_b)

with ``a`` and ``b`` the clusters nearest to its two faces: a face from a region where
strangers score high needs a higher raw score to match. No label is used when scoring, and
none is inferred: the clusters are regions of the embedding space, not groups of people.
Normalised scores get their own calibration, recorded under ``score_id``.

Some regions stay far above the promised false-match rate even after their offset (children's
faces do). The fit marks them ``unreliable`` (one bit per centroid, kept out of ``digest`` so
scores and their calibration do not change); ``unreliable_of`` says which faces fall in one,
so a 1:1 comparison can say its estimate should not be trusted.

**Bagging.** Where a region's border falls is the k-means' chance (its seed alone moved the
held-out race ratio 1.8–3.3×: docs/fairness.md, "The fit's own chance"), so a normaliser may hold
several fits of the same recipe (``fits``: how many of the centroids each holds, in order). A
face's offset is then the mean of its nearest region's offset in each fit, and a face is
unreliable when its nearest region is marked in more than half of the fits.

What is shipped are aggregates only: ``k`` centroids and ``k`` offsets. Each centroid must be
the mean of at least ``MIN_PEOPLE`` distinct people (images, where a dataset has no
identities) with no single person more than ``MAX_PERSON_SHARE`` of its members;
``facetrust.fairness.clusterfit.fit_centroids`` enforces it (each person gives at most 5
faces, and clusters that still break it are dropped and their faces reassigned) and
``check_privacy`` re-checks it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facetrust.calibration import Calibration
from facetrust.errors import ConfigurationError, InvalidParameterError
from facetrust.files import atomic_write_text, read_regular

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "ClusterNormaliser",
    "ClusterScorer",
    "normaliser_files",
    "shipped_name",
    "shipped_normaliser",
    "unreliable_reason",
]

FORMAT = "facetrust-clusternorm/1"


@dataclass(frozen=True, eq=False)
class ClusterNormaliser:
    """Cluster offsets over ``centroids`` (k, dim) unit vectors of model ``model``; see the module docstring.

    ``unreliable``: indices of the clusters whose faces' false-match estimates are not to be trusted.
    ``fits``: for a bagged normaliser, the number of centroids of each fit, in order (they sum to
    ``k``); empty for one fit.
    """

    model: str
    centroids: np.ndarray
    offsets: np.ndarray
    calibration: Calibration | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    unreliable: tuple[int, ...] = ()
    fits: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.centroids.ndim != 2 or len(self.centroids) < 1 or self.offsets.shape != (len(self.centroids),):
            raise InvalidParameterError(
                f"Need (k, dim) centroids and k offsets; got {self.centroids.shape} and {self.offsets.shape}",
                parameter="centroids",
            )
        outside = [c for c in self.unreliable if not 0 <= c < len(self.centroids)]
        if outside:
            raise InvalidParameterError(
                f"Unreliable cluster indices {outside} are outside 0–{len(self.centroids) - 1}",
                parameter="unreliable",
            )
        if self.fits and (min(self.fits) < 1 or sum(self.fits) != len(self.centroids)):
            raise InvalidParameterError(
                f"The fits' region counts {list(self.fits)} must each be at least 1 and sum to the "
                f"{len(self.centroids)} centroids",
                parameter="fits",
            )
        if self.calibration is not None and self.calibration.model != self.score_id:
            raise ConfigurationError(
                f"Normaliser calibration is for {self.calibration.model!r}, not for {self.score_id!r}",
                setting="score_normalisation",
            )

    @property
    def digest(self) -> str:
        """12 hex of the SHA-256 of centroids and offsets (and, when bagged, the fits' sizes)."""
        import numpy as np

        data = np.ascontiguousarray(self.centroids, np.float32).tobytes()
        data += np.ascontiguousarray(self.offsets, np.float32).tobytes()
        if len(self.fit_sizes) > 1:
            data += np.asarray(self.fit_sizes, np.int64).tobytes()
        return hashlib.sha256(data).hexdigest()[:12]

    @property
    def fit_sizes(self) -> tuple[int, ...]:
        """The number of centroids of each fit (one entry when not bagged)."""
        return self.fits or (len(self.centroids),)

    @property
    def score_id(self) -> str:
        """The id normalised scores (and their calibration) are recorded under."""
        return f"{self.model}+fsn{len(self.centroids)}-{self.digest}"

    def each_fit(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(centroids, offsets) of each fit, in order (one pair when not bagged)."""
        out, start = [], 0
        for size in self.fit_sizes:
            out.append((self.centroids[start : start + size], self.offsets[start : start + size]))
            start += size
        return out

    def regions(self, vectors: np.ndarray) -> np.ndarray:
        """(rows, fits): each row's nearest centroid (index into ``centroids``) in each fit."""
        import numpy as np

        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        sims = vectors @ self.centroids.T
        out = np.empty((len(vectors), len(self.fit_sizes)), dtype=np.int64)
        start = 0
        for f, size in enumerate(self.fit_sizes):
            out[:, f] = start + np.argmax(sims[:, start : start + size], axis=1)
            start += size
        return out

    def nearest(self, vectors: np.ndarray) -> np.ndarray:
        """Each row's nearest centroid (index) in the first fit (the only one when not bagged)."""
        import numpy as np

        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        out: np.ndarray = np.argmax(vectors @ self.centroids[: self.fit_sizes[0]].T, axis=1)
        return out

    def shift(self, vectors: np.ndarray) -> np.ndarray:
        """Each row's offset: its nearest centroid's (the mean over the fits when bagged)."""
        import numpy as np

        regions = self.regions(vectors)
        if regions.shape[1] == 1:
            out: np.ndarray = self.offsets[regions[:, 0]]
            return out
        mean: np.ndarray = self.offsets[regions].mean(axis=1, dtype=np.float64).astype(np.float32)
        return mean

    def unreliable_of(self, vectors: np.ndarray) -> np.ndarray:
        """Per row, True when its nearest centroid is one of the ``unreliable`` clusters (when bagged:
        in more than half of the fits)."""
        import numpy as np

        flagged = np.zeros(len(self.centroids), dtype=bool)
        flagged[list(self.unreliable)] = True
        regions = self.regions(vectors)
        out: np.ndarray = 2 * flagged[regions].sum(axis=1) > regions.shape[1]
        return out

    def score(self, u: np.ndarray, v: np.ndarray) -> tuple[float, float]:
        """(raw cosine, normalised score) of two embeddings."""
        import numpy as np

        raw = float(np.dot(u, v))
        d = self.shift(np.stack([u, v]))
        return raw, raw - 0.5 * float(d[0] + d[1])

    def scorer(self, vectors: np.ndarray) -> ClusterScorer:
        return ClusterScorer(self, vectors)

    def with_calibration(self, calibration: Calibration) -> ClusterNormaliser:
        return ClusterNormaliser(
            self.model, self.centroids, self.offsets, calibration, dict(self.provenance), self.unreliable, self.fits
        )

    def with_unreliable(self, clusters: tuple[int, ...]) -> ClusterNormaliser:
        """The same normaliser (same scores, same ``score_id``) with ``clusters`` marked unreliable."""
        return ClusterNormaliser(
            self.model, self.centroids, self.offsets, self.calibration, dict(self.provenance),
            tuple(sorted(clusters)), self.fits,
        )  # fmt: skip

    def to_json(self) -> str:
        data = {
            "format": FORMAT,
            "model": self.model,
            "centroids": [[round(float(x), 5) for x in row] for row in self.centroids],
            "offsets": [round(float(x), 5) for x in self.offsets],
            "calibration": json.loads(self.calibration.to_json()) if self.calibration is not None else None,
            "provenance": self.provenance,
            "unreliable": sorted(self.unreliable),
        }
        if self.fits:
            data["fits"] = list(self.fits)
        return json.dumps(data, sort_keys=True)

    def save(self, path: Path) -> None:
        """Write the normaliser (JSON) atomically: a reader never sees half a file."""
        atomic_write_text(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: Path) -> ClusterNormaliser:
        """A normaliser file (``facetrust calibrate --normaliser``); ``ConfigurationError`` naming the
        setting ``normaliser_file`` when it cannot be read or is not one."""
        try:
            text = read_regular(path).decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(
                f"{path} is not a readable normaliser file: {exc}", setting="normaliser_file"
            ) from None
        try:
            return cls.from_json(text, origin=str(path))
        except ConfigurationError as exc:
            raise ConfigurationError(exc.message, setting="normaliser_file") from None

    @classmethod
    def from_json(cls, text: str, *, origin: str) -> ClusterNormaliser:
        import numpy as np

        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError(f"format is not {FORMAT!r}")
            centroids = np.asarray(data["centroids"], dtype=np.float32)
            offsets = np.asarray(data["offsets"], dtype=np.float32)
            cal = data.get("calibration")
            unreliable = tuple(_index(c, "unreliable") for c in data.get("unreliable", []))
            fits = tuple(_index(c, "fits") for c in data.get("fits", []))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"{origin} is not a valid cluster normaliser: {exc}") from None
        calibration = Calibration.from_json(json.dumps(cal), origin=origin) if cal else None
        try:
            return cls(
                str(data["model"]),
                centroids,
                offsets,
                calibration,
                dict(data.get("provenance", {})),
                unreliable,
                fits,
            )
        except InvalidParameterError as exc:
            raise ConfigurationError(f"{origin} is not a valid cluster normaliser: {exc.message}") from None


def normaliser_files(path: Path) -> dict[str, ClusterNormaliser]:
    """The normalisers the setting ``normaliser_file`` names, by model id: the file at ``path``, or
    every ``*.json`` in the folder ``path``, one per model (so that one server can serve a refitted
    normaliser for each profile). ``ConfigurationError`` naming the setting for a file that cannot
    be read, a folder without one, or two files for one model."""
    if not path.is_dir():
        one = ClusterNormaliser.load(path)
        return {one.model: one}
    files = sorted(path.glob("*.json"))
    if not files:
        raise ConfigurationError(f"The folder {path} holds no normaliser file (*.json)", setting="normaliser_file")
    found: dict[str, ClusterNormaliser] = {}
    names: dict[str, str] = {}
    for file in files:
        one = ClusterNormaliser.load(file)
        if one.model in found:
            raise ConfigurationError(
                f"The folder {path} holds two normaliser files for model {one.model!r} ({names[one.model]}, "
                f"{file.name}); keep one per model",
                setting="normaliser_file",
            )
        found[one.model], names[one.model] = one, file.name
    return found


def _index(value: object, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} holds {value!r}, not a whole number")
    return value


def unreliable_reason(source: bool, target: bool) -> str | None:
    """Why a 1:1 comparison's false-match estimate is unreliable, in words (None when it is not)."""
    if not (source or target):
        return None
    who = "both faces lie" if source and target else ("the source face lies" if source else "the target face lies")
    return (
        f"{who} in a region of faces whose strangers often score high, as children's faces do: there, "
        "different people reach this similarity far more often than its false-match rate says"
    )


class ClusterScorer:
    """A ``PairScorer`` of cluster-normalised scores over one dataset's embeddings."""

    def __init__(self, normaliser: ClusterNormaliser, vectors: np.ndarray) -> None:
        self.vectors = vectors
        self.half = 0.5 * normaliser.shift(vectors) if len(vectors) else vectors[:, 0]

    def block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        out: np.ndarray = (
            self.vectors[rows] @ self.vectors[cols].T - self.half[rows][:, None] - self.half[cols][None, :]
        )
        return out

    def pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        import numpy as np

        out: np.ndarray = np.einsum("ij,ij->i", self.vectors[a], self.vectors[b]) - self.half[a] - self.half[b]
        return out


def shipped_name(model_id: str) -> str:
    return "clusternorm-" + model_id.replace(":", "-").replace("+", "-") + ".json"


def shipped_normaliser(model_id: str) -> ClusterNormaliser | None:
    """The cluster normaliser shipped for ``model_id`` (None when there is none for it)."""
    name = shipped_name(model_id)
    ref = resources.files("facetrust.data").joinpath(name)
    if not ref.is_file():
        return None
    found = ClusterNormaliser.from_json(ref.read_text(), origin=name)
    if found.model != model_id or found.calibration is None:
        raise ConfigurationError(f"Shipped {name} is for {found.model!r} or has no calibration")
    return found
