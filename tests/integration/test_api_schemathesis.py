"""Schemathesis over /openapi.json, against the real app on real Postgres, Redis and S3:
every operation, client and admin, with valid keys; no 5xx and no answer that breaks the
document. Bounded: a few examples an operation, and waits cut to a fraction of a second."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import Case, GenerationMode

from api.openapi import openapi_document
from core.settings import Settings
from core.tasks import GUESS_QUEUE
from db.labels import is_word
from db.players import hash_secret, insert_player
from tests.fixtures.app import ADMIN_TOKEN, CLIENT_KEY
from workers.guess import GuessRequest, guess_batch
from workers.runtime import WorkerRuntime

AUTH = {"X-API-Key": CLIENT_KEY, "Authorization": f"Bearer {ADMIN_TOKEN}"}
# The player every generated doodle names, made before the run with a known secret.
PLAYER = "player-1"
PLAYER_SECRET = "schemathesis-player-secret"
# Links lead to players POST /v1/players made: the calls then carry every credential
# explicitly (the admin's token authorises the player routes; probes drop them all), so
# that the auth checks never judge a generated X-Player-Secret to be the one that worked.
STATEFUL_AUTH = {**AUTH, "X-Player-Secret": PLAYER_SECRET}

# Hypothesis warns when the global `random` state moves while it draws a case; in a full
# run, background threads of other fixtures (Prefect's server, object writers) do that.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")


@pytest.fixture
def guess_worker(redis_client, worker_runtime: WorkerRuntime) -> Iterator[None]:
    """A thread that answers live guesses as the guess worker does, so a guess gets its
    200 (and its answer is checked against the document) instead of a 503."""
    worker_runtime.models.current()  # load the model before the first guess waits on it
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            popped = redis_client.brpop([GUESS_QUEUE], timeout=0.1)
            if popped is not None:
                envelope = json.loads(popped[1])
                args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
                guess_batch(worker_runtime, [GuessRequest(*args)])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join()


@pytest.fixture
def contract_app(settings: Settings, seed_version: int, guess_worker: None) -> Iterator[Flask]:
    """The app with the seed model in production and a guess worker. Recognitions are
    not run (Prefer: wait is capped at 0.1 s: it would only time out). Rate limits off:
    schemathesis sends bursts, and wrong keys on purpose."""
    from api import create_app
    from api.resources import EXTENSION

    quick = replace(
        settings,
        max_wait_seconds=0.1,
        rate_recognitions=None,
        rate_guesses=None,
        rate_auth_failures=None,
        ready_min_workers=0,  # no batch worker runs here: readiness judges the services
    )
    app = create_app(quick)
    with app.extensions[EXTENSION].sessions.begin() as s:
        insert_player(s, PLAYER, hash_secret(PLAYER_SECRET))
    yield app
    app.extensions[EXTENSION].close()


@pytest.fixture
def api_schema(contract_app: Flask):
    return schemathesis.openapi.from_wsgi("/openapi.json", contract_app)


# One test an operation and mode (schemathesis' own pytest plugin does not run under
# pytest 9); negative cases only where there is something to send wrong.
RUNS = [
    (method.upper(), path, mode)
    for path, ops in openapi_document(Settings())["paths"].items()
    for method, op in ops.items()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or "parameters" in op or "requestBody" in op
]
BOUNDED = settings(
    max_examples=12,
    deadline=None,
    database=None,
    derandomize=True,  # the same cases every run: a failure here is reproducible
    suppress_health_check=list(HealthCheck),
)


def _text(value: Any, default: str) -> Any:
    """Stated in words: stripped, not blank, printable, its length counted lower-cased."""
    if not isinstance(value, str):
        return value
    kept = "".join(c for c in value if c.isprintable()).strip()[:32]
    return kept if kept and len(kept.lower()) <= 64 else default


def _word(value: Any, default: str) -> Any:
    """Stated in words: a label is a word (db.labels.is_word)."""
    if not isinstance(value, str):
        return value
    return value if is_word(value) else default


def _drawing(drawing: Any) -> Any:
    """Stated in words: one form for all strokes, rows of equal length, two distinct points."""
    if not (drawing and isinstance(drawing, list)):
        return drawing
    if not all(
        isinstance(x, list) for stroke in drawing if isinstance(stroke, list) for x in stroke
    ):
        return drawing  # not the schema's shape (a negative case): left as it is
    if not all(isinstance(stroke, list) and stroke for stroke in drawing):
        return drawing
    arity = len(drawing[0])
    strokes = []
    for stroke in drawing:
        stroke = [*stroke, [0], [0], [0]][:arity]
        length = min(len(row) for row in stroke)
        strokes.append([row[:length] for row in stroke])
    strokes.append([[0, 1], [0, 1], [0, 16]][:arity])  # two distinct points, whatever came
    return strokes


def follow_rules_stated_in_words(case: Case, cursors: set[str] | None = None) -> Case:
    """A schema-valid case, made to follow the rules the document states in descriptions
    (JSON Schema cannot say them), so that the app must accept it. `cursors`: the review
    list's cursors seen so far, the only ones it accepts."""
    body = case.body
    if isinstance(body, dict):
        if "drawing" in body:
            body["drawing"] = _drawing(body["drawing"])
        if "word" in body:
            body["word"] = _text(body["word"], "star")
        if "label" in body:
            # Stated in words: a label is a word, and a known one unless proposed as new.
            body["label"] = _word(body["label"], "cup")
            body["new_word"] = True
        consent = body.get("consent")
        if isinstance(consent, dict):
            consent["version"] = _text(consent.get("version"), "2026-11")
            consent["store"] = consent.get("store") or consent.get("train")  # train needs store
            if "drawing" in body:
                body["player_id"] = PLAYER  # consent needs a player
        if "drawing" in body and "player_id" in body:
            _as_the_player(case, body)  # a player_id needs the player's secret
    if case.query and "player_id" in case.query and case.operation.path == "/v1/recognitions":
        _as_the_player(case, case.query)
    if case.headers and "Idempotency-Key" in case.headers:
        # Stated in words: a key is sent again only with the same request.
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
    if case.query:
        if case.query.get("after") not in (cursors or set()):
            case.query.pop("after", None)  # a cursor is only ever one the list made
        for key, default in (("word", "star"), ("predicted", "star")):
            if key in case.query:
                case.query[key] = _text(case.query[key], default)
        if "label" in case.query:
            case.query["label"] = _word(case.query["label"], "cat")
        _in_order(case.query, "min_confidence", "max_confidence", float)
        _in_order(case.query, "since", "until", dt.datetime.fromisoformat)
    if case.path_parameters and "word" in case.path_parameters:
        case.path_parameters["word"] = _word(case.path_parameters["word"], "kiwi")
    return case


