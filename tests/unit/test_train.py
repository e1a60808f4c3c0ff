"""Growing the output layer and fine-tuning (small synthetic data, CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ml.network import QuickDrawNet
from ml.train import TrainConfig, fine_tune, grow_classes

OLD = ["circle", "cross", "bar"]
FAST = TrainConfig(epochs=2, batch_size=16, seed=3)


def _parent() -> QuickDrawNet:
    torch.manual_seed(0)
    return QuickDrawNet(len(OLD)).eval()


def _data(n: int = 12) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(0)
    words = [*OLD, "zebra", "apple"]
    labels = [words[i % len(words)] for i in range(n * len(words))]
    bitmaps = np.zeros((len(labels), 28, 28), dtype=np.uint8)
    for i, word in enumerate(labels):
        k = words.index(word)
        bitmaps[i, 4 + 4 * k : 8 + 4 * k, 4:24] = 255  # a bar per word, shifted a little
        bitmaps[i] = np.roll(bitmaps[i], int(rng.integers(-1, 2)), axis=1)
    return bitmaps, labels


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_grow_keeps_old_rows_exactly() -> None:
    parent = _parent()
    before = {k: v.clone() for k, v in parent.state_dict().items()}
    grown, classes = grow_classes(parent, OLD, ["zebra", "bar", "apple", "zebra"])
    assert classes == [*OLD, "zebra", "apple"]  # known words skipped, duplicates dropped
    state = grown.state_dict()
    assert _same(parent.state_dict(), before)  # parent untouched
    for key, value in before.items():
        if key.startswith("fc3"):
            assert torch.equal(state[key][: len(OLD)], value)
            assert state[key].shape[0] == len(classes)
        else:
            assert torch.equal(state[key], value)
    assert torch.count_nonzero(state["fc3.0.weight"][len(OLD) :]) == 0
    assert torch.all(state["fc3.0.bias"][len(OLD) :] == before["fc3.0.bias"].min())
    # The old classes' ranking is untouched: no new word outranks the parent's top class.
    x = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        old_logits, new_logits = parent(x), grown.eval()(x)
    # (a wider matmul may round differently in the last bit)
    assert torch.allclose(new_logits[:, : len(OLD)], old_logits, atol=1e-6)
    assert torch.equal(new_logits.argmax(1), old_logits.argmax(1))


def test_grow_without_new_words_is_a_copy() -> None:
    parent = _parent()
    grown, classes = grow_classes(parent, OLD, [])
    assert classes == OLD and grown is not parent
    assert _same(grown.state_dict(), parent.state_dict())


def test_grow_rejects_mismatched_classes() -> None:
    with pytest.raises(ValueError):
        grow_classes(_parent(), ["only one"], ["x"])


def test_fine_tune_adds_sorted_new_classes_and_reports_progress() -> None:
    parent = _parent()
    before = {k: v.clone() for k, v in parent.state_dict().items()}
    bitmaps, labels = _data()
    seen: list[dict] = []
    result = fine_tune(parent, OLD, bitmaps, labels, FAST, progress=seen.append)
    assert result.classes == [*OLD, "apple", "zebra"]
    assert [p["epoch"] for p in seen] == [1, 2]
    assert all({"epoch", "loss", "accuracy"} <= p.keys() for p in seen)
    assert all(isinstance(p["loss"], float) and 0 <= p["accuracy"] <= 1 for p in seen)
    assert result.history == seen
    assert not result.model.training
    assert _same(parent.state_dict(), before)
    assert all(p.requires_grad for p in result.model.parameters())
    state = result.model.state_dict()
    # Frozen convolutions: the early layers' features are the parent's.
    assert torch.equal(state["conv1.0.weight"], before["conv1.0.weight"])
    assert torch.equal(state["conv2.0.weight"], before["conv2.0.weight"])
    assert not torch.equal(state["fc1.0.weight"], before["fc1.0.weight"])


def test_fine_tune_learns_the_toy_task() -> None:
    bitmaps, labels = _data()
    # The toy's words differ only by where their bar is, which augmentation moves: no copies.
    config = TrainConfig(epochs=15, batch_size=16, lr=3e-3, seed=1, new_word_copies=0)
    result = fine_tune(_parent(), OLD, bitmaps, labels, config)
    with torch.no_grad():
        x = torch.from_numpy(bitmaps.astype(np.float32) / 255).unsqueeze(1)
        predicted = [result.classes[i] for i in result.model(x).argmax(1).tolist()]
    accuracy = np.mean([p == t for p, t in zip(predicted, labels, strict=True)])
    assert accuracy >= 0.9


@pytest.mark.parametrize(
    "config",
    [
        FAST,
        TrainConfig(epochs=2, batch_size=16, seed=3, freeze_convs=False, max_shift=1),
        TrainConfig(epochs=2, batch_size=16, seed=3, imprint=False, class_balance=0.0),
    ],
)
def test_fine_tune_is_deterministic(config: TrainConfig) -> None:
    bitmaps, labels = _data()
    torch.manual_seed(99)
    outside = torch.rand(3)
    first = fine_tune(_parent(), OLD, bitmaps, labels, config)
    second = fine_tune(_parent(), OLD, bitmaps, labels, config)
    assert _same(first.model.state_dict(), second.model.state_dict())
    assert first.history == [
        {**h, "seconds": s["seconds"]} for h, s in zip(second.history, first.history, strict=True)
    ]
    # The caller's random state and torch's global switches are left alone.
    torch.manual_seed(99)
    assert torch.equal(torch.rand(3), outside)
    assert not torch.are_deterministic_algorithms_enabled()
    other = fine_tune(_parent(), OLD, bitmaps, labels, TrainConfig(epochs=2, batch_size=16, seed=4))
    assert not _same(first.model.state_dict(), other.model.state_dict())


def test_threads_are_restored() -> None:
    threads = torch.get_num_threads()
    bitmaps, labels = _data(2)
    fine_tune(_parent(), OLD, bitmaps, labels, TrainConfig(epochs=1, threads=1))
    assert torch.get_num_threads() == threads


def test_fine_tune_without_new_words_keeps_the_classes() -> None:
    bitmaps, labels = _data()
    keep = [i for i, w in enumerate(labels) if w in OLD]
    result = fine_tune(_parent(), OLD, bitmaps[keep], [labels[i] for i in keep], FAST)
    assert result.classes == OLD


@pytest.mark.parametrize(
    ("bitmaps", "labels"),
    [
        (np.zeros((2, 28, 28), np.uint8), ["circle"]),  # count mismatch
        (np.zeros((1, 32, 32), np.uint8), ["circle"]),  # wrong size
        (np.zeros((1, 28, 28), np.float32), ["circle"]),  # not uint8
        (np.zeros((0, 28, 28), np.uint8), []),  # nothing to learn from
    ],
)
def test_fine_tune_rejects_bad_input(bitmaps: np.ndarray, labels: list[str]) -> None:
    with pytest.raises(ValueError):
        fine_tune(_parent(), OLD, bitmaps, labels, FAST)


def test_new_words_drawings_are_added_as_augmented_copies() -> None:
    bitmaps, labels = _data()
    new = sum(w not in OLD for w in labels)
    result = fine_tune(_parent(), OLD, bitmaps, labels, TrainConfig(epochs=1, new_word_copies=3))
    assert result.history[0]["examples"] == len(labels) + 3 * new
    plain = fine_tune(_parent(), OLD, bitmaps, labels, TrainConfig(epochs=1, new_word_copies=0))
    assert plain.history[0]["examples"] == len(labels)


@pytest.mark.parametrize("change", [{"warp": 0.0}, {"match_ink": False}])
def test_the_copies_warp_and_ink_matching_change_what_is_learnt(change: dict[str, object]) -> None:
    bitmaps, labels = _data()
    config = TrainConfig(epochs=1, batch_size=16, seed=3, new_word_copies=2)
    assert config.warp > 0 and config.match_ink  # the defaults
    default = fine_tune(_parent(), OLD, bitmaps, labels, config)
    changed = fine_tune(
        _parent(), OLD, bitmaps, labels, TrainConfig(**{**config.as_dict(), **change})
    )
    assert not _same(default.model.state_dict(), changed.model.state_dict())


def test_new_words_win_at_most_max_theft_of_the_old_training_drawings() -> None:
    bitmaps, labels = _data(40)
    config = TrainConfig(epochs=3, batch_size=16, seed=3, max_theft=0.05)
    result = fine_tune(_parent(), OLD, bitmaps, labels, config)
    old = [i for i, w in enumerate(labels) if w in OLD]
    with torch.no_grad():
        x = torch.from_numpy(bitmaps[old].astype(np.float32) / 255).unsqueeze(1)
        winners = result.model(x).argmax(1)
    stolen = float((winners >= len(OLD)).float().mean())
    assert stolen <= 0.05


@pytest.mark.parametrize(
    "config",
    [
        TrainConfig(new_word_copies=-1),
        TrainConfig(max_theft=0.0),
        TrainConfig(max_theft=1.5),
        TrainConfig(prototype_mix=-0.1),
        TrainConfig(prototype_mix=1.5),
        TrainConfig(augment_strength=-1.0),
        TrainConfig(warp=-0.5),
    ],
)
def test_bad_new_word_settings_are_refused(config: TrainConfig) -> None:
    bitmaps, labels = _data(2)
    with pytest.raises(
        ValueError, match=r"new_word_copies|max_theft|prototype_mix|augment_str|warp"
    ):
        fine_tune(_parent(), OLD, bitmaps, labels, config)


def test_prototype_mix_pulls_new_rows_towards_their_drawings_mean() -> None:
    bitmaps, labels = _data()
    base = TrainConfig(
        epochs=2, batch_size=16, seed=3, max_theft=None, prototype_mix=0.0, new_word_copies=0
    )
    plain = fine_tune(_parent(), OLD, bitmaps, labels, base)
    mixed = fine_tune(
        _parent(), OLD, bitmaps, labels, TrainConfig(**{**base.as_dict(), "prototype_mix": 1.0})
    )
    old = len(OLD)
    w_plain, w_mixed = plain.model.fc3[0].weight, mixed.model.fc3[0].weight
    assert torch.equal(w_plain[:old], w_mixed[:old])  # old rows untouched
    assert not torch.equal(w_plain[old:], w_mixed[old:])
    # With share 1 each new row is its drawings' mean hidden features, at the row's norm.
    x = torch.from_numpy(bitmaps.astype(np.float32) / 255).unsqueeze(1)
    model = mixed.model.eval()
    with torch.no_grad():
        hidden = model.fc2(model.fc1(model.conv2(model.conv1(x)).flatten(1)))
        for k, word in enumerate(mixed.classes[old:], start=old):
            mine = torch.tensor([w == word for w in labels])
            mean = hidden[mine].mean(0)
            cos = F.cosine_similarity(w_mixed[k], mean, dim=0)
            assert float(cos) > 0.999
            assert torch.allclose(w_mixed[k].norm(), w_plain[k].norm(), rtol=1e-4)


def test_a_pause_runs_after_every_step_and_feature_batch_and_changes_nothing_learnt() -> None:
    bitmaps, labels = _data()
    pauses: list[int] = []
    paused = fine_tune(_parent(), OLD, bitmaps, labels, FAST, pause=lambda: pauses.append(1))
    plain = fine_tune(_parent(), OLD, bitmaps, labels, FAST)
    examples = paused.history[0]["examples"]
    steps_per_epoch = -(-examples // FAST.batch_size)
    feature_batches = 2 * -(-examples // 1024)  # the model's and the teacher's, cached once
    assert len(pauses) == FAST.epochs * steps_per_epoch + feature_batches
    assert _same(paused.model.state_dict(), plain.model.state_dict())
