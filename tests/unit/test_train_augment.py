"""The new words' copies (ml.augment): turned, scaled, moved and bent, seeded, and with the
drawings' ink."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ml.augment import augment, match_ink


def _bars(n: int) -> torch.Tensor:
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 6:22, 12:16] = 1.0  # a vertical bar, centred left-right
    return x


def test_augment_moves_ink_but_keeps_it() -> None:
    x = _bars(8)
    first = augment(x, torch.Generator().manual_seed(5), warp=1.0)
    again = augment(x, torch.Generator().manual_seed(5), warp=1.0)
    assert torch.equal(first, again)  # seeded: deterministic
    assert first.shape == x.shape and float(first.min()) >= 0 and float(first.max()) <= 1
    assert not torch.equal(first, x)
    ink = first.sum(dim=(1, 2, 3)) / x.sum(dim=(1, 2, 3))
    assert bool(((ink > 0.6) & (ink < 1.5)).all()), ink  # scaled by 0.85..1.15, none lost


def test_stronger_augmentation_moves_ink_further() -> None:
    x = _bars(64)
    still = augment(x, torch.Generator().manual_seed(5), strength=0.0)
    mild = augment(x, torch.Generator().manual_seed(5), strength=1.0)
    strong = augment(x, torch.Generator().manual_seed(5), strength=2.0)
    assert torch.allclose(still, x, atol=1e-5)  # the bar is centred: mirroring keeps it
    assert float((strong - x).abs().mean()) > float((mild - x).abs().mean())


def test_the_warp_bends_lines_by_at_most_its_pixels() -> None:
    x = _bars(64)
    bent = augment(x, torch.Generator().manual_seed(5), strength=0.0, warp=1.5)
    assert not torch.allclose(bent, x, atol=0.05)
    # Every copy differs from the others: the field is drawn per copy.
    assert float((bent[0] - bent[1]).abs().sum()) > 1
    # Ink stays within 2 pixels of the bar (1.5 pixels plus the bilinear spread).
    near = F.max_pool2d(x, kernel_size=5, stride=1, padding=2)
    assert float(bent[near == 0].abs().max()) == 0.0
    # Columns are bent, not moved as a whole: no copy is the bar shifted by whole pixels.
    shifted = [torch.roll(x[0], (dy, dx), dims=(1, 2)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    assert not any(torch.allclose(bent[0], s, atol=0.05) for s in shifted)


def test_the_warp_does_not_change_the_rigid_part() -> None:
    # The warp's random offsets are drawn after the affine ones: warp 0 is the old augmentation.
    x = _bars(4)
    rigid = augment(x, torch.Generator().manual_seed(5), strength=1.0)
    bent = augment(x, torch.Generator().manual_seed(5), strength=1.0, warp=1e-6)
    assert torch.allclose(rigid, bent, atol=1e-4)


def test_match_ink_gives_the_copies_the_drawings_ink() -> None:
    drawn = _bars(16)
    copies = augment(drawn.repeat(4, 1, 1, 1), torch.Generator().manual_seed(5), strength=1.5)
    full = (copies > 0.9).float().mean()
    assert full < 0.8 * (drawn > 0.9).float().mean()  # resampling blurred the lines
    matched = match_ink(copies, drawn)
    assert abs(float((matched > 0.9).float().mean() - (drawn > 0.9).float().mean())) < 0.01
    assert abs(float(matched.mean() - drawn.mean())) < 0.01
    assert float(matched.min()) >= 0 and float(matched.max()) <= 1
    # One increasing map: pixels keep their order (where the ink was, it still is).
    flat, out = copies.flatten(), matched.flatten()
    order = torch.argsort(flat)
    assert bool((out[order][1:] >= out[order][:-1] - 1e-6).all())
    assert bool((matched[copies == 0] == 0).all())  # no ink where the copy has none


def test_match_ink_of_nothing_is_nothing() -> None:
    empty = torch.zeros(0, 1, 28, 28)
    assert match_ink(empty, _bars(2)).shape == empty.shape
