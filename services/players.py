"""Players' data rights: who they are (a keyed reference), their consent, their export.

What the player routes (api/players.py) and `doodle players` (cli/players.py) call. Each
operation owns its transaction and raises services.errors.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from core.settings import Settings


def _key_file(path: Path) -> bytes:
    """The key kept in `path`, created (random, readable by the owner only) on first use."""
    try:
        return path.read_text().strip().encode()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_text().strip().encode()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def receipt_key(settings: Settings) -> bytes:
    """DOODLE_RECEIPT_KEY, or the random key kept in $DOODLE_HOME/receipt.key."""
    if settings.receipt_key:
        return settings.receipt_key.encode()
    return _key_file(settings.home / "receipt.key")


def player_ref(settings: Settings, player_id: str) -> str:
    """A keyed hash of the player id: the same player, the same ref; the id cannot be
    recovered from it, nor guessed by hashing candidate ids without the key."""
    return hmac.new(receipt_key(settings), player_id.encode(), hashlib.sha256).hexdigest()
