"""The derived vector index of each collection, kept in step with the database.

The database's ``changes`` log numbers every face addition and deletion. An index remembers
the last change it applied; before each search it applies any newer ones (made by this
process or another), so it never disagrees with the database. Snapshots are saved beside
the database with that number; on open a snapshot is loaded and caught up, and if it is
missing, stale beyond the log, or unreadable, the index is rebuilt from the database. The log
is pruned (store/changelog.py): an index, or a snapshot, at a number before the pruned part
(closed longer than ``change_log_days``) may have missed changes there, and is rebuilt from the
database instead of caught up. A bulk write (``index_prepared_batch``) adds its committed batch
from the vectors in hand (``add_committed``) when the index is exactly at the batch's first
change, so the first search after an import of millions reads and decrypts nothing; otherwise it
catches up from the log.

With template encryption on, snapshots are never written (they would hold the vectors in the
clear): the index lives in memory only and is rebuilt from the encrypted database on open.
After an erasure the snapshot files are removed, and a pq or HNSW index (whose deletions only
mark vectors) is rebuilt, so no copy of an erased template survives in an index or in memory.
That happens wherever a deletion is applied: in the process that erased, and in every other
replica when it catches up with the deletion (at its next search, or its periodic ``refresh``).
Snapshot files that cannot be removed (a read-only folder) are logged and never fail the erasure
that committed; their removal is retried by every ``refresh`` and before any snapshot is saved.

Snapshots live in this replica's own folder (service/replica.py); only the process holding the
folder's lock (``owner``) writes or removes files there. Another process over the same folder
keeps its indexes in memory, rebuilt from the database.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING

from facetrust.files import atomic_write_text
from facetrust.service.replica import FolderLock, replica_folders
from facetrust.store.private import private_dir, tighten
from facetrust.store.sqlite import CollectionRow, vector_from_blob
from facetrust.store.trouble import log_failure

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from facetrust.index.base import SearchHits, VectorIndex
    from facetrust.store.protocol import FaceStore

__all__ = ["CollectionIndex", "IndexRegistry"]

log = logging.getLogger(__name__)

SAVE_EVERY = 10_000  # changes applied since the last snapshot before saving another
CATCH_UP_BLOCK = 50_000  # changes (and their templates) read and applied at a time
_BY_SIZE = ("exact", "pq")  # the backends auto picks, for growing collection sizes


class CollectionIndex:
    """One collection's vector index plus the change number it reflects. Thread-safe."""

    def __init__(
        self,
        store: FaceStore,
        collection: CollectionRow,
        dim: int,
        backend: str,
        folder: Path,
        *,
        persist: bool = True,
        owner: bool = True,
    ) -> None:
        self.store = store
        self.persist = persist and owner  # snapshots are read and written by the folder's owner only
        self.owner = owner
        self.collection = collection
        self.dim = dim
        self.backend = backend
        self.folder = folder
        self._lock = threading.RLock()
        self._applied = 0
        self._saved = 0
        self._index: VectorIndex | None = None
        self.undropped = False  # snapshot files that may hold an erased template could not be removed

    @property
    def loaded(self) -> bool:
        """Whether the index is in memory (then its catch-up keeps its snapshot free of erased templates)."""
        return self._index is not None

    @property
    def applied(self) -> int:
        """The number of the last change of the collection this index reflects (0: none yet)."""
        return self._applied

    @property
    def _path(self) -> Path:
        return self.folder / f"collection-{self.collection.id}.index"

    @property
    def _meta_path(self) -> Path:
        return self.folder / f"collection-{self.collection.id}.json"

    def _vectors(self, pairs: list[tuple[int, bytes]]) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        keys = np.array([k for k, _ in pairs], dtype=np.int64)
        raw = b"".join(b for _, b in pairs)
        if len(raw) != 4 * self.dim * len(pairs):
            for _, blob in pairs:
                vector_from_blob(blob, self.dim)  # names the stored embedding of the wrong size
        return keys, np.frombuffer(raw, dtype=np.float32).reshape(len(pairs), self.dim)

    def _rebuild(self) -> None:
        from facetrust.index import create_index

        with self.store.snapshot() as conn:
            last = self.store.last_change(self.collection.id, conn)
            count = self.store.counts(self.collection.id, conn)[0]
            index = create_index(self.backend, self.dim, expected_size=count)
            batch: list[tuple[int, bytes]] = []
            for pair in self.store.embeddings(self.collection.id, conn=conn):
                batch.append(pair)
                if len(batch) >= 50_000:
                    index.add(*self._vectors(batch))
                    batch = []
            if batch:
                index.add(*self._vectors(batch))
        self._index, self._applied = index, last
        log.info("rebuilt index of collection %r: %d faces", self.collection.name, len(index))

    def _load_snapshot(self) -> bool:
        from facetrust.index import load_index

        if not self.persist:
            if self.owner:
                self.drop_files()  # e.g. written before encryption was switched on
            return False
        try:
            meta = json.loads(self._meta_path.read_text())
            if meta.get("collection") != self.collection.id or meta.get("created_at") != self.collection.created_at:
                return False
            last = self.store.last_change(self.collection.id)
            if int(meta["seq"]) > last:
                # newer than the database: one restored from an older copy (the snapshot may hold faces
                # it lacks, under ids it will hand out again): rebuilt from the database, overwritten
                log.warning(
                    "index snapshot of %r is ahead of the database (change %s, the database's last %d); rebuilding",
                    self.collection.name,
                    meta["seq"],
                    last,
                )
                if self.owner:
                    self.drop_files()
                return False
            if not self.store.change_log_reaches(self.collection.id, int(meta["seq"])):
                # closed longer than the change log is kept: what changed since is no longer all in it
                log.info(
                    "index snapshot of %r is at change %s, before the change log's pruned part; rebuilding",
                    self.collection.name,
                    meta["seq"],
                )
                if self.owner:
                    self.drop_files()  # it may hold templates erased in the pruned part
                return False
            wanted = _BY_SIZE if self.backend == "auto" else (self.backend,)
            if meta.get("backend") not in wanted:  # written under another index_backend setting: rebuild as asked
                log.info(
                    "index snapshot of %r is %s, not %s; rebuilding",
                    self.collection.name,
                    meta.get("backend"),
                    self.backend,
                )
                return False
            index = load_index(self._path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.info("no usable index snapshot for %r (%s); rebuilding", self.collection.name, exc)
            return False
        except Exception as exc:  # a corrupt snapshot must never stop the service: rebuild
            log.warning("index snapshot of %r unreadable (%s); rebuilding", self.collection.name, exc)
            return False
        self._index, self._applied = index, int(meta["seq"])
        self._saved = self._applied
        return True

    def ensure(self) -> VectorIndex:
        """The index, loaded or rebuilt, and caught up with the database."""
        with self._lock:
            if self._index is None and not self._load_snapshot():
                self._rebuild()
            self._catch_up()
            if self._index is None:  # a deletion dropped a pq or HNSW index: rebuild it from the database
                self._rebuild()
            assert self._index is not None
            return self._index

    def _catch_up(self) -> None:
        assert self._index is not None
        changes = self.store.changes_since(self.collection.id, self._applied)
        if not changes:
            return
        deleted = any(op == "del" for _, _, op in changes)
        if not self.store.change_log_reaches(self.collection.id, self._applied):  # asked after reading them
            log.info(
                "index of %r is at change %d, before the change log's pruned part; rebuilding",
                self.collection.name,
                self._applied,
            )
            self._rebuild()  # the changes in the pruned part are lost to catch-up: the faces table has them
            self._drop_snapshot()  # the old snapshot may hold templates erased there
        elif self._outgrown(len(self._index) + sum(op == "add" for _, _, op in changes)):
            self._rebuild()  # a bulk import outgrew the backend: build the right one from the store at once
            if deleted:
                self._drop_snapshot()  # the old snapshot may hold the erased templates
        else:
            for start in range(0, len(changes), CATCH_UP_BLOCK):  # bounded memory after a bulk import
                self._apply(changes[start : start + CATCH_UP_BLOCK])
            self._applied = changes[-1][0]
            if deleted:  # by this process or another replica: no copy of the erased templates stays
                self._forget_erased()
                if self._index is None:
                    return
            if self._outgrown(len(self._index)):
                self._rebuild()  # shrinking is left to the next rebuild (no flapping)
        if self._applied - self._saved >= SAVE_EVERY:
            self.save()

    def _outgrown(self, size: int) -> bool:
        """Whether ``auto`` would pick a backend for larger collections than the current one's."""
        from facetrust.index import choose_backend

        assert self._index is not None
        if self.backend != "auto" or self._index.name not in _BY_SIZE:
            return False
        return _BY_SIZE.index(choose_backend(size)) > _BY_SIZE.index(self._index.name)

    def _apply(self, changes: list[tuple[int, int, str]]) -> None:
        """Apply a block of changes in order: each run of adds between two deletions goes in as one
        batch, and each run of deletions between two adds goes out as one (a face at a time, an
        erasure of 200,000 faces took 13 s in the pq index, which compacted again and again)."""
        import numpy as np

        assert self._index is not None
        live = {k for _, k, op in changes if op == "add"}
        found = dict(self.store.embeddings(self.collection.id, sorted(live))) if live else {}
        adds: list[tuple[int, bytes]] = []
        dels: list[int] = []
        for _, key, op in changes:
            if op == "add" and key in found:
                if dels:  # apply in order: the deletions before this add go first
                    self._index.remove(np.array(dels, dtype=np.int64))
                    dels = []
                adds.append((key, found[key]))
            elif op == "del":
                if adds:  # and the adds before this deletion
                    self._index.add(*self._vectors(adds))
                    adds = []
                dels.append(key)
        if adds:
            self._index.add(*self._vectors(adds))
        if dels:
            self._index.remove(np.array(dels, dtype=np.int64))

    def add_committed(self, before: int, after: int, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Bring the index up to change ``after`` right after a batch of additions committed (changes
        ``before``+1 … ``after`` of this collection, nothing else in between), from the vectors in
        hand: no template is read back or decrypted. An index that is not exactly at ``before``
        (unloaded, behind, or another writer's changes between) is caught up from the store instead,
        and one the batch outgrows is rebuilt. Never fails the write that committed: the index is
        derived, and the next search catches it up from the change log (after a crash too)."""
        try:
            with self._lock:
                if self._index is None or self._applied != before or self._outgrown(len(self._index) + len(keys)):
                    self.ensure()
                    return
                self._index.add(keys, vectors)
                self._applied = after
                if self._applied - self._saved >= SAVE_EVERY:
                    self.save()
        except Exception as exc:  # derived data: the committed write stands; the next search catches up
            message = "index of collection %r not kept in step; the next search catches up"
            log_failure(log, exc, message, self.collection.name)

    def search(self, queries: np.ndarray, k: int) -> tuple[SearchHits, int]:
        """Top-``k`` hits (``k`` cut to the number of faces, at least 1) and the number of faces searched."""
        with self._lock:
            index = self.ensure()
            return index.search(queries, max(1, min(k, len(index)))), len(index)

    def _drop_snapshot(self) -> None:
        """Remove this replica's snapshot files (owner or not: a process beside the folder's owner
        removes them too, never writes them); the next save writes anew. Files that cannot be
        removed are logged and left ``undropped``: ``refresh`` and ``save`` try again (the deletion
        that asked has committed, and the index in memory applies it all the same)."""
        self._saved = -1
        try:
            self.drop_files()
        except OSError as exc:
            log.log(
                logging.DEBUG if self.undropped else logging.ERROR,  # said once, not at every retry
                "cannot remove the index snapshot of collection %r from %s (%s); it may hold erased templates "
                "until its removal, which is retried",
                self.collection.name,
                self.folder,
                exc,
            )
            self.undropped = True
        else:
            self.undropped = False

    def _forget_erased(self) -> None:
        """After applying deletions: remove the snapshot files; forget a pq or HNSW index, which only
        marked the deleted vectors (the next search rebuilds it from the database)."""
        self._drop_snapshot()
        if self._index is not None and self._index.name != "exact":
            self._index = None

    def search_batch(self, queries: np.ndarray, k: int) -> tuple[SearchHits, int]:
        """``search`` for many queries at once (the index's ``search_batch``: memory bounded by a block)."""
        with self._lock:
            index = self.ensure()
            return index.search_batch(queries, max(1, min(k, len(index)))), len(index)

    def scrub(self) -> None:
        """After an erasure: apply it (``_forget_erased``) and remove this collection's snapshot files."""
        with self._lock:
            if self._index is not None:
                self._catch_up()
            self._drop_snapshot()

    def refresh(self) -> None:
        """Catch up with the database when loaded (a replica's periodic step), and try again to remove
        snapshot files an erasure could not."""
        with self._lock:
            if self.undropped:
                self._drop_snapshot()
            if self._index is not None:
                self._catch_up()

    def save(self) -> None:
        """Write the snapshot, caught up with the database first (a deletion another replica made is
        applied, and its template left out, before anything is written)."""
        with self._lock:
            if not self.persist or self._index is None:
                return
            try:
                self._catch_up()
                current = self.store.get_collection(self.collection.name)
            except Exception as exc:  # never write what may hold an erased template
                log_failure(log, exc, "index of %r not caught up; its snapshot is not saved", self.collection.name)
                return
            if current is None or (current.id, current.created_at) != (self.collection.id, self.collection.created_at):
                # deleted (its change log with it) by another process: forget it, write nothing
                self._index = None
                self.drop_files()
                return
            if self._index is None or self._applied == self._saved:
                return
            if self.undropped:  # never overwrite what may hold an erased template without removing it first
                self._drop_snapshot()
                if self.undropped:
                    return
            try:
                self._write()
            except OSError as exc:  # a full disk: derived data, so the write that asked for it stands
                log.error(
                    "index snapshot of collection %r not saved (%s); the next process that opens it rebuilds it "
                    "from the database",
                    self.collection.name,
                    exc,
                )
                self._drop_snapshot()  # never leave half a snapshot to be loaded with an older record of it
            self._saved = self._applied  # tried: the next try waits for SAVE_EVERY more changes

    def _write(self) -> None:
        assert self._index is not None
        private_dir(self.folder)
        self._index.save(self._path)
        meta = {
            "collection": self.collection.id,
            "created_at": self.collection.created_at,
            "seq": self._applied,
            "backend": self._index.name,
        }
        atomic_write_text(self._meta_path, json.dumps(meta))
        for written in self.folder.glob(f"collection-{self.collection.id}.*"):  # backends write with the umask
            tighten(written)

    def drop_files(self, folder: Path | None = None) -> None:
        """Remove this collection's snapshot files from ``folder`` (default: this index's own)."""
        folder = folder or self.folder
        for name in (self._path.name, self._meta_path.name):
            (folder / name).unlink(missing_ok=True)
        for extra in folder.glob(f"collection-{self.collection.id}.index*"):
            extra.unlink(missing_ok=True)


class IndexRegistry:
    """The ``CollectionIndex`` of every open collection, with snapshots in this replica's ``folder``.

    ``root``: the folder holding every replica's snapshot folder (service/replica.py); an erasure
    removes the erased collection's snapshots from all of them, not only from this replica's.
    ``dim``: the template length of every collection, or a function giving each collection's
    (collections of different embedding profiles hold templates of different lengths).
    """

    def __init__(
        self,
        store: FaceStore,
        dim: int | Callable[[CollectionRow], int],
        backend: str,
        folder: Path,
        *,
        keyring: object | None = None,
        root: Path | None = None,
    ) -> None:
        self.store, self.backend, self.folder = store, backend, folder
        self.dim_of: Callable[[CollectionRow], int] = dim if callable(dim) else (lambda _row: dim)
        self.root = root
        self.persist = keyring is None
        self._folder_lock = FolderLock(folder)
        self.owner = self._folder_lock.acquire()
        self._lock = threading.Lock()
        self._open: dict[int, CollectionIndex] = {}
        # (collection id, snapshot seq) → the change number up to which no deletion was found: each
        # periodic check reads only the changes made since the last one
        self._clean_to: dict[tuple[int, int], int] = {}
        if not self.persist and self.owner:  # templates are sealed: no snapshot in the clear may stay
            for path in folder.glob("collection-*"):
                path.unlink(missing_ok=True)
        elif self.owner:
            self._drop_orphans()

    def _index(self, collection: CollectionRow) -> CollectionIndex:
        return CollectionIndex(
            self.store,
            collection,
            self.dim_of(collection),
            self.backend,
            self.folder,
            persist=self.persist,
            owner=self.owner,
        )

    def get(self, collection: CollectionRow) -> CollectionIndex:
        with self._lock:
            found = self._open.get(collection.id)
            if found is None or found.collection.created_at != collection.created_at:
                found = self._open[collection.id] = self._index(collection)
            return found

    def drop(self, collection: CollectionRow) -> None:
        with self._lock:
            found = self._open.pop(collection.id, None)
        self._drop_everywhere(found or self._index(collection))

    def _drop_everywhere(self, index: CollectionIndex) -> None:
        """Remove the collection's snapshot files from every replica's folder, this one's included
        (a CLI erasure beside a running server removes the server's; only writing is the owner's)."""
        with index._lock:  # not while this process's own save is writing them
            index._drop_snapshot()
        for folder in replica_folders(self.root) if self.root is not None else []:
            if folder != self.folder:
                try:
                    index.drop_files(folder)
                except OSError as exc:  # that replica removes them when it catches up with the deletion
                    log.error("cannot remove the index snapshot of %r from %s: %s", index.collection.name, folder, exc)

    def scrub(self, collection: CollectionRow) -> None:
        index = self.get(collection)
        index.scrub()
        self._drop_everywhere(index)

    def refresh(self) -> None:
        """Forget the indexes of collections deleted (by any replica) and catch the others up: run
        periodically by a server, so an idle replica holds no erased template for long either."""
        alive = {row.id: row.created_at for row in self.store.list_collections(0, 1 << 30)}
        with self._lock:
            gone = [i for i in self._open.values() if alive.get(i.collection.id) != i.collection.created_at]
            for index in gone:
                del self._open[index.collection.id]
            opened = list(self._open.values())
        for index in gone:
            if self.owner:
                index._drop_snapshot()  # what it cannot remove, _drop_orphans tries again
        for index in opened:
            index.refresh()
        if self.owner:
            self._drop_orphans({i.collection.id for i in opened if i.loaded})

    def _drop_orphans(self, loaded: Collection[int] = ()) -> None:
        """Remove the snapshot files that may hold an erased template: those of collections that no
        longer exist (deleted while this replica was down or did not have them open), and those
        written before a deletion the database has made since. The indexes ``loaded`` here are kept
        up to date by their own catch-up instead."""
        rows = {row.id: row for row in self.store.list_collections(0, 1 << 30)}
        numbers: set[int] = set()
        for path in self.folder.glob("collection-*"):
            name = path.name.removeprefix("collection-").split(".", 1)[0]
            if name.isdigit():
                numbers.add(int(name))
        for number in sorted(numbers - set(loaded)):
            row = rows.get(number)
            if row is None or self._stale(row):
                try:
                    for path in self.folder.glob(f"collection-{number}.*"):
                        path.unlink(missing_ok=True)
                except OSError as exc:  # tried again at the next refresh
                    log.error("cannot remove the stale index snapshot of collection %d: %s", number, exc)

    def _stale(self, row: CollectionRow) -> bool:
        """Whether this folder's snapshot of ``row`` is of another collection of that id, unreadable,
        or older than a deletion in the database (it may hold the erased template)."""
        try:
            meta = json.loads((self.folder / f"collection-{row.id}.json").read_text())
            seq = int(meta["seq"])
        except (OSError, ValueError, KeyError, TypeError):
            return True
        if meta.get("created_at") != row.created_at:
            return True
        last = self.store.last_change(row.id)  # first: a deletion after it is found by the next check
        if seq > last:  # ahead of the database: one restored from an older copy
            return True
        clean = self._clean_to.get((row.id, seq), seq)
        if self.store.deleted_since(row.id, clean) or not self.store.change_log_reaches(row.id, clean):
            return True  # a deletion after it, or a pruned stretch of the log that may have held one
        self._clean_to[(row.id, seq)] = last
        return False

    def save_all(self) -> None:
        with self._lock:
            opened = list(self._open.values())
        for index in opened:
            index.save()

    def close(self) -> None:
        """Save every snapshot, then give the folder up to the next process. A snapshot that cannot be
        written (a full disk) is logged, not raised: it is derived, and the next process that opens
        the collection rebuilds it from the database."""
        try:
            with self._lock:
                opened = list(self._open.values())
            for index in opened:
                try:
                    index.save()
                except OSError as exc:
                    log.error(
                        "index snapshot of collection %r not saved (%s); the next start rebuilds it from the database",
                        index.collection.name,
                        exc,
                    )
        finally:
            self._folder_lock.release()
