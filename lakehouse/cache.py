"""The local cache of data objects: bounded, least recently used first out, never in a query's way.

Data objects are immutable (a key is never rewritten), so a cached copy never goes stale and
needs no validation. With the local backend the store's own files are read in place and
nothing is cached. With S3, DuckDB reads objects through `ObjectFiles` (`lake://<key>`):

* an object in the cache is read from its local file;
* any other is read by byte ranges (Parquet's footer, then the column chunks a query needs),
  so a query touching a few columns or row groups of a large object reads only those;
* an object missed twice is copied whole into the cache in the background, and the least
  recently used copies are deleted to keep the cache within `storage.cache_max_bytes`.

Evicting an object never breaks a query reading it: a reader holds the file open, and an
unlinked file stays readable until it is closed. docs/query.md gives the measurements that
chose this over prefetching whole objects.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import tempfile
import threading
from collections import OrderedDict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import fsspec

from lakehouse import metrics
from lakehouse.errors import LakehouseError, NotFound
from lakehouse.formats.compression import ReadOnlyStream
from lakehouse.storage import CHUNK, ObjectStore, validate_key

log = logging.getLogger(__name__)

SCHEME = "lake://"
"""How DuckDB's views name an object read through `ObjectFiles`."""
MIN_RANGE = 256 * 1024
"""A smaller read fetches this much around it: Parquet readers ask for the footer's length,
then the footer, then small pages; one round trip serves them all."""
SEEN_LIMIT = 100_000
_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


