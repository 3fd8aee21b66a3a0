"""The embedded backend: objects are files under one directory.

Writes go to a temporary file first and are then renamed (or hard-linked, for
create-if-absent) into place, so a reader never sees half an object and a crash leaves only
a temporary file that the next start sweeps away.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Iterator

from lakehouse.errors import Conflict, NotFound, Unavailable
from lakehouse.storage import CHUNK, ObjectInfo, ObjectStore, validate_key

TMP_DIR = ".tmp"


class LocalStore(ObjectStore):
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.uri = f"file://{self.root}"
        self._tmp = self.root / TMP_DIR
        try:
            self._tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Unavailable(f"storage directory {self.root} is not writable: {exc.strerror}") from None
        for stale in self._tmp.iterdir():
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def _info(self, key: str, path: Path) -> ObjectInfo:
        st = path.stat()
        return ObjectInfo(key, st.st_size, f"{st.st_mtime_ns:x}-{st.st_size:x}", datetime.fromtimestamp(st.st_mtime, timezone.utc))

    def _spool(self, source: BinaryIO, length: int) -> Path:
        fd, name = tempfile.mkstemp(dir=self._tmp)
        try:
            with os.fdopen(fd, "wb") as out:
                if length < 0:
                    shutil.copyfileobj(source, out, CHUNK)
                else:
                    remaining = length
                    while remaining > 0:
                        chunk = source.read(min(CHUNK, remaining))
                        if not chunk:
                            break
                        out.write(chunk)
                        remaining -= len(chunk)
        except BaseException:
            os.unlink(name)
            raise
        return Path(name)

    def put(self, key: str, source: BinaryIO, length: int = -1) -> ObjectInfo:
        path = self._path(key)
        tmp = self._spool(source, length)
        try:
            self._publish(key, tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return self._info(key, path)

    def put_file(self, key: str, path: str) -> ObjectInfo:
        # A hard link publishes a spooled Parquet file without copying its bytes.
        dest = self._path(key)
        tmp = Path(tempfile.mktemp(dir=self._tmp))
        try:
            try:
                os.link(path, tmp)
            except OSError:
                shutil.copyfile(path, tmp)
            self._publish(key, tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return self._info(key, dest)

    def _publish(self, key: str, tmp: Path, path: Path) -> None:
        """Rename a finished temporary file into place. A directory holds a key's bytes here, so
        `a` and `a/b` cannot both exist (S3 allows it): that clash is a `Conflict`."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, path)
        except (IsADirectoryError, NotADirectoryError, FileExistsError):
            raise Conflict(f"object {key} clashes with another key: on this backend a key cannot also be the prefix of other keys") from None

    def put_if_absent(self, key: str, data: bytes) -> ObjectInfo:
        path = self._path(key)
        tmp = self._spool(io.BytesIO(data), len(data))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.link(tmp, path)
        except FileExistsError:
            raise Conflict(f"object {key} already exists") from None
        except (IsADirectoryError, NotADirectoryError):
            raise Conflict(f"object {key} clashes with another key: on this backend a key cannot also be the prefix of other keys") from None
        finally:
            tmp.unlink(missing_ok=True)
        return self._info(key, path)

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"object {key} not found") from None

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        with self.open(key) as fh:
            fh.seek(offset)
            return fh.read(max(0, length))

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            if not path.is_file():
                raise NotFound(f"object {key} not found")
        except NotADirectoryError:
            raise NotFound(f"object {key} not found") from None
        return self._info(key, path)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        found: list[tuple[str, Path]] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel_dir = os.path.relpath(dirpath, self.root)
            if rel_dir == TMP_DIR:
                dirnames[:] = []
                continue
            for name in filenames:
                key = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
                if key.startswith(prefix):
                    found.append((key, Path(dirpath) / name))
        for key, path in sorted(found):
            try:
                yield self._info(key, path)
            except FileNotFoundError:
                continue

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except (IsADirectoryError, NotADirectoryError):  # no object of that key
            pass

    def local_path(self, key: str) -> str | None:
        return str(self._path(key))
