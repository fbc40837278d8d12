"""Where preparation runs: in this process (plain ``index``) or as Ray tasks (``index --ray``).

A runner turns an iterator of ``Job`` into an iterator of results **in the same order**,
pulling a job before it yields that job's result, so the caller can match them up.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections import deque
from collections.abc import Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any, Protocol

from facetrust.errors import ConfigurationError, ModelError
from facetrust.ingest.prepare import EngineFactory, ImageFailure, Job, prepare
from facetrust.service.ingest import PreparedImage

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.engine import FaceEngine

__all__ = ["LocalRunner", "RayRunner", "Result", "Runner", "check_ray_address"]

log = logging.getLogger(__name__)

Result = PreparedImage | ImageFailure
_ADDRESS = re.compile(r"^(ray://)?(?P<host>[A-Za-z0-9_.\-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})$")
CONNECT_TIMEOUT_S = 5.0


class Runner(Protocol):
    def run(self, jobs: Iterator[Job]) -> Iterator[Result]: ...


class LocalRunner:
    """Prepares each image in this process with the given engine, one at a time."""

    def __init__(self, engine: FaceEngine) -> None:
        self.engine = engine

    def run(self, jobs: Iterator[Job]) -> Iterator[Result]:
        for job in jobs:
            yield prepare(self.engine, job)


class _Worker:
    """A Ray actor: one engine per worker process, built once, preparing batches of jobs."""

    def __init__(self, factory: EngineFactory) -> None:
        self.engine = factory()

    def prepare(self, jobs: list[Job]) -> list[Result]:
        return [prepare(self.engine, job) for job in jobs]


def check_ray_address(address: str) -> str:
    """``local`` (start Ray here), ``auto`` (the cluster ``ray start`` runs here), or
    ``[ray://]HOST:PORT``; anything else is refused with the forms allowed."""
    if address in ("local", "auto") or _ADDRESS.match(address):
        return address
    raise ConfigurationError(
        f"Ray address {address!r} is not 'local', 'auto' or [ray://]HOST:PORT (to index a path, put --ray "
        "after the paths or write --ray=ADDRESS)",
        setting="ray",
    )


def _probe(address: str) -> None:
    """Fail fast, naming the address, when nothing listens there (Ray itself retries for a minute)."""
    found = _ADDRESS.match(address)
    if found is None:
        return
    host, port = found["host"].strip("[]"), int(found["port"])
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot reach a Ray cluster at {address!r}: {exc.strerror or exc}. Start one there with "
            "`ray start --head`, or give no address to run Ray on this machine",
            setting="ray",
        ) from None


class RayRunner:
    """Prepares batches of images on Ray actors, one engine per actor, results in input order.

    ``address`` is as ``check_ray_address`` allows; ``local`` starts Ray here with ``num_cpus``
    CPUs (default: all) unless Ray is already initialised in this process. Ray started here is
    shut down on exit; a cluster joined is left running. Use as a context manager.
    """

    def __init__(
        self,
        factory: EngineFactory,
        *,
        address: str = "local",
        workers: int | None = None,
        batch_size: int = 8,
        num_cpus: int | None = None,
    ) -> None:
        self.factory = factory
        self.address = check_ray_address(address)
        self.workers = workers
        self.batch_size = batch_size
        self.num_cpus = num_cpus
        self._started = False
        self._actors: list[Any] = []

    def __enter__(self) -> RayRunner:
        import ray

        if self.address != "local":
            _probe(self.address)
        if not ray.is_initialized():
            try:
                if self.address == "local":
                    ray.init(num_cpus=self.num_cpus or os.cpu_count() or 1, include_dashboard=False)
                else:
                    ray.init(address=self.address)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigurationError(f"Cannot join Ray at {self.address!r}: {exc}", setting="ray") from None
            self._started = True
        try:
            count = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]
            actor = ray.remote(num_cpus=1)(_Worker)
            self._actors = [actor.remote(self.factory) for _ in range(count)]
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        import ray

        for actor in self._actors:
            ray.kill(actor)
        self._actors = []
        if self._started:
            ray.shutdown()
            self._started = False

    def run(self, jobs: Iterator[Job]) -> Iterator[Result]:
        import ray

        if not self._actors:
            raise ConfigurationError("RayRunner.run needs the runner entered (`with RayRunner(...) as runner`)")
        pending: deque[Any] = deque()
        window = 2 * len(self._actors)
        turn = 0
        while True:
            while len(pending) < window:
                batch = list(islice(jobs, self.batch_size))
                if not batch:
                    break
                pending.append(self._actors[turn % len(self._actors)].prepare.remote(batch))
                turn += 1
            if not pending:
                return
            try:
                results: list[Result] = ray.get(pending.popleft())
            except ray.exceptions.RayError as exc:
                raise ModelError(f"A Ray worker failed while preparing images: {exc}") from None
            yield from results
