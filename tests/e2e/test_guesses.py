"""Live guesses through real processes: the API and a worker of their own (`--queues guesses`)."""

from __future__ import annotations

import requests

from tests.fixtures.app import CLIENT_KEY


def test_guesses_while_drawing_come_from_the_guess_worker(stack, sample_drawings):
    # Only a guesser here: the API is ready without a recognitions worker.
    stack.start("guesser", "worker", "--queues", "guesses", "--pool", "solo")
    stack.wait_worker_ready("guesser")
    stack.start_api(DOODLE_READY_MIN_WORKERS="0")
    drawing = sample_drawings["star"][0]["drawing"]
    answers = []
    with requests.Session() as http:
        # As the player draws: the strokes so far, one more each time.
        for k in range(1, len(drawing) + 1):
            response = http.post(
                f"{stack.base_url}/v1/guesses",
                json={"drawing": drawing[:k]},
                headers={"X-API-Key": CLIENT_KEY},
                timeout=10,
            )
            assert response.status_code == 200, (response.text, stack.tail("guesser"))
            answers.append(response.json())
    assert all(len(a["guesses"]) == 3 for a in answers)
    assert answers[-1]["guesses"][0]["label"] == "star"
