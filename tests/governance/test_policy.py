from __future__ import annotations

from pathlib import Path

import pytest

from facetrust.errors import ConfigurationError
from facetrust.governance.policy import DEFAULT_POLICY, MAX_RETENTION_DAYS, load_policy

GOOD = """
default_purpose = "access-control"

[purposes.access-control]
min_threshold = 90
max_candidates = 5
consent_required = true
retention_days = 365

[purposes.investigation]
human_review = true
keep_face_crops = true

[purposes.law-enforcement]
forbidden = "Moratorium on police use"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


def test_a_valid_policy_is_read_with_defaults_for_what_it_omits(tmp_path: Path) -> None:
    policy = load_policy(_write(tmp_path, GOOD))
    assert policy.default_purpose == "access-control"
    access = policy.purpose("access-control")
    assert (access.min_threshold, access.max_candidates, access.consent_required, access.retention_days) == (
        90.0,
        5,
        True,
        365,
    )
    investigation = policy.purpose("investigation")
    assert investigation.human_review and investigation.search and investigation.retention_days == MAX_RETENTION_DAYS
    assert investigation.keep_face_crops and not access.keep_face_crops
    assert policy.purpose("law-enforcement").forbidden == "Moratorium on police use"


def test_without_a_file_the_built_in_policy_restricts_only_retention() -> None:
    general = load_policy(None).purpose("general")
    assert load_policy(None) is DEFAULT_POLICY
    assert (general.min_threshold, general.consent_required, general.retention_days) == (0.0, False, 1095)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[purposes.a]\nretention_days = 2000\n", "retention_days = 2000 is invalid"),
        ("[purposes.a]\nmin_threshold = 120\n", "min_threshold = 120 is invalid"),
        ("[purposes.a]\nmax_candidates = 0\n", "max_candidates = 0 is invalid"),
        ("[purposes.a]\nsearch = 'yes'\n", "search = 'yes' is invalid"),
        ("[purposes.a]\nkeep_face_crops = 1\n", "keep_face_crops = 1 is invalid"),
        ("[purposes.a]\nrefuse_unreliable = 1\n", "refuse_unreliable = 1 is invalid: true or false"),
        ("[purposes.a]\nforbidden = ''\n", "forbidden must be the reason"),
        ("[purposes.a]\nretention = 3\n", "unknown key 'retention'"),
        ("[purposes.Bad_Name]\n", "purpose name 'Bad_Name'"),
        ("default_purpose = 'x'\n[purposes.a]\n", "default_purpose 'x' is not one of"),
        ("default_purpose = ['a']\n[purposes.a]\n", "is invalid: the name of a declared purpose"),
        ("[purposes.a]\ndescription = {x = 1}\n", "description = {'x': 1} is invalid: a string"),
        ("colour = 'red'\n[purposes.a]\n", "unknown top-level key 'colour'"),
        ("title = 'no purposes'\n", "unknown top-level key"),
        ("[purposes]\n", "declare at least one purpose"),
        ("[purposes.a\n", "is not valid TOML"),
    ],
)
def test_an_invalid_policy_is_refused_at_start_naming_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match="Policy .*" + message.replace("(", r"\(").replace(")", r"\)")):
        load_policy(_write(tmp_path, text))


def test_a_missing_policy_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_policy(tmp_path / "nope.toml")


def test_a_purpose_may_refuse_unreliable_probes(tmp_path: Path) -> None:
    policy = load_policy(_write(tmp_path, "[purposes.a]\nrefuse_unreliable = true\n[purposes.b]\n"))
    assert policy.purpose("a").refuse_unreliable and not policy.purpose("b").refuse_unreliable
