"""Object storage: one interface, two implementations (CTFd's uploaders style).

- `LocalStorage` keeps objects as files under a folder (the embedded default).
- `S3Storage` talks to any S3-compatible server (MinIO, AWS, moto) through the
  `minio` SDK.

`open_storage(url)` picks one from `STORAGE_URL`:

    s3://KEY:SECRET@host:port/bucket[?secure=true&region=eu-west-1]
    file:///absolute/path

Both implementations honour the same contract (tests/unit/test_storage_local.py
holds it; tests/integration/test_storage_s3.py runs it against S3):

- keys are `/`-separated relative paths such as
  `players/<player_id>/recognitions/<uuid>/strokes.json`; a bad key raises
  `ValueError` before any I/O (see `validate_key`);
- prefixes are plain string prefixes, as in S3: `players/1` also matches
  `players/10/...`, so pass `players/1/` to mean one player's folder;
- `get` of a missing key raises `ObjectNotFound`; `delete` of one is a no-op;
- `list` yields keys recursively, sorted by code point (= S3's UTF-8 byte order);
- a server or folder that cannot be used raises `StorageUnavailable`.

Nothing connects at import or construction time. The content type is stored on
S3 only; the local folder keeps the bytes alone.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn, Protocol, runtime_checkable
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

import certifi  # a dependency of minio: the CA bundle minio itself uses by default
import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from urllib3.util import Retry, Timeout

__all__ = [
    "LocalStorage",
    "ObjectNotFound",
    "ObjectStorage",
    "S3Storage",
    "StorageError",
    "StorageUnavailable",
    "open_storage",
    "validate_key",
    "validate_prefix",
]


class StorageError(Exception):
    """Base class of every storage failure."""


class ObjectNotFound(StorageError):
    """The key does not exist."""

    def __init__(self, key: str) -> None:
        super().__init__(f"object not found: {key}")
        self.key = key


class StorageUnavailable(StorageError):
    """The storage cannot be used now: server down, timeout, bad credentials, folder unusable."""


@runtime_checkable
class ObjectStorage(Protocol):
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Store `data` under `key`, replacing any previous object atomically."""
        ...

    def get(self, key: str) -> bytes:
        """Return the object's bytes; raise `ObjectNotFound` if there is none."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing key is fine."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Remove every key starting with `prefix` (non-empty); return how many."""
        ...

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with `prefix`, recursively, sorted."""
        ...

    def check(self) -> None:
        """Raise `StorageUnavailable` with a reason if the storage is unusable (for /readyz)."""
        ...

    def describe(self) -> str:
        """Where the objects live, for logs: never includes a secret."""
        ...


# --------------------------------------------------------------------------- keys

MAX_KEY_BYTES = 1024  # S3's limit
MAX_SEGMENT_BYTES = 255  # NAME_MAX of common filesystems
# LocalStorage writes `.<name>.<random>.tmp~` beside the target, then renames it.
_TEMP_SUFFIX = ".tmp~"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check_segments(what: str, value: str, segments: list[str]) -> None:
    for segment in segments:
        if segment in ("", ".", ".."):
            raise ValueError(f"bad {what} {value!r}: empty, '.' or '..' segment")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise ValueError(f"bad {what} {value!r}: a segment exceeds {MAX_SEGMENT_BYTES} bytes")
        if segment.endswith(_TEMP_SUFFIX):
            raise ValueError(
                f"bad {what} {value!r}: segments ending in {_TEMP_SUFFIX!r} are reserved"
            )


def _check_chars(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    if value.startswith("/"):
        raise ValueError(f"bad {what} {value!r}: must be relative (no leading '/')")
    if "\\" in value or _CONTROL.search(value):
        raise ValueError(
            f"bad {what} {value!r}: backslashes and control characters are not allowed"
        )
    if len(value.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"bad {what}: longer than {MAX_KEY_BYTES} bytes")
    return value


def validate_key(key: str) -> str:
    """Return `key` if it is a clean relative path like `models/3/weights.pt`, else ValueError."""
    _check_chars("key", key)
    if not key:
        raise ValueError("bad key '': must not be empty")
    _check_segments("key", key, key.split("/"))
    return key


def validate_prefix(prefix: str) -> str:
    """Like `validate_key`, but `""`, a trailing `/` and a partial last segment are allowed."""
    _check_chars("prefix", prefix)
    if prefix:
        segments = prefix.split("/")
        last = segments.pop()
        _check_segments("prefix", prefix, segments)
        if last in (".", ".."):
            raise ValueError(f"bad prefix {prefix!r}: '.' or '..' segment")
    return prefix


def _require_prefix_for_delete(prefix: str) -> str:
    validate_prefix(prefix)
    if not prefix:
        raise ValueError("delete_prefix needs a non-empty prefix (refusing to delete everything)")
    return prefix


# --------------------------------------------------------------------------- local


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
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TEMP_SUFFIX)
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
        _require_prefix_for_delete(prefix)
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
                if name.endswith(_TEMP_SUFFIX):
                    continue  # a write in progress, or left by a crash
                key = base + name
                if key.startswith(prefix):
                    keys.append(key)
        keys.sort()
        return iter(keys)

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=self.root, prefix=".check.", suffix=_TEMP_SUFFIX)
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


# --------------------------------------------------------------------------- S3


class S3Storage:
    """Objects in one bucket of an S3-compatible server, through one shared `Minio` client.

    The bucket is created on first use (once, under a lock). The client's urllib3
    pool has short timeouts and few retries, so a dead server fails in seconds, not
    minutes; `check()` uses a second client with tighter timeouts and no retries so
    /readyz stays bounded even when the server accepts connections but never answers.
    """

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool = False,
        region: str | None = None,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 20.0,
        check_timeout: float = 2.0,
        max_connections: int = 16,
    ) -> None:
        if not endpoint:
            raise ValueError("S3 endpoint must not be empty")
        _validate_bucket(bucket)
        self.endpoint = endpoint
        self.bucket = bucket
        self.secure = secure
        self.region = region
        self._access_key = access_key
        self._secret_key = secret_key
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._check_timeout = check_timeout
        self._max_connections = max_connections
        self._lock = threading.Lock()  # guards building the clients
        self._bucket_lock = threading.Lock()  # guards creating the bucket, once
        self._client_obj: Minio | None = None
        self._probe_obj: Minio | None = None
        self._bucket_ready = False

    def __repr__(self) -> str:
        return f"S3Storage({self.describe()!r})"

    def describe(self) -> str:
        return f"s3://{self.endpoint}/{self.bucket}" + ("?secure=true" if self.secure else "")

    # -- clients (built on first use; building one does no I/O either)

    def _make_client(self, timeout: Timeout, retries: Retry, maxsize: int) -> Minio:
        if self.secure:
            http = urllib3.PoolManager(
                timeout=timeout,
                retries=retries,
                maxsize=maxsize,
                cert_reqs="CERT_REQUIRED",
                ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
            )
        else:
            http = urllib3.PoolManager(timeout=timeout, retries=retries, maxsize=maxsize)
        return Minio(
            self.endpoint,
            access_key=self._access_key,
            secret_key=self._secret_key,
            secure=self.secure,
            region=self.region,
            http_client=http,
        )

    @property
    def _client(self) -> Minio:
        """The one client every data call shares (Minio clients are thread-safe)."""
        if self._client_obj is None:
            with self._lock:
                if self._client_obj is None:
                    self._client_obj = self._make_client(
                        Timeout(connect=self._connect_timeout, read=self._read_timeout),
                        # Every call we make is idempotent, so one read retry is safe.
                        Retry(
                            total=3,
                            connect=2,
                            read=1,
                            status=2,
                            backoff_factor=0.2,
                            status_forcelist=(500, 502, 503, 504),
                        ),
                        self._max_connections,
                    )
        return self._client_obj

    @property
    def _probe(self) -> Minio:
        """A client for `check()` alone: tight timeouts, no retries."""
        if self._probe_obj is None:
            with self._lock:
                if self._probe_obj is None:
                    t = self._check_timeout
                    self._probe_obj = self._make_client(
                        Timeout(connect=t, read=t), Retry(total=0, redirect=0), 1
                    )
        return self._probe_obj

    # -- errors

    def _fail(self, op: str, exc: BaseException, key: str | None = None) -> NoReturn:
        """Raise the storage error that `exc` (a minio / urllib3 / socket error) means."""
        where = f"{op} {key!r} in {self.describe()}" if key else f"{op} {self.describe()}"
        if isinstance(exc, S3Error):
            if exc.code == "NoSuchKey" and key is not None:
                raise ObjectNotFound(key) from exc
            if exc.code == "NoSuchBucket":
                self._bucket_ready = False  # recreated on the next call
            if exc.code in _UNAVAILABLE_CODES:
                raise StorageUnavailable(f"{where}: {exc.code}: {exc.message}") from exc
            raise StorageError(f"{where}: {exc.code}: {exc.message}") from exc
        if isinstance(exc, ServerError | InvalidResponseError):
            raise StorageUnavailable(f"{where}: bad answer from server: {exc}") from exc
        raise StorageUnavailable(f"{where}: {type(exc).__name__}: {exc}") from exc

    def _ensure_bucket(self, client: Minio) -> None:
        if self._bucket_ready:
            return
        with self._bucket_lock:
            if self._bucket_ready:
                return
            if not client.bucket_exists(self.bucket):
                try:
                    client.make_bucket(self.bucket, location=self.region)
                except S3Error as exc:
                    if exc.code != "BucketAlreadyOwnedByYou":  # lost a race with another process
                        raise
            self._bucket_ready = True

    # -- the interface

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        validate_key(key)
        try:
            self._ensure_bucket(self._client)
            self._client.put_object(
                self.bucket, key, io.BytesIO(data), len(data), content_type=content_type
            )
        except _S3_ERRORS as exc:
            self._fail("put", exc, key)

    def get(self, key: str) -> bytes:
        validate_key(key)
        response = None
        try:
            self._ensure_bucket(self._client)
            response = self._client.get_object(self.bucket, key)
            return response.read()
        except _S3_ERRORS as exc:
            self._fail("get", exc, key)
        finally:
            if response is not None:
                response.close()
                response.release_conn()

    def exists(self, key: str) -> bool:
        validate_key(key)
        try:
            self._ensure_bucket(self._client)
            self._client.stat_object(self.bucket, key)
            return True
        except _S3_ERRORS as exc:
            try:
                self._fail("exists", exc, key)
            except ObjectNotFound:
                return False

    def delete(self, key: str) -> None:
        validate_key(key)
        try:
            self._ensure_bucket(self._client)
            self._client.remove_object(self.bucket, key)  # S3 DELETE of a missing key succeeds
        except _S3_ERRORS as exc:
            try:
                self._fail("delete", exc, key)
            except ObjectNotFound:
                return

    def delete_prefix(self, prefix: str) -> int:
        _require_prefix_for_delete(prefix)
        count = 0
        try:
            self._ensure_bucket(self._client)
            # List first, then delete in batches of 1000 (minio batches the listed keys).
            keys = [obj.object_name for obj in self._iter_objects(prefix)]
            if keys:
                errors = list(
                    self._client.remove_objects(self.bucket, (DeleteObject(k) for k in keys))
                )
                failed = [e for e in errors if e.code != "NoSuchKey"]
                if failed:
                    first = failed[0]
                    raise StorageError(
                        f"delete_prefix {prefix!r} in {self.describe()}: {len(failed)} keys "
                        f"not deleted, first {first.name!r}: {first.code}: {first.message}"
                    )
                count = len(keys) - len(errors)
        except _S3_ERRORS as exc:
            self._fail("delete_prefix", exc)
        return count

    def _iter_objects(self, prefix: str) -> Iterator[Any]:
        return self._client.list_objects(self.bucket, prefix=prefix or None, recursive=True)

    def list(self, prefix: str = "") -> Iterator[str]:
        validate_prefix(prefix)

        def keys() -> Iterator[str]:
            try:
                self._ensure_bucket(self._client)
                for obj in self._iter_objects(prefix):
                    yield obj.object_name  # S3 lists in UTF-8 byte order: sorted
            except _S3_ERRORS as exc:
                self._fail("list", exc)

        return keys()

    def check(self) -> None:
        try:
            if self._probe.bucket_exists(self.bucket):
                self._bucket_ready = True
                return
            self._bucket_ready = False
            self._ensure_bucket(self._probe)
        except _S3_ERRORS as exc:
            try:
                self._fail("check", exc)
            except StorageError as err:
                if isinstance(err, StorageUnavailable):
                    raise
                raise StorageUnavailable(str(err)) from exc


# What the minio SDK raises: S3 error answers, bad answers, urllib3 transport
# errors (timeouts, refused connections, exhausted retries) and raw socket errors.
_S3_ERRORS = (MinioException, urllib3.exceptions.HTTPError, OSError)
# Codes meaning "this storage is not usable as configured", not "this request was wrong".
_UNAVAILABLE_CODES = frozenset(
    {
        "NoSuchBucket",
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "AllAccessDisabled",
        "AccountProblem",
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeTooSkewed",
    }
)

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _validate_bucket(bucket: str) -> None:
    if not _BUCKET_RE.match(bucket or "") or ".." in bucket:
        raise ValueError(
            f"bad S3 bucket name {bucket!r}: 3-63 characters of a-z, 0-9, '.' and '-', "
            "starting and ending with a letter or digit"
        )


# --------------------------------------------------------------------------- URLs

_URL_FORMS = (
    "expected s3://KEY:SECRET@host:port/bucket[?secure=true&region=...] or file:///abs/path"
)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def open_storage(url: str) -> ObjectStorage:
    """Build the storage named by `url` (STORAGE_URL). Does no I/O.

    Error messages never repeat the URL, since it may hold a secret.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"storage URL is empty; {_URL_FORMS}")
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:
        raise ValueError(f"storage URL is malformed ({exc}); {_URL_FORMS}") from None
    scheme = parts.scheme.lower()
    if scheme == "file":
        return _open_file(parts)
    if scheme == "s3":
        return _open_s3(parts)
    shown = f"{scheme!r}" if scheme else "none"
    raise ValueError(f"unsupported storage URL scheme {shown}; {_URL_FORMS}")


