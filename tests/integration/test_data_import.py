"""`doodle data import` against real Postgres: every public format, files, folders, URLs."""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from cli.data import data_group
from core.settings import PROJECT_ROOT
from db.datasets import training_examples
from db.models import InputFormat, Label, LabelSource, Recognition, RecognitionOrigin
from ml.raster import rasterize

SAMPLE = PROJECT_ROOT / "data" / "quickdraw" / "simplified"


@pytest.fixture
def run(monkeypatch, database_url, db_session_factory, tmp_path):
    """Invoke `data ...` as the CLI would, on the test database."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DOODLE_HOME", str(tmp_path / "home"))

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(data_group, list(args))

    return invoke


def _report(result: Result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def _rows(session_factory) -> list[Recognition]:
    with session_factory() as s:
        return list(s.scalars(select(Recognition).order_by(Recognition.external_id)))


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_simplified_import_is_idempotent(run, db_session_factory, shared_data):
    source = shared_data / "quickdraw" / "simplified" / "cup.ndjson"
    first = _report(run("import", str(source)))
    assert first["words"] == {"cup": {"imported": 25, "skipped": 0}}
    assert (first["imported"], first["skipped"]) == (25, 0)
    second = _report(run("import", str(source)))
    assert second["words"] == {"cup": {"imported": 0, "skipped": 25}}

    rows = _rows(db_session_factory)
    assert len(rows) == 25
    drawings = {f"quickdraw:{d['key_id']}": d for d in _lines(source)}
    for row in rows:
        assert row.origin is RecognitionOrigin.import_
        assert row.status.value == "done" and row.word == "cup"
        assert row.input_format is InputFormat.simplified
        assert row.bitmap == rasterize(drawings[row.external_id]["drawing"]).tobytes()
        assert row.player_id is None and not row.consent_train
    with db_session_factory() as s:
        labels = s.execute(select(Label.label, Label.source, Label.actor)).all()
    assert len(labels) == 25
    assert set(labels) == {("cup", LabelSource.import_, str(source))}


def test_raw_import_then_its_simplified_twin_adds_nothing(run, db_session_factory, shared_data):
    raw = shared_data / "quickdraw" / "raw" / "hat.ndjson"
    simplified = shared_data / "quickdraw" / "simplified" / "hat.ndjson"
    assert _report(run("import", str(raw)))["words"] == {"hat": {"imported": 25, "skipped": 0}}
    assert _report(run("import", str(raw)))["words"] == {"hat": {"imported": 0, "skipped": 25}}
    # Same key_ids: the same drawings, whatever the format.
    assert _report(run("import", str(simplified)))["words"]["hat"]["imported"] == 0

    rows = _rows(db_session_factory)
    assert len(rows) == 25 and {r.input_format for r in rows} == {InputFormat.raw}
    twins = {f"quickdraw:{d['key_id']}": d["drawing"] for d in _lines(simplified)}
    # Raw drawings are simplified with the dataset's recipe: close to the twin's bitmap.
    diffs = [
        np.abs(
            np.frombuffer(r.bitmap, np.uint8).reshape(28, 28).astype(int)
            - rasterize(twins[r.external_id]).astype(int)
        ).mean()
        for r in rows
    ]
    assert float(np.mean(diffs)) < 10, diffs


def test_npy_import_is_idempotent_and_keeps_google_bitmaps(run, db_session_factory, shared_data):
    source = shared_data / "quickdraw" / "bitmaps" / "star.npy"
    google = np.load(source)
    first = _report(run("import", str(source), "--limit", "100"))
    assert first["words"] == {"star": {"imported": 100, "skipped": 0}}
    second = _report(run("import", str(source), "--limit", "150"))
    assert second["words"] == {"star": {"imported": 50, "skipped": 100}}

    rows = _rows(db_session_factory)
    assert len(rows) == 150
    for row in rows:
        assert row.input_format is InputFormat.bitmap and row.word == "star"
        index = int(row.external_id.rsplit(":", 1)[1])
        assert row.external_id == f"quickdraw-npy:star:{index}"
        assert row.bitmap == google[index].tobytes()

    # --word names the drawings of a file whose name is not the word.
    renamed = _report(run("import", str(source), "--word", "asterisk", "--limit", "3"))
    assert renamed["words"] == {"asterisk": {"imported": 3, "skipped": 0}}


def test_folder_of_the_shipped_sample(run, db_session_factory):
    report = _report(run("import", str(SAMPLE)))
    seed_words = json.loads((PROJECT_ROOT / "ml" / "seed" / "classes.json").read_text())
    assert sorted(report["words"]) == sorted(seed_words)
    assert all(c == {"imported": 25, "skipped": 0} for c in report["words"].values())
    print(f"\nimported {report['imported']} drawings: {report['drawings_per_second']}/s")
    with db_session_factory() as s:
        train = training_examples(s, golden_fraction=0.2)
    assert 300 < len(train) < 500  # the rest is golden


BITMAPS = PROJECT_ROOT / "data" / "quickdraw" / "bitmaps"


def test_the_shipped_bitmap_sample_skips_the_rows_that_repeat_the_ndjson_sample(
    run, db_session_factory, shared_data
):
    """data/quickdraw/bitmaps: the first rows of Google's files (up to 900), gzipped; where
    rows 0-24 are the drawings of simplified/<word>.ndjson again, the import starts at row 25
    (the same drawing on both sides of the golden split otherwise). A file's last 100 rows
    are never shipped: the benchmarks test on them."""
    entries = json.loads((BITMAPS / "manifest.json").read_text())["words"]
    starts = {w: e["start"] for w, e in entries.items()}
    shipped = {w: e["rows"] for w, e in entries.items()}
    assert {w for w, start in starts.items() if start} == {
        "apple",
        "book",
        "cloud",
        "scissors",
        "star",
        "tree",
    }
    report = _report(run("import", str(BITMAPS)))
    assert report["words"] == {
        w: {"imported": shipped[w] - s, "skipped": 0} for w, s in starts.items()
    }
    # A file named alone starts at its manifest's row too; nothing is imported twice.
    again = _report(run("import", str(BITMAPS / "apple.npy.gz"), str(SAMPLE / "apple.ndjson")))
    assert again["words"] == {"apple": {"imported": 25, "skipped": shipped["apple"] - 25}}

    rows = [r for r in _rows(db_session_factory) if r.input_format is InputFormat.bitmap]
    by_word: dict[str, list[int]] = {}
    for row in rows:
        by_word.setdefault(row.word, []).append(int(row.external_id.rsplit(":", 1)[1]))
    assert {w: sorted(r) for w, r in by_word.items()} == {
        w: list(range(s, shipped[w])) for w, s in starts.items()
    }
    # The shipped rows are Google's, row for row (ids keep the file's row numbers).
    google = {w: np.load(shared_data / "quickdraw" / "bitmaps" / f"{w}.npy") for w in starts}
    assert all(shipped[w] <= len(google[w]) - 100 for w in starts)
    for row in rows:
        index = int(row.external_id.rsplit(":", 1)[1])
        assert row.bitmap == google[row.word][index].tobytes()


def test_a_manifest_beside_npy_files_sets_their_start_row(run, tmp_path, db_session_factory):
    folder = tmp_path / "bitmaps"
    folder.mkdir()
    bitmaps = np.arange(6 * 784, dtype=np.int64).astype(np.uint8).reshape(6, 784)
    np.save(folder / "cup.npy", bitmaps)
    (folder / "manifest.json").write_text(json.dumps({"words": {"cup": {"start": 4}}}))
    report = _report(run("import", str(folder / "cup.npy"), "--limit", "1"))
    assert report["words"] == {"cup": {"imported": 1, "skipped": 0}}
    assert [r.external_id for r in _rows(db_session_factory)] == ["quickdraw-npy:cup:4"]

    (folder / "manifest.json").write_text(json.dumps({"words": {"cup": {"start": -1}}}))
    result = run("import", str(folder))
    assert result.exit_code == 1 and "not a row number" in result.output


def test_ndjson_word_filter_and_limit(run, tmp_path, shared_data):
    mixed = tmp_path / "mixed.ndjson"
    lines = [
        *(shared_data / "quickdraw" / "simplified" / "cup.ndjson").read_text().splitlines()[:5],
        *(shared_data / "quickdraw" / "simplified" / "hat.ndjson").read_text().splitlines()[:5],
    ]
    mixed.write_text("\n".join(lines) + "\n")
    assert _report(run("import", str(mixed), "--word", "hat", "--limit", "3"))["words"] == {
        "hat": {"imported": 3, "skipped": 0}
    }
    assert _report(run("import", str(mixed)))["words"] == {
        "cup": {"imported": 5, "skipped": 0},
        "hat": {"imported": 2, "skipped": 3},
    }


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_base(shared_data: Path) -> Iterator[str]:
    """http://127.0.0.1:PORT/ serving the shared data folder, for this test only."""
    handler = functools.partial(_QuietHandler, directory=str(shared_data / "quickdraw"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_import_from_http_urls(run, db_session_factory, http_base):
    report = _report(
        run(
            "import",
            f"{http_base}simplified/ice%20cream.ndjson",
            f"{http_base}bitmaps/tree.npy",
            "--limit",
            "10",
        )
    )
    assert report["words"] == {
        "ice cream": {"imported": 10, "skipped": 0},
        "tree": {"imported": 10, "skipped": 0},
    }
    assert report["sources"][0].endswith("ice%20cream.ndjson")
    assert _report(run("import", f"{http_base}bitmaps/tree.npy", "--limit", "10"))["skipped"] == 10
    assert len(_rows(db_session_factory)) == 20


def test_missing_url_is_a_clear_error(run, db_session_factory, http_base):
    result = run("import", f"{http_base}simplified/no-such-word.ndjson")
    assert result.exit_code == 1
    assert "404" in result.output and "nothing from" in result.output
    assert _rows(db_session_factory) == []


def test_malformed_line_keeps_nothing_of_that_file(run, db_session_factory, tmp_path, shared_data):
    good = shared_data / "quickdraw" / "simplified" / "cup.ndjson"
    lines = (shared_data / "quickdraw" / "simplified" / "hat.ndjson").read_text().splitlines()
    bad = tmp_path / "hat.ndjson"
    # Line 1502 is broken: the 1,501 drawings before it span two insert batches.
    broken = '{"word": "hat", "drawing": [[1, 2]'
    bad.write_text("\n".join([*(lines * 61)[:1501], broken]) + "\n")
    result = run("import", str(good), str(bad))
    assert result.exit_code == 1
    assert f"{bad}, line 1502: not valid JSON" in result.output
    assert f"nothing from {bad} was imported" in result.output
    # The file before it was committed; nothing of the bad one was.
    assert {r.word for r in _rows(db_session_factory)} == {"cup"}
    assert len(_rows(db_session_factory)) == 25


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"word": "hat"}\n', "line 1: 'drawing' must be"),
        ('{"drawing": [[[1, 2], [3, 4]]]}\n', "line 1: missing 'word'"),
        ("[1, 2]\n", "line 1: expected a JSON object"),
        (
            '{"word": "hat", "key_id": "1", "drawing": [[["a", "b"], [1, 2]]]}\n',
            "drawing 1: unreadable strokes",
        ),
        ('{"word": "' + "w" * 65 + '", "drawing": [[[1, 2], [3, 4]]]}\n', "1 to 64 characters"),
    ],
)
def test_bad_ndjson_content(run, db_session_factory, tmp_path, content, message):
    path = tmp_path / "bad.ndjson"
    path.write_text(content)
    result = run("import", str(path))
    assert result.exit_code == 1 and message in result.output, result.output
    assert _rows(db_session_factory) == []


