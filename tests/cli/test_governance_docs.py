"""docs/governance.md and examples/policy.toml are tested as code: every policy key is documented,
every policy in the docs loads, and the documented errors are the real ones."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import click.testing
import pytest

from facetrust.cli import cli
from facetrust.errors import ConfigurationError
from facetrust.governance.policy import MAX_RETENTION_DAYS, load_policy
from facetrust.models.fake import fake_engine

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "governance.md"
EXAMPLE = REPO / "examples" / "policy.toml"


def known_keys(toml: str, tmp_path: Path) -> list[str]:
    """The keys policy.py accepts, as its own error message for an unknown key lists them."""
    path = tmp_path / "probe.toml"
    path.write_text(toml)
    with pytest.raises(ConfigurationError) as caught:
        load_policy(path)
    found = re.search(r"known: (.*)$", caught.value.message)
    assert found is not None, caught.value.message
    return found.group(1).split(", ")


def toml_blocks() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", DOCS.read_text(), flags=re.S)


def test_every_top_level_policy_key_is_documented(tmp_path: Path) -> None:
    keys = known_keys("bogus = 1\n", tmp_path)

    assert keys == ["default_purpose", "purposes"]
    missing = [k for k in keys if f"| `{k}` |" not in DOCS.read_text()]
    assert not missing, f"docs/governance.md does not document policy keys {missing}"


def test_every_purpose_key_is_documented_in_the_purpose_table(tmp_path: Path) -> None:
    keys = known_keys("[purposes.p]\nbogus = 1\n", tmp_path)

    assert "retention_days" in keys and "forbidden" in keys
    missing = [k for k in keys if f"| `{k}` |" not in DOCS.read_text()]
    assert not missing, f"docs/governance.md does not document purpose keys {missing}"


@pytest.mark.parametrize("block", toml_blocks())
def test_every_policy_in_the_docs_loads(block: str, tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(block)

    assert load_policy(path).purposes


def test_the_documented_validation_error_is_the_real_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("policy.toml").write_text("[purposes.access-control]\nretention_days = 2000\n")
    documented = re.search(r"^Error: Policy policy\.toml .*$", DOCS.read_text(), flags=re.M)
    assert documented is not None

    with pytest.raises(ConfigurationError) as caught:
        load_policy(Path("policy.toml"))

    assert f"Error: {caught.value.message}" == documented.group(0)


def test_the_example_policy_declares_the_three_documented_purposes() -> None:
    policy = load_policy(EXAMPLE)
    access, investigation, police = (policy.purposes[n] for n in ("access-control", "investigation", "law-enforcement"))

    assert policy.default_purpose == "access-control"
    assert access.consent_required and access.retention_days == 365 and not access.forbidden
    assert investigation.human_review and investigation.min_threshold == 90 and not investigation.forbidden
    assert police.forbidden and tomllib.loads(EXAMPLE.read_text())["purposes"]["law-enforcement"].keys() == {
        "forbidden"
    }  # the moratorium is one line
    assert all(p.retention_days <= MAX_RETENTION_DAYS for p in policy.purposes.values())


def run(*args: str) -> click.testing.Result:
    return click.testing.CliRunner().invoke(cli, list(args), obj={"engine": fake_engine()})


def test_the_documented_moratorium_refusal_is_what_the_cli_prints(tmp_path: Path) -> None:
    documented = re.search(r"^Error: Purpose 'law-enforcement' is forbidden.*$", DOCS.read_text(), flags=re.M)
    assert documented is not None

    result = run(
        "--data", str(tmp_path / "data"), "--policy", str(EXAMPLE),
        "collections", "create", "suspects", "--purpose", "law-enforcement",
    )  # fmt: skip

    assert result.exit_code == 1
    assert result.stderr == documented.group(0) + "\n"


def test_the_policy_option_applies_to_the_opened_service(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    (tmp_path / "release.txt").write_text("signed")

    created = run("--data", data, "--policy", str(EXAMPLE), "collections", "create", "doors")
    consent = run(
        "--data", data, "--policy", str(EXAMPLE), "consent", "record", "alice.png", "--basis", "BIPA written release",
        "--evidence-file", str(tmp_path / "release.txt"),
    )  # fmt: skip
    described = run("--data", data, "--policy", str(EXAMPLE), "collections", "describe", "doors", "--json")

    assert created.exit_code == 0 and consent.exit_code == 0
    assert '"purpose": "access-control"' in described.stdout


def test_an_invalid_policy_file_is_an_error_naming_the_key(tmp_path: Path) -> None:
    policy = tmp_path / "bad.toml"
    policy.write_text("[purposes.doors]\nmin_threshold = true\n")

    result = run("--data", str(tmp_path / "data"), "--policy", str(policy), "collections", "list")

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: Policy {policy} [purposes.doors]: min_threshold = True is invalid: a Similarity from 0 to 100\n"
    )
