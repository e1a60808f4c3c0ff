"""`doodle eval`: the worker's strokes -> raster -> model path, on dataset ndjson files."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import cli


@pytest.fixture
def runner(settings, monkeypatch) -> CliRunner:
    monkeypatch.setenv("DATABASE_URL", settings.db_url)
    monkeypatch.setenv("STORAGE_URL", settings.object_store_url)
    monkeypatch.setenv("DOODLE_HOME", str(settings.home))
    return CliRunner()


@pytest.mark.parametrize("form", ["simplified", "raw"])
def test_eval_prints_one_json_line_of_figures(runner, seed_version, shared_data, form):
    path = shared_data / "quickdraw" / form / "star.ndjson"
    result = runner.invoke(cli, ["eval", "--drawings", str(path)])
    assert result.exit_code == 0, result.output
    line = json.loads(result.output.strip().splitlines()[-1])
    assert line["model_version"] == seed_version
    assert line["n"] == len([x for x in path.read_text().splitlines() if x.strip()])
    assert line["top1"] >= 0.8 and line["top3"] >= line["top1"]
    assert line["top1"] <= line["map3"] <= line["top3"]
    assert set(line["per_word"]) == {"star"}


def test_eval_by_version_number_and_unknown_version(runner, seed_version, shared_data):
    path = str(shared_data / "quickdraw" / "simplified" / "cup.ndjson")
    ok = runner.invoke(cli, ["eval", "--drawings", path, "--model", str(seed_version)])
    assert ok.exit_code == 0, ok.output
    missing = runner.invoke(cli, ["eval", "--drawings", path, "--model", "999"])
    assert missing.exit_code != 0
    assert "no model version" in missing.output


def test_eval_on_a_database_never_migrated_says_what_to_do(
    scratch_database_url, settings, shared_data, monkeypatch
):
    monkeypatch.setenv("DATABASE_URL", scratch_database_url)
    monkeypatch.setenv("DOODLE_HOME", str(settings.home))
    path = str(shared_data / "quickdraw" / "simplified" / "cup.ndjson")
    result = CliRunner().invoke(cli, ["eval", "--drawings", path])
    assert result.exit_code == 1, result.output
    assert "the database holds no models yet: run `make run` once" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_eval_reads_npy_bitmaps_word_from_file_name_or_option(
    runner, seed_version, shared_data, tmp_path
):
    import numpy as np

    rows = np.load(shared_data / "quickdraw" / "bitmaps" / "star.npy")[400:430]
    named = tmp_path / "star.npy"
    np.save(named, rows)
    other = tmp_path / "rows.npy"
    np.save(other, rows[:10])
    by_name = runner.invoke(cli, ["eval", "--drawings", str(named)])
    assert by_name.exit_code == 0, by_name.output
    line = json.loads(by_name.output.strip().splitlines()[-1])
    assert line["n"] == 30 and set(line["per_word"]) == {"star"}
    assert line["top1"] >= 0.8
    by_option = runner.invoke(cli, ["eval", "--drawings", str(other), "--word", "star"])
    assert by_option.exit_code == 0, by_option.output
    assert json.loads(by_option.output.strip().splitlines()[-1])["per_word"]["star"]["n"] == 10


def test_eval_scores_several_sources_together(runner, seed_version, shared_data, tmp_path):
    import numpy as np

    npy = tmp_path / "apple.npy"
    np.save(npy, np.load(shared_data / "quickdraw" / "bitmaps" / "apple.npy")[400:410])
    ndjson = shared_data / "quickdraw" / "simplified" / "cup.ndjson"
    result = runner.invoke(cli, ["eval", "--drawings", str(npy), "--drawings", str(ndjson)])
    assert result.exit_code == 0, result.output
    line = json.loads(result.output.strip().splitlines()[-1])
    assert line["per_word"]["apple"]["n"] == 10 and line["per_word"]["cup"]["n"] == 25
    assert line["n"] == 35
    limited = runner.invoke(
        cli, ["eval", "--drawings", str(npy), "--drawings", str(ndjson), "--limit", "12"]
    )
    assert json.loads(limited.output.strip().splitlines()[-1])["n"] == 12
