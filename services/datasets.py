"""Training data from the public Quick, Draw! dataset: what `doodle data import` does.

A source is a file, a folder (its *.ndjson and *.npy files) or an http(s) URL of
- ndjson, raw or simplified (the label is each line's `word`; `word` keeps only that word;
  raw drawings are simplified with the dataset's recipe), or
- .npy 28x28 bitmaps ((N, 784) uint8; the word is `word` or the file's name), or the same
  gzipped (.npy.gz). A local .npy(.gz) file whose folder holds a `manifest.json` of the
  form `{"words": {"<word>": {"start": n}}}` is read from row n on (the repository's
  sample, data/quickdraw/bitmaps, skips the rows that repeat its ndjson drawings).

The formats are parsed by `ml.datasets`; this module turns the drawings into rows. Each
drawing becomes a done recognition with origin `import`, its bitmap, and an `import`
label whose actor is the source. External ids (`quickdraw:<key_id>`,
`quickdraw-npy:<word>:<row>`) make a second import of the same drawings add nothing.

Each source is one transaction: a malformed line stops the import with its line number
and nothing of that source is kept (sources before it are).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import time
import urllib.error
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from db.datasets import ImportedDrawing, add_imports
from db.models import InputFormat
from ml.datasets import Drawing, read_bitmaps, read_ndjson
from ml.raster import rasterize
from ml.strokes import to_simplified
from services.errors import ServiceError

BATCH = 1000
MAX_WORD = 64  # recognitions.word, labels.label
MAX_ACTOR = 128  # labels.actor
FORMATS = (".ndjson", ".npy", ".npy.gz")
MANIFEST = "manifest.json"  # beside .npy files: the row each word's file starts at


class BadSource(ServiceError):
    """A source that is not there or whose format cannot be told; nothing was imported."""


class ImportFailed(ServiceError):
    """A source could not be imported; nothing of it was kept (the sources before it were)."""

    def __init__(self, message: str, source: str, report: ImportReport) -> None:
        super().__init__(message)
        self.source = source
        self.report = report  # what the sources before it imported


@dataclass
class WordCounts:
    imported: int = 0
    skipped: int = 0


@dataclass
class ImportReport:
    words: dict[str, WordCounts] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, word: str, seen: int, added: int) -> None:
        counts = self.words.setdefault(word, WordCounts())
        counts.imported += added
        counts.skipped += seen - added

    def as_dict(self) -> dict[str, object]:
        """As `doodle data import` prints it."""
        imported = sum(c.imported for c in self.words.values())
        skipped = sum(c.skipped for c in self.words.values())
        return {
            "imported": imported,
            "skipped": skipped,
            "words": {
                w: {"imported": c.imported, "skipped": c.skipped}
                for w, c in sorted(self.words.items())
            },
            "sources": self.sources,
            "seconds": round(self.seconds, 3),
            "drawings_per_second": round((imported + skipped) / self.seconds, 1)
            if self.seconds > 0
            else None,
        }


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _suffix(source: str) -> str:
    path = urllib.parse.urlsplit(source).path if _is_url(source) else source
    name = Path(path).name.lower()
    return ".npy.gz" if name.endswith(".npy.gz") else Path(name).suffix


def _stem(source: str) -> str:
    path = urllib.parse.unquote(urllib.parse.urlsplit(source).path) if _is_url(source) else source
    name = Path(path).name
    return name[: -len(".npy.gz")] if name.lower().endswith(".npy.gz") else Path(name).stem


def _start_row(source: str, word: str) -> int:
    """The first row to import of a local bitmap file: its folder's manifest.json says, for
    its word, `start` (0 without a manifest, or a manifest not of that form)."""
    if _is_url(source):
        return 0
    manifest = Path(source).parent / MANIFEST
    if not manifest.is_file():
        return 0
    try:
        entries = json.loads(manifest.read_text(encoding="utf-8")).get("words", {})
        start = entries.get(word, {}).get("start", 0) if isinstance(entries, dict) else 0
    except (ValueError, AttributeError) as exc:
        raise ValueError(f"{manifest}: not a manifest of bitmap files ({exc})") from exc
    if not isinstance(start, int) or start < 0:
        raise ValueError(f"{manifest}: {word!r} starts at {start!r}, not a row number")
    return start


def expand_sources(sources: Iterable[str]) -> list[str]:
    """Files and URLs as given; a folder becomes its .ndjson and .npy files, sorted.
    Raises BadSource."""
    out: list[str] = []
    for source in sources:
        if _is_url(source):
            if _suffix(source) not in FORMATS:
                raise BadSource(
                    f"{source}: cannot tell the format; expected a URL ending in .ndjson, .npy "
                    "or .npy.gz"
                )
            out.append(source)
            continue
        path = Path(source)
        if path.is_dir():
            found = sorted(str(p) for p in path.iterdir() if _suffix(str(p)) in FORMATS)
            if not found:
                raise BadSource(f"{source}: no .ndjson, .npy or .npy.gz files in this folder")
            out.extend(found)
        elif not path.is_file():
            raise BadSource(f"{source}: no such file or folder")
        elif _suffix(source) not in FORMATS:
            raise BadSource(
                f"{source}: cannot tell the format; expected a .ndjson, .npy or .npy.gz file"
            )
        else:
            out.append(source)
    return out


def _check_word(word: str, where: str) -> str:
    if not word or len(word) > MAX_WORD:
        raise ValueError(f"{where}: the word must be 1 to {MAX_WORD} characters, got {word!r}")
    return word


def _external_id(key_id: str | None, word: str, strokes: object) -> str:
    if key_id:
        return f"quickdraw:{key_id}"
    # No key_id: the drawing's content identifies it.
    content = json.dumps([word, strokes], separators=(",", ":"))
    return f"quickdraw-sha256:{hashlib.sha256(content.encode()).hexdigest()[:40]}"


def _numbered(source: str, drawings: Iterator[Drawing]) -> Iterator[tuple[int, Drawing]]:
    """(n, the n-th drawing); an error the reader did not place is placed at drawing n."""
    number = 0
    while True:
        try:
            drawing = next(drawings)
        except StopIteration:
            return
        except (ValueError, TypeError) as exc:
            if isinstance(exc, ValueError) and str(exc).startswith(f"{source}, line "):
                raise
            raise ValueError(f"{source}, drawing {number + 1}: unreadable strokes ({exc})") from exc
        number += 1
        yield number, drawing


def _ndjson_drawings(source: str, word: str | None, limit: int | None) -> Iterator[ImportedDrawing]:
    taken = 0
    for number, drawing in _numbered(source, read_ndjson(source)):
        if word is not None and drawing.word != word:
            continue
        if limit is not None and taken >= limit:
            return
        where = f"{source}, drawing {number}"
        _check_word(drawing.word, where)
        try:
            bitmap = rasterize(to_simplified(drawing.strokes))
        except (ValueError, TypeError, IndexError) as exc:
            raise ValueError(f"{where}: unreadable strokes ({exc})") from exc
        taken += 1
        yield ImportedDrawing(
            external_id=_external_id(drawing.key_id, drawing.word, drawing.strokes),
            word=drawing.word,
            bitmap=bitmap.tobytes(),
            input_format=InputFormat.raw if drawing.raw else InputFormat.simplified,
        )


def _npy_drawings(source: str, word: str | None, limit: int | None) -> Iterator[ImportedDrawing]:
    word = _check_word(word or _stem(source), source)
    bitmaps = read_bitmaps(source, word)
    # Row numbers stay the file's own: the same drawing keeps its external id whether the
    # sample or the dataset's whole file is imported.
    start = _start_row(source, _stem(source))
    stop = len(bitmaps) if limit is None else min(len(bitmaps), start + limit)
    for row in range(start, stop):
        yield ImportedDrawing(
            external_id=f"quickdraw-npy:{word}:{row}",
            word=word,
            bitmap=bitmaps[row].tobytes(),
            input_format=InputFormat.bitmap,
        )


def _actor(source: str) -> str:
    return source if len(source) <= MAX_ACTOR else "…" + source[-(MAX_ACTOR - 1) :]


def _batches(items: Iterator[ImportedDrawing], size: int) -> Iterator[list[ImportedDrawing]]:
    batch: list[ImportedDrawing] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def source_drawings(
    source: str, *, word: str | None = None, limit: int | None = None
) -> Iterator[ImportedDrawing]:
    """The drawings one source (a file or URL, not a folder) imports, as it imports them."""
    reader = _npy_drawings if _suffix(source) in (".npy", ".npy.gz") else _ndjson_drawings
    return reader(source, word, limit)


def import_source(
    s: Session, source: str, *, word: str | None = None, limit: int | None = None
) -> dict[str, tuple[int, int]]:
    """Import one source in the caller's transaction; word -> (seen, added)."""
    counts: dict[str, tuple[int, int]] = {}
    actor = _actor(source)
    for batch in _batches(source_drawings(source, word=word, limit=limit), BATCH):
        added = add_imports(s, batch, actor)
        for d in batch:
            seen, n = counts.get(d.word, (0, 0))
            counts[d.word] = (seen + 1, n)
        for w in added:
            seen, n = counts[w]
            counts[w] = (seen, n + 1)
    return counts


def import_sources(
    sessions: sessionmaker[Session],
    sources: Iterable[str],
    *,
    word: str | None = None,
    limit: int | None = None,
) -> ImportReport:
    """Import each source in a transaction of its own.

    Raises BadSource before importing anything, ImportFailed at the first source that
    fails (the sources before it stay imported; the report so far is in the message).
    """
    report = ImportReport()
    started = time.perf_counter()
    for source in expand_sources(sources):
        try:
            with sessions.begin() as s:
                counts = import_source(s, source, word=word, limit=limit)
        except (ValueError, OSError, http.client.HTTPException) as exc:
            if isinstance(exc, urllib.error.HTTPError):
                exc.close()  # the error holds the response open
            report.seconds = time.perf_counter() - started
            done = json.dumps(report.as_dict())
            raise ImportFailed(
                f"{exc}\nnothing from {source} was imported; imported before it: {done}",
                source,
                report,
            ) from exc
        for w, (seen, added) in counts.items():
            report.count(w, seen, added)
        report.sources.append(source)
    report.seconds = time.perf_counter() - started
    return report
