"""Players' data rights: who they are (a keyed reference), their consent, their export.

What the player routes (api/players.py) and `doodle players` (cli/players.py) call. Each
operation owns its transaction and raises services.errors.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import hashlib
import hmac
import json
import logging
import secrets
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core import segments
from core.kept_secrets import kept_secret
from core.settings import Settings
from core.storage import ObjectNotFound, ObjectStorage, StorageError
from db import players as db
from db.idempotency import KeyClaim, StoredKey
from db.models import Consent
from services.errors import InvalidConsent, UnknownPlayer

log = logging.getLogger(__name__)


def receipt_key(settings: Settings) -> bytes:
    """DOODLE_RECEIPT_KEY, or the random key kept in $DOODLE_HOME/receipt.key."""
    if settings.receipt_key:
        return settings.receipt_key.encode()
    key, _ = kept_secret(settings.home / "receipt.key", lambda: secrets.token_hex(32))
    return key.encode()


def player_ref(settings: Settings, player_id: str) -> str:
    """A keyed hash of the player id: the same player, the same ref; the id cannot be
    recovered from it, nor guessed by hashing candidate ids without the key."""
    return hmac.new(receipt_key(settings), player_id.encode(), hashlib.sha256).hexdigest()


def _audit(
    s: Session, settings: Settings, actor: str, action: str, player_id: str, details: dict
) -> None:
    db.audit(
        s,
        actor=actor,
        action=action,
        subject=f"player:{player_ref(settings, player_id)}",
        details=details,
    )


def admin_acts_for(
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    actor: str,
    action: str,
    player_id: str,
    details: dict[str, Any],
) -> None:
    """An admin acts for a player: the audit row names them by their keyed ref, never by
    id. Raises UnknownPlayer (nothing audited)."""
    with sessions.begin() as s:
        if db.find_player(s, player_id) is None:
            raise UnknownPlayer(f"no player {player_id!r}")
        _audit(s, settings, actor, action, player_id, details)


def reissue_secret(
    sessions: sessionmaker[Session], settings: Settings, player_id: str, *, actor: str
) -> str:
    """A new secret for the player (one made before secrets were issued, or one who lost
    theirs): the old one stops working. Audited. Returns it: it is shown once. Raises
    UnknownPlayer."""
    issued = db.issue_secret()
    with sessions.begin() as s:
        if not db.set_secret_hash(s, player_id, issued.hash):
            raise UnknownPlayer(f"no player {player_id!r}")
        _audit(s, settings, actor, "player.secret.reissue", player_id, {})
    return issued.secret


# -- new players ------------------------------------------------------------------------


def _derived_secret(settings: Settings, nonce: str) -> str:
    """The secret of a player made under an Idempotency-Key: the server's key and a random
    nonce kept with the key give it back to a retry, and nothing stores it (the nonce
    alone tells nothing; once the key is pruned, nothing can make it again)."""
    mac = hmac.new(receipt_key(settings), b"player-secret:" + nonce.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def register_player(
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    client_key_id: str,
    consent: tuple[str, bool, bool] | None = None,
    claim: KeyClaim | None = None,
) -> db.NewPlayer:
    """A new player, with an id the server chose, their secret (shown once) and their
    first consent grant (version, store, train) if given. Raises KeyTaken: `claim`'s key
    made something already (nothing was written)."""
    nonce = secrets.token_urlsafe(32) if claim else None
    secret = _derived_secret(settings, nonce) if nonce else secrets.token_urlsafe(32)
    player = db.NewPlayer(db.new_player_id(), secret)
    with sessions.begin() as s:
        db.insert_player(
            s,
            player.id,
            db.hash_secret(secret),
            consent=consent,
            client_key_id=client_key_id,
            claim=claim,
            nonce=nonce,
        )
    return player


def replayed_player(settings: Settings, stored: StoredKey) -> db.NewPlayer:
    """The player an Idempotency-Key made, with the secret its first answer gave."""
    assert stored.player_id is not None and stored.nonce is not None
    return db.NewPlayer(stored.player_id, _derived_secret(settings, stored.nonce))


# -- consent (Art. 7) -------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    version: str
    store: bool
    train: bool
    granted_at: dt.datetime
    withdrawn_at: dt.datetime | None


@dataclass(frozen=True)
class ConsentState:
    """The grant in force (None: nothing may be stored or trained) and every grant."""

    in_force: Grant | None
    history: list[Grant]  # oldest first


def _grant(c: Consent) -> Grant:
    return Grant(c.version, c.store, c.train, c.granted_at, c.withdrawn_at)


def _state(s: Session, player_id: str) -> ConsentState:
    history = [_grant(c) for c in db.consents_of(s, player_id)]
    # The latest grant not withdrawn (older data may hold several: the latest counts).
    in_force = next((g for g in reversed(history) if g.withdrawn_at is None), None)
    return ConsentState(in_force, history)


def _locked(s: Session, player_id: str) -> None:
    if not db.lock_player(s, player_id):
        raise UnknownPlayer(f"no player {player_id!r}")


def consent(sessions: sessionmaker[Session], player_id: str) -> ConsentState:
    with sessions() as s:
        if db.find_player(s, player_id) is None:
            raise UnknownPlayer(f"no player {player_id!r}")
        return _state(s, player_id)


def grant_consent(
    sessions: sessionmaker[Session], player_id: str, *, version: str, store: bool, train: bool
) -> ConsentState:
    """A new grant replaces the one in force (which gets its withdrawn_at); the same grant
    again changes nothing. Raises InvalidConsent (train without store), UnknownPlayer."""
    if train and not store:
        raise InvalidConsent("consent to train needs consent to store")
    if not version.strip():
        raise InvalidConsent("the consent text's version is blank")
    with sessions.begin() as s:
        _locked(s, player_id)
        current = _state(s, player_id).in_force
        if current and (current.version, current.store, current.train) == (version, store, train):
            return _state(s, player_id)
        db.withdraw_consents(s, player_id)
        db.add_consent(s, player_id, version, store, train)
        return _state(s, player_id)


def withdraw_consent(sessions: sessionmaker[Session], player_id: str) -> ConsentState:
    """No grant in force from now on: nothing more is stored, nothing earlier trained.
    Withdrawing again changes nothing. Raises UnknownPlayer."""
    with sessions.begin() as s:
        _locked(s, player_id)
        db.withdraw_consents(s, player_id)
        return _state(s, player_id)


def _grant_json(g: Grant) -> dict[str, Any]:
    return {
        "version": g.version,
        "store": g.store,
        "train": g.train,
        "granted_at": g.granted_at.isoformat(),
        "withdrawn_at": g.withdrawn_at.isoformat() if g.withdrawn_at else None,
    }


def consent_json(state: ConsentState) -> dict[str, Any]:
    """The document of `GET /v1/players/<id>/consent` (and of the export's consents)."""
    return {
        "in_force": _grant_json(state.in_force) if state.in_force else None,
        "history": [_grant_json(g) for g in state.history],
    }


# -- export (Art. 15 and 20) --------------------------------------------------------------

EXPORT_FORMAT = "doodle-player-export/1"


def _text(value: Any) -> str:
    return json.dumps(value, default=_plain, separators=(",", ":"))


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"cannot export a {type(value).__name__}")


