"""`LocalStorage`: objects as files under a folder (the embedded default)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from core.storage.base import (
    TEMP_SUFFIX,
    ObjectNotFound,
    StorageError,
    StorageUnavailable,
    require_prefix_for_delete,
    validate_key,
    validate_prefix,
)


class LocalStorage:
    """Objects as files under `root`; the folder is created on first write (or `check`).

    Writes go to a temporary file in the target's folder, are fsynced, then renamed
    over the target with `os.replace`, so readers and crashes see either the old
    object or the new one, never half of one. Folders left empty by a delete are
    removed, so an erased player's id does not linger as a folder name.
    A key cannot be both an object and a "folder" of other keys here (`a` and
    `a/b`); S3 allows it. Writing such a key raises `StorageError`.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()

    def __repr__(self) -> str:
        return f"LocalStorage({self.describe()!r})"

    def describe(self) -> str:
        return self.root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self._path(key)
        # A concurrent delete may prune the folder between mkdir and mkstemp: retry.
        for attempt in range(5):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._write_atomically(path, data)
                return
            except FileNotFoundError:
                if attempt == 4:
                    raise StorageUnavailable(f"cannot write {key} under {self.root}") from None
            except (NotADirectoryError, FileExistsError, IsADirectoryError) as exc:
                if not self.root.is_dir():
                    raise StorageUnavailable(f"{self.describe()} is not a folder: {exc}") from exc
                raise StorageError(
                    f"cannot write {key}: it clashes with another key ({exc})"
                ) from exc
            except OSError as exc:
                raise StorageUnavailable(f"cannot write {key} under {self.root}: {exc}") from exc

    @staticmethod
    def _write_atomically(path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        # Make the rename itself durable.
        with contextlib.suppress(OSError):
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        except OSError as exc:
            raise StorageUnavailable(f"cannot read {key} under {self.root}: {exc}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        if self._unlink(path):
            self._prune(path.parent)

    def delete_prefix(self, prefix: str) -> int:
        require_prefix_for_delete(prefix)
        count = 0
        folders: set[Path] = set()
        for key in self.list(prefix):
            path = self.root.joinpath(*key.split("/"))
            if self._unlink(path):
                count += 1
                folders.add(path.parent)
        # Deepest first, so a parent is tried after its children were removed.
        for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            self._prune(folder)
        return count

    def list(self, prefix: str = "") -> Iterator[str]:
        validate_prefix(prefix)
        folder, _, _ = prefix.rpartition("/")
        start = self.root.joinpath(*folder.split("/")) if folder else self.root
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames.sort()
            rel = Path(dirpath).relative_to(self.root).as_posix()
            base = "" if rel == "." else rel + "/"
            for name in filenames:
                if name.endswith(TEMP_SUFFIX):
                    continue  # a write in progress, or left by a crash
                key = base + name
                if key.startswith(prefix):
                    keys.append(key)
        keys.sort()
        return iter(keys)

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=self.root, prefix=".check.", suffix=TEMP_SUFFIX)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise StorageUnavailable(f"{self.describe()} is not a writable folder: {exc}") from exc

    def _unlink(self, path: Path) -> bool:
        try:
            path.unlink()
            return True
        except (FileNotFoundError, NotADirectoryError):
            return False
        except IsADirectoryError:
            return False  # a "folder" of other keys, not an object
        except OSError as exc:
            raise StorageUnavailable(f"cannot delete {path}: {exc}") from exc

    def _prune(self, folder: Path) -> None:
        """Remove `folder` and its parents while they are empty, stopping at the root."""
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return  # not empty (or already gone / busy): leave it
            folder = folder.parent