def _as_the_player(case: Case, named: dict[str, Any]) -> None:
    """Stated in words: a recognition names the player issued the id, with their secret."""
    named["player_id"] = PLAYER
    case.headers = {**(case.headers or {}), "X-Player-Secret": PLAYER_SECRET}


def _in_order(query: dict[str, Any], low: str, high: str, parse: Any) -> None:
    """Stated in words: a range's low end is not above its high end (a time range's is
    below it)."""
    if low not in query or high not in query:
        return
    try:
        a, b = parse(str(query[low])), parse(str(query[high]))
    except (TypeError, ValueError):
        return
    if a > b:
        query[low], query[high] = query[high], query[low]
    if a == b and parse is not float:
        del query[high]


@pytest.mark.parametrize(("method", "path", "mode"), RUNS, ids=[f"{m} {p} {g}" for m, p, g in RUNS])
def test_every_operation_keeps_the_contract(api_schema, method, path, mode):
    operation = api_schema[path][method]
    # Valid keys, fixed: negative cases then break the request, not the credentials.
    cases = operation.as_strategy(generation_mode=mode, headers=dict(AUTH))
    if mode is GenerationMode.POSITIVE:
        cases = cases.map(follow_rules_stated_in_words)

    @given(case=cases)
    @BOUNDED
    def check(case) -> None:
        case.call_and_validate(headers=AUTH)

    check()


def test_linked_calls_keep_the_contract(api_schema):
    """Stateful: follow the document's links (a created recognition is read back by its id;
    a page leads to the next), checking every answer on the way. Which links a run follows
    depends on what the other operations answered: that the recognition link works is
    checked for certain by the test below."""
    machine = api_schema.as_state_machine()

    cursors: set[str] = set()
    checked: list[str] = []  # the operations whose answers were checked

    class WithKeys(machine):  # type: ignore[misc,valid-type]
        def before_call(self, case: Case) -> None:
            follow_rules_stated_in_words(case, cursors)

        def after_call(self, response, case: Case) -> None:
            super().after_call(response, case)
            page = response.json() if response.status_code == 200 else None
            if isinstance(page, dict) and isinstance(page.get("next"), str):
                cursors.add(page["next"])
            checked.append(case.operation.label)

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"headers": STATEFUL_AUTH}

        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
            # Told the headers sent, the auth checks know the keys are valid ones.
            case.validate_response(
                response,
                additional_checks=additional_checks,
                headers=STATEFUL_AUTH,
                transport_kwargs=kwargs or None,
                recorder=self.recorder,
            )

    WithKeys.run(
        settings=settings(
            max_examples=20,
            stateful_step_count=8,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )
    assert len(checked) >= 20, checked  # every run made calls, and each answer was checked


def test_the_created_recognition_link_reads_it_back(contract_app: Flask):
    """The document's link from a created recognition to its read, followed as a client
    would: the expression it gives picks the id out of the answer, and the read finds it."""
    client = contract_app.test_client()
    document = client.get("/openapi.json").get_json()
    link = document["paths"]["/v1/recognitions"]["post"]["responses"]["202"]["links"]["read"]
    (read_path,) = [
        path
        for path, ops in document["paths"].items()
        if ops.get("get", {}).get("operationId") == link["operationId"]
    ]
    created = client.post(
        "/v1/recognitions",
        json={"word": "lightning", "drawing": [[[10, 60, 30, 90], [0, 60, 60, 140]]]},
        headers=AUTH,
    )
    assert created.status_code == 202, created.get_json()
    ((name, expression),) = link["parameters"].items()
    assert expression.startswith("$response.body#/")
    value = created.get_json()[expression.removeprefix("$response.body#/")]
    read = client.get(read_path.replace("{" + name + "}", str(value)), headers=AUTH)
    assert read.status_code == 200, read.get_json()
    assert read.get_json()["id"] == value == created.get_json()["id"]
