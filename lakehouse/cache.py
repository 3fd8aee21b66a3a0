"""A local read-through cache of data objects, so DuckDB always reads local files.

Data objects are immutable (a key is never rewritten), so a cached copy never goes stale and
needs no validation. With the local backend the store's own files are used directly. With S3
an object is downloaded once, on first use, or adopted from the ingest that just wrote it.
This keeps the query path free of DuckDB's network extensions, which would have to be
downloaded at run time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

from lakehouse import metrics
from lakehouse.storage import CHUNK, ObjectStore, validate_key


class ObjectCache:
    def __init__(self, store: ObjectStore, cache_dir: str | Path) -> None:
        self.store = store
        self.root = Path(cache_dir).resolve() / "objects"
        self.spool_dir = Path(cache_dir).resolve() / "spool"
        self.root.mkdir(parents=True, exist_ok=True)
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.spool_dir.iterdir():
            stale.unlink(missing_ok=True)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def spool_file(self) -> Path:
        """A fresh temporary file path for an object being written."""
        fd, name = tempfile.mkstemp(dir=self.spool_dir, suffix=".parquet")
        os.close(fd)
        return Path(name)

    def path(self, key: str) -> str:
        """A local path holding the object's bytes, downloading it first if needed."""
        direct = self.store.local_path(key)
        if direct is not None:
            return direct
        target = self.root / validate_key(key)
        if target.exists():
            metrics.cache_hit()
            return str(target)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.spool_file()
                try:
                    with self.store.open(key) as src, tmp.open("wb") as out:
                        shutil.copyfileobj(src, out, CHUNK)
                    os.replace(tmp, target)
                    metrics.cache_miss(target.stat().st_size)
                finally:
                    tmp.unlink(missing_ok=True)
        with self._guard:
            self._locks.pop(key, None)
        return str(target)

    def adopt(self, key: str, spooled: Path) -> str:
        """Take a just-uploaded spool file as the cached copy of `key`; returns the readable path."""
        if self.store.local_path(key) is not None:
            spooled.unlink(missing_ok=True)
            return self.path(key)
        target = self.root / validate_key(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(spooled, target)
        return str(target)

    def evict(self, key: str) -> None:
        (self.root / validate_key(key)).unlink(missing_ok=True)

    def sweep(self, keep: set[str]) -> int:
        """Delete every cached copy whose key is not in `keep` (the objects the catalog still
        references), so data dropped or collected while this server was down cannot be read
        from here; returns how many were deleted."""
        removed = 0
        for path in [p for p in self.root.rglob("*") if p.is_file()]:
            if path.relative_to(self.root).as_posix() not in keep:
                path.unlink(missing_ok=True)
                removed += 1
        return removed
