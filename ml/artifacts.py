"""Model weights in object storage: fetched, checksum-verified, loaded."""

from __future__ import annotations

import hashlib

from core.storage import ObjectStorage
from ml.network import QuickDrawNet, load_model


class ArtifactCorrupt(RuntimeError):
    """The stored weights do not match the checksum recorded for the version."""


def load_verified(
    storage: ObjectStorage, artifact_key: str, checksum: str, classes: list[str]
) -> QuickDrawNet:
    data = storage.get(artifact_key)
    actual = hashlib.sha256(data).hexdigest()
    if actual != checksum:
        raise ArtifactCorrupt(f"{artifact_key}: sha256 {actual} != recorded {checksum}")
    return load_model(data, len(classes))
