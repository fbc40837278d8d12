"""The deployment policy: which purposes are allowed, and the rules of each (a TOML file).

::

    default_purpose = "access-control"          # optional: used when a collection names none

    [purposes.access-control]
    search = true                 # 1:N search allowed at all
    min_threshold = 90            # searches below this Similarity are refused
    max_candidates = 5            # at most this many candidates are returned
    human_review = false          # search results are candidate lists needing review
    consent_required = true       # IndexFaces needs a recorded consent of the subject
    retention_days = 365          # faces expire this long after enrolment (≤ 1095)
    keep_face_crops = false       # keep a small aligned crop of each face, encrypted, for review

    [purposes.law-enforcement]
    forbidden = "Moratorium on police use of face search (board decision 2026-06)"

A forbidden purpose is a moratorium in one line: every operation on its collections is
refused with the reason. Without a policy file facetrust runs the built-in ``general``
purpose, which restricts nothing but retention (the BIPA-style ceiling of three years):
search allowed at any threshold, up to 4096 candidates, no review, no consent. A purpose
declared in a file defaults to a threshold of at least 80 and at most 100 candidates.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facetrust.errors import ConfigurationError
from facetrust.files import read_regular

__all__ = ["DEFAULT_POLICY", "MAX_RETENTION_DAYS", "Policy", "Purpose", "is_purpose_name", "load_policy"]

MAX_RETENTION_DAYS = 1095  # three years: BIPA's destruction deadline after the last interaction
_NAME = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,63}")


def is_purpose_name(name: str) -> bool:
    """Whether ``name`` could name a purpose of some policy: 1–64 of a-z 0-9 _ . - (lower-case)."""
    return _NAME.fullmatch(name) is not None


_KEYS = {
    "search",
    "min_threshold",
    "max_candidates",
    "human_review",
    "consent_required",
    "retention_days",
    "forbidden",
    "description",
    "keep_face_crops",
    "refuse_unreliable",
}


@dataclass(frozen=True)
class Purpose:
    """The rules for collections created for one purpose."""

    name: str
    search: bool = True
    min_threshold: float = 80.0
    max_candidates: int = 100
    human_review: bool = False
    consent_required: bool = False
    retention_days: int = MAX_RETENTION_DAYS
    forbidden: str | None = None
    description: str = ""
    keep_face_crops: bool = False
    refuse_unreliable: bool = False

    @property
    def retention_seconds(self) -> float:
        return self.retention_days * 86400.0


@dataclass(frozen=True)
class Policy:
    purposes: dict[str, Purpose] = field(default_factory=dict)
    default_purpose: str | None = None
    source: str = "built-in"

    def purpose(self, name: str) -> Purpose:
        found = self.purposes.get(name)
        if found is None:
            raise ConfigurationError(
                f"Purpose {name!r} is not declared in the policy ({self.source}); declared: "
                f"{', '.join(sorted(self.purposes)) or 'none'}",
                setting="purpose",
            )
        return found


DEFAULT_POLICY = Policy(
    purposes={"general": Purpose("general", min_threshold=0.0, max_candidates=4096)}, default_purpose="general"
)


def _fail(where: str, message: str) -> ConfigurationError:
    return ConfigurationError(f"Policy {where}: {message}", setting="policy")


def _typed(where: str, key: str, value: Any, kind: type, test: Any, rule: str) -> Any:
    ok_type = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float:
        ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok_type or not test(value):
        raise _fail(where, f"{key} = {value!r} is invalid: {rule}")
    return value


def _purpose(where: str, name: str, table: Any) -> Purpose:
    if not _NAME.fullmatch(name):
        raise _fail(where, f"purpose name {name!r} must be 1–64 of a-z 0-9 _ . - (lowercase)")
    if not isinstance(table, dict):
        raise _fail(where, f"[purposes.{name}] must be a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise _fail(where, f"[purposes.{name}] has unknown key {unknown[0]!r}; known: {', '.join(sorted(_KEYS))}")
    w = f"{where} [purposes.{name}]"
    forbidden = table.get("forbidden")
    if forbidden is not None and (not isinstance(forbidden, str) or not forbidden.strip()):
        raise _fail(w, "forbidden must be the reason, a non-empty string")
    return Purpose(
        name=name,
        search=_typed(w, "search", table.get("search", True), bool, lambda v: True, "true or false"),
        min_threshold=float(
            _typed(
                w,
                "min_threshold",
                table.get("min_threshold", 80.0),
                float,
                lambda v: 0 <= v <= 100,
                "a Similarity from 0 to 100",
            )
        ),
        max_candidates=_typed(
            w,
            "max_candidates",
            table.get("max_candidates", 100),
            int,
            lambda v: 1 <= v <= 4096,
            "a whole number from 1 to 4096",
        ),
        human_review=_typed(w, "human_review", table.get("human_review", False), bool, lambda v: True, "true or false"),
        consent_required=_typed(
            w, "consent_required", table.get("consent_required", False), bool, lambda v: True, "true or false"
        ),
        retention_days=_typed(
            w,
            "retention_days",
            table.get("retention_days", MAX_RETENTION_DAYS),
            int,
            lambda v: 1 <= v <= MAX_RETENTION_DAYS,
            f"a whole number of days from 1 to {MAX_RETENTION_DAYS} (three years)",
        ),
        forbidden=forbidden.strip() if isinstance(forbidden, str) else None,
        description=_typed(w, "description", table.get("description", ""), str, lambda v: True, "a string"),
        keep_face_crops=_typed(
            w, "keep_face_crops", table.get("keep_face_crops", False), bool, lambda v: True, "true or false"
        ),
        refuse_unreliable=_typed(
            w, "refuse_unreliable", table.get("refuse_unreliable", False), bool, lambda v: True, "true or false"
        ),
    )


def load_policy(path: Path | None) -> Policy:
    """Read and validate a policy file; ``None`` gives the built-in default policy."""
    if path is None:
        return DEFAULT_POLICY
    try:
        data = tomllib.loads(read_regular(path).decode("utf-8"))
    except FileNotFoundError:
        raise _fail(str(path), "file does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(str(path), f"cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise _fail(str(path), f"is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"purposes", "default_purpose"})
    if unknown:
        raise _fail(str(path), f"unknown top-level key {unknown[0]!r}; known: default_purpose, purposes")
    tables = data.get("purposes")
    if not isinstance(tables, dict) or not tables:
        raise _fail(str(path), "declare at least one purpose under [purposes.NAME]")
    purposes = {name: _purpose(str(path), name, table) for name, table in tables.items()}
    default = data.get("default_purpose")
    if default is not None and not isinstance(default, str):
        raise _fail(str(path), f"default_purpose = {default!r} is invalid: the name of a declared purpose, a string")
    if default is not None and default not in purposes:
        raise _fail(str(path), f"default_purpose {default!r} is not one of the declared purposes")
    return Policy(purposes=purposes, default_purpose=default, source=str(path))
