"""`X-Request-ID` in and out: every response names its request, and every log line the
request causes (here, and in the worker about its doodle) carries the same id."""

from __future__ import annotations

from flask import Flask, Response, g, request

from core.logs import accept_request_id, current_request_id, reset_request_id, set_request_id


def register_request_ids(app: Flask) -> None:
    @app.before_request
    def _name_the_request() -> None:
        g.request_id_token = set_request_id(accept_request_id(request.headers.get("X-Request-ID")))

    @app.after_request
    def _answer_with_it(response: Response) -> Response:
        rid = current_request_id()
        if rid:
            response.headers["X-Request-ID"] = rid
        return response

    @app.teardown_request
    def _forget_it(_: BaseException | None) -> None:
        # gthread reuses threads: the next request must not inherit this id.
        token = g.pop("request_id_token", None)
        if token is not None:
            reset_request_id(token)
