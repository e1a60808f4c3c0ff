"""Readers of the public Quick, Draw! formats, from a local path or an http(s) URL.

Streamed: a deployment may read thousands of drawings per word straight from the dataset's
bucket, so nothing is read into memory whole.
"""

from __future__ import annotations

import gzip
import io
import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeGuard

import numpy as np

from ml.strokes import is_raw

URL_TIMEOUT_S = 60.0
BITMAP_SIDE = 28


@dataclass
class Drawing:
    word: str
    strokes: list[Any]
    key_id: str | None
    raw: bool


def _is_url(source: str | Path) -> bool:
    return isinstance(source, str) and source.startswith(("http://", "https://"))


@contextmanager
def _open_binary(source: str | Path) -> Iterator[IO[bytes]]:
    if _is_url(source):
        with urllib.request.urlopen(str(source), timeout=URL_TIMEOUT_S) as response:
            yield response
    else:
        with open(source, "rb") as handle:
            yield handle


def _valid_strokes(strokes: Any) -> TypeGuard[list[Any]]:
    return isinstance(strokes, list) and all(
        isinstance(s, list)
        and len(s) in (2, 3)
        and all(isinstance(row, list) and len(row) == len(s[0]) for row in s)
        for s in strokes
    )


def _parse_line(line: str, number: int, source: str | Path) -> Drawing:
    where = f"{source}, line {number}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not valid JSON ({exc.msg})") from exc
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object")
    word, strokes = record.get("word"), record.get("drawing")
    if not isinstance(word, str) or not word:
        raise ValueError(f"{where}: missing 'word'")
    if not _valid_strokes(strokes):
        raise ValueError(f"{where}: 'drawing' must be a list of [[x...], [y...](, [t...])]")
    key_id = record.get("key_id")
    return Drawing(
        word=word,
        strokes=strokes,
        key_id=None if key_id is None else str(key_id),
        raw=is_raw(strokes),
    )


def read_ndjson(source: str | Path) -> Iterator[Drawing]:
    """Drawings of a Quick, Draw! ndjson file (raw or simplified), one per non-blank line.

    Raises ValueError naming the line on a malformed line.
    """
    with _open_binary(source) as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8")
        for number, line in enumerate(text, start=1):
            if line.strip():
                yield _parse_line(line, number, source)


def _bitmap_source(source: str | Path, word: str) -> str | Path:
    """`source` itself, or `<word>.npy` inside it when it is a directory or a URL ending in /
    (in a directory, `<word>.npy.gz` when there is no `<word>.npy`)."""
    if _is_url(source):
        text = str(source)
        return text + urllib.parse.quote(f"{word}.npy") if text.endswith("/") else text
    path = Path(source)
    if not path.is_dir():
        return path
    plain = path / f"{word}.npy"
    packed = path / f"{word}.npy.gz"
    return packed if packed.is_file() and not plain.exists() else plain


def _is_gzip(location: str | Path) -> bool:
    name = urllib.parse.urlsplit(str(location)).path if _is_url(location) else str(location)
    return name.lower().endswith(".gz")


def read_bitmaps(source: str | Path, word: str) -> np.ndarray:
    """(N, 28, 28) uint8 from the dataset's `.npy` bitmaps ((N, 784) uint8, white on black),
    or the same file gzipped (`.npy.gz`, as the repository ships its sample).

    `source` is the .npy / .npy.gz file (path or URL) or the folder / base URL (ending in /)
    holding `<word>.npy`.
    """
    location = _bitmap_source(source, word)
    try:
        with _open_binary(location) as handle:
            # read_array works on streams (np.load wants a seekable file).
            if _is_gzip(location):
                with gzip.GzipFile(fileobj=handle) as unpacked:
                    array = np.lib.format.read_array(unpacked, allow_pickle=False)
            else:
                array = np.lib.format.read_array(handle, allow_pickle=False)
    except (ValueError, EOFError, gzip.BadGzipFile) as exc:
        raise ValueError(f"{location}: not a .npy array ({exc})") from exc
    side = BITMAP_SIDE * BITMAP_SIDE
    if array.dtype != np.uint8 or array.ndim != 2 or array.shape[1] != side:
        raise ValueError(
            f"{location}: expected (N, {side}) uint8 bitmaps of {word!r}, "
            f"got {array.shape} {array.dtype}"
        )
    return array.reshape(-1, BITMAP_SIDE, BITMAP_SIDE)
