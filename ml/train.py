"""Fine-tuning a parent model on new drawings without forgetting the old words.

Three guards against forgetting, all on by default:

- the caller mixes a replay sample of the parent's data into the training set;
- distillation: on every example the new model's logits for the parent's classes are pulled
  towards the parent's (KL between temperature-softened distributions, as in "Learning without
  Forgetting"), so what the parent knew about its words, including its doubts, is kept;
- the convolutions (the early layers' features) are frozen; only the linear layers train.

New words (labels the parent does not know) become new output rows, appended in sorted order;
the old rows start as the parent's exactly, and every linear layer trains. With frozen
convolutions and no shift augmentation the convolutions' output is computed once per example
and cached, so an epoch costs only the linear layers: 10,000 drawings x 8 epochs take about
11 s on 2 CPU cores (about 37 s with the convolutions trained too, about 65 s with shifts).

What makes 20 drawings of a new word enough (scripts/learning_bench.py measures it):
- each new word's drawing is added `new_word_copies` (20) more times, randomly mirrored, turned,
  scaled and moved (`augment_strength` 1.5 times the base ranges) and bent along a smooth field
  (`warp`, up to 1 pixel), the copies' ink matched to the drawings' (`match_ink`: resampling
  blurs lines), before the features are cached (ml.augment; the old words' drawings are many,
  and stay as drawn);
- new rows (ml.new_rows) start by weight imprinting (their drawings' mean features) and the
  cross-entropy weighs every class alike (`class_balance` 1), so a new word is heard over
  hundreds of replayed drawings of each old word; after training each new row is blended
  half-way back towards its drawings' mean features (`prototype_mix` 0.5);
- the learning rate starts at 1e-3 and falls to 0 on a cosine; distillation weighs 0.5;
- most of what the old words lose is drawings a new word wins: after training, each new word's
  bias is lowered until it wins at most `max_theft` (0.05 %) of the old words' training
  drawings.
With the defaults (12 epochs), on sets of five new words the defaults were not tuned on, one
cycle on 20 drawings a word gives the new words about 69 % top-1 on their held-out drawings
while the old words lose about 1.0 point (README, "Learning benchmark"). Training only
the new rows (`new_rows_only`, calibrated at CALIBRATION_THEFT) keeps the old words' outputs
exactly, but reaches only about 22 %.

Deterministic: the same inputs, config and torch build give bit-identical weights on CPU. The
global torch RNG is forked (callers' random state is untouched) and deterministic algorithms are
switched on for the duration of the call. Torch's thread count is set to `config.threads` for
the duration when given; run with the same thread count to reproduce weights bit for bit.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.settings import Settings
from ml.augment import augment, match_ink, shift
from ml.network import QuickDrawNet
from ml.new_rows import (
    blend_prototypes,
    calibrate_new_rows,
    freeze_all_but_new_rows,
    head_logits,
    imprint_new_rows,
)

Progress = Callable[[dict[str, Any]], None]
# At most this share of the old words' training drawings may be won by a new word.
CALIBRATION_THEFT = 0.02


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 12
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 1234
    freeze_convs: bool = True  # keep the early layers' features
    distill_weight: float = 0.5  # KL to the parent's outputs on the old classes
    temperature: float = 2.0
    weight_decay: float = 0.0  # AdamW's decoupled decay on the trained layers
    # Random shifts of up to this many pixels (0: none). Google's bitmaps are centred, so
    # shifts mostly cost time (they defeat the feature cache) for little gain.
    max_shift: int = 0
    # Weight each example's cross-entropy by its class's count ** -class_balance (normalised to
    # mean 1): 0 weighs every example alike, 1 every class alike. In between, a new word with 20
    # drawings is heard over a replay sample of 200 per old word without being pushed onto
    # look-alike old words' drawings.
    class_balance: float = 1.0
    imprint: bool = True  # start new rows from their drawings' mean features (see ml.new_rows)
    # Each new word's drawing is added this many more times, each copy randomly flipped,
    # turned, scaled, moved and bent (see ml.augment): 20 drawings are too few to tell a
    # word's shape from its drawers' habits. The old words' drawings stay as they are (they
    # are many), so the feature cache still works.
    new_word_copies: int = 20
    # Train only the new words' output rows: the old words' logits stay exactly the parent's,
    # so an old word's drawing can only change answer where a new word outscores it.
    new_rows_only: bool = False
    # After training, lower each new word's bias until it outscores the old words on at most
    # this share of their own training drawings (None: no calibration; new_rows_only always
    # uses CALIBRATION_THEFT). Most of what old words lose to a cycle is drawings a new word
    # wins, and training drawings are fitted better than others, hence the small share.
    max_theft: float | None = 0.0005
    threads: int | None = None  # torch threads while training (None: leave as is)
    # Anneal the learning rate to 0 over the epochs (cosine): a higher start (lr) learns the
    # new rows faster, the low end settles them without drifting the old words.
    cosine_lr: bool = True
    # After training, blend each new row with its drawings' mean hidden features (this share;
    # 0: none), scaled to the row's norm: a nearest-class-mean pull, so a row trained on 20
    # drawings leans less on their details.
    prototype_mix: float = 0.5
    # Multiplies the new words' copies' turn, scale and move ranges (see ml.augment).
    augment_strength: float = 1.5
    # Bends each copy along a smooth random field of up to this many pixels (0: none), as
    # another hand would draw the same lines (see ml.augment.augment).
    warp: float = 1.0
    # Maps the copies' pixel values back to the drawings' distribution: resampling blurs the
    # lines, which would tell copies from drawings (see ml.augment).
    match_ink: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_config(settings: Settings) -> TrainConfig:
    """The training config of the product's fine-tuning cycle (flows/finetune.py) and of the
    learning benchmark (scripts/learning_bench.py): one mapping, so the benchmark measures what
    the cycle does."""
    return TrainConfig(
        epochs=settings.train_epochs,
        seed=settings.train_seed,
        new_rows_only=settings.train_new_rows_only,
        # One thread: steadier on a busy 2-core machine, and needed for identical weights.
        threads=1,
    )


@dataclass
class TrainResult:
    model: QuickDrawNet
    classes: list[str]
    history: list[dict[str, Any]] = field(default_factory=list)  # per epoch: loss, accuracy...


def grow_classes(
    parent: QuickDrawNet, parent_classes: list[str], new_words: list[str]
) -> tuple[QuickDrawNet, list[str]]:
    """A copy of `parent` whose output layer has a row more for each new word.

    The old classes keep their weights and biases exactly (and their order); the new words
    (deduplicated, words the parent knows skipped) are appended in the order given. New rows get
    zero weights and the lowest of the old biases: at first every new word is as unlikely as the
    parent's least likely class on every drawing, so the old words' ranking is untouched, and the
    gradients (which differ per class) grow each row towards its own drawings.
    """
    head = parent.fc3[0]
    if not isinstance(head, nn.Linear):
        raise TypeError("expected the parent's fc3[0] to be a Linear layer")
    if head.out_features != len(parent_classes):
        raise ValueError(f"{len(parent_classes)} classes for {head.out_features} outputs")
    known = set(parent_classes)
    added = [w for w in dict.fromkeys(new_words) if w not in known]
    classes = list(parent_classes) + added
    model = QuickDrawNet(len(classes))
    state = {k: v.detach().clone() for k, v in parent.state_dict().items()}
    old_w, old_b = state.pop("fc3.0.weight"), state.pop("fc3.0.bias")
    weight = torch.zeros(len(classes), old_w.shape[1], dtype=old_w.dtype)
    bias = torch.full((len(classes),), float(old_b.min()), dtype=old_b.dtype)
    weight[: len(parent_classes)] = old_w
    bias[: len(parent_classes)] = old_b
    state["fc3.0.weight"], state["fc3.0.bias"] = weight, bias
    model.load_state_dict(state, strict=True)
    return model.train(parent.training), classes


@contextmanager
def _deterministic(seed: int, threads: int | None) -> Iterator[None]:
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    old_threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(was_deterministic)
            if threads is not None:
                torch.set_num_threads(old_threads)


def _inputs(bitmaps: np.ndarray, labels: Sequence[str]) -> torch.Tensor:
    array = np.asarray(bitmaps)
    if array.ndim != 3 or array.shape[1:] != (28, 28):
        raise ValueError(f"expected (N, 28, 28) bitmaps, got shape {array.shape}")
    if len(array) != len(labels):
        raise ValueError(f"{len(array)} bitmaps for {len(labels)} labels")
    if not len(array):
        raise ValueError("no training examples")
    if array.dtype != np.uint8:
        raise ValueError(f"expected uint8 bitmaps, got {array.dtype}")
    return torch.from_numpy(array.astype(np.float32) / 255.0).unsqueeze(1)


def _features(
    model: QuickDrawNet,
    x: torch.Tensor,
    batch: int = 1024,
    pause: Callable[[], None] | None = None,
) -> torch.Tensor:
    """The convolutions' flattened output (N, 1024), no gradients; `pause` between batches."""
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(model.conv2(model.conv1(x[i : i + batch])).flatten(1))
            if pause is not None:
                pause()
    return torch.cat(out)


