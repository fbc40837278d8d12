"""The exception tree: one root, unique codes, structured fields, the tree drawn in the docstring."""

from __future__ import annotations

import inspect

import pytest

import facetrust.errors as errors
from facetrust.errors import (
    ConfigurationError,
    ConflictError,
    FacetrustError,
    ImageTooLargeError,
    InvalidImageError,
    InvalidInputError,
    InvalidParameterError,
    ModelError,
    ModelIntegrityError,
    NotFoundError,
)

CLASSES = [
    obj
    for _, obj in inspect.getmembers(errors, inspect.isclass)
    if issubclass(obj, BaseException) and obj.__module__ == errors.__name__
]


def test_errors_module_exports_every_error_class() -> None:
    assert sorted(errors.__all__) == sorted(cls.__name__ for cls in CLASSES)
    assert {FacetrustError, InvalidInputError, NotFoundError, ModelError, ConfigurationError} <= set(CLASSES)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_derives_from_facetrust_error(cls: type) -> None:
    assert issubclass(cls, FacetrustError)
    assert issubclass(cls, Exception)


def test_error_codes_are_unique() -> None:
    codes = [cls.code for cls in CLASSES]
    assert len(set(codes)) == len(codes)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_has_its_own_code(cls: type) -> None:
    assert "code" in vars(cls)
    assert isinstance(cls.code, str)
    assert cls.code


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_is_drawn_in_the_module_docstring(cls: type) -> None:
    assert errors.__doc__ is not None
    assert cls.__name__ in errors.__doc__


@pytest.mark.parametrize(
    ("child", "parent"),
    [
        (InvalidImageError, InvalidInputError),
        (ImageTooLargeError, InvalidInputError),
        (InvalidParameterError, InvalidInputError),
        (ModelIntegrityError, ModelError),
    ],
)
def test_errors_are_grouped_by_what_the_caller_can_do(child: type, parent: type) -> None:
    assert issubclass(child, parent)


@pytest.mark.parametrize("cls", [NotFoundError, ConflictError, ModelError, ConfigurationError])
def test_top_level_groups_are_not_input_errors(cls: type) -> None:
    assert not issubclass(cls, InvalidInputError)


def test_invalid_image_error_prefixes_the_source() -> None:
    error = InvalidImageError("cannot decode", source="a.jpg")
    assert str(error) == "a.jpg: cannot decode"
    assert error.message == "a.jpg: cannot decode"
    assert error.source == "a.jpg"
    assert str(InvalidImageError("cannot decode")) == "cannot decode"


def test_image_too_large_error_carries_limit_and_actual() -> None:
    error = ImageTooLargeError("too big", limit=10, actual=20, source="b.png")
    assert (error.limit, error.actual, error.source) == (10, 20, "b.png")
    assert str(error) == "b.png: too big"


def test_structured_fields_are_kept() -> None:
    assert InvalidParameterError("bad", parameter="threshold").parameter == "threshold"
    assert NotFoundError("gone", resource="col").resource == "col"
    assert ConflictError("taken", resource="col").resource == "col"
    assert ModelError("broken", model="m").model == "m"
    assert ConfigurationError("wrong", setting="threads").setting == "threads"
    integrity = ModelIntegrityError("hash", model="m", expected="aa", actual="bb")
    assert (integrity.model, integrity.expected, integrity.actual) == ("m", "aa", "bb")


def test_errors_are_caught_by_the_root() -> None:
    with pytest.raises(FacetrustError) as info:
        raise ModelIntegrityError("hash mismatch", model="m", expected="a", actual="b")
    assert info.value.code == "ModelIntegrity"