class _Segments:
    """Reads the segments a player's doodles are in, keeping only the last one: a batch's
    doodles share a segment, and a player's doodles come in order."""

    def __init__(self, storage: ObjectStorage) -> None:
        self.storage = storage
        self.key: str | None = None
        self.data = b""

    def drawing(self, key: str, doodle_id: uuid.UUID) -> Any:
        if key != self.key:
            self.data = self.storage.get(key)
            self.key = key
        found = segments.find(self.data, doodle_id)
        return found.get("drawing") if found else None


def _held_object(read: Callable[[], Any]) -> Any:
    # An object gone meanwhile (an erasure, the retention) is no longer held: null.
    try:
        return read()
    except ObjectNotFound:
        return None


def _recognition(row: Any, stored: _Segments, storage: ObjectStorage) -> dict[str, Any]:
    # While not yet written to object storage the drawing is in the row; once written,
    # it is in its segment (many players' doodles: only this one's line is taken).
    drawing = row.payload
    if drawing is None and row.stored_at is not None and row.strokes_key:
        drawing = _held_object(lambda: stored.drawing(row.strokes_key, row.id))
    png = row.payload_png
    if png is None and row.stored_at is not None and row.png_key:
        png = _held_object(lambda: storage.get(row.png_key))
    return {
        "id": row.id,
        "created_at": row.created_at,
        "word": row.word,
        "input_format": row.input_format,
        "status": row.status,
        "finished_at": row.finished_at,
        "error": row.error,
        "prediction": (
            {"label": row.label, "confidence": row.confidence, "top": row.top}
            if row.label is not None
            else None
        ),
        "model_version": row.model_version_id,
        "timings": row.timings,
        "consent": {"store": row.consent_store, "train": row.consent_train},
        "stored_at": row.stored_at,
        "drawing": drawing,
        "png_base64": png,
        "raster_28x28_base64": row.bitmap,
    }


def _array(name: str, items: Iterable[Any]) -> Iterator[str]:
    """`,"name":[...]`, an item at a time (it follows the document's first fields)."""
    yield f',"{name}":['
    for n, item in enumerate(items):
        yield ("," if n else "") + _text(item)
    yield "]"


def export(
    sessions: sessionmaker[Session], storage: ObjectStorage, player_id: str
) -> Iterator[bytes]:
    """Everything held about the player, as one JSON document in chunks (a doodle at a
    time; rows come from server-side cursors, a batch at a time).

    Raises UnknownPlayer before the first chunk. An object gone meanwhile is exported as
    null; object storage failing midway ends the document early (invalid JSON: the
    reader knows it is incomplete)."""
    s = sessions()
    try:
        # One snapshot for the whole document, however long it takes to send.
        s.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        player = db.player_row(s, player_id)
        if player is None:
            raise UnknownPlayer(f"no player {player_id!r}")
    except BaseException:
        s.close()
        raise
    return _document(s, storage, player)


def _document(s: Session, storage: ObjectStorage, player: Any) -> Iterator[bytes]:
    with s:
        head = {
            "format": EXPORT_FORMAT,
            "exported_at": dt.datetime.now(dt.UTC),
            "player": {"id": player.id, "created_at": player.created_at},
            "consents": consent_json(_state(s, player.id)),
        }
        yield _text(head)[:-1].encode()  # the object stays open for the arrays
        stored = _Segments(storage)
        parts = [
            _array(
                "recognitions",
                (_recognition(r, stored, storage) for r in db.recognitions_of(s, player.id)),
            ),
            _array("labels", (r._asdict() for r in db.labels_of(s, player.id))),
            _array("reviews", (r._asdict() for r in db.reviews_of(s, player.id))),
            _array(
                "model_versions_trained_on",
                (
                    {"model_version": r.model_version_id, "recognition_id": r.recognition_id}
                    for r in db.trained_on(s, player.id)
                ),
            ),
        ]
        try:
            for part in parts:
                for piece in part:
                    yield piece.encode()
        except StorageError as exc:
            # Cut short, so the document is invalid JSON; the error's text names object
            # keys, which hold player ids: only its kind is logged.
            log.warning("export cut short: object storage failed (%s)", type(exc).__name__)
            return
        yield b"}"
