"""`S3Storage`: objects in a bucket of any S3-compatible server (MinIO, AWS, moto), through
the `minio` SDK, with its errors turned into the storage errors of `core.storage.base`."""

from __future__ import annotations

import io
import os
import re
import threading
from collections.abc import Iterator
from typing import Any, NoReturn

import certifi  # a dependency of minio: the CA bundle minio itself uses by default
import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from urllib3.util import Retry, Timeout

from core.storage.base import (
    ObjectNotFound,
    StorageError,
    StorageUnavailable,
    require_prefix_for_delete,
    validate_key,
    validate_prefix,
)


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
        validate_bucket(bucket)
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
        require_prefix_for_delete(prefix)
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


def validate_bucket(bucket: str) -> None:
    if not _BUCKET_RE.match(bucket or "") or ".." in bucket:
        raise ValueError(
            f"bad S3 bucket name {bucket!r}: 3-63 characters of a-z, 0-9, '.' and '-', "
            "starting and ending with a letter or digit"
        )