class ObjectCache:
    def __init__(self, store: ObjectStore, cache_dir: str | Path, max_bytes: int) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self.root = Path(cache_dir).resolve() / "objects"
        self.spool_dir = Path(cache_dir).resolve() / "spool"
        self.root.mkdir(parents=True, exist_ok=True)
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.spool_dir.iterdir():
            stale.unlink(missing_ok=True)
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._entries: OrderedDict[str, int] = OrderedDict()  # key -> bytes, least recently used first
        self._total = 0
        self._reserved = 0  # bytes of copies being downloaded
        self._sizes: dict[str, int] = {}  # object sizes the manifests told (no HEAD to learn them)
        self._seen: OrderedDict[str, None] = OrderedDict()  # keys missed once
        self._fills: queue.Queue[str] = queue.Queue()
        self._filler: threading.Thread | None = None
        found = sorted((p for p in self.root.rglob("*") if p.is_file()), key=lambda p: p.stat().st_mtime)
        for path in found:
            size = path.stat().st_size
            self._entries[path.relative_to(self.root).as_posix()] = size
            self._total += size
        with self._guard:
            self._evict_over(self.max_bytes)

    # -- what readers use -------------------------------------------------------------------

    def reference(self, key: str, size: int) -> str:
        """The name a DuckDB view reads object `key` by: the store's own file when it has one,
        else `lake://<key>`, served by `ObjectFiles`."""
        direct = self.store.local_path(key)
        if direct is not None:
            return direct
        self._sizes[key] = size
        return SCHEME + key

    def open(self, key: str) -> "ObjectFile":
        """A positional reader of the object: its local copy if cached, else byte ranges from
        the store. Raises `NotFound` for an object that no longer exists."""
        direct = self.store.local_path(key)
        if direct is not None:
            return LocalFile(_open_or_not_found(key, direct))
        target = self.root / validate_key(key)
        with self._guard:
            cached = key in self._entries
            if cached:
                self._entries.move_to_end(key)
        if cached:
            try:
                handle = LocalFile(os.open(target, os.O_RDONLY))
                metrics.cache_hit()
                return handle
            except FileNotFoundError:
                self._forget(key)
        size = self.size_of(key)
        self._missed(key, size)
        return RemoteFile(self.store, key, size)

    def size_of(self, key: str) -> int:
        """The object's size: as its manifest told, else from the store. Raises `NotFound`."""
        size = self._sizes.get(key)
        if size is None:
            size = self._sizes[key] = self.store.stat(key).size
        return size

    def exists(self, key: str) -> bool:
        """Whether the object can still be read (cached, or in the store)."""
        with self._guard:
            if key in self._entries:
                return True
        try:
            self.store.stat(key)
            return True
        except NotFound:
            return False

    def path(self, key: str) -> str:
        """A local file with the object's bytes, copied whole into the cache first if needed
        (for readers that want a file; queries read through `open`)."""
        direct = self.store.local_path(key)
        if direct is not None:
            return direct
        self._fill(key)
        return str(self.root / key)

    def spool_file(self) -> Path:
        """A fresh temporary file path for an object being written."""
        fd, name = tempfile.mkstemp(dir=self.spool_dir, suffix=".parquet")
        os.close(fd)
        return Path(name)

    # -- filling and evicting ----------------------------------------------------------------

    def adopt(self, key: str, spooled: Path) -> None:
        """Take a just-uploaded spool file as the cached copy of `key` (the ingest that wrote
        it is likely followed by queries of it), within the bound."""
        size = spooled.stat().st_size
        if self.store.local_path(key) is not None or size > self.max_bytes:
            spooled.unlink(missing_ok=True)
            return
        self._admit(key, spooled, size)

    def evict(self, key: str) -> None:
        self._forget(key)

    def sweep(self, keep: set[str]) -> int:
        """Delete every cached copy whose key is not in `keep` (the objects the catalog still
        references), so data dropped or collected while this server was down cannot be read
        from here; returns how many were deleted."""
        with self._guard:
            doomed = [k for k in self._entries if k not in keep]
        for key in doomed:
            self._forget(key)
        return len(doomed)

    @property
    def cached_bytes(self) -> int:
        return self._total

    def _missed(self, key: str, size: int) -> None:
        """Copy an object whole once it was missed twice (one scan does not flush the cache),
        if it can fit at all."""
        if size > self.max_bytes // 2:
            return
        with self._guard:
            if key not in self._seen:
                self._seen[key] = None
                if len(self._seen) > SEEN_LIMIT:
                    self._seen.popitem(last=False)
                return
            del self._seen[key]
            if self._filler is None or not self._filler.is_alive():
                self._filler = threading.Thread(target=self._fill_forever, name="cache-fill", daemon=True)
                self._filler.start()
        self._fills.put(key)

    def _fill_forever(self) -> None:
        while True:
            key = self._fills.get()
            try:
                self._fill(key)
            except LakehouseError:
                pass  # gone or unreachable: the next miss tries again
            except Exception:  # a filler must outlive any one object
                log.exception("cannot cache object %s", key)
            finally:
                self._fills.task_done()

    def settle(self) -> None:
        """Wait for the background copies asked for so far (benchmarks and tests)."""
        self._fills.join()

    def _fill(self, key: str) -> None:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        try:
            with lock:
                with self._guard:
                    if key in self._entries and (self.root / key).exists():
                        self._entries.move_to_end(key)
                        return
                expected = self.size_of(key)
                # Room is made before the download: the copy in flight counts against the bound.
                with self._guard:
                    self._evict_over(self.max_bytes - expected - self._reserved)
                    self._reserved += expected
                tmp = self.spool_file()
                try:
                    with self.store.open(key) as src, tmp.open("wb") as out:
                        shutil.copyfileobj(src, out, CHUNK)
                    size = tmp.stat().st_size
                    metrics.cache_miss(size)
                    self._admit(key, tmp, size, expected)
                    expected = 0
                finally:
                    tmp.unlink(missing_ok=True)
                    with self._guard:
                        self._reserved -= expected
        finally:
            with self._guard:
                self._locks.pop(key, None)

    def _admit(self, key: str, source: Path, size: int, reserved: int = 0) -> None:
        """Move `source` in as the copy of `key`, the room `reserved` for it becoming its own."""
        target = self.root / validate_key(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with self._guard:
            self._reserved -= reserved
            # Make room first, so the directory never holds more than the bound.
            self._evict_over(self.max_bytes - size - self._reserved, keep=key)
            os.replace(source, target)
            previous = self._entries.pop(key, 0)
            self._entries[key] = size
            self._total += size - previous
            metrics.cache_size(self._total)

    def _evict_over(self, limit: int, keep: str | None = None) -> None:
        """Delete least recently used copies until at most `limit` bytes remain (guard held)."""
        evicted = 0
        for key in list(self._entries):
            if self._total <= limit:
                break
            if key == keep:
                continue
            (self.root / key).unlink(missing_ok=True)
            self._total -= self._entries.pop(key)
            evicted += 1
        if evicted:
            metrics.cache_evicted(evicted, self._total)

    def _forget(self, key: str) -> None:
        with self._guard:
            size = self._entries.pop(key, None)
            if size is not None:
                self._total -= size
                metrics.cache_size(self._total)
        (self.root / validate_key(key)).unlink(missing_ok=True)


def _open_or_not_found(key: str, path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise NotFound(f"object {key} not found") from None


class ObjectFile(ReadOnlyStream):
    """A read-only file of one object, safe to share between threads: DuckDB reads a file from
    several threads, each seeking and then reading, so the position is kept per thread."""

    size: int

    def __init__(self) -> None:
        self._where = threading.local()

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.tell(), 2: self.size}[whence]
        self._where.position = base + offset
        return self._where.position

    def tell(self) -> int:
        return getattr(self._where, "position", 0)

    def read(self, size: int = -1) -> bytes:
        start = self.tell()
        length = self.size - start if size is None or size < 0 else min(size, self.size - start)
        data = self.pread(start, length) if length > 0 else b""
        self._where.position = start + len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def pread(self, offset: int, length: int) -> bytes:
        raise NotImplementedError

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def __enter__(self) -> "ObjectFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalFile(ObjectFile):
    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd
        self.size = os.fstat(fd).st_size

    def pread(self, offset: int, length: int) -> bytes:
        return os.pread(self._fd, length, offset)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


class RemoteFile(ObjectFile):
    """Byte ranges of an object in the store; small reads fetch `MIN_RANGE` around them."""

    def __init__(self, store: ObjectStore, key: str, size: int) -> None:
        super().__init__()
        self._store = store
        self._key = key
        self.size = size
        self._lock = threading.Lock()
        self._window: tuple[int, bytes] = (0, b"")

    def pread(self, offset: int, length: int) -> bytes:
        with self._lock:
            start, data = self._window
        if start <= offset and offset + length <= start + len(data):
            return data[offset - start : offset - start + length]
        if length >= MIN_RANGE:
            return self._store.read_range(self._key, offset, length)
        # Near the end, take the tail: a Parquet footer is read backwards from there.
        begin = max(0, min(offset, self.size - MIN_RANGE))
        data = self._store.read_range(self._key, begin, max(MIN_RANGE, offset + length - begin))
        with self._lock:
            self._window = (begin, data)
        return data[offset - begin : offset - begin + length]


class ObjectFiles(fsspec.AbstractFileSystem):
    """`lake://<key>` for DuckDB: objects read through the cache (registered on the query
    engine's database, and the only path outside the cache directories it may read)."""

    protocol = "lake"
    cachable = False

    def __init__(self, cache: ObjectCache) -> None:
        super().__init__()
        self.cache = cache

    @staticmethod
    def _key(path: str) -> str:
        return path[len(SCHEME) :] if path.startswith(SCHEME) else path

    def open(self, path: str, mode: str = "rb", **kwargs: Any) -> ObjectFile:  # type: ignore[override]
        if "r" not in mode or "+" in mode:
            raise PermissionError("lake objects are read-only")
        return self.cache.open(self._key(path))

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        return {"name": path, "size": self.cache.size_of(self._key(path)), "type": "file"}

    def modified(self, path: str) -> datetime:
        return _EPOCH  # objects never change, so DuckDB's cached footers stay valid

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        return [self.info(path)] if detail else [path]

    def glob(self, path: str, **kwargs: Any) -> list[str]:  # type: ignore[override]
        return [path]

    def exists(self, path: str, **kwargs: Any) -> bool:
        return self.cache.exists(self._key(path))
