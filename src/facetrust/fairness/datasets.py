"""Audit datasets: a small spec (images, optional identity, group columns) and its adapters.

``DatasetSpec`` is what every audit runs over. Adapters build one from the layouts we know:

* ``load_lfw``: ``images/<Person>/<Person>_NNNN.jpg`` with ``male_names.txt`` /
  ``female_names.txt`` (image file names per sex; a name in both lists counts as female, as
  the LFW README advises; a name in neither has no sex label). Identity = the folder.
* ``load_utkface``: ``labels.csv`` (``file,age,gender,race``) or, without it, the file
  names ``<age>_<gender 0=male,1=female>_<race 0–4>_<date>.jpg``. No identities: every image
  is taken to be a different person, so only impostor (FMR) and detection rates can be
  measured. Ages are pooled into bands; children (0–12) are reported as their own band and
  left out of the adult race and sex analyses, because different children match each other
  far more often than adults do and would swamp any "all ages" figure.
* ``load_csv``: ``path,identity,<group columns...>``; paths relative to the CSV's folder;
  an empty identity means "a person not otherwise in the file".
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from facetrust.errors import InvalidParameterError, NotFoundError

__all__ = [
    "AGE_BANDS",
    "DATASET_TYPES",
    "Analysis",
    "DatasetSpec",
    "ImageRecord",
    "age_band",
    "detect_dataset_type",
    "load_csv",
    "load_dataset",
    "load_lfw",
    "load_utkface",
]

DATASET_TYPES = ("lfw", "utkface", "csv")
AGE_BANDS = ((0, 12, "0-12"), (13, 17, "13-17"), (18, 39, "18-39"), (40, 59, "40-59"), (60, 200, "60+"))
ADULT_BANDS = ("18-39", "40-59", "60+")
UTK_RACES = ("White", "Black", "Asian", "Indian", "Others")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


@dataclass(frozen=True)
class ImageRecord:
    """One image: its path, the person (None when unknown), and its group labels."""

    path: str
    identity: str | None
    groups: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Analysis:
    """One per-group breakdown: by ``column``, over the images passing ``where``.

    Impostor pairs are built within one group *and* with equal values of every column in
    ``match_on`` (e.g. race within the same sex and age band), as demographically matched
    impostors; pairs across groups would understate the FMR. ``label`` names it in reports.
    """

    column: str
    label: str
    where: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    match_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset to audit: a name, its images, the breakdowns to report, and its folder.

    ``root`` is the folder image paths are relative to in the dataset hash, so that the same
    dataset has the same hash wherever it lies.
    """

    name: str
    kind: str
    images: tuple[ImageRecord, ...]
    analyses: tuple[Analysis, ...]
    notes: tuple[str, ...] = ()
    root: str = ""

    @property
    def has_identities(self) -> bool:
        return any(r.identity is not None for r in self.images)

    def fingerprint(self) -> str:
        """SHA-256 of the file list and every label (order-independent): the dataset hash."""
        lines = sorted(
            json.dumps([self._relative(r.path), r.identity, sorted(r.groups.items())], ensure_ascii=False)
            for r in self.images
        )
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()

    def _relative(self, path: str) -> str:
        return os.path.relpath(path, self.root) if self.root else path

    def limited(self, limit: int, seed: int, per_identity: int = 10) -> DatasetSpec:
        """A seeded subset of ``limit`` images (fewer if the dataset is smaller).

        With identities, whole people are drawn in a seeded order, at most ``per_identity``
        (seeded) images each, so the subset keeps mated pairs and no one person dominates.
        """
        import numpy as np

        if limit < 1:
            raise InvalidParameterError(f"--limit {limit} must be at least 1", parameter="limit")
        if limit >= len(self.images):
            return self
        rng = np.random.default_rng(seed)
        if not self.has_identities:
            keep = np.sort(rng.choice(len(self.images), limit, replace=False))
            return self._subset([int(i) for i in keep], limit, seed)
        members: dict[str, list[int]] = {}
        for i, r in enumerate(self.images):
            members.setdefault(r.identity or f"\0{i}", []).append(i)
        people = sorted(members)
        chosen: list[int] = []
        for k in rng.permutation(len(people)):
            rows = members[people[k]]
            if len(rows) > per_identity:
                rows = sorted(int(i) for i in rng.choice(rows, per_identity, replace=False))
            chosen.extend(rows[: limit - len(chosen)])
            if len(chosen) >= limit:
                break
        return self._subset(sorted(chosen), limit, seed)

    def _subset(self, rows: list[int], limit: int, seed: int) -> DatasetSpec:
        note = f"seeded subset (--limit {limit}, seed {seed}): {len(rows)} of {len(self.images)} images"
        return replace(self, images=tuple(self.images[i] for i in rows), notes=(*self.notes, note))


