"""`/v1/players`: a game gets a new player's id and secret (POST, with a client key);
`/v1/players/<id>/…`: a player's rights over their data: consent (Art. 7) and export
(Art. 15 and 20). The player proves who they are with the secret issued with their id
(X-Player-Secret); an admin token may act for them, and that is audited
(`api.auth.require_player`). `/v1/admin/players/<id>/secret` issues a new secret.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from api.auth import admin_actor, protect_admin_blueprint, require_client_key, require_player
from api.contract.parsing import Parser, read_body
from api.contract.requests import Consent, PlayerRequest
from api.errors import Conflict, InvalidRequest, NotFound, UnsupportedMediaType
from api.idempotency import check_same_request, mark_replayed, requested_claim
from api.resources import resources
from db.idempotency import KeyTaken, find_key
from db.players import NewPlayer
from services import players
from services.errors import InvalidConsent, UnknownPlayer

bp = Blueprint("players", __name__, url_prefix="/v1/players")
admin_bp = Blueprint("admin_players", __name__, url_prefix="/v1/admin/players")
protect_admin_blueprint(admin_bp)

_CONSENT: Parser[Consent] = Parser(Consent)
_NEW_PLAYER: Parser[PlayerRequest] = Parser(PlayerRequest)


@bp.after_request
def _player_challenge(response: Response) -> Response:
    # The shared error handler names the client key; these routes want the player's secret
    # (but a new player is asked for with a client key, as it says).
    if response.status_code == 401 and request.endpoint != "players.register":
        response.headers["WWW-Authenticate"] = 'ApiKey header="X-Player-Secret"'
    return response


def _new_player_request(data: bytes) -> PlayerRequest:
    if not data.strip():
        return PlayerRequest()
    if request.mimetype != "application/json":
        raise UnsupportedMediaType(
            "send the body as application/json (or none)", {"content_type": request.content_type}
        )
    return _NEW_PLAYER.json(data)


def _issued(player: NewPlayer) -> Response:
    response = jsonify({"player_id": player.id, "player_secret": player.secret})
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"  # the secret is shown once
    return response


@bp.post("")
def register() -> Response:
    """A new player: the server picks the id, so nobody can take a player's id before them
    and the answer never tells whether an id existed."""
    res = resources()
    settings = res.settings
    key = require_client_key(settings.client_keys, "players", settings.rate_recognitions)
    data = read_body(request, settings.max_body_bytes)
    body = _new_player_request(data)
    claim = requested_claim(settings, "createPlayer", data)
    consent = body.consent
    grant = (consent.version, consent.store, consent.train) if consent else None
    for _ in range(2):  # a key that expires or goes between the two statements: again
        try:
            player = players.register_player(
                res.sessions, settings, client_key_id=key, consent=grant, claim=claim
            )
        except KeyTaken:
            assert claim is not None
            with res.sessions() as s:
                stored = find_key(s, key, claim.key, claim.ttl_hours)
            if stored is None:
                continue
            check_same_request(stored, claim)
            return mark_replayed(_issued(players.replayed_player(settings, stored)))
        return _issued(player)
    raise Conflict("the Idempotency-Key changed hands meanwhile; send the request again", {})


def _consent(state: players.ConsentState) -> Response:
    return jsonify(players.consent_json(state))


@bp.get("/<player_id>/consent")
def read_consent(player_id: str) -> Response:
    require_player(player_id, "player.consent.read")
    try:
        return _consent(players.consent(resources().sessions, player_id))
    except UnknownPlayer:
        raise NotFound("no such player", {}) from None


@bp.put("/<player_id>/consent")
def grant_consent(player_id: str) -> Response:
    require_player(player_id, "player.consent.grant")
    res = resources()
    if request.mimetype != "application/json":
        raise InvalidRequest("send the grant as application/json", {"field": "body"})
    grant = _CONSENT.json(read_body(request, res.settings.max_body_bytes))
    try:
        state = players.grant_consent(
            res.sessions, player_id, version=grant.version, store=grant.store, train=grant.train
        )
    except UnknownPlayer:
        raise NotFound("no such player", {}) from None
    except InvalidConsent as exc:
        raise InvalidRequest(str(exc), {"field": "body"}) from None
    return _consent(state)


@bp.delete("/<player_id>/consent")
def withdraw_consent(player_id: str) -> Response:
    require_player(player_id, "player.consent.withdraw")
    try:
        return _consent(players.withdraw_consent(resources().sessions, player_id))
    except UnknownPlayer:
        raise NotFound("no such player", {}) from None


@bp.get("/<player_id>/export")
def export(player_id: str) -> Response:
    require_player(player_id, "player.export")
    res = resources()
    try:
        chunks = players.export(res.sessions, res.storage, player_id)
    except UnknownPlayer:
        raise NotFound("no such player", {}) from None
    response = Response(chunks, mimetype="application/json")
    response.headers["Content-Disposition"] = 'attachment; filename="player-export.json"'
    response.headers["Cache-Control"] = "no-store"
    return response


@admin_bp.post("/<player_id>/secret")
def reissue_secret(player_id: str) -> Response:
    res = resources()
    try:
        secret = players.reissue_secret(res.sessions, res.settings, player_id, actor=admin_actor())
    except UnknownPlayer:
        raise NotFound("no such player", {}) from None
    response = jsonify({"player_secret": secret})
    response.headers["Cache-Control"] = "no-store"
    return response
