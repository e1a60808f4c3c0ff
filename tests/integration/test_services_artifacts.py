"""services.artifacts on real Postgres and S3: weights stored by checksum, versions
loaded from their registry row, and what a database without a registry says."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator

import pytest
import torch

from core import keys
from db.registry import Alias
from ml.artifacts import ArtifactCorrupt
from ml.network import QuickDrawNet, load_model, seed_classes, seed_weights_path
from services import artifacts
from services.connections import Connections
from services.errors import NoRegistry, UnknownVersion


@pytest.fixture
def connections(settings) -> Iterator[Connections]:
    c = Connections(settings)
    yield c
    c.close()


def test_store_artifact_keys_the_weights_by_their_checksum(connections):
    weights = b"some weights"

    stored = artifacts.store_artifact(connections.storage, weights)

    assert stored.checksum == hashlib.sha256(weights).hexdigest()
    assert stored.key == keys.model_artifact_key(stored.checksum)
    assert connections.storage.get(stored.key) == weights
    assert artifacts.store_artifact(connections.storage, weights) == stored


def test_a_version_loads_as_the_network_it_was_imported_as(connections, seed_version):
    model, classes = artifacts.load_version(connections.sessions, connections.storage, seed_version)

    assert classes == seed_classes()
    assert isinstance(model, QuickDrawNet)
    expected = load_model(seed_weights_path().read_bytes(), len(classes))
    for name, tensor in expected.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name


def test_alias_and_version_refs(connections, seed_version):
    ref = artifacts.alias_ref(connections.sessions, Alias.PRODUCTION)
    assert ref == artifacts.version_ref(connections.sessions, seed_version)
    assert ref is not None and ref.version_id == seed_version
    assert artifacts.alias_ref(connections.sessions, Alias.CANDIDATE) is None
    with pytest.raises(UnknownVersion, match="no model version 999"):
        artifacts.version_ref(connections.sessions, 999)


def test_weights_that_changed_in_storage_are_refused(connections, seed_version):
    ref = artifacts.version_ref(connections.sessions, seed_version)
    connections.storage.put(ref.artifact_key, b"not the weights")
    with pytest.raises(ArtifactCorrupt):
        artifacts.load(connections.storage, ref)


def test_a_database_never_migrated_has_no_registry(scratch_database_url, settings):
    c = Connections(dataclasses.replace(settings, database_url=scratch_database_url))
    try:
        with pytest.raises(NoRegistry):
            artifacts.alias_ref(c.sessions, Alias.PRODUCTION)
        with pytest.raises(NoRegistry):
            artifacts.version_ref(c.sessions, 1)
    finally:
        c.close()
