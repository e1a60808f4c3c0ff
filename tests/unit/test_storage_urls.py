"""`open_storage`: STORAGE_URL parsing (core/storage/urls.py), without any I/O."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.storage import LocalStorage, S3Storage, open_storage


def test_open_file_url(tmp_path: Path) -> None:
    storage = open_storage((tmp_path / "my objects").as_uri())
    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path / "my objects"
    assert isinstance(open_storage("file://localhost/srv/objects"), LocalStorage)


def test_open_s3_url_does_no_io() -> None:
    # Port 9 (discard) on a TEST-NET address: nothing listens, nothing is contacted.
    storage = open_storage("s3://minio:minio123@192.0.2.1:9000/doodles")
    assert isinstance(storage, S3Storage)
    assert storage.endpoint == "192.0.2.1:9000"
    assert storage.bucket == "doodles"
    assert storage.secure is False
    assert storage.region is None
    assert storage.describe() == "s3://192.0.2.1:9000/doodles"


def test_open_s3_url_percent_decodes_credentials() -> None:
    storage = open_storage("s3://AK%2FI%3AD:p%40ss%2Fw%3Ard%25+x%23y@host:9000/bucket/")
    assert isinstance(storage, S3Storage)
    assert storage._access_key == "AK/I:D"
    assert storage._secret_key == "p@ss/w:rd%+x#y"  # '+' stays '+'
    assert "p@ss" not in storage.describe() and "p@ss" not in repr(storage)


def test_open_s3_url_options() -> None:
    storage = open_storage("s3://k:s@s3.example.com/bucket.v2?secure=true&region=eu-west-3")
    assert isinstance(storage, S3Storage)
    assert storage.secure is True
    assert storage.region == "eu-west-3"
    assert storage.endpoint == "s3.example.com"
    assert storage.describe() == "s3://s3.example.com/bucket.v2?secure=true"
    storage = open_storage("S3://k:s@[::1]:9000/b12?secure=0")
    assert isinstance(storage, S3Storage)
    assert storage.endpoint == "[::1]:9000"
    assert storage.secure is False


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("http://k:s@host:9000/b", "unsupported storage URL scheme 'http'"),
        ("minio://k:s@host:9000/b", "unsupported"),
        ("/var/objects", "unsupported storage URL scheme none"),
        ("relative/path", "unsupported"),
        ("file://var/objects", "three slashes"),
        ("file:relative/objects", "absolute path"),
        ("file:///objects?x=1", "no query"),
        ("s3://host:9000/bucket", "credentials"),
        ("s3://key@host:9000/bucket", "credentials"),
        ("s3://key:@host:9000/bucket", "credentials"),
        ("s3://:secret@host:9000/bucket", "credentials"),
        ("s3://k:s@/bucket", "host"),
        ("s3://k:s@host:port/bucket", "bad port"),
        ("s3://k:s@host:99999/bucket", "bad port"),
        ("s3://k:s@host:/bucket", "empty port"),
        ("s3://k:s@host:9000", "one path segment"),
        ("s3://k:s@host:9000/", "one path segment"),
        ("s3://k:s@host:9000/bucket/prefix", "one path segment"),
        ("s3://k:s@host:9000/Bucket_Upper", "bad S3 bucket name"),
        ("s3://k:s@host:9000/ab", "bad S3 bucket name"),
        ("s3://k:s@host:9000/bucket?secure=maybe", "secure must be true or false"),
        ("s3://k:s@host:9000/bucket?region=", "region must not be empty"),
        ("s3://k:s@host:9000/bucket?tls=1", "unknown query parameter 'tls'"),
        ("s3://k:s@host:9000/bucket?secure=1&secure=0", "repeats"),
        ("s3://k:s@host:9000/bucket#frag", "fragment"),
        ("s3://k:s@[::1/bucket", "malformed"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("?", r"\?")):
        open_storage(url)


def test_bad_url_errors_do_not_leak_the_secret() -> None:
    for url in [
        "http://key:TOPSECRET@host:9000/b",
        "s3://key:TOPSECRET@host:nope/b",
        "s3://key:TOPSECRET@host:9000/a/b",
        "s3://key:TOPSECRET@host:9000/b?x=1",
        "s3://key:TOPSECRET@[::1/b",
    ]:
        with pytest.raises(ValueError) as info:
            open_storage(url)
        assert "TOPSECRET" not in str(info.value)
