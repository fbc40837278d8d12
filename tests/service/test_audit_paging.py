"""GetAuditLog in pages: a client that follows NextSequence reads every entry once and stops,
though each page it reads is itself an entry."""

from __future__ import annotations

import pytest

from facetrust.service import FaceService


def follow(service: FaceService, limit: int, most_pages: int = 100) -> tuple[list[int], int]:
    """Every Sequence read by following NextSequence from the start, and how many pages it took."""
    seen: list[int] = []
    after: int | None = 0
    pages = 0
    while after is not None and pages < most_pages:
        page = service.get_audit_log(after_seq=after, limit=limit)
        seen += [e.seq for e in page.entries]
        after = page.next_seq
        pages += 1
    return seen, pages


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_paging_the_audit_log_ends_though_every_page_is_an_entry(service: FaceService, limit: int) -> None:
    for name in ("a", "b", "c", "d", "e"):
        service.create_collection(name)
    before = service.get_audit_log().head.seq  # 5 CreateCollection entries and that read

    seen, pages = follow(service, limit)

    assert pages < 100, "NextSequence was offered for ever"
    assert seen[:before] == list(range(1, before + 1))  # every entry made before the paging, once, in order
    assert seen == sorted(set(seen))


def test_entries_that_follow_only_reads_still_get_a_next_sequence(service: FaceService) -> None:
    service.create_collection("a")
    service.get_audit_log()  # a read between two changes
    service.create_collection("b")

    first = service.get_audit_log(after_seq=0, limit=1)

    assert [e.seq for e in first.entries] == [1] and first.next_seq == 1


def test_reads_at_the_end_of_the_log_come_with_a_read_that_reaches_them(service: FaceService) -> None:
    service.create_collection("a")
    for _ in range(3):
        service.get_audit_log(limit=1)

    page = service.get_audit_log(after_seq=1, limit=1000)

    assert [e.data["operation"] for e in page.entries] == ["GetAuditLog"] * 3 and page.next_seq is None


def test_two_auditors_paging_one_entry_at_a_time_both_finish(service: FaceService) -> None:
    from facetrust.governance.actor import Actor

    one, two = Actor("FTKAUDITORONE", "auditor"), Actor("FTKAUDITORTWO", "auditor")
    for name in ("a", "b", "c"):
        service.create_collection(name)
    at, last = {one: 0, two: 0}, {one: 0, two: 0}
    done: set[Actor] = set()
    for _ in range(200):  # turn about, each following its own NextSequence
        for auditor in (one, two):
            if auditor in done:
                continue
            page = service.get_audit_log(after_seq=at[auditor], limit=1, actor=auditor)
            last[auditor] = max([last[auditor], *(e.seq for e in page.entries)])
            if page.next_seq is None:
                done.add(auditor)
            else:
                at[auditor] = page.next_seq
        if done == {one, two}:
            break

    assert done == {one, two}, "one of them was handed the other's reads for ever"
    assert last[one] >= 3 and last[two] >= 3  # both read the three collections' entries
