"""The service layer's plain parts: the alias names and what `doodle models import` prints."""

from __future__ import annotations

import json

from db.registry import Alias
from services.models import ImportResult


def test_the_aliases_are_the_strings_the_api_and_cli_show():
    assert [a.value for a in Alias] == ["production", "candidate"]
    assert Alias.PRODUCTION == "production" and f"{Alias.CANDIDATE}" == "candidate"
    assert json.dumps({"alias": Alias.PRODUCTION}) == '{"alias": "production"}'


def test_an_import_result_prints_its_checksum_only_when_it_imported():
    assert ImportResult(3, "production", imported=True, checksum="ab").as_dict() == {
        "version": 3,
        "alias": "production",
        "imported": True,
        "checksum": "ab",
    }
    assert ImportResult(3, None, imported=False).as_dict() == {
        "version": 3,
        "alias": None,
        "imported": False,
    }


def test_relabel_chunks_keep_each_prompt_words_doodles_together():
    import uuid

    from db.labels import Candidate
    from services.labels import word_chunks

    def doodles(word: str, n: int) -> list[Candidate]:
        return [Candidate(id=uuid.uuid4(), word=word, bitmap=b"") for _ in range(n)]

    cat, dog, big = doodles("cat", 3), doodles("dog", 4), doodles("owl", 9)
    mixed = [cat[0], dog[0], cat[1], *dog[1:], cat[2], *big]
    chunks = word_chunks(mixed, batch=8)
    assert chunks == [cat + dog, big]  # whole words; a word above the batch is its own chunk
    assert word_chunks([], batch=8) == []
