"""The auditor's pseudonyms: every identity field is replaced, nested ones too, the same way everywhere."""

from __future__ import annotations

import json

from facetrust.governance.pseudonyms import Pseudonymiser

FACE, CROPPED = "11111111-2222-4333-8444-555555555555", "66666666-7777-4888-8999-000000000000"


def test_an_erasure_entry_hides_its_cropped_faces_as_it_hides_its_faces() -> None:
    names = Pseudonymiser(b"k" * 32)
    out = names.entry({"erased": "subject", "target": "Erin", "face_ids": [FACE, CROPPED], "crop_face_ids": [CROPPED]})

    assert FACE not in json.dumps(out) and CROPPED not in json.dumps(out) and "Erin" not in json.dumps(out)
    assert out["crop_face_ids"] == [out["face_ids"][1]]  # one face, one pseudonym wherever it appears
    assert out["pseudonymised"] is True


def test_identities_nested_in_records_are_replaced_and_other_values_kept() -> None:
    names = Pseudonymiser(b"k" * 32)
    data = {
        "operation": "IndexFaces",
        "images": [
            {"image_id": "img-1", "external_image_id": "Alice.jpg", "face_ids": [FACE], "unindexed": [["LOW_QUALITY"]]},
            "not a record",
        ],
        "nested": {"searched_user_id": "alice", "count": 2},
    }
    out = names.entry(data)

    first = out["images"][0]
    assert first["face_ids"] == [names.pseudonym("face", FACE)]
    assert first["external_image_id"] == names.pseudonym("subject", "alice.jpg")  # subjects match in any case
    assert first["image_id"] == names.pseudonym("image", "img-1") and first["unindexed"] == [["LOW_QUALITY"]]
    assert out["images"][1] == "not a record" and out["nested"] == {
        "searched_user_id": names.pseudonym("user", "alice"),
        "count": 2,
    }
    assert "pseudonymised" not in first and data["images"][0]["face_ids"] == [FACE]  # the input is left as it was