def age_band(age: int) -> str:
    """The age band of ``age`` years (``AGE_BANDS``)."""
    for low, high, name in AGE_BANDS:
        if low <= age <= high:
            return name
    raise InvalidParameterError(f"Age {age} is outside 0–200", parameter="age")


def detect_dataset_type(path: Path) -> str:
    """Guess the adapter: a .csv file, an LFW folder (sex lists) or a UTKFace folder."""
    if path.is_file() and path.suffix.lower() == ".csv":
        return "csv"
    if (path / "male_names.txt").is_file() or (path / "female_names.txt").is_file():
        return "lfw"
    if (path / "labels.csv").is_file() or any(p.name.endswith(".jpg.chip.jpg") for p in _utk_files(path)[:1]):
        return "utkface"
    raise InvalidParameterError(
        f"Cannot tell the layout of dataset {path}; pass --dataset-type ({', '.join(DATASET_TYPES)})",
        parameter="--dataset-type",
    )


def load_dataset(path: Path, kind: str | None = None) -> DatasetSpec:
    """The spec of the dataset at ``path`` with adapter ``kind`` (guessed when None)."""
    if not path.exists():
        raise NotFoundError(f"Dataset {path} does not exist", resource=str(path))
    kind = kind or detect_dataset_type(path)
    loaders = {"lfw": load_lfw, "utkface": load_utkface, "csv": load_csv}
    if kind not in loaders:
        raise InvalidParameterError(
            f"Unknown dataset type {kind!r}; available: {', '.join(DATASET_TYPES)}", parameter="--dataset-type"
        )
    return loaders[kind](path)


def _read_names(path: Path) -> set[str]:
    return {n.strip() for n in path.read_text().split() if n.strip()} if path.is_file() else set()


