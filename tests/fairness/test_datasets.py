"""Dataset adapters: LFW sex lists, UTKFace labels and file names, generic CSV; hash; subsets."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from facetrust.errors import InvalidParameterError, NotFoundError
from facetrust.fairness.datasets import (
    age_band,
    detect_dataset_type,
    load_csv,
    load_dataset,
    load_lfw,
    load_utkface,
)


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


@pytest.fixture
def lfw_dir(tmp_path: Path) -> Path:
    root = tmp_path / "lfw"
    for name in ("Ann_A/Ann_A_0001.jpg", "Ann_A/Ann_A_0002.jpg", "Bob_B/Bob_B_0001.jpg", "Cy_C/Cy_C_0001.jpg"):
        touch(root / "images" / name)
    (root / "male_names.txt").write_text("Bob_B_0001.jpg\nAnn_A_0002.jpg\n")
    (root / "female_names.txt").write_text("Ann_A_0001.jpg\nAnn_A_0002.jpg\n")
    return root


def test_lfw_takes_identity_from_the_folder_and_sex_from_the_lists(lfw_dir: Path) -> None:
    spec = load_lfw(lfw_dir)
    got = {Path(r.path).name: (r.identity, dict(r.groups)) for r in spec.images}
    assert got == {
        "Ann_A_0001.jpg": ("Ann_A", {"sex": "female"}),
        "Ann_A_0002.jpg": ("Ann_A", {"sex": "female"}),  # in both lists: female, as the LFW README advises
        "Bob_B_0001.jpg": ("Bob_B", {"sex": "male"}),
        "Cy_C_0001.jpg": ("Cy_C", {}),  # in neither list: no label, not audited by sex
    }
    assert [a.column for a in spec.analyses] == ["sex"]
    assert spec.has_identities


def test_lfw_without_sex_lists_is_refused(tmp_path: Path) -> None:
    touch(tmp_path / "images" / "A" / "A_0001.jpg")
    with pytest.raises(InvalidParameterError, match=r"male_names\.txt"):
        load_lfw(tmp_path)


def test_utkface_reads_labels_csv_and_pools_ages_into_bands(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels.csv").write_text("file,age,gender,race\na.jpg,8,Female,Asian\nb.jpg,35,Male,White\n")
    spec = load_utkface(tmp_path)
    assert [dict(r.groups) for r in spec.images] == [
        {"race": "Asian", "sex": "female", "age_band": "0-12"},
        {"race": "White", "sex": "male", "age_band": "18-39"},
    ]
    assert all(r.identity is None for r in spec.images)
    assert not spec.has_identities
    race = spec.analyses[0]
    assert race.column == "race"
    assert "0-12" not in race.where["age_band"]  # children are reported apart, not pooled with adults
    assert race.match_on == ("sex", "age_band")


def test_utkface_falls_back_to_the_file_names(tmp_path: Path) -> None:
    touch(tmp_path / "images" / "61_1_2_20170109150557335.jpg.chip.jpg")
    touch(tmp_path / "images" / "3_0_4_20170109150557336.jpg.chip.jpg")
    touch(tmp_path / "images" / "bad_name.jpg")
    spec = load_utkface(tmp_path)
    assert sorted(tuple(sorted(r.groups.items())) for r in spec.images) == [
        (("age_band", "0-12"), ("race", "Others"), ("sex", "male")),
        (("age_band", "60+"), ("race", "Asian"), ("sex", "female")),
    ]


@pytest.mark.parametrize(("age", "band"), [(0, "0-12"), (12, "0-12"), (13, "13-17"), (18, "18-39"), (59, "40-59")])
def test_age_band(age: int, band: str) -> None:
    assert age_band(age) == band


def test_csv_paths_are_relative_to_the_file_and_empty_identities_are_none(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("path,identity,skin,sex\nx/1.jpg,p1,dark,f\n/abs/2.jpg,,light,\n")
    spec = load_csv(tmp_path / "d.csv")
    assert [(r.path, r.identity, dict(r.groups)) for r in spec.images] == [
        (str(tmp_path / "x/1.jpg"), "p1", {"skin": "dark", "sex": "f"}),
        ("/abs/2.jpg", None, {"skin": "light"}),
    ]
    assert [a.column for a in spec.analyses] == ["skin", "sex"]


def test_csv_without_the_path_and_identity_columns_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("file,group\n")
    with pytest.raises(InvalidParameterError, match="path,identity"):
        load_csv(tmp_path / "d.csv")


def test_a_csv_that_is_a_folder_or_not_utf8_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "latin.csv").write_bytes("path,identity,r\u00e9gion\n".encode("latin-1"))
    for name in ("folder.csv", "latin.csv"):
        with pytest.raises(InvalidParameterError, match=f"Cannot read the dataset CSV .*{name}"):
            load_csv(tmp_path / name)


def test_the_dataset_type_is_guessed_from_the_layout(lfw_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("path,identity\n")
    (tmp_path / "utk").mkdir()
    (tmp_path / "utk" / "labels.csv").write_text("file,age,gender,race\n")
    assert detect_dataset_type(lfw_dir) == "lfw"
    assert detect_dataset_type(tmp_path / "d.csv") == "csv"
    assert detect_dataset_type(tmp_path / "utk") == "utkface"
    with pytest.raises(InvalidParameterError, match="--dataset-type"):
        detect_dataset_type(tmp_path / "utk" / "..")


def test_a_missing_dataset_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        load_dataset(tmp_path / "nope")


def test_the_hash_depends_on_files_and_labels_but_not_their_order(lfw_dir: Path) -> None:
    spec = load_lfw(lfw_dir)
    assert spec.fingerprint() == load_lfw(lfw_dir).fingerprint()
    reordered = dataclasses.replace(spec, images=tuple(reversed(spec.images)))
    assert reordered.fingerprint() == spec.fingerprint()
    (lfw_dir / "male_names.txt").write_text("Bob_B_0001.jpg\nCy_C_0001.jpg\n")
    assert load_lfw(lfw_dir).fingerprint() != spec.fingerprint()


def test_the_hash_is_the_same_wherever_the_dataset_lies(lfw_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(lfw_dir, tmp_path / "elsewhere" / "lfw")
    assert load_lfw(tmp_path / "elsewhere" / "lfw").fingerprint() == load_lfw(lfw_dir).fingerprint()


def test_a_limited_subset_is_seeded_and_noted(lfw_dir: Path) -> None:
    spec = load_lfw(lfw_dir)
    small = spec.limited(2, seed=1)
    assert len(small.images) == 2
    assert small.images == spec.limited(2, seed=1).images
    assert small.notes[-1] == "seeded subset (--limit 2, seed 1): 2 of 4 images"
    assert spec.limited(10, seed=1) is spec


def test_a_csv_listing_an_image_twice_is_refused_naming_both_lines(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("path,identity,sex\nx/1.jpg,p1,f\nx/2.jpg,p2,f\n./x/../x/1.jpg,,f\n")
    with pytest.raises(InvalidParameterError, match=r"line 4 lists '\./x/\.\./x/1\.jpg' again \(first on line 2\)"):
        load_csv(tmp_path / "d.csv")


def test_a_csv_saved_with_a_byte_order_mark_reads_its_first_column(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_bytes("path,identity,sex\nx/1.jpg,p1,f\n".encode("utf-8-sig"))
    spec = load_csv(tmp_path / "d.csv")
    assert [(Path(r.path).name, r.identity) for r in spec.images] == [("1.jpg", "p1")]


def test_utkface_labels_listing_an_image_twice_are_refused_and_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    text = "file,age,gender,race\na.jpg,8,Female,Asian\nb.jpg,35,Male,White\n"
    (tmp_path / "labels.csv").write_bytes(text.encode("utf-8-sig"))
    assert len(load_utkface(tmp_path).images) == 2  # "\ufefffile" was not the file column
    (tmp_path / "labels.csv").write_text(text + "a.jpg,9,Female,Asian\n")  # two strangers with one face
    with pytest.raises(InvalidParameterError, match=r"line 4 lists 'a\.jpg' again \(first on line 2\)"):
        load_utkface(tmp_path)