def _class_weights(targets: torch.Tensor, num_classes: int, power: float) -> torch.Tensor:
    counts = torch.bincount(targets, minlength=num_classes).to(torch.float32)
    weights = torch.where(counts > 0, counts.clamp(min=1) ** -power, torch.zeros_like(counts))
    per_example = weights[targets]
    return weights * (len(targets) / per_example.sum())


def fine_tune(
    parent: QuickDrawNet,
    parent_classes: list[str],
    bitmaps: np.ndarray,
    labels: Sequence[str],
    config: TrainConfig = TrainConfig(),
    *,
    progress: Progress | None = None,
    pause: Callable[[], None] | None = None,
) -> TrainResult:
    """A new model fine-tuned from `parent` on uint8 (N, 28, 28) bitmaps and their words.

    Words not in `parent_classes` become new classes, appended in sorted order. The parent is
    not modified. `progress`, when given, is called after each epoch with a dict of `epoch`
    (1-based), `epochs`, `loss` (mean training loss), `accuracy` (training top-1, dropout on),
    `examples` and `seconds` (since the start). `pause`, when given, is called after each
    step (it may sleep: flows.throttle steps aside for serving; the weights do not change).
    """
    if config.epochs < 0 or config.batch_size < 1 or config.temperature <= 0:
        raise ValueError(f"bad training config: {config}")
    if not 0 <= config.class_balance <= 1:
        raise ValueError(f"class_balance must be in 0..1, got {config.class_balance}")
    if config.max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {config.max_shift}")
    if config.max_theft is not None and not 0 < config.max_theft <= 1:
        raise ValueError(f"max_theft must be in (0, 1], got {config.max_theft}")
    if config.new_word_copies < 0:
        raise ValueError(f"new_word_copies must be >= 0, got {config.new_word_copies}")
    if not 0 <= config.prototype_mix <= 1:
        raise ValueError(f"prototype_mix must be in 0..1, got {config.prototype_mix}")
    if config.augment_strength < 0:
        raise ValueError(f"augment_strength must be >= 0, got {config.augment_strength}")
    if config.warp < 0:
        raise ValueError(f"warp must be >= 0, got {config.warp}")
    x_all = _inputs(bitmaps, labels)
    new_words = sorted(set(labels) - set(parent_classes))
    started = time.perf_counter()
    with _deterministic(config.seed, config.threads):
        teacher = copy.deepcopy(parent).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        model, classes = grow_classes(teacher, parent_classes, new_words)
        model.train()
        index = {word: i for i, word in enumerate(classes)}
        targets = torch.tensor([index[w] for w in labels], dtype=torch.long)
        old = len(parent_classes)
        generator = torch.Generator().manual_seed(config.seed)
        fresh = targets >= old
        if config.new_word_copies and fresh.any():
            drawn = x_all[fresh]
            copies = augment(
                drawn.repeat(config.new_word_copies, 1, 1, 1),
                generator,
                config.augment_strength,
                config.warp,
            )
            if config.match_ink:
                copies = match_ink(copies, drawn)
            x_all = torch.cat([x_all, copies])
            targets = torch.cat([targets, targets[fresh].repeat(config.new_word_copies)])
        convs = [*model.conv1.parameters(), *model.conv2.parameters()]
        if config.freeze_convs:
            for p in convs:
                p.requires_grad_(False)
        if config.new_rows_only and config.weight_decay:
            raise ValueError("new_rows_only needs weight_decay=0 (decay would move old rows)")
        hooks = freeze_all_but_new_rows(model, old) if config.new_rows_only else []
        trained = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trained, lr=config.lr, weight_decay=config.weight_decay)
        class_weights = (
            _class_weights(targets, len(classes), config.class_balance)
            if config.class_balance
            else None
        )
        # Frozen convolutions and unshifted inputs: conv features and the teacher's logits are
        # the same every epoch, so compute them once.
        cached = config.freeze_convs and config.max_shift == 0
        feats = _features(model, x_all, pause=pause) if cached else None
        distill = config.distill_weight > 0 and old > 0
        teacher_logits = (
            head_logits(teacher, _features(teacher, x_all, pause=pause))
            if cached and distill
            else None
        )
        if config.imprint and len(classes) > old:
            model.eval()
            imprint_new_rows(
                model, feats if feats is not None else _features(model, x_all), targets, old
            )
            model.train()
        temperature = config.temperature
        n = len(targets)
        steps = config.epochs * math.ceil(n / config.batch_size)
        scheduler = (
            torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1))
            if config.cosine_lr
            else None
        )
        history: list[dict[str, Any]] = []
        for epoch in range(1, config.epochs + 1):
            order = torch.randperm(n, generator=generator)
            total_loss = 0.0
            correct = 0
            for start in range(0, n, config.batch_size):
                idx = order[start : start + config.batch_size]
                y = targets[idx]
                if feats is not None:
                    logits = head_logits(model, feats[idx])
                else:
                    x = x_all[idx]
                    if config.max_shift:
                        x = shift(x, config.max_shift, generator)
                    logits = model(x)
                loss = F.cross_entropy(logits, y, weight=class_weights)
                if distill:
                    if teacher_logits is not None:
                        soft = teacher_logits[idx]
                    else:
                        with torch.no_grad():
                            soft = teacher(x)
                    kl = F.kl_div(
                        F.log_softmax(logits[:, :old] / temperature, dim=1),
                        F.log_softmax(soft / temperature, dim=1),
                        reduction="batchmean",
                        log_target=True,
                    )
                    loss = loss + config.distill_weight * temperature**2 * kl
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                if pause is not None:
                    pause()
                total_loss += float(loss.detach()) * len(idx)
                correct += int((logits.detach().argmax(1) == y).sum())
            record = {
                "epoch": epoch,
                "epochs": config.epochs,
                "loss": total_loss / n,
                "accuracy": correct / n,
                "examples": n,
                "seconds": round(time.perf_counter() - started, 3),
            }
            if not math.isfinite(record["loss"]):
                raise FloatingPointError(f"training diverged at epoch {epoch}: {record}")
            history.append(record)
            if progress is not None:
                progress(dict(record))
        for hook in hooks:
            hook.remove()
        theft = CALIBRATION_THEFT if config.new_rows_only else config.max_theft
        blend = bool(config.prototype_mix) and len(classes) > old
        if blend or theft is not None:
            # The convolutions' output after training (the cache, when they were frozen):
            # both steps below change only the output layer, so it serves both.
            final = feats if feats is not None else _features(model, x_all)
            if blend:
                blend_prototypes(model.eval(), final, targets, old, config.prototype_mix)
            if theft is not None:
                calibrate_new_rows(model, final, targets, old, theft)
        for p in model.parameters():
            p.requires_grad_(True)
    return TrainResult(model=model.eval(), classes=classes, history=history)
