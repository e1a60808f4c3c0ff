"""The storage contract, run here on `LocalStorage`; plus local-only behaviour.

`StorageContract` is the behaviour every `ObjectStorage` must honour. A subclass
supplies a `storage` fixture; tests/integration/test_storage_s3.py runs the same
class against S3 (moto over HTTP).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from core.storage import (
    LocalStorage,
    ObjectNotFound,
    ObjectStorage,
    StorageError,
    StorageUnavailable,
)

BAD_KEYS = [
    "",
    "/abs/key",
    "a//b",
    "a/",
    "../x",
    "a/../b",
    "a/./b",
    "..",
    ".",
    "a\\b",
    "a\x00b",
    "a\nb",
    "a/.b.x1y2.tmp~",
    "x" * 256,
    "a/" * 600,
]
BAD_PREFIXES = ["/abs", "../", "a/../b", "a//", "..", "a\\b"]


class StorageContract:
    """Behaviour shared by every implementation. Subclasses provide `storage`."""

    @pytest.fixture
    def storage(self) -> ObjectStorage:
        raise NotImplementedError

    def test_is_an_object_storage(self, storage: ObjectStorage) -> None:
        assert isinstance(storage, ObjectStorage)

    def test_put_get_roundtrip(self, storage: ObjectStorage) -> None:
        key = "players/p1/recognitions/0b6e/strokes.json"
        storage.put(key, b'{"strokes": []}', content_type="application/json")
        assert storage.get(key) == b'{"strokes": []}'
        assert storage.exists(key)

    def test_put_replaces(self, storage: ObjectStorage) -> None:
        storage.put("models/3/weights.pt", b"old")
        storage.put("models/3/weights.pt", b"new, longer")
        assert storage.get("models/3/weights.pt") == b"new, longer"
        assert list(storage.list("models/")) == ["models/3/weights.pt"]

    def test_binary_and_empty_objects(self, storage: ObjectStorage) -> None:
        data = bytes(range(256)) * 4 + b"\r\n\x00\xff"
        storage.put("bin/all-bytes", data)
        storage.put("bin/empty", b"")
        assert storage.get("bin/all-bytes") == data
        assert storage.get("bin/empty") == b""
        assert storage.exists("bin/empty")

    def test_one_megabyte(self, storage: ObjectStorage) -> None:
        data = os.urandom(1 << 20)
        storage.put("big/1mb.bin", data)
        assert storage.get("big/1mb.bin") == data

    def test_unicode_key(self, storage: ObjectStorage) -> None:
        storage.put("words/éclair/ü 1.json", b"{}")
        assert storage.get("words/éclair/ü 1.json") == b"{}"
        assert list(storage.list("words/")) == ["words/éclair/ü 1.json"]

    def test_missing_key(self, storage: ObjectStorage) -> None:
        with pytest.raises(ObjectNotFound) as info:
            storage.get("nope/missing.json")
        assert isinstance(info.value, StorageError)
        assert info.value.key == "nope/missing.json"
        assert not storage.exists("nope/missing.json")

    def test_a_folder_is_not_an_object(self, storage: ObjectStorage) -> None:
        storage.put("players/p1/a.json", b"1")
        assert not storage.exists("players/p1")
        assert not storage.exists("players")
        with pytest.raises(ObjectNotFound):
            storage.get("players/p1")

    def test_delete_is_idempotent(self, storage: ObjectStorage) -> None:
        storage.put("d/k", b"x")
        storage.delete("d/k")
        assert not storage.exists("d/k")
        storage.delete("d/k")
        storage.delete("never/existed")
        with pytest.raises(ObjectNotFound):
            storage.get("d/k")

    def test_delete_keeps_neighbours(self, storage: ObjectStorage) -> None:
        storage.put("d/k", b"x")
        storage.put("d/k2", b"y")
        storage.delete("d/k")
        assert list(storage.list()) == ["d/k2"]

    def test_list_sorted_recursive_and_filtered(self, storage: ObjectStorage) -> None:
        keys = ["a0", "a/b", "a-c", "a/z/y/x", "b/1", "a/b2"]
        for key in keys:
            storage.put(key, key.encode())
        # Sorted as strings (= S3's byte order), not folder by folder: '-' < '/' < '0'.
        assert list(storage.list()) == ["a-c", "a/b", "a/b2", "a/z/y/x", "a0", "b/1"]
        assert list(storage.list("a/")) == ["a/b", "a/b2", "a/z/y/x"]
        assert list(storage.list("a/b")) == ["a/b", "a/b2"]
        assert list(storage.list("a")) == ["a-c", "a/b", "a/b2", "a/z/y/x", "a0"]
        assert list(storage.list("a/z/")) == ["a/z/y/x"]
        assert list(storage.list("zzz/")) == []
        assert list(storage.list("zzz")) == []

    def test_list_of_empty_storage(self, storage: ObjectStorage) -> None:
        assert list(storage.list()) == []

    def test_delete_prefix(self, storage: ObjectStorage) -> None:
        for i in range(5):
            storage.put(f"players/1/recognitions/{i}/strokes.json", b"s")
        storage.put("players/1/profile.json", b"p")
        storage.put("players/10/recognitions/0/strokes.json", b"other player")
        storage.put("models/1/weights.pt", b"w")

        assert storage.delete_prefix("players/1/") == 6
        assert list(storage.list()) == [
            "models/1/weights.pt",
            "players/10/recognitions/0/strokes.json",
        ]
        assert storage.delete_prefix("players/1/") == 0
        assert storage.delete_prefix("nothing/") == 0

    def test_delete_prefix_is_a_string_prefix(self, storage: ObjectStorage) -> None:
        storage.put("players/1/a", b"")
        storage.put("players/10/a", b"")
        storage.put("players/2/a", b"")
        # Like S3: without the trailing '/', players/10 matches too.
        assert storage.delete_prefix("players/1") == 2
        assert list(storage.list()) == ["players/2/a"]

    def test_delete_prefix_refuses_everything(self, storage: ObjectStorage) -> None:
        storage.put("keep/me", b"1")
        with pytest.raises(ValueError, match="non-empty"):
            storage.delete_prefix("")
        assert storage.exists("keep/me")

    @pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
    def test_bad_keys(self, storage: ObjectStorage, key: str) -> None:
        with pytest.raises(ValueError, match="bad key"):
            storage.put(key, b"x")
        with pytest.raises(ValueError, match="bad key"):
            storage.get(key)
        with pytest.raises(ValueError, match="bad key"):
            storage.exists(key)
        with pytest.raises(ValueError, match="bad key"):
            storage.delete(key)

    def test_key_must_be_str(self, storage: ObjectStorage) -> None:
        with pytest.raises(TypeError):
            storage.get(b"a/b")  # type: ignore[arg-type]

    @pytest.mark.parametrize("prefix", BAD_PREFIXES, ids=repr)
    def test_bad_prefixes(self, storage: ObjectStorage, prefix: str) -> None:
        with pytest.raises(ValueError, match="bad prefix"):
            list(storage.list(prefix))
        with pytest.raises(ValueError, match="bad prefix"):
            storage.delete_prefix(prefix)

    def test_check_passes_on_fresh_storage(self, storage: ObjectStorage) -> None:
        storage.check()
        storage.put("after/check", b"ok")
        storage.check()
        assert storage.get("after/check") == b"ok"

    def test_describe_has_no_secret(self, storage: ObjectStorage) -> None:
        text = storage.describe()
        assert text.startswith(("s3://", "file:///"))
        assert "@" not in text

    def test_concurrent_first_use(self, storage: ObjectStorage) -> None:
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                for i in range(5):
                    storage.put(f"t/{n}/{i}", f"{n}-{i}".encode())
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(list(storage.list("t/"))) == 40
        assert storage.get("t/7/4") == b"7-4"


class TestLocalContract(StorageContract):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> ObjectStorage:
        return LocalStorage(tmp_path / "objects")


# --------------------------------------------------------------------------- local only


def test_root_is_created_lazily(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "objects"
    storage = LocalStorage(root)
    assert not root.exists()
    assert list(storage.list()) == []
    assert not storage.exists("a/b")
    with pytest.raises(ObjectNotFound):
        storage.get("a/b")
    storage.delete("a/b")
    assert not root.exists()
    storage.put("a/b", b"1")
    assert (root / "a" / "b").read_bytes() == b"1"


def test_check_creates_root(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    LocalStorage(root).check()
    assert root.is_dir()
    assert list(root.iterdir()) == []


def test_check_on_unusable_root(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    storage = LocalStorage(blocker / "objects")
    with pytest.raises(StorageUnavailable, match="not a writable folder"):
        storage.check()
    with pytest.raises(StorageUnavailable):
        storage.put("k", b"x")


def test_failed_write_keeps_the_old_object(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = LocalStorage(tmp_path)
    storage.put("m/weights.pt", b"old")

    def crash(src: str, dst: str) -> None:
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StorageUnavailable, match="simulated crash"):
        storage.put("m/weights.pt", b"new")
    monkeypatch.undo()

    assert storage.get("m/weights.pt") == b"old"
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["weights.pt"]


def test_leftover_temp_files_are_invisible(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put("m/weights.pt", b"w")
    # What a crash between write and rename would leave behind.
    (tmp_path / "m" / ".weights.pt.k3j2h1.tmp~").write_bytes(b"half")
    assert list(storage.list()) == ["m/weights.pt"]
    assert storage.delete_prefix("m/") == 1


def test_writes_are_whole_files(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put("a/b.json", b"{}")
    path = tmp_path / "a" / "b.json"
    assert path.is_file()
    assert path.stat().st_mode & 0o777 == 0o644


def test_delete_prunes_empty_folders(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put("players/p1/recognitions/r1/strokes.json", b"s")
    storage.put("players/p1/recognitions/r1/doodle.png", b"p")
    storage.put("players/p2/x", b"x")

    storage.delete("players/p1/recognitions/r1/strokes.json")
    assert (tmp_path / "players" / "p1" / "recognitions" / "r1").is_dir()
    storage.delete("players/p1/recognitions/r1/doodle.png")
    # The erased player's id no longer appears as a folder name.
    assert sorted(p.name for p in (tmp_path / "players").iterdir()) == ["p2"]

    assert storage.delete_prefix("players/") == 1
    assert tmp_path.is_dir()
    assert list(tmp_path.iterdir()) == []


def test_key_clashing_with_a_folder(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put("a/b", b"1")
    with pytest.raises(StorageError):
        storage.put("a/b/c", b"2")  # 'a/b' is a file here; S3 would allow both
    with pytest.raises(StorageError):
        storage.put("a", b"2")  # 'a' is a folder
    assert storage.get("a/b") == b"1"


def test_describe_and_repr(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "with space")
    assert storage.describe() == (tmp_path / "with space").as_uri()
    assert "file:///" in repr(storage)