def load_lfw(root: Path) -> DatasetSpec:
    """LFW: ``images/<Person>/*.jpg`` (or ``<Person>/*.jpg``) with the two sex name lists."""
    folder = root / "images" if (root / "images").is_dir() else root
    files = sorted(p for p in folder.glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InvalidParameterError(f"No images under {folder}/<Person>/ (LFW layout)", parameter="DATASET")
    male, female = _read_names(root / "male_names.txt"), _read_names(root / "female_names.txt")
    if not male and not female:
        raise InvalidParameterError(f"{root} has neither male_names.txt nor female_names.txt", parameter="DATASET")
    images = []
    for p in files:
        sex = "female" if p.name in female else "male" if p.name in male else None
        images.append(ImageRecord(str(p), p.parent.name, {"sex": sex} if sex else {}))
    return DatasetSpec(
        name=root.name or str(root),
        kind="lfw",
        images=tuple(images),
        analyses=(Analysis("sex", "sex"),),
        notes=("sex labels: LFW gender lists of Afifi & Abdelhamed; names in both lists count as female",),
        root=str(root),
    )


def _utk_files(root: Path) -> list[Path]:
    folder = root / "images" if (root / "images").is_dir() else root
    return sorted(p for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _utk_rows(root: Path) -> list[tuple[str, int, str, str]]:
    """(file path, age, sex, race) from labels.csv, else from the file names."""
    folder = root / "images" if (root / "images").is_dir() else root
    labels = root / "labels.csv"
    rows: list[tuple[str, int, str, str]] = []
    if labels.is_file():
        first_line: dict[str, int] = {}  # each image once: without identities a second row is a stranger
        with labels.open(newline="", encoding="utf-8-sig") as fh:
            for i, row in enumerate(csv.DictReader(fh), start=2):
                try:
                    rows.append((str(folder / row["file"]), int(row["age"]), row["gender"].lower(), row["race"]))
                except (KeyError, ValueError, AttributeError):
                    raise InvalidParameterError(
                        f"{labels} line {i}: need file,age,gender,race with an integer age", parameter="DATASET"
                    ) from None
                _once(first_line, rows[-1][0], i, labels, row["file"])
        return rows
    for p in _utk_files(root):
        parts = p.name.split("_")
        try:
            age, sex, race = int(parts[0]), ("male", "female")[int(parts[1])], UTK_RACES[int(parts[2])]
        except (IndexError, ValueError):
            continue  # a few UTKFace names lack a field: no label, not audited
        rows.append((str(p), age, sex, race))
    return rows


def _once(first_line: dict[str, int], file: str | Path, line: int, listing: Path, written: str) -> None:
    """Note that line ``line`` of ``listing`` names ``file`` (as ``written`` there); an image named
    on an earlier line is refused, naming both: its two rows would be paired with each other."""
    where = os.path.normpath(os.path.abspath(file))
    if where in first_line:
        raise InvalidParameterError(
            f"{listing} line {line} lists {written!r} again (first on line {first_line[where]}): list each image once",
            parameter="DATASET",
        )
    first_line[where] = line


def load_utkface(root: Path) -> DatasetSpec:
    """UTKFace: race, sex and age band per image; no identities (each image its own person)."""
    rows = _utk_rows(root)
    if not rows:
        raise InvalidParameterError(f"No labelled UTKFace images in {root}", parameter="DATASET")
    images = tuple(
        ImageRecord(path, None, {"race": race, "sex": sex, "age_band": age_band(age)}) for path, age, sex, race in rows
    )
    adults = {"age_band": ADULT_BANDS}
    return DatasetSpec(
        name=root.name or str(root),
        kind="utkface",
        images=images,
        analyses=(
            Analysis("race", "race (adults, 18+)", adults, ("sex", "age_band")),
            Analysis("sex", "sex (adults, 18+)", adults, ("race", "age_band")),
            Analysis("age_band", "age band (all)", {}, ("race", "sex")),
        ),
        notes=(
            "no identities: every image is treated as a different person (impostor and detection rates only; "
            "no FNMR), and the bootstrap resamples images",
            "race is the dataset authors' coarse, socially defined label, used only to audit error rates",
        ),
        root=str(root),
    )


def load_csv(path: Path) -> DatasetSpec:
    """A CSV with ``path`` and ``identity`` columns; every other column is a group column."""
    try:
        return _load_csv(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:  # a folder, unreadable, not UTF-8, malformed
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidParameterError(f"Cannot read the dataset CSV {path}: {reason}", parameter="DATASET") from None


def _load_csv(path: Path) -> DatasetSpec:
    with path.open(newline="", encoding="utf-8-sig") as fh:  # a spreadsheet's byte-order mark is not a column name
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or [])
        if "path" not in fields or "identity" not in fields:
            raise InvalidParameterError(
                f"{path} must have the columns path,identity (got {fields})", parameter="DATASET"
            )
        columns = [c for c in fields if c not in ("path", "identity")]
        images = []
        first_line: dict[str, int] = {}  # each image once: a second row would pair the image with itself
        for row in reader:
            file = Path(row["path"])
            file = file if file.is_absolute() else path.parent / file
            _once(first_line, file, reader.line_num, path, row["path"])
            groups = {c: row[c] for c in columns if row.get(c)}
            images.append(ImageRecord(str(file), row["identity"] or None, groups))
    if not images:
        raise InvalidParameterError(f"{path} lists no images", parameter="DATASET")
    return DatasetSpec(
        name=path.stem,
        kind="csv",
        images=tuple(images),
        analyses=tuple(Analysis(c, c) for c in columns),
        root=str(path.parent),
    )
