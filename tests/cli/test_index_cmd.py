"""facetrust index: files and folders into a collection, external ids, filters, unreadable images."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from facetrust.cli.index_cmd import external_id_for
from facetrust.governance import audit

from .service_cli import ServiceCli, service_cli

BAD_FORMAT = "not a supported image format (expected JPEG or PNG; first bytes 6e6f7420616e2069)"


@pytest.fixture
def fc(tmp_path: Path) -> Iterator[ServiceCli]:
    with service_cli(tmp_path) as helper:
        helper.service.create_collection("people")
        yield helper


def album(fc: ServiceCli) -> tuple[str, str, str]:
    """album/alice smith.png (1 face), album/bad.png (not an image), album/group.png (2 big, 1 small)."""
    alice = fc.image("album/alice smith.png", [(20, 20, 100, 1)])
    group = fc.image("album/group.png", [(20, 20, 100, 2), (200, 50, 90, 3), (300, 200, 20, 4)])
    bad = fc.folder / "album" / "bad.png"
    bad.write_bytes(b"not an image")
    return alice, str(bad), group


def test_index_a_folder_reports_the_unreadable_image_indexes_the_rest_and_exits_1(fc: ServiceCli) -> None:
    _, bad, _ = album(fc)

    result = fc.run("index", "people", str(fc.folder / "album"))

    assert result.exit_code == 1
    assert result.stderr == f"Error: {bad}: {BAD_FORMAT}\n"
    assert result.stdout == "people: 3 images, 3 faces indexed, 1 not indexed (SMALL_BOUNDING_BOX: 1), 1 failed\n"
    assert fc.service.describe_collection("people").face_count == 3


def test_index_labels_faces_with_the_sanitised_file_name(fc: ServiceCli) -> None:
    alice, _, group = album(fc)

    result = fc.run("index", "people", alice, group)

    assert result.exit_code == 0
    assert result.stderr == ""
    faces = fc.service.list_faces("people").faces
    assert [f.external_image_id for f in faces] == ["alice_smith.png", "group.png", "group.png"]


def test_index_without_external_ids(fc: ServiceCli) -> None:
    alice, _, _ = album(fc)

    result = fc.run("index", "people", "--external-id-from", "none", alice)

    assert result.exit_code == 0
    assert result.stdout == "people: 1 image, 1 face indexed, 0 not indexed, 0 failed\n"
    assert [f.external_image_id for f in fc.service.list_faces("people").faces] == [None]


def test_index_max_faces_keeps_the_largest_and_counts_the_rest_by_reason(fc: ServiceCli) -> None:
    _, _, group = album(fc)

    result = fc.run("index", "people", "--max-faces", "1", group)

    assert result.exit_code == 0
    assert result.stdout == (
        "people: 1 image, 1 face indexed, 2 not indexed (EXCEEDS_MAX_FACES: 1, SMALL_BOUNDING_BOX: 1), 0 failed\n"
    )


def test_index_json_lists_every_face_and_the_error_of_an_unreadable_image(fc: ServiceCli) -> None:
    alice, bad, _ = album(fc)

    result = fc.run("index", "people", "--json", alice, bad)

    assert result.exit_code == 1
    assert result.stderr == f"Error: {bad}: {BAD_FORMAT}\n"
    document = json.loads(result.stdout)
    assert (document["collection"], document["model"]) == ("people", "fake-recogniser:0")
    first, second = document["images"]
    assert (first["image"], first["external_image_id"], first["unindexed"]) == (alice, "alice_smith.png", [])
    [face] = first["indexed"]
    assert face["face_id"] == fc.face_ids("people")[0]
    assert face["image_id"] == first["image_id"]
    assert face["box"] == {"left": 0.05, "top": 0.0667, "width": 0.25, "height": 0.3333}
    assert face["face"]["box"] == {"left": 20.0, "top": 20.0, "width": 100.0, "height": 100.0}
    assert second == {
        "image": bad,
        "external_image_id": "bad.png",
        "error": {"code": "InvalidImageFormat", "message": f"{bad}: {BAD_FORMAT}"},
    }


def test_index_quality_filter_high_refuses_the_too_bright_fake_faces(fc: ServiceCli) -> None:
    alice, _, group = album(fc)

    result = fc.run("index", "people", "--quality-filter", "HIGH", "--json", alice, group)

    assert result.exit_code == 0
    first, second = json.loads(result.stdout)["images"]
    assert (first["indexed"], [u["reasons"] for u in first["unindexed"]]) == ([], [["LOW_BRIGHTNESS"]])
    assert [u["reasons"] for u in second["unindexed"]] == [
        ["LOW_BRIGHTNESS"],
        ["LOW_BRIGHTNESS"],
        ["SMALL_BOUNDING_BOX", "LOW_BRIGHTNESS"],
    ]
    assert fc.service.describe_collection("people").face_count == 0


def test_index_into_a_missing_collection_stops_with_an_error(fc: ServiceCli) -> None:
    alice, _, _ = album(fc)

    result = fc.run("index", "nobody", alice)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "Error: Collection 'nobody' does not exist\n"


def test_index_into_a_collection_named_in_bytes_that_are_not_utf8_is_refused_naming_it(fc: ServiceCli) -> None:
    # the name went to SQLite to find the collection's engine: a UnicodeEncodeError traceback
    alice, _, _ = album(fc)

    result = fc.run("index", os.fsdecode(b"people\xff"), alice)

    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.startswith("Error: CollectionId 'people\\udcff' is invalid")


def test_index_a_folder_without_images_is_an_error(fc: ServiceCli, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()

    result = fc.run("index", "people", str(empty))

    assert result.exit_code == 1
    assert result.stderr == f"Error: No JPEG or PNG images found in {empty}\n"


def test_an_empty_path_is_refused_not_taken_for_the_current_folder(
    fc: ServiceCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, _, _ = album(fc)
    monkeypatch.chdir(Path(alice).parent)  # a folder of images: "" read as "." would index them

    result = fc.run("index", "people", "")

    assert result.exit_code == 1
    assert result.stderr == "Error: An image path is empty; give a file or a folder\n"
    assert fc.service.describe_collection("people").face_count == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--max-faces", "0"), "Invalid value for '--max-faces': 0 is not in the range 1<=x<=4096."),
        (("--quality-filter", "BEST"), "Invalid value for '--quality-filter': 'BEST' is not one of"),
        (("--external-id-from", "path"), "Invalid value for '--external-id-from': 'path' is not one of"),
        (("--batch", "0"), "Invalid value for '--batch': 0 is not in the range 1<=x<=10000."),
        (("--batch", "10001"), "Invalid value for '--batch': 10001 is not in the range 1<=x<=10000."),
    ],
)
def test_index_bad_options_are_usage_errors(fc: ServiceCli, args: tuple[str, ...], message: str) -> None:
    alice, _, _ = album(fc)

    result = fc.run("index", "people", *args, alice)

    assert result.exit_code == 2
    assert message in result.stderr
    assert fc.service.describe_collection("people").face_count == 0


@pytest.mark.parametrize(
    ("path", "external"),
    [
        ("photos/Zoë Ünal (2).jpg", "Zo:eb:_:fc:nal__2_.jpg"),
        ("a/b/ok-name_1.2-3.png", "ok-name_1.2-3.png"),
        ("a:b.png", "a::b.png"),
    ],
)
def test_external_id_is_the_file_name_with_other_characters_written_out(path: str, external: str) -> None:
    assert external_id_for(path) == external


def test_one_name_in_any_spelling_is_one_subject_and_different_names_are_different_subjects() -> None:
    import unicodedata

    from facetrust.store.records import subject_key

    def subject(name: str) -> str:
        return subject_key(external_id_for(name))

    zoe = "Zo\u00eb.png"
    assert subject(zoe) == subject(unicodedata.normalize("NFD", zoe)) == subject("ZO\u00cb.png")  # é one or two points
    assert subject("\uff54\uff4f\uff4e\uff59.png") == subject("Tony.png")  # full-width letters
    assert len({subject(n) for n in ("Zo\u00eb.png", "Zo\u00e9.png", "Zo.png", "\u674e.png", "\u738b.png")}) == 5
    marks = ("\u0930\u093e\u092e.jpg", "\u0930\u0940\u092e.jpg", "q\u0303.jpg", "q\u0302.jpg")  # vowel signs, accents
    assert len({subject(n) for n in marks}) == 4
    long_names = ["\u674e" * 46 + end + ".jpg" for end in ("\u738b", "\u5f20")]  # alike up to the cut
    ids = [external_id_for(n) for n in long_names]
    assert ids[0] != ids[1] and all(len(i) <= 255 for i in ids)
    assert external_id_for("x" * 300 + ".png").startswith("x" * 237) and len(external_id_for("x" * 300 + ".png")) == 255


def test_index_batch_sets_the_images_per_transaction_one_audit_entry_each(fc: ServiceCli) -> None:
    for i in range(5):
        fc.image(f"many/img{i}.png", [(20, 20, 100, 10 + i)])

    result = fc.run("index", "people", "--batch", "2", str(fc.folder / "many"))

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "people: 5 images, 5 faces indexed, 0 not indexed, 0 failed\n"
    entries = [e.data for e in audit.entries(fc.service.store.connection()) if e.data["operation"] == "IndexFaces"]
    assert [len(e["images"]) if "images" in e else 1 for e in entries] == [2, 2, 1]  # the last one alone


def test_index_rerun_skips_the_images_already_indexed_and_says_so(fc: ServiceCli) -> None:
    alice, bad, group = album(fc)
    fc.run("index", "people", alice)

    result = fc.run("index", "people", alice, bad, group)

    assert result.exit_code == 1
    assert result.stdout == (
        "people: 2 images, 2 faces indexed, 1 not indexed (SMALL_BOUNDING_BOX: 1), 1 failed, "
        "1 skipped (already indexed)\n"
    )
    assert fc.service.describe_collection("people").face_count == 3


def test_a_refusal_that_stops_the_run_still_reports_the_images_that_failed_before_it(tmp_path: Path) -> None:
    from facetrust.governance.policy import Policy, Purpose
    from facetrust.models.fake import fake_engine
    from facetrust.service import FaceService

    from .service_cli import ServiceCli

    policy = Policy(purposes={"access": Purpose("access", consent_required=True)}, default_purpose="access")
    with FaceService(tmp_path / "data", fake_engine(), policy=policy) as service:
        service.create_collection("doors")
        service.record_consent("alice.png", basis="contract", evidence=b"signed form")
        service.record_consent(
            "bad.png", basis="contract", evidence=b"signed form"
        )  # else refused before it is decoded
        fc = ServiceCli(service, tmp_path / "images")
        fc.image("album/alice.png", [(20, 20, 100, 1)])
        (fc.folder / "album" / "bad.png").write_bytes(b"not an image")
        fc.image("album/zoe.png", [(20, 20, 100, 2)])

        result = fc.run("index", "doors", str(fc.folder / "album"))

    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == f"Error: {fc.folder / 'album' / 'bad.png'}: {BAD_FORMAT}"
    assert "zoe.png" in lines[-1] and "consent" in lines[-1].lower()


def test_json_output_stays_valid_utf8_for_a_file_name_that_is_not(fc: ServiceCli) -> None:
    import os

    name = os.fsdecode(b"x\xff.png")  # undecodable bytes: Python keeps them as a lone surrogate
    path = fc.image("album/ok.png", [(20, 20, 100, 1)])
    odd = Path(path).with_name(name)
    Path(path).rename(odd)

    result = fc.run("index", "people", str(odd), "--json")

    assert result.exit_code == 0
    document = json.loads(result.stdout_bytes.decode("utf-8"))  # strict UTF-8: no raw \xff byte
    assert document["images"][0]["image"].endswith("x\udcff.png")
