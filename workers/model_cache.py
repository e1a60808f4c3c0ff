"""The production model, loaded once per worker process and swapped when the alias moves."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core.storage import ObjectStorage, StorageError
from db.registry import Alias
from ml.predict import Predictor
from services import artifacts

log = logging.getLogger(__name__)


class NoModel(RuntimeError):
    """No version carries the alias yet (run `doodle models import ... --alias production`)."""


@dataclass(frozen=True)
class LoadedModel:
    version_id: int
    classes: list[str]
    predictor: Predictor


class ModelCache:
    """Answers `current()` from memory; looks at the alias at most every `check_seconds`."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        storage: ObjectStorage,
        *,
        alias: str = Alias.PRODUCTION,
        check_seconds: float = 2.0,
        cache_dir: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session_factory = session_factory
        self._storage = storage
        self._alias = str(alias)  # a plain name in messages, not the enum's repr
        self._check_seconds = check_seconds
        self._cache_dir = cache_dir
        self._clock = clock
        self._loaded: LoadedModel | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def current(self) -> LoadedModel:
        if self._loaded is None or self._clock() - self._checked_at >= self._check_seconds:
            with self._lock:
                try:
                    self._refresh()
                except (OperationalError, StorageError) as exc:
                    if self._loaded is None:
                        raise
                    # The model in hand still answers; look again at the next check.
                    log.warning("could not check the %r alias: %s", self._alias, exc)
                    self._checked_at = self._clock()
        assert self._loaded is not None
        return self._loaded

    def _refresh(self) -> None:
        ref = artifacts.alias_ref(self._session_factory, self._alias)
        if ref is None:
            raise NoModel(f"no model version has the alias {self._alias!r}")
        if self._loaded is None or self._loaded.version_id != ref.version_id:
            started = time.perf_counter()
            model = artifacts.load(self._storage, ref, self._cache_dir)
            # Swap in one assignment: a request sees either the old or the new model.
            self._loaded = LoadedModel(ref.version_id, ref.classes, Predictor(model, ref.classes))
            log.info(
                "loaded model version %s (%s classes) in %.0f ms",
                ref.version_id,
                len(ref.classes),
                (time.perf_counter() - started) * 1000,
            )
        self._checked_at = self._clock()
