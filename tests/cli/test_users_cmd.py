"""facetrust users create / delete / list / associate / disassociate / search."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from .service_cli import ServiceCli, service_cli

MISSING = "00000000-0000-4000-8000-000000000000"
USERS_HEADER = "#  user id  faces  similarity  est. FMR  best face id"


@pytest.fixture
def fc(tmp_path: Path) -> Iterator[ServiceCli]:
    """Collection "people" with faces a1.png, a2.png (identity 1), b1.png (identity 2), c1.png (identity 3)."""
    with service_cli(tmp_path) as helper:
        helper.service.create_collection("people")
        paths = [
            helper.image("a1.png", [(20, 20, 100, 1)]),
            helper.image("a2.png", [(150, 100, 100, 1)]),
            helper.image("b1.png", [(20, 20, 100, 2)]),
            helper.image("c1.png", [(20, 20, 100, 3)]),
        ]
        assert helper.run("index", "people", *paths).exit_code == 0
        yield helper


def test_create_list_and_delete_users(fc: ServiceCli) -> None:
    assert fc.run("users", "create", "people", "bob").stdout == "Created user bob in collection people\n"
    assert fc.run("users", "create", "people", "alice").exit_code == 0
    a1, a2, _, _ = fc.face_ids("people")
    fc.service.associate_faces("people", "alice", [a1, a2])

    listed = fc.run("users", "list", "people")
    deleted = fc.run("users", "delete", "people", "bob")
    after = fc.run("users", "list", "people", "--json")

    assert listed.exit_code == 0
    assert listed.stdout == (
        "people: 2 users\nuser id  faces  status\nalice        2  ACTIVE\nbob          0  ACTIVE\n"
    )
    assert (deleted.exit_code, deleted.stdout) == (0, "Deleted user bob from collection people\n")
    users = json.loads(after.stdout)["users"]
    assert [(u["user_id"], u["face_count"], u["status"]) for u in users] == [("alice", 2, "ACTIVE")]
    assert set(users[0]) == {"user_id", "created_at", "created", "face_count", "status"}


def test_list_users_of_a_collection_without_users(fc: ServiceCli) -> None:
    result = fc.run("users", "list", "people")

    assert (result.exit_code, result.stdout) == (0, "people: no users\n")


def test_create_an_existing_user_is_an_error(fc: ServiceCli) -> None:
    fc.service.create_user("people", "alice")

    result = fc.run("users", "create", "people", "alice")

    assert (result.exit_code, result.stderr) == (1, "Error: User 'alice' already exists in collection 'people'\n")


def test_delete_a_missing_user_is_an_error(fc: ServiceCli) -> None:
    result = fc.run("users", "delete", "people", "nobody")

    assert (result.exit_code, result.stderr) == (1, "Error: User 'nobody' is not in collection 'people'\n")


def test_associate_reports_each_face_and_the_users_face_count(fc: ServiceCli) -> None:
    a1, a2, _, _ = fc.face_ids("people")
    fc.service.create_user("people", "alice")

    result = fc.run("users", "associate", "people", "alice", a1, a2)

    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout == f"associated {a1}\nassociated {a2}\nuser alice has 2 faces\n"


def test_associate_refuses_other_peoples_faces_and_exits_1(fc: ServiceCli) -> None:
    a1, _, b1, c1 = fc.face_ids("people")
    fc.service.create_user("people", "alice")
    fc.service.create_user("people", "carol")
    fc.service.associate_faces("people", "alice", [a1])
    fc.service.associate_faces("people", "carol", [c1])

    result = fc.run("users", "associate", "people", "alice", b1, c1, MISSING)

    assert result.exit_code == 1
    assert result.stdout == "user alice has 1 face\n"
    assert result.stderr == (
        f"Error: face {b1} not associated: LOW_MATCH_CONFIDENCE\n"
        f"Error: face {c1} not associated: ASSOCIATED_TO_A_DIFFERENT_USER (user carol)\n"
        f"Error: face {MISSING} not associated: FACE_NOT_FOUND\n"
    )


def test_associate_takes_the_threshold_a_new_face_must_reach(fc: ServiceCli) -> None:
    a1, a2, b1, _ = fc.face_ids("people")
    fc.service.create_user("people", "alice")
    fc.service.associate_faces("people", "alice", [a1])

    default = fc.run("users", "associate", "people", "alice", b1)  # another identity: below 75
    loose = fc.run("users", "associate", "people", "alice", b1, "--threshold", "0")
    wrong = fc.run("users", "associate", "people", "alice", a2, "--threshold", "150")

    assert default.exit_code == 1 and f"face {b1} not associated: LOW_MATCH_CONFIDENCE" in default.stderr
    assert loose.exit_code == 0 and loose.stdout == f"associated {b1}\nuser alice has 2 faces\n"
    assert wrong.exit_code == 2 and "--threshold" in wrong.stderr


def test_disassociate_keeps_the_faces_in_the_collection(fc: ServiceCli) -> None:
    a1, a2, b1, loose = fc.face_ids("people")
    fc.service.create_user("people", "alice")
    fc.service.associate_faces("people", "alice", [a1, a2])
    fc.service.create_user("people", "bob")
    fc.service.associate_faces("people", "bob", [b1])

    result = fc.run("users", "disassociate", "people", "alice", a2, b1, loose)

    assert result.exit_code == 1
    assert result.stdout == f"disassociated {a2}\nuser alice has 1 face\n"  # a face of no user: ignored
    assert result.stderr == f"Error: face {b1} not disassociated: ASSOCIATED_TO_A_DIFFERENT_USER (user bob)\n"
    assert len(fc.face_ids("people")) == 4


def test_search_users_by_face_lists_the_owner_of_the_matching_face(fc: ServiceCli) -> None:
    a1, a2, b1, _ = fc.face_ids("people")
    for user, face in (("alice", a2), ("bob", b1)):
        fc.service.create_user("people", user)
        fc.service.associate_faces("people", user, [face])

    result = fc.run("users", "search", "people", "--face-id", a1)

    assert result.exit_code == 0
    assert result.stdout == (
        f"searched face {a1}\n"
        f"{USERS_HEADER}\n"
        f"1  alice        1      100.00    ≤1e-06  {a2}\n"
        "2 faces of users: chance of at least one false match in this list ≈ 0.0002\n"
        "estimate unreliable: gallery of 3 faces is below the 1,000 needed for a per-probe estimate\n"
    )


def test_search_users_by_user_json(fc: ServiceCli) -> None:
    a1, a2, b1, _ = fc.face_ids("people")
    for user, faces in (("alice", [a1]), ("alias", [a2]), ("bob", [b1])):
        fc.service.create_user("people", user)
        fc.service.associate_faces("people", user, faces)

    result = fc.run("users", "search", "people", "--user-id", "alice", "--json")

    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert (document["searched_user_id"], document["searched_face_id"], document["image"]) == ("alice", None, None)
    # the users' faces compared with: alias's and bob's (alice's own is the probe)
    assert (document["threshold"], document["gallery_size"], document["searched_face"]) == (80.0, 2, None)
    [match] = document["matches"]
    assert (match["user"]["user_id"], match["best_face_id"], match["similarity"]) == ("alias", a2, 100.0)


def test_search_users_without_a_match(fc: ServiceCli) -> None:
    fc.service.create_user("people", "alice")

    _, _, b1, _ = fc.face_ids("people")
    result = fc.run("users", "search", "people", "--face-id", b1, "--threshold", "90")

    assert result.exit_code == 0
    assert result.stdout == (
        f"searched face {b1}\n"
        "no users match at similarity ≥ 90\n"
        "0 faces of users: chance of at least one false match in this list ≈ 0\n"
        "estimate unreliable: gallery of 3 faces is below the 1,000 needed for a per-probe estimate\n"
    )


@pytest.mark.parametrize("args", [(), ("--user-id", "alice", "--face-id", MISSING)])
def test_search_users_needs_exactly_one_of_user_and_face(fc: ServiceCli, args: tuple[str, ...]) -> None:
    result = fc.run("users", "search", "people", *args)

    assert result.exit_code == 2
    assert result.stderr.endswith("Error: Give exactly one of --user-id and --face-id.\n")


def test_search_users_bad_threshold_is_a_usage_error(fc: ServiceCli) -> None:
    result = fc.run("users", "search", "people", "--face-id", MISSING, "--threshold", "-1")

    assert result.exit_code == 2
    assert result.stderr.endswith("Error: Invalid value for '--threshold': -1.0 is not in the range 0.0<=x<=100.0.\n")


def test_a_rerun_under_the_same_client_token_reports_the_first_answer(fc: ServiceCli) -> None:
    a1, a2, _, _ = fc.face_ids("people")
    assert fc.run("users", "create", "people", "alice", "--client-token", "job-7").exit_code == 0
    again = fc.run("users", "create", "people", "alice", "--client-token", "job-7")
    plain = fc.run("users", "create", "people", "alice")
    other = fc.run("users", "create", "people", "bob", "--client-token", "job-7")
    bad = fc.run("users", "create", "people", "bob", "--client-token", "no spaces")
    first = fc.run("users", "associate", "people", "alice", a1, a2, "--client-token", "a-1")
    rerun = fc.run("users", "associate", "people", "alice", a1, a2, "--client-token", "a-1")

    assert again.exit_code == 0 and again.stdout == "Created user alice in collection people\n"
    assert plain.exit_code != 0 and "already exists" in plain.stderr
    assert other.exit_code != 0 and "'job-7' was used for another CreateUser request" in other.stderr
    assert bad.exit_code != 0 and "ClientRequestToken" in bad.stderr
    assert first.exit_code == rerun.exit_code == 0 and rerun.stdout == first.stdout
    assert [u.user_id for u in fc.service.list_users("people").users] == ["alice"]
