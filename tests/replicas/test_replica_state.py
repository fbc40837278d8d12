"""Per-process state of replicas over one store, checked through the library (two services, one store)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from facetrust.config import Settings
from facetrust.errors import ConfigurationError
from facetrust.governance.actor import Actor
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService
from facetrust.service.sweeper import LeasedSweeper
from facetrust.service.tailkeeper import LEASE as TAIL_LEASE
from facetrust.service.tailkeeper import LeasedTailKeeper
from facetrust.service.tails import TailCatchUp
from facetrust.service.video_jobs import VideoJobRequest, VideoJobs
from facetrust.store import leases
from facetrust.video.synth import story_scene, write_clip

from .conftest import SharedStore


def _service(store: SharedStore, replica: str, **settings: object) -> FaceService:
    engine = fake_engine(Settings(flip_augment=False, **settings))  # type: ignore[arg-type]
    return FaceService(store.data_dir(replica), engine, index_backend="hnsw", replica_id=replica, store=store.url)


def _two_faces(service: FaceService) -> tuple[str, str]:
    service.create_collection("c")
    first = service.index_faces("c", face_png((40, 40, 80, 1))).indexed[0].stored.face_id
    second = service.index_faces("c", face_png((150, 40, 80, 1))).indexed[0].stored.face_id
    return first, second


def test_an_erasure_on_one_replica_leaves_no_copy_in_another_replicas_index_or_snapshot(store: SharedStore) -> None:
    with _service(store, "a") as a, _service(store, "b") as b:
        ann, gone = _two_faces(a)
        assert [m.face.face_id for m in b.search_faces("c", ann).matches] == [gone]
        row = b.store.get_collection("c")
        assert row is not None
        b.indexes.save_all()
        b_index = b.indexes.get(row)
        snapshot = b_index.folder / f"collection-{row.id}.json"
        assert snapshot.exists()
        held = b_index._index  # an HNSW graph: a deletion only marks its vector

        a.delete_faces("c", [gone])

        if store.url is None:  # one data directory: the eraser removed every replica's snapshot of it
            assert not snapshot.exists()
        assert b.search_faces("c", ann).matches == ()
        assert not snapshot.exists()  # b applied the erasure from the change log and removed its own snapshot
        assert b_index._index is not held  # b rebuilt its graph from the store: no erased vector in memory
        assert len(b_index._index or []) == 1


def test_a_collection_deleted_on_one_replica_is_forgotten_by_the_others_refresh(store: SharedStore) -> None:
    with _service(store, "a") as a, _service(store, "b") as b:
        ann, _ = _two_faces(a)
        b.search_faces("c", ann)
        b.indexes.save_all()
        folder = b.indexes.folder
        assert list(folder.glob("collection-*"))
        a.delete_collection("c")

        b.indexes.refresh()

        assert b.indexes._open == {}
        assert not list(folder.glob("collection-*"))


def _snapshot_holds(folder: Path, row_id: int, key: int) -> bool:
    """Whether the snapshot of collection ``row_id`` in ``folder`` (if any) holds face ``key``."""
    from facetrust.index import load_index

    path = folder / f"collection-{row_id}.index"
    return path.exists() and key in load_index(path)


def test_a_replica_closing_right_after_another_erased_saves_no_erased_template(store: SharedStore) -> None:
    with _service(store, "a") as a:
        engine = fake_engine(Settings(flip_augment=False))  # an exact index keeps the template's bytes as stored
        b = FaceService(store.data_dir("b"), engine, index_backend="exact", replica_id="b", store=store.url)
        try:
            ann, gone = _two_faces(a)
            b.search_faces("c", ann)  # b has the collection loaded, the face still in it
            row = b.store.get_collection("c")
            assert row is not None
            key = next(iter(b.store.faces_by_ids(row.id, [gone]).values())).key
            a.delete_faces("c", [gone])
        finally:
            b.close()  # its last save catches up with the deletion before it writes
        assert (b.indexes.folder / f"collection-{row.id}.index").exists()
        assert not _snapshot_holds(b.indexes.folder, row.id, key)


def test_a_snapshot_not_loaded_since_a_deletion_is_removed_by_the_periodic_refresh(store: SharedStore) -> None:
    with _service(store, "a") as a:
        with _service(store, "b") as b:
            ann, gone = _two_faces(a)
            b.search_faces("c", ann)
            folder = b.indexes.folder
        assert list(folder.glob("collection-*"))  # b stopped and left its snapshot
        with _service(store, "b") as b:  # b back, the collection not opened since
            a.delete_faces("c", [gone])  # (on SQLite the eraser removes every replica's snapshot itself)
            a.create_collection("d")
            a.index_faces("d", face_png((40, 40, 80, 2)))
            b.search_faces_by_image("d", face_png((40, 40, 80, 2)))
            b.indexes.save_all()
            a.delete_collection("d")  # deleted while b's index of it stays loaded: refresh forgets it
            b.indexes.refresh()
            assert not list(folder.glob("collection-*"))


def test_an_erasure_beside_the_folders_owner_removes_its_snapshot_at_once(tmp_path: Path) -> None:
    engine = fake_engine(Settings(flip_augment=False))
    with FaceService(tmp_path / "d", engine, index_backend="exact") as server:
        ann = server.create_collection("c") and server.index_faces("c", face_png((40, 40, 80, 1)))
        gone = server.index_faces("c", face_png((150, 40, 80, 1))).indexed[0].stored.face_id
        server.search_faces("c", gone)
        server.indexes.save_all()
        folder = server.indexes.folder
        assert list(folder.glob("collection-*"))
        with FaceService(tmp_path / "d", engine, index_backend="exact") as cli:  # `facetrust faces delete` beside it
            assert not cli.indexes.owner
            cli.delete_faces("c", [gone])
            assert not list(folder.glob("collection-*"))
        assert ann.indexed


def test_a_collection_another_process_deleted_is_not_written_back_when_this_one_closes(tmp_path: Path) -> None:
    engine = fake_engine(Settings(flip_augment=False))
    owner = FaceService(tmp_path / "d", engine, index_backend="exact")  # holds the folder: writes its snapshots
    try:
        owner.create_collection("c")
        face = owner.index_faces("c", face_png((40, 40, 80, 1))).indexed[0].stored.face_id
        owner.search_faces("c", face)  # loaded: every template in memory
        with FaceService(tmp_path / "d", engine, index_backend="exact") as other:
            other.delete_collection("c")
    finally:
        owner.close()  # saves what it has open, but only collections that still exist
    assert not list(owner.indexes.folder.glob("collection-*"))


def test_plain_snapshots_are_removed_when_a_service_opens_with_templates_sealed(tmp_path: Path) -> None:
    import base64

    from facetrust.governance.crypto import Keyring, TemplateKey, generate_key

    engine = fake_engine(Settings(flip_augment=False))
    with FaceService(tmp_path / "d", engine, index_backend="exact") as plain:  # encryption off
        plain.create_collection("c")
        face = plain.index_faces("c", face_png((40, 40, 80, 1))).indexed[0].stored.face_id
        plain.search_faces("c", face)
        folder = plain.indexes.folder
    assert list(folder.glob("collection-*"))
    key = Keyring(TemplateKey.from_bytes(base64.b64decode(generate_key())), plain_ok=True)
    with FaceService(tmp_path / "d", engine, index_backend="exact", keyring=key) as sealed:
        assert not list(folder.glob("collection-*"))  # at open, before any collection is used
        assert sealed.search_faces("c", face).gallery_size == 0


def test_a_snapshot_of_another_backend_is_rebuilt_as_the_setting_asks(tmp_path: Path) -> None:
    engine = fake_engine(Settings(flip_augment=False))
    with FaceService(tmp_path / "d", engine, index_backend="hnsw") as first:
        first.create_collection("c")
        face = first.index_faces("c", face_png((40, 40, 80, 1))).indexed[0].stored.face_id
        first.search_faces("c", face)
    for backend in ("exact", "auto"):
        with FaceService(tmp_path / "d", engine, index_backend=backend) as again:
            row = again.store.get_collection("c")
            assert row is not None
            assert again.indexes.get(row).ensure().name == "exact"


def test_a_second_process_on_one_replica_folder_keeps_its_index_in_memory(store: SharedStore) -> None:
    with _service(store, "a") as first, _service(store, "a") as second:
        ann, other = _two_faces(first)
        assert first.indexes.owner and not second.indexes.owner
        assert [m.face.face_id for m in second.search_faces("c", ann).matches] == [other]
        second.indexes.save_all()
        assert not list(second.indexes.folder.glob("collection-*"))  # written only by the folder's owner


def test_a_lease_is_held_by_one_holder_until_it_expires_then_taken_over(store: SharedStore) -> None:
    FaceService(store.data_dir("a"), fake_engine(), store=store.url).close()  # makes the schema
    one, two = store.open_store(), store.open_store()
    try:
        assert leases.acquire(one, "job", "one", ttl_s=10, now=100)
        assert not leases.acquire(two, "job", "two", ttl_s=10, now=105)
        assert leases.acquire(one, "job", "one", ttl_s=10, now=108)  # renewed until 118
        assert not leases.acquire(two, "job", "two", ttl_s=10, now=115)
        assert leases.acquire(two, "job", "two", ttl_s=10, now=119)  # one stopped renewing: taken over
        assert not leases.acquire(one, "job", "one", ttl_s=10, now=120)
        leases.release(one, "job", "one")  # not its lease any more: nothing happens
        assert leases.holder(two, "job") == leases.Lease("job", "two", 129)
        leases.release(two, "job", "two")
        assert leases.holder(one, "job") is None
    finally:
        one.close()
        two.close()


def test_a_lease_ending_more_than_furthest_s_ahead_is_free_to_take(store: SharedStore) -> None:
    """A lease written by a replica whose clock ran days ahead would otherwise hold its work until then."""
    FaceService(store.data_dir("a"), fake_engine(), store=store.url).close()
    ahead, behind = store.open_store(), store.open_store()
    try:
        assert leases.acquire(ahead, "job", "ahead", ttl_s=30, now=1000 + 10 * 86400)  # a clock ten days ahead
        assert leases.acquire(behind, "job", "behind", ttl_s=30, now=1000)
        assert leases.holder(ahead, "job") == leases.Lease("job", "behind", 1030)
        assert not leases.acquire(ahead, "job", "ahead", ttl_s=30, now=1010)  # in step again: held as usual
        assert leases.acquire(ahead, "edge", "ahead", ttl_s=30, now=1000 + leases.FURTHEST_S)
        assert not leases.acquire(behind, "edge", "behind", ttl_s=30, now=1030)  # ends just FURTHEST_S ahead: held
    finally:
        ahead.close()
        behind.close()


def test_the_longest_lease_the_settings_allow_is_within_furthest_s() -> None:
    assert Settings(lease_seconds=86400).lease_seconds < leases.FURTHEST_S
    with pytest.raises(ConfigurationError):
        Settings(lease_seconds=leases.FURTHEST_S)


def test_of_many_replicas_asking_at_once_exactly_one_gets_the_lease(store: SharedStore) -> None:
    FaceService(store.data_dir("a"), fake_engine(), store=store.url).close()
    stores = [store.open_store() for _ in range(6)]
    won: list[str] = []
    start = threading.Barrier(len(stores))

    def ask(n: int) -> None:
        start.wait()
        if leases.acquire(stores[n], "sweep", f"r{n}", ttl_s=60, now=1000):
            won.append(f"r{n}")

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert len(won) == 1


def test_one_create_user_token_sent_to_two_replicas_at_once_creates_it_once(store: SharedStore) -> None:
    """botocore's retry of a CreateUser can reach another replica while the first is still working
    on it: both succeed, one user is made, and one of them is audited as the replay."""
    actor = Actor("AKIDTEST", "admin")
    with _service(store, "a") as a, _service(store, "b") as b:
        a.create_collection("c")
        outcomes: list[str] = []
        start = threading.Barrier(2)

        def create(service: FaceService) -> None:
            start.wait()
            try:
                service.create_user("c", "ann", client_token="retry-me", actor=actor)
                outcomes.append("ok")
            except Exception as error:  # the test reports what either raised
                outcomes.append(repr(error))

        threads = [threading.Thread(target=create, args=(s,)) for s in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert outcomes == ["ok", "ok"]
        assert [u.user_id for u in b.list_users("c").users] == ["ann"]
        entries = [e.data for e in a.get_audit_log(limit=None).entries if e.data["operation"] == "CreateUser"]
        assert sorted(bool(e.get("replayed")) for e in entries) == [False, True]


def _video_root(tmp_path: Path) -> Path:
    root = tmp_path / "videos"
    (root / "lobby").mkdir(parents=True)
    write_clip(root / "lobby" / "a.mp4", story_scene(), crf=1)
    return root


def test_one_client_token_started_on_two_replicas_at_once_makes_one_job(store: SharedStore, tmp_path: Path) -> None:
    root = _video_root(tmp_path)
    actor = Actor("AKIDTEST", "admin")
    request = VideoJobRequest("FaceDetection", "lobby", "a.mp4", client_token="once")
    with _service(store, "a", video_root=root) as a, _service(store, "b", video_root=root) as b:
        managers = [VideoJobs(a, worker=False), VideoJobs(b, worker=False)]
        ids: list[str] = []
        start = threading.Barrier(2)

        def begin(jobs: VideoJobs) -> None:
            start.wait()
            ids.append(jobs.start(request, actor))

        threads = [threading.Thread(target=begin, args=(m,)) for m in managers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(ids) == 2 and ids[0] == ids[1]


def test_a_job_whose_replica_died_is_taken_over_by_another(store: SharedStore, tmp_path: Path) -> None:
    root = _video_root(tmp_path)
    actor = Actor("AKIDTEST", "admin")
    with _service(store, "a", video_root=root) as a:
        job = VideoJobs(a, worker=False).start(VideoJobRequest("FaceDetection", "lobby", "a.mp4"), actor)
        # a took the job and then died: its lease stays, unrenewed, until it expires
        assert leases.acquire(a.store, f"video-job:{job}", a.holder, ttl_s=1, now=a.clock() - 2)
    with _service(store, "b", video_root=root, lease_seconds=5) as b:
        jobs = VideoJobs(b)
        assert job in jobs.adopt() or job in jobs.resume()
        done = jobs.wait(job, actor=actor)
        assert done.status == "SUCCEEDED" and len(done.faces) > 0


def test_a_job_whose_lease_ends_more_than_furthest_s_ahead_is_taken_over(store: SharedStore, tmp_path: Path) -> None:
    root = _video_root(tmp_path)
    actor = Actor("AKIDTEST", "admin")
    with _service(store, "a", video_root=root) as a:
        job = VideoJobs(a, worker=False).start(VideoJobRequest("FaceDetection", "lobby", "a.mp4"), actor)
        # a's clock ran ten days ahead when it took the job, and then a died
        assert leases.acquire(a.store, f"video-job:{job}", a.holder, ttl_s=30, now=a.clock() + 10 * 86400)
    with _service(store, "b", video_root=root, lease_seconds=5) as b:
        jobs = VideoJobs(b, worker=False)
        assert jobs.adopt() == [job]


def test_a_replica_id_that_cannot_name_a_folder_is_refused_naming_the_setting(store: SharedStore) -> None:
    with pytest.raises(ConfigurationError) as refused:
        Settings(replica_id="../other")
    assert str(refused.value) == (
        "Setting replica_id='../other' is invalid: must be empty, or 1–64 of A–Z a–z 0–9 . _ - starting with a "
        "letter or digit"
    )
    with pytest.raises(ConfigurationError):
        FaceService(store.data_dir("a"), fake_engine(), replica_id="a/b")


def test_only_the_sweep_lease_holder_sweeps_once_per_interval_and_another_takes_over(store: SharedStore) -> None:
    now = [1000.0]
    actor = Actor("retention-sweeper", "admin")
    with _service(store, "a") as a, _service(store, "b") as b:
        sweepers = [
            LeasedSweeper(s, actor, interval_s=60, lease_s=30, holder=s.holder, clock=lambda: now[0]) for s in (a, b)
        ]
        ran: list[str] = []
        for _ in range(13):  # two minutes in ticks of 10 s
            for name, sweeper in zip("ab", sweepers):
                if sweeper.tick() is not None:
                    ran.append(name)
            now[0] += 10
        assert ran == ["a", "a"]  # a asked first and holds the lease; b never sweeps beside it

        now[0] += 31  # a dies (stops ticking): its lease expires
        for _ in range(7):
            if sweepers[1].tick() is not None:
                ran.append("b")
            now[0] += 10
        assert ran == ["a", "a", "b"]  # b took over and sweeps an interval after taking it


def test_a_clock_set_back_does_not_stall_the_sweep(store: SharedStore) -> None:
    now = [1000.0]
    with _service(store, "a") as a:
        sweeper = LeasedSweeper(
            a, Actor("retention-sweeper", "admin"), interval_s=60, lease_s=30, holder=a.holder, clock=lambda: now[0]
        )
        sweeper.tick()  # takes the lease
        now[0] += 30
        now[0] -= 3600  # the clock is set back an hour
        swept = 0
        for _ in range(12):  # two minutes of ticks: a sweep within two intervals, not an hour later
            swept += sweeper.tick() is not None
            now[0] += 10
        assert swept >= 1


def test_only_the_statistics_lease_holder_computes_them_a_bounded_batch_a_tick_and_another_takes_over(
    store: SharedStore,
) -> None:
    now = [1000.0]
    with _service(store, "a") as a, _service(store, "b") as b:
        _two_faces(a)
        a.index_faces("c", face_png((40, 150, 80, 2)))
        keepers = [LeasedTailKeeper(s.ctx, lease_s=30, holder=s.holder, budget=1, clock=lambda: now[0]) for s in (a, b)]
        assert keepers[0].tick() == [TailCatchUp("c", 1, 2)]
        assert keepers[1].tick() is None  # a holds the lease: b computes nothing
        assert keepers[0].tick() == [TailCatchUp("c", 1, 1)]
        assert leases.holder(a.store, TAIL_LEASE) is not None

        now[0] += 31  # a dies (stops ticking): its lease expires and b takes over
        assert keepers[1].tick() == [TailCatchUp("c", 1, 0)]
        assert keepers[1].tick() == []  # nothing left to compute
        assert keepers[0].tick() is None
        keepers[1].stop()
        assert keepers[0].tick() == []  # b gave the lease up: a takes it at once


def test_after_a_tick_that_caught_everything_up_new_faces_and_deletions_are_still_computed(store: SharedStore) -> None:
    with _service(store, "a") as a:
        first, _ = _two_faces(a)
        keeper = LeasedTailKeeper(a.ctx, lease_s=30, holder=a.holder)
        assert keeper.tick() == [TailCatchUp("c", 2, 0)]
        assert keeper.tick() == []  # nothing added or deleted since
        a.index_faces("c", face_png((40, 150, 80, 2)))
        assert keeper.tick() == [TailCatchUp("c", 1, 0)]  # the new face, in spite of the quiet tick before
        a.delete_faces("c", [first])
        assert keeper.tick() == [TailCatchUp("c", 2, 0)]  # the survivors, whose top K held the deleted face
        assert keeper.tick() == []


def test_the_statistics_keeper_does_nothing_unless_the_mode_is_background(store: SharedStore) -> None:
    with _service(store, "a", face_tail_stats="deferred") as a:
        _two_faces(a)
        keeper = LeasedTailKeeper(a.ctx, lease_s=30, holder=a.holder)
        assert keeper.tick() is None
        assert leases.holder(a.store, TAIL_LEASE) is None
