"""The 500 simplified drawings of the seed's 20 words, posted through the real API."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests

from tests.fixtures.app import CLIENT_KEY


def test_seed_model_reaches_90_percent_through_the_api(stack, sample_drawings):
    stack.start_worker()
    stack.start_api()
    cases = [(word, d["drawing"]) for word, drawings in sample_drawings.items() for d in drawings]
    assert len(cases) == 500

    def post(case: tuple[str, list]) -> tuple[str, dict]:
        word, drawing = case
        with requests.Session() as http:
            response = http.post(
                f"{stack.base_url}/v1/recognitions",
                json={"drawing": drawing, "word": word},
                headers={"X-API-Key": CLIENT_KEY, "Prefer": "wait=10"},
                timeout=30,
            )
        assert response.status_code == 200, response.text
        return word, response.json()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(post, cases))
    assert all(body["status"] == "done" for _, body in results)
    top1 = sum(body["prediction"]["label"] == word for word, body in results) / len(results)
    print(f"top-1 through the API: {top1:.3f} on {len(results)} drawings")
    assert top1 >= 0.90
