"""S3Storage over real HTTP against moto's S3 server (fixtures in tests/fixtures/s3.py).

The shared contract (`StorageContract`) is the same one LocalStorage passes in
tests/unit/test_storage_local.py; below it, what only S3 has: the bucket made on
first use, content types, and failing fast when the server is down or hung.
"""

from __future__ import annotations

import io
import socket
import statistics
import time
from collections.abc import Iterator

import pytest
from minio import Minio

from core.storage import (
    ObjectStorage,
    S3Storage,
    StorageUnavailable,
    open_storage,
)
from devtools.net import free_port
from tests.fixtures.s3 import S3_TEST_ACCESS_KEY, S3_TEST_SECRET_KEY
from tests.unit.test_storage_local import StorageContract


class TestS3Contract(StorageContract):
    @pytest.fixture
    def storage(self, s3_storage: ObjectStorage) -> ObjectStorage:
        return s3_storage


@pytest.fixture
def raw_client(s3_server_url: str) -> Minio:
    """A plain minio client on the same server, to look behind S3Storage's back."""
    return Minio(
        s3_server_url, access_key=S3_TEST_ACCESS_KEY, secret_key=S3_TEST_SECRET_KEY, secure=False
    )


@pytest.fixture
def dead_endpoint() -> str:
    """host:port where nothing listens: connections are refused at once."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture
def hung_endpoint() -> Iterator[str]:
    """host:port that accepts TCP connections (kernel backlog) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        host, port = sock.getsockname()
        yield f"{host}:{port}"


def test_bucket_is_made_on_first_use_not_before(s3_storage_url: str, raw_client: Minio) -> None:
    storage = open_storage(s3_storage_url)
    assert isinstance(storage, S3Storage)
    assert not raw_client.bucket_exists(storage.bucket)
    storage.put("a", b"1")
    assert raw_client.bucket_exists(storage.bucket)


def test_check_makes_the_bucket(s3_storage: S3Storage, raw_client: Minio) -> None:
    s3_storage.check()
    assert raw_client.bucket_exists(s3_storage.bucket)
    assert list(s3_storage.list()) == []


def test_existing_bucket_is_used(s3_storage_url: str, raw_client: Minio) -> None:
    storage = open_storage(s3_storage_url)
    assert isinstance(storage, S3Storage)
    raw_client.make_bucket(storage.bucket)
    raw_client.put_object(storage.bucket, "pre/existing", io.BytesIO(b"hi"), 2)
    assert list(storage.list()) == ["pre/existing"]
    assert storage.get("pre/existing") == b"hi"


def test_content_type_is_stored(s3_storage: S3Storage, raw_client: Minio) -> None:
    s3_storage.put("r/strokes.json", b"{}", content_type="application/json")
    s3_storage.put("r/doodle.png", b"\x89PNG", content_type="image/png")
    s3_storage.put("r/blob", b"x")
    assert raw_client.stat_object(s3_storage.bucket, "r/strokes.json").content_type == (
        "application/json"
    )
    assert raw_client.stat_object(s3_storage.bucket, "r/doodle.png").content_type == "image/png"
    assert raw_client.stat_object(s3_storage.bucket, "r/blob").content_type == (
        "application/octet-stream"
    )


def test_region_in_url(s3_storage_url: str) -> None:
    storage = open_storage(s3_storage_url + "?region=us-east-1&secure=false")
    assert isinstance(storage, S3Storage)
    assert storage.region == "us-east-1"
    storage.put("k", b"v")
    assert storage.get("k") == b"v"


def test_delete_prefix_over_one_batch(s3_storage: S3Storage) -> None:
    # DeleteObjects takes at most 1000 keys per request: more need a second batch.
    for i in range(1003):
        s3_storage.put(f"p/{i:04d}", b"")
    s3_storage.put("q/keep", b"")
    assert s3_storage.delete_prefix("p/") == 1003
    assert list(s3_storage.list()) == ["q/keep"]


def test_bucket_deleted_behind_our_back(s3_storage: S3Storage, raw_client: Minio) -> None:
    s3_storage.put("k", b"1")
    raw_client.remove_object(s3_storage.bucket, "k")
    raw_client.remove_bucket(s3_storage.bucket)
    with pytest.raises(StorageUnavailable, match="NoSuchBucket"):
        s3_storage.put("k", b"2")
    s3_storage.put("k", b"3")  # the next call makes the bucket again
    assert s3_storage.get("k") == b"3"


def test_describe(s3_storage: S3Storage, s3_server_url: str) -> None:
    assert s3_storage.describe() == f"s3://{s3_server_url}/{s3_storage.bucket}"
    assert S3_TEST_SECRET_KEY not in repr(s3_storage)


def test_check_on_dead_endpoint_is_quick(dead_endpoint: str) -> None:
    storage = open_storage(f"s3://key:TOPSECRET@{dead_endpoint}/doodles")
    started = time.monotonic()
    with pytest.raises(StorageUnavailable) as info:
        storage.check()
    assert time.monotonic() - started < 1.0
    assert dead_endpoint in str(info.value)
    assert "TOPSECRET" not in str(info.value)


def test_data_calls_on_dead_endpoint_fail_fast(dead_endpoint: str) -> None:
    storage = open_storage(f"s3://key:TOPSECRET@{dead_endpoint}/doodles")
    started = time.monotonic()
    with pytest.raises(StorageUnavailable):
        storage.put("k", b"x")
    with pytest.raises(StorageUnavailable):
        storage.get("k")
    with pytest.raises(StorageUnavailable):
        storage.exists("k")
    with pytest.raises(StorageUnavailable):
        list(storage.list())
    # Two connect retries with 0.2 s backoff each: well under a few seconds in all.
    assert time.monotonic() - started < 8.0


def test_check_on_hung_endpoint_is_bounded(hung_endpoint: str) -> None:
    storage = open_storage(f"s3://key:secret@{hung_endpoint}/doodles")
    started = time.monotonic()
    with pytest.raises(StorageUnavailable, match=r"(?i)timed? ?out"):
        storage.check()
    elapsed = time.monotonic() - started
    assert 1.5 < elapsed < 4.0  # the 2 s check timeout, once: no retries


def test_small_put_latency(s3_storage: S3Storage, record_property: pytest.RecordProperty) -> None:
    s3_storage.put("warm/up", b"x")  # bucket creation and region lookup out of the way
    payload = b'{"strokes": [[[0, 10, 20], [0, 5, 9]]]}'
    timings = []
    for i in range(100):
        started = time.perf_counter()
        s3_storage.put(f"lat/{i}", payload, content_type="application/json")
        timings.append(time.perf_counter() - started)
    median_ms = statistics.median(timings) * 1000
    record_property("s3_small_put_median_ms", round(median_ms, 2))
    print(f"median small PUT to moto: {median_ms:.2f} ms")
    assert median_ms < 100