def _open_file(parts: SplitResult) -> LocalStorage:
    if parts.netloc not in ("", "localhost"):
        raise ValueError(
            f"file storage URL has a host part {parts.netloc!r}; use three slashes for an "
            "absolute path: file:///abs/path"
        )
    if parts.query or parts.fragment:
        raise ValueError("file storage URL takes no query or fragment: file:///abs/path")
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise ValueError("file storage URL needs an absolute path: file:///abs/path")
    if "\x00" in path:
        raise ValueError("file storage URL path contains a NUL byte")
    return LocalStorage(Path(path))


def _open_s3(parts: SplitResult) -> S3Storage:
    userinfo, at, hostport = parts.netloc.rpartition("@")
    key_raw, colon, secret_raw = userinfo.partition(":")
    if not at or not colon or not key_raw or not secret_raw:
        raise ValueError(
            "S3 storage URL needs credentials: s3://KEY:SECRET@host:port/bucket "
            "(percent-encode '@', ':', '/' and '%' in them)"
        )
    access_key, secret_key = unquote(key_raw), unquote(secret_raw)
    if not hostport or not parts.hostname:
        raise ValueError("S3 storage URL needs a host: s3://KEY:SECRET@host:port/bucket")
    try:
        parts.port  # noqa: B018  (validates the port)
    except ValueError:
        raise ValueError(
            "S3 storage URL has a bad port: s3://KEY:SECRET@host:port/bucket"
        ) from None
    if hostport.endswith(":"):
        raise ValueError("S3 storage URL has an empty port: s3://KEY:SECRET@host:port/bucket")
    bucket = unquote(parts.path)
    if bucket.endswith("/"):
        bucket = bucket[:-1]
    if not bucket.startswith("/") or "/" in bucket[1:]:
        raise ValueError(
            "S3 storage URL needs exactly one path segment, the bucket: "
            "s3://KEY:SECRET@host:port/bucket"
        )
    bucket = bucket[1:]
    _validate_bucket(bucket)
    if parts.fragment:
        raise ValueError("S3 storage URL takes no fragment")

    secure, region = False, None
    seen: set[str] = set()
    try:
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise ValueError("S3 storage URL has a malformed query string") from None
    for name, value in query:
        if name in seen:
            raise ValueError(f"S3 storage URL repeats the query parameter {name!r}")
        seen.add(name)
        if name == "secure":
            if value.lower() in _TRUE:
                secure = True
            elif value.lower() in _FALSE:
                secure = False
            else:
                raise ValueError(f"S3 storage URL: secure must be true or false, got {value!r}")
        elif name == "region":
            if not value:
                raise ValueError("S3 storage URL: region must not be empty")
            region = value
        else:
            raise ValueError(
                f"S3 storage URL: unknown query parameter {name!r} (known: secure, region)"
            )
    return S3Storage(hostport, access_key, secret_key, bucket, secure=secure, region=region)
