"""service/validate.py's ISO 8601 reader, the one the CLI's times and the HTTP API's Since share."""

from __future__ import annotations

import pytest

from facetrust.errors import InvalidParameterError
from facetrust.service.validate import LAST_TIME, read_iso_time

JAN_15_8AM = 1_800_000_000.0  # 2027-01-15T08:00:00Z


@pytest.mark.parametrize(
    "text",
    [
        "2027-01-15T08:00:00Z",
        "2027-01-15t08:00:00z",
        "2027-01-15T08:00:00",  # no offset: UTC
        "2027-01-15 08:00",
        "2027-01-15T10:00:00+02:00",
        "2027-01-15T03:00:00-05:00",
        "20270115T080000Z",
    ],
)
def test_every_spelling_of_one_instant_reads_as_its_seconds(text: str) -> None:
    assert read_iso_time(text, "Since") == JAN_15_8AM


def test_a_date_is_its_midnight_utc_and_the_range_runs_from_1970_to_the_last_time() -> None:
    assert read_iso_time("2027-01-15", "Since") == JAN_15_8AM - 8 * 3600
    assert read_iso_time("1970-01-01", "Since") == 0.0
    assert read_iso_time("9998-12-31T00:00:00Z", "Since") == LAST_TIME


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("2027-01-15T23:59:60z", "names a leap second (:60), which is not supported: give the second before it (:59)"),
        ("20270115T235960.5", "names a leap second (:60), which is not supported: give the second before it (:59)"),
        ("12027-01-15", "is out of range: give a time from 1970 to 9998-12-31T00:00:00Z"),
        ("-2027-01-15", "is out of range: give a time from 1970 to 9998-12-31T00:00:00Z"),
        ("0000-01-01", "is out of range: give a time from 1970 to 9998-12-31T00:00:00Z"),
        ("9998-12-31T00:00:01Z", "is out of range: give a time from 1970 to 9998-12-31T00:00:00Z"),
        ("2027-01-15T24:00:00", "is not a valid date or time: hour must be in 0..23"),
        ("2027-01-15T08:00:00-24:00", "is not a valid date or time: its offset must be less than 24 hours"),
        ("٢٠٢٧-01-15", "is not an ISO 8601 date or time (e.g. 2027-01-15 or 2027-01-15T08:00:00Z)"),
        ("", "is not an ISO 8601 date or time (e.g. 2027-01-15 or 2027-01-15T08:00:00Z)"),
    ],
)
def test_a_time_that_does_not_read_is_refused_naming_the_parameter_and_the_value(text: str, problem: str) -> None:
    with pytest.raises(InvalidParameterError) as refused:
        read_iso_time(text, "--since")

    assert (str(refused.value), refused.value.parameter) == (f"--since {text!r} {problem}", "--since")


def test_a_value_that_is_not_text_is_refused_naming_its_type() -> None:
    with pytest.raises(InvalidParameterError, match=r"^Since must be an ISO 8601 date or time \(text\); got int$"):
        read_iso_time(1_800_000_000, "Since")  # type: ignore[arg-type]
