"""`open_storage(url)`: the backend that `STORAGE_URL` names, built without any I/O.

s3://KEY:SECRET@host:port/bucket[?secure=true&region=eu-west-1]
file:///absolute/path
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from core.storage.base import ObjectStorage
from core.storage.local import LocalStorage
from core.storage.s3 import S3Storage, validate_bucket

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
    validate_bucket(bucket)
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
