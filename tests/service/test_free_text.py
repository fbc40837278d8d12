"""Free text a person writes into the record (a consent's basis, a review's note) prints as it reads."""

from __future__ import annotations

import pytest

from facetrust.errors import InvalidParameterError
from facetrust.service import FaceService
from facetrust.service.validate import check_text


@pytest.mark.parametrize(
    "control", ["\u202e", "\u202d", "\u202a", "\u202b", "\u202c", "\u2066", "\u2067", "\u2068", "\u2069"]
)
def test_bidirectional_controls_that_reorder_the_text_are_refused(control: str) -> None:
    with pytest.raises(InvalidParameterError, match=f"Note holds the bidirectional control U\\+{ord(control):04X}"):
        check_text(f"approved {control}deifirev ton", "Note", 2000, lines=True)


def test_right_to_left_writing_and_its_marks_are_kept() -> None:
    for text in ("موافقة موقعة\u200f", "הסכמה בכתב\u200e", "رضا\u061c", "👩\u200d💻 release", "نامه\u200cای"):
        assert check_text(text, "Basis", 200) == text


def test_a_consent_basis_that_would_print_reordered_records_nothing(service: FaceService) -> None:
    with pytest.raises(InvalidParameterError, match="Basis holds the bidirectional control U\\+202E"):
        service.record_consent("bob", basis="release \u202edeklovér", evidence="ref-1")
    assert service.consent("bob") is None
