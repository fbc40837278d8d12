"""The bulk-write pipeline: many batches of prepared images written in order, two at a time.

``index_prepared_batches`` overlaps the Python-side preparation of batch N+1 (ids, the quality
re-check, rows, vectors, audit details) and the answer objects of batch N-1, in the caller's
thread, with the write of batch N (the governed checks, the transaction and its commit, the
live index, the statistics) in one writer thread. The store's statements, its commit (fsync) and
numpy release the GIL, so the two keep both cores busy. Each batch stays one IndexFaces, one
transaction and one audit entry, written strictly in input order; a batch's answer is yielded
only once its transaction has committed; the first batch that fails stops the pipeline: the
batches queued behind it are not written, and its error is raised in its turn.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from facetrust.service.ingest import BatchPlan, WrittenBatch, answer_batch, plan_batch, write_batch

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.governance.actor import Actor
    from facetrust.service.context import ServiceContext
    from facetrust.service.faces import Enrolment
    from facetrust.service.ingest import PreparedImage
    from facetrust.service.types import IndexResult

__all__ = ["index_prepared_batches"]

_Batch = Sequence[tuple["PreparedImage", "str | None"]]
_DONE = None  # the caller's last item for the writer


class _Writer:
    """One thread that writes the queued batches in order and hands back each one's outcome (the
    committed batch, or the exception that refused it); after a failure it skips the rest."""

    def __init__(self, service: ServiceContext, actor: Actor, ask: Enrolment) -> None:
        self.service, self.actor, self.ask = service, actor, ask
        self.todo: queue.Queue[tuple[_Batch, BatchPlan | None] | None] = queue.Queue(maxsize=1)
        self.done: queue.Queue[WrittenBatch | BaseException] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="facetrust-bulk-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        failed = False
        while (item := self.todo.get()) is not _DONE:
            if failed:
                continue  # not written: a batch before it failed
            batch, plan = item
            try:
                self.done.put(write_batch(self.service, self.actor, self.ask, batch, plan))
            except BaseException as exc:  # handed to the caller, raised in its turn
                failed = True
                self.done.put(exc)

    def close(self) -> None:
        """Wait for the batch being written (never abandon a transaction half way)."""
        self.todo.put(_DONE)
        self.thread.join()


def index_prepared_batches(
    service: ServiceContext, actor: Actor, ask: Enrolment, batches: Iterable[_Batch]
) -> Iterator[list[IndexResult]]:
    """``index_prepared_batch`` of each batch in turn, pipelined (``FaceService.index_prepared_batches``):
    yields each batch's results in input order once it has committed. A batch that fails raises
    its error when its turn comes; the batches after it are not written. Closing the iterator
    early waits for the batch being written, which stays committed."""
    writer = _Writer(service, actor, ask)
    sent = received = 0
    try:
        for batch in batches:
            writer.todo.put((batch, plan_batch(service, ask, batch)))  # waits while one is queued
            sent += 1
            while received < sent and not writer.done.empty():
                received += 1
                yield _answer(writer.done.get())
        while received < sent:
            received += 1
            yield _answer(writer.done.get())
    finally:
        writer.close()


def _answer(outcome: WrittenBatch | BaseException) -> list[IndexResult]:
    if isinstance(outcome, BaseException):
        raise outcome
    return answer_batch(outcome)
