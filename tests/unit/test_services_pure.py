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
