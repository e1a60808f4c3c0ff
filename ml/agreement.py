"""Do a prompt's drawings agree with each other? The evidence for a word the model cannot know.

For a prompt word the production model does not know, its softmax over the words it does know
says nothing about the prompt: a drawing of a cat is "confidently" a hat. What does say
something is how a drawing sits among the other drawings of the same prompt: players drawing
"cat" draw alike, and a scribble or a drawing of something else sits apart.

Each drawing is placed in the model's feature space (the convolutions' output: the layers the
fine-tune keeps frozen, so the same space for every version of a lineage), centred on the mean
of many words' drawings (the known words' references) and scaled to unit length. A prompt's
centre is the mean direction of its drawings after trimming the farthest `TRIM` share
(twice), so a few junk doodles do not drag it. A drawing is an outlier when its cosine to the
centre falls below the group's median by more than `fence` robust standard deviations
(1.4826 x MAD).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ml.network import QuickDrawNet

TRIM = 0.2
MAD_TO_SD = 1.4826


def conv_features(model: QuickDrawNet, bitmaps: np.ndarray, batch: int = 1024) -> np.ndarray:
    """(N, 1024) float32: the convolutions' flattened output for uint8 (N, 28, 28) bitmaps."""
    out = []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(bitmaps), batch):
            x = torch.from_numpy(bitmaps[start : start + batch].astype(np.float32) / 255.0)
            out.append(model.conv2(model.conv1(x.unsqueeze(1))).flatten(1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 64 * 4 * 4), np.float32)


def unit_rows(rows: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Rows centred on `origin` and scaled to unit length: directions to compare by cosine."""
    centred = rows - origin
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    return centred / np.clip(norms, 1e-12, None)


def robust_centre(directions: np.ndarray) -> np.ndarray:
    """The mean direction of unit rows, twice recomputed without the farthest TRIM share."""
    centre = directions.mean(0)
    for _ in range(2):
        centre /= max(float(np.linalg.norm(centre)), 1e-12)
        cosines = directions @ centre
        keep = cosines >= np.quantile(cosines, TRIM)
        centre = directions[keep].mean(0)
    return centre / max(float(np.linalg.norm(centre)), 1e-12)


@dataclass(frozen=True)
class Agreement:
    """One drawing against the other drawings of its prompt."""

    cosine: float  # to the prompt's centre
    floor: float  # below this the drawing is an outlier
    group: int  # how many drawings the prompt's centre was taken over

    @property
    def outlier(self) -> bool:
        return self.cosine < self.floor

    def describe(self, word: str) -> str:
        return (
            f"unlike the other {self.group - 1} drawings of {word!r} "
            f"(cosine {self.cosine:.2f} to their centre, below {self.floor:.2f})"
        )


def word_centres(directions: np.ndarray, words: Sequence[str]) -> dict[str, np.ndarray]:
    """Each word's robust centre (e.g. the known words', from their drawings)."""
    rows: dict[str, list[int]] = {}
    for i, word in enumerate(words):
        rows.setdefault(word, []).append(i)
    return {word: robust_centre(directions[idx]) for word, idx in rows.items()}


def agreements(
    directions: np.ndarray, words: Sequence[str], *, judged: Sequence[bool], fence: float
) -> list[Agreement | None]:
    """Per row of unit directions (`unit_rows`): how it agrees with the rows of the same
    word (None where not `judged`).

    Every row of a word, judged or not (e.g. its drawings accepted earlier), counts towards
    the word's centre and spread; only judged rows get an answer."""
    if len(directions) != len(words) or len(words) != len(judged):
        raise ValueError(f"{len(directions)} rows, {len(words)} words, {len(judged)} flags")
    out: list[Agreement | None] = [None] * len(words)
    by_word: dict[str, list[int]] = {}
    for i, word in enumerate(words):
        by_word.setdefault(word, []).append(i)
    for rows in by_word.values():
        if not any(judged[i] for i in rows):
            continue
        group = directions[rows]
        centre = robust_centre(group)
        cosines = group @ centre
        median = float(np.median(cosines))
        spread = MAD_TO_SD * float(np.median(np.abs(cosines - median)))
        floor = median - fence * spread
        for i, cosine in zip(rows, cosines, strict=True):
            if judged[i]:
                out[i] = Agreement(float(cosine), floor, len(rows))
    return out
