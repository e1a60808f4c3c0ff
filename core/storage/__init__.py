"""Object storage: one interface, two implementations (CTFd's uploaders style).

- `LocalStorage` keeps objects as files under a folder (the embedded default).
- `S3Storage` talks to any S3-compatible server (MinIO, AWS, moto) through the
  `minio` SDK.

`open_storage(url)` (`urls.py`) picks one from `STORAGE_URL`:

    s3://KEY:SECRET@host:port/bucket[?secure=true&region=eu-west-1]
    file:///absolute/path

The interface, its errors and the key rules are `base.py`; each backend has a module
of its own (`local.py`, `s3.py`). A new backend implements `ObjectStorage` and gets a
URL scheme in `urls.py`.

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

from core.storage.base import (
    ObjectNotFound,
    ObjectStorage,
    StorageError,
    StorageUnavailable,
    validate_key,
    validate_prefix,
)
from core.storage.local import LocalStorage
from core.storage.s3 import S3Storage
from core.storage.urls import open_storage

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
