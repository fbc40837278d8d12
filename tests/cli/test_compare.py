"""facetrust compare: calibrated verdicts and the 0 / 1 / 2 exit-status contract."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

Invoke = Callable[..., Result]
MakeImage = Callable[..., str]

TABLE_HEADER = "#  box px (l,t,w,h)  similarity  est. FMR    score  result"


def test_compare_exits_0_and_lists_every_face_of_b_when_one_matches(invoke: Invoke, make_image: MakeImage) -> None:
    alice = make_image("alice.png", [(20, 20, 64, 1)])
    group = make_image("group.png", [(20, 20, 64, 1), (120, 30, 48, 2), (100, 90, 20, 3)])

    result = invoke("compare", alice, group)

    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout == (
        f"source {alice}: face at 20,20,64,64 (64 px)\n"
        f"target {group}: 2 recognisable faces\n"
        f"{TABLE_HEADER}\n"
        "1  20,20,64,64           100.00    ≤1e-06   1.0000  match\n"
        "2  120,30,48,48            0.00         1  -0.0694  no match\n"
        "match (threshold 80, model fake-recogniser:0)\n"
    )


def test_compare_exits_1_when_no_face_matches(invoke: Invoke, make_image: MakeImage) -> None:
    alice = make_image("alice.png", [(20, 20, 64, 1)])
    bob = make_image("bob.png", [(20, 20, 64, 2)])

    result = invoke("compare", alice, bob)

    assert result.exit_code == 1
    assert result.stderr == ""
    assert result.stdout == (
        f"source {alice}: face at 20,20,64,64 (64 px)\n"
        f"target {bob}: 1 recognisable face\n"
        f"{TABLE_HEADER}\n"
        "1  20,20,64,64             0.00         1  -0.0561  no match\n"
        "no match (threshold 80, model fake-recogniser:0)\n"
    )


def test_compare_exits_1_when_b_has_no_recognisable_face(invoke: Invoke, make_image: MakeImage) -> None:
    alice = make_image("alice.png", [(20, 20, 64, 1)])
    tiny = make_image("tiny.png", [(20, 20, 20, 1)])

    result = invoke("compare", alice, tiny)

    assert result.exit_code == 1
    assert result.stdout == (
        f"source {alice}: face at 20,20,64,64 (64 px)\n"
        f"target {tiny}: no recognisable faces\n"
        "no match (threshold 80, model fake-recogniser:0)\n"
    )


def test_compare_threshold_0_accepts_any_face(invoke: Invoke, make_image: MakeImage) -> None:
    alice = make_image("alice.png", [(20, 20, 64, 1)])
    bob = make_image("bob.png", [(20, 20, 64, 2)])

    result = invoke("compare", "--threshold", "0", alice, bob)

    assert result.exit_code == 0
    assert result.stdout.endswith(
        "1  20,20,64,64             0.00         1  -0.0561  match\nmatch (threshold 0, model fake-recogniser:0)\n"
    )


def test_compare_exits_2_with_a_clear_error_when_a_has_no_face(invoke: Invoke, make_image: MakeImage) -> None:
    empty = make_image("empty.png")
    alice = make_image("alice.png", [(20, 20, 64, 1)])

    result = invoke("compare", empty, alice)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"Error: {empty}: no recognisable face found in image A\n"


def test_compare_exits_2_when_an_image_cannot_be_read(invoke: Invoke, make_image: MakeImage, tmp_path: Path) -> None:
    alice = make_image("alice.png", [(20, 20, 64, 1)])
    missing = str(tmp_path / "missing.png")

    result = invoke("compare", alice, missing)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"Error: {missing}: no such file\n"


def test_compare_exits_2_when_the_threshold_is_out_of_range(invoke: Invoke, make_image: MakeImage) -> None:
    alice = make_image("alice.png", [(20, 20, 64, 1)])

    result = invoke("compare", "--threshold", "101", alice, alice)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.endswith("Error: Invalid value for '--threshold': 101.0 is not in the range 0.0<=x<=100.0.\n")


def test_compare_json_gives_scores_fmr_and_verdict_per_face(invoke: Invoke, make_image: MakeImage) -> None:
    alice = make_image("alice.png", [(20, 20, 64, 1)])
    group = make_image("group.png", [(20, 20, 64, 1), (120, 30, 48, 2)])

    result = invoke("compare", "--json", "--threshold", "75", alice, group)

    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert {k: document[k] for k in ("source", "target", "match", "threshold", "model")} == {
        "source": alice,
        "target": group,
        "match": True,
        "threshold": 75.0,
        "model": "fake-recogniser:0",
    }
    assert document["source_face"]["box"] == {"left": 20.0, "top": 20.0, "width": 64.0, "height": 64.0}
    scores = [{k: v for k, v in face.items() if k != "face"} for face in document["faces"]]
    assert scores == [
        {"similarity": 100.0, "fmr": 1e-06, "fmr_is_bound": True, "score": 1.0, "match": True, "unreliable": None},
        {"similarity": 0.0, "fmr": 1.0, "fmr_is_bound": False, "score": -0.0694, "match": False, "unreliable": None},
    ]
    assert document["faces"][1]["face"]["box"]["left"] == 120.0


def test_compare_is_audited_with_its_purpose_the_os_user_and_the_case(
    invoke: Invoke, make_image: MakeImage, tmp_path: Path
) -> None:
    from facetrust.cli.context import os_user
    from facetrust.governance import audit
    from facetrust.store import postgres

    a, b = make_image("a.png", [(20, 20, 64, 1)]), make_image("b.png", [(20, 20, 64, 1)])
    result = invoke("--data", str(tmp_path / "d"), "--case-ref", "case-9", "compare", a, b)

    assert result.exit_code == 0
    store = postgres.open_store(tmp_path / "d" / "facetrust.db")  # the suite's store
    entry = list(audit.entries(store.connection()))[-1].data
    store.close()
    assert (entry["operation"], entry["purpose"], entry["key_id"], entry["case_ref"]) == (
        "CompareFaces",
        "general",
        f"local:{os_user()}",
        "case-9",
    )


def test_compare_under_a_forbidden_purpose_is_refused_with_exit_2(
    invoke: Invoke, make_image: MakeImage, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('default_purpose = "general"\n[purposes.general]\nforbidden = "Moratorium on face comparison"\n')
    a = make_image("a.png", [(20, 20, 64, 1)])

    result = invoke("--data", str(tmp_path / "d"), "--policy", str(policy), "compare", a, a)

    assert result.exit_code == 2
    assert result.stderr == (
        "Error: Purpose 'general' is forbidden by the deployment policy: Moratorium on face comparison\n"
    )


def test_compare_names_each_face_whose_estimate_is_unreliable(make_image: MakeImage) -> None:
    import click.testing

    from facetrust.cli import cli
    from facetrust.models.fake import flagged_fake_engine

    adult = make_image("adult.png", [(20, 20, 64, 2)])
    group = make_image("group.png", [(20, 20, 64, 2), (120, 30, 48, 1)])  # fake person 1: in the flagged cluster
    runner = click.testing.CliRunner()

    def run(*args: str) -> click.testing.Result:
        return runner.invoke(cli, list(args), obj={"engine": flagged_fake_engine(1, 2)})

    result = run("compare", adult, group)

    flagged = [line for line in result.stdout.splitlines() if "estimate unreliable" in line]
    assert result.exit_code == 0
    assert len(flagged) == 1
    assert flagged[0].startswith("#2 estimate unreliable: the target face lies in a region of faces whose strangers")
    document = json.loads(run("compare", "--json", adult, group).stdout)
    assert [f["unreliable"] is not None for f in document["faces"]] == [False, True]


def test_a_similarity_just_below_the_threshold_is_never_shown_as_the_threshold() -> None:
    from facetrust.cli.render import similarity_text

    assert [similarity_text(v) for v in (79.9969, 80.0, 100.0, 0.0, 85.2291)] == [
        "79.99",
        "80.00",
        "100.00",
        "0.00",
        "85.22",
    ]


def test_a_config_folder_that_cannot_be_made_is_an_error_line_and_exit_2_not_no_match(
    invoke: Invoke, make_image: MakeImage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "home-is-a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(blocker / "config"))  # as a service account without a home
    monkeypatch.delenv("FACETRUST_TEMPLATE_KEY", raising=False)
    monkeypatch.delenv("FACETRUST_TEMPLATE_KEY_FILE", raising=False)
    alice = make_image("alice.png", [(20, 20, 64, 1)])

    result = invoke("--data", str(tmp_path / "data"), "compare", alice, alice)

    assert result.exit_code == 2, result.output  # 1 would read as "no match"
    assert result.stderr.startswith(f"Error: Cannot create the template key file {blocker / 'config'}/facetrust/")
    assert "set template_key_file (FACETRUST_TEMPLATE_KEY_FILE)" in result.stderr
    assert "Traceback" not in result.output
