"""The bulk-write pipeline: many batches of prepared images written in order, the next one made
ready while the current one commits.

``index_prepared_batches`` writes each batch (the governed checks, the inserts, the COMMIT, the
live index, the statistics) in one writer thread, and makes the next batch ready (ids, the
quality re-check, rows, vectors, audit details) and the answer objects of the batches already
committed in the caller's thread, *while the writer's COMMIT runs*: SQLite's commit (writing
the pages, fsync) releases the GIL, so the two overlap on two cores. The caller waits for that
moment rather than running alongside the inserts: the sqlite3 module takes the GIL back after
every row, so a second Python-busy thread would make the writer wait a switch interval per row.
Each batch stays one IndexFaces, one transaction and one audit entry, written strictly in input
order; a batch's answer is yielded only once its transaction has committed; the first batch that
fails stops the pipeline: the batches after it are not written, and its error is raised in its turn.
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


class _Writer:
    """One thread that writes the queued batches in order and hands back each one's outcome (the
    committed batch, or the exception that refused it); after a failure it skips the rest. It
    releases ``committing`` once per batch: when only its COMMIT is left, or when it ends without."""

    def __init__(self, service: ServiceContext, actor: Actor, ask: Enrolment) -> None:
        self.service, self.actor, self.ask = service, actor, ask
        self.todo: queue.Queue[tuple[_Batch, BatchPlan | None] | None] = queue.Queue(maxsize=1)
        self.done: queue.Queue[WrittenBatch | BaseException] = queue.Queue()
        self.committing = threading.Semaphore(0)
        self.thread = threading.Thread(target=self._run, name="facetrust-bulk-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        failed = False
        while (item := self.todo.get()) is not None:
            signalled = threading.Event()

            def committing(signalled: threading.Event = signalled) -> None:
                signalled.set()
                self.committing.release()

            try:
                if not failed:  # else not written: a batch before it failed
                    self.done.put(write_batch(self.service, self.actor, self.ask, *item, committing))
            except BaseException as exc:  # handed to the caller, raised in its turn
                failed = True
                self.done.put(exc)
            finally:
                if not signalled.is_set():
                    self.committing.release()

    def close(self) -> None:
        """Wait for the batch being written (never abandon a transaction half way)."""
        self.todo.put(None)
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
            if sent:
                writer.committing.acquire()  # the batch in flight is committing (or has ended)
            plan = plan_batch(service, ask, batch)
            answers: list[list[IndexResult]] = []
            failure: BaseException | None = None
            while received < sent and failure is None and not writer.done.empty():
                received += 1
                outcome = writer.done.get()
                if isinstance(outcome, BaseException):
                    failure = outcome
                else:
                    answers.append(answer_batch(outcome))  # still during the COMMIT
            if failure is None:
                writer.todo.put((batch, plan))
                sent += 1
            yield from answers  # the caller's own work overlaps the next batch's write
            if failure is not None:
                raise failure
        while received < sent:
            received += 1
            yield _answer(writer.done.get())
    finally:
        writer.close()


def _answer(outcome: WrittenBatch | BaseException) -> list[IndexResult]:
    if isinstance(outcome, BaseException):
        raise outcome
    return answer_batch(outcome)
