"""index on Ray: one local Ray instance (2 CPUs) for the module; fake engine, plus one real-model run."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import click.testing
import numpy as np
import pytest

from facetrust.cli import cli
from facetrust.errors import ConfigurationError, ConsentRequiredError
from facetrust.ingest import ingest
from facetrust.ingest.prepare import Job
from facetrust.ingest.runners import LocalRunner, RayRunner
from facetrust.models.fake import fake_engine
from facetrust.service import FaceService
from facetrust.service.ingest import PreparedImage

from .helpers import album, audit_tail, bad_image, external_ids, open_service


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[FaceService]:
    service = open_service(tmp_path)
    yield service
    service.close()


def test_ray_writes_faces_in_input_order_across_batches(ray_local: None, svc: FaceService, tmp_path: Path) -> None:
    paths = album(tmp_path / "a", 13)
    order = paths[::-1]

    with RayRunner(fake_engine, batch_size=2) as runner:
        done = ingest(svc, "people", order, runner=runner)

    assert [o.image for o in done] == order
    assert external_ids(svc) == [Path(p).name for p in order]


def test_ray_rerun_skips_what_is_indexed_and_reports_bad_images(
    ray_local: None, svc: FaceService, tmp_path: Path
) -> None:
    paths = album(tmp_path / "a", 4)
    bad = bad_image(tmp_path / "a")
    with RayRunner(fake_engine, batch_size=2) as runner:
        ingest(svc, "people", paths[:2], runner=runner)
        done = ingest(svc, "people", [paths[0], bad, *paths[1:]], runner=runner)

    assert [(o.skipped, o.error.code if o.error else None) for o in done] == [
        (True, None),
        (False, "InvalidImageFormat"),
        (True, None),
        (False, None),
        (False, None),
    ]
    assert external_ids(svc) == ["img00.png", "img01.png", "img02.png", "img03.png"]


def test_ray_refuses_missing_consent_exactly_as_plain_index(ray_local: None, svc: FaceService, tmp_path: Path) -> None:
    paths = album(tmp_path / "a", 1)
    with pytest.raises(ConsentRequiredError) as plain:
        ingest(svc, "staff", paths)
    plain_audit = audit_tail(svc, 1)

    with RayRunner(fake_engine) as runner, pytest.raises(ConsentRequiredError) as bulk:
        ingest(svc, "staff", paths, runner=runner)

    assert str(bulk.value) == str(plain.value)
    assert audit_tail(svc, 1) == plain_audit
    assert svc.describe_collection("staff").face_count == 0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_ray_address_is_a_clear_error(tmp_path: Path) -> None:
    port = _closed_port()

    with pytest.raises(
        ConfigurationError, match=rf"Cannot reach a Ray cluster at '127.0.0.1:{port}'.*ray start --head"
    ):
        RayRunner(fake_engine, address=f"127.0.0.1:{port}").__enter__()


def ours(stdout: str) -> str:
    """The CLI's own output: without the lines Ray's raylet prints into the driver's stdout (on a
    loaded machine, e.g. "(raylet) A worker died ...", after which Ray reruns the task)."""
    return "".join(line for line in stdout.splitlines(keepends=True) if "(raylet)" not in line)


def test_cli_index_ray_indexes_and_a_rerun_reports_skips(ray_local: None, svc: FaceService, tmp_path: Path) -> None:
    folder = tmp_path / "a"
    album(folder, 3)
    bad_image(folder)
    obj = {"service": svc, "engine": svc.engine, "engine_factory": fake_engine}

    def run() -> click.testing.Result:
        return click.testing.CliRunner().invoke(cli, ["index", "people", str(folder), "--ray"], obj=obj)

    first, second = run(), run()

    assert (first.exit_code, ours(first.stdout)) == (1, "people: 4 images, 3 faces indexed, 0 not indexed, 1 failed\n")
    assert (
        ours(second.stdout)
        == "people: 1 image, 0 faces indexed, 0 not indexed, 1 failed, 3 skipped (already indexed)\n"
    )
    why = "not a supported image format (expected JPEG or PNG; first bytes 6e6f7420616e2069)"
    assert second.stderr == f"Error: {folder / 'bad.png'}: {why}\n"


def test_cli_names_the_address_it_cannot_reach(svc: FaceService, tmp_path: Path) -> None:
    paths = album(tmp_path / "a", 1)
    port = _closed_port()
    obj = {"service": svc, "engine": svc.engine, "engine_factory": fake_engine}

    result = click.testing.CliRunner().invoke(cli, ["index", "people", paths[0], f"--ray=127.0.0.1:{port}"], obj=obj)

    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: Cannot reach a Ray cluster at '127.0.0.1:{port}'")
    assert svc.describe_collection("people").face_count == 0


def test_cli_refuses_a_path_taken_for_the_ray_address(svc: FaceService, tmp_path: Path) -> None:
    paths = album(tmp_path / "a", 2)
    obj = {"service": svc, "engine": svc.engine, "engine_factory": fake_engine}

    result = click.testing.CliRunner().invoke(cli, ["index", "people", "--ray", *paths], obj=obj)

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: Ray address {paths[0]!r} is not 'local', 'auto' or [ray://]HOST:PORT (to index a path, "
        "put --ray after the paths or write --ray=ADDRESS)\n"
    )
    assert svc.describe_collection("people").face_count == 0


@pytest.mark.model
@pytest.mark.data
def test_ray_workers_embed_lfw_images_as_this_process_does(ray_local: None, lfw: Path) -> None:
    from facetrust.engine import load_engine

    paths = sorted(str(p) for p in lfw.rglob("*.jpg"))[:6]
    jobs = [Job(Path(p).read_bytes(), p, "AUTO", None) for p in paths]
    engine = load_engine()

    local = list(LocalRunner(engine).run(iter(jobs)))
    with RayRunner(load_engine, workers=2, batch_size=2) as runner:
        remote = list(runner.run(iter(jobs)))

    assert [r.sha256 for r in remote if isinstance(r, PreparedImage)] == paths
    for here, there in zip(local, remote):
        assert isinstance(here, PreparedImage) and isinstance(there, PreparedImage)
        assert len(here.embeddings) == len(there.embeddings) >= 1
        for a, b in zip(here.embeddings, there.embeddings):
            assert float(np.dot(a.vector, b.vector)) > 0.9999 * float(
                np.linalg.norm(a.vector) * np.linalg.norm(b.vector)
            )
