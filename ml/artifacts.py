"""Model weights in object storage: fetched, checksum-verified, loaded.

Workers keep a copy of the weights they loaded in a local folder, by checksum, so a
worker process that starts while object storage is down still has its model.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from core.storage import ObjectStorage
from ml.network import QuickDrawNet, load_model


class ArtifactCorrupt(RuntimeError):
    """The stored weights do not match the checksum recorded for the version."""


def _verified(data: bytes, checksum: str, where: str) -> bytes:
    actual = hashlib.sha256(data).hexdigest()
    if actual != checksum:
        raise ArtifactCorrupt(f"{where}: sha256 {actual} != recorded {checksum}")
    return data


def fetch_verified(
    storage: ObjectStorage, artifact_key: str, checksum: str, cache_dir: Path | None = None
) -> bytes:
    """The weights' bytes, from the local cache when it has them intact, else from storage."""
    cached = cache_dir / f"{checksum}.pt" if cache_dir else None
    if cached is not None and cached.is_file():
        with contextlib.suppress(ArtifactCorrupt, OSError):
            return _verified(cached.read_bytes(), checksum, str(cached))
    data = _verified(storage.get(artifact_key), checksum, artifact_key)
    if cached is not None:
        with contextlib.suppress(OSError):  # a cache that cannot be written is no cache
            cached.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=cached.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, cached)
    return data


def load_verified(
    storage: ObjectStorage,
    artifact_key: str,
    checksum: str,
    classes: list[str],
    cache_dir: Path | None = None,
) -> QuickDrawNet:
    return load_model(fetch_verified(storage, artifact_key, checksum, cache_dir), len(classes))