def test_bad_npy_and_bad_sources(run, db_session_factory, tmp_path):
    wrong_shape = tmp_path / "cup.npy"
    np.save(wrong_shape, np.zeros((3, 10), np.uint8))
    result = run("import", str(wrong_shape))
    assert result.exit_code == 1 and "expected (N, 784) uint8" in result.output
    not_npy = tmp_path / "hat.npy"
    not_npy.write_bytes(b"not an array")
    result = run("import", str(not_npy))
    assert result.exit_code == 1 and "not a .npy array" in result.output

    result = run("import", str(tmp_path / "missing.ndjson"))
    assert result.exit_code == 2 and "no such file" in result.output
    (tmp_path / "notes.txt").write_text("hi")
    result = run("import", str(tmp_path / "notes.txt"))
    assert result.exit_code == 2 and "cannot tell the format" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("import", str(empty))
    assert result.exit_code == 2 and "no .ndjson, .npy or .npy.gz files" in result.output
    result = run("import", "https://example.invalid/cup.csv")
    assert result.exit_code == 2 and "cannot tell the format" in result.output
    assert _rows(db_session_factory) == []


def test_import_speed(run, db_session_factory, tmp_path, shared_data):
    """Thousands of drawings: simplified ndjson and npy bitmaps (rates printed with -s)."""
    lines = []
    for path in sorted((shared_data / "quickdraw" / "simplified").glob("*.ndjson"))[:120]:
        lines.extend(path.read_text().splitlines())
    big = tmp_path / "many.ndjson"
    big.write_text("\n".join(lines) + "\n")
    t0 = time.perf_counter()
    ndjson = _report(run("import", str(big)))
    t1 = time.perf_counter()
    npy = _report(run("import", str(shared_data / "quickdraw" / "bitmaps" / "book.npy")))
    t2 = time.perf_counter()
    print(
        f"\nndjson: {ndjson['imported']} drawings in {t1 - t0:.2f} s "
        f"({ndjson['imported'] / (t1 - t0):.0f}/s); "
        f"npy: {npy['imported']} in {t2 - t1:.2f} s ({npy['imported'] / (t2 - t1):.0f}/s)"
    )
    assert ndjson["imported"] == len(lines) and npy["imported"] == 4000
    with db_session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Recognition)) == len(lines) + 4000
