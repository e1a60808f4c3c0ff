"""The seed model, fed through our stroke and raster pipeline, keeps its published accuracy."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.datasets import Drawing, read_ndjson
from ml.evaluate import score
from ml.network import load_model, seed_classes, seed_weights_path
from ml.predict import Predictor
from ml.raster import rasterize_batch
from ml.strokes import simplify

# About 0.95 measured on both; a careless rasteriser falls under 0.60.
MIN_TOP1 = 0.90


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    classes = seed_classes()
    return Predictor(load_model(seed_weights_path().read_bytes(), len(classes)), classes)


def _drawings(folder: Path) -> list[Drawing]:
    return [d for word in seed_classes() for d in read_ndjson(folder / f"{word}.ndjson")]


def _summary(name: str, result: dict) -> str:
    return (
        f"{name}: n={result['n']} top1={result['top1']} top3={result['top3']} map3={result['map3']}"
    )


def test_seed_accuracy_on_simplified(predictor: Predictor, shared_data: Path) -> None:
    drawings = _drawings(shared_data / "quickdraw" / "simplified")
    predictions = predictor.predict(rasterize_batch(d.strokes for d in drawings))
    result = score(predictions, [d.word for d in drawings])
    print(_summary("simplified", result))
    assert result["n"] == 500
    assert set(result["per_word"]) == set(seed_classes())
    assert result["top1"] <= result["top3"] and result["top1"] <= result["map3"] <= result["top3"]
    assert result["top1"] >= MIN_TOP1


def test_seed_accuracy_on_raw_through_simplify(predictor: Predictor, shared_data: Path) -> None:
    drawings = _drawings(shared_data / "quickdraw" / "raw")
    assert all(d.raw for d in drawings)
    predictions = predictor.predict(rasterize_batch(simplify(d.strokes) for d in drawings))
    result = score(predictions, [d.word for d in drawings])
    print(_summary("raw", result))
    assert result["top1"] >= MIN_TOP1
    top = predictions[0].as_dict()["top"]
    assert len(top) == 3 and top[0]["confidence"] >= top[1]["confidence"] >= top[2]["confidence"]
