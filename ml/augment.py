"""Copies of a few drawings that look like other drawings of the same word (ml/train.py makes
20 of each new word's drawings into 420 this way), and random shifts.

A copy is the drawing mirrored, turned, scaled and moved (one affine map), and bent by a smooth
random displacement (`warp`): a rigid map changes where a drawing sits, the warp changes how
its lines run, as another hand would. Resampling a 28x28 bitmap blurs its lines (in copies of
Quick, Draw! drawings about 3 % of pixels stay at full ink against 9 % in the drawings, and
mid-grey pixels rise from 18 % to 28 %), which no player's drawing does and which would tell
copies from drawings; `match_ink` maps the copies' pixel values back to the drawings'
distribution.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SIDE = 28
_WARP_GRID = 4  # the warp's random offsets sit on a 4x4 grid, interpolated in between


def shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Each image moved by a random (dy, dx) in [-max_shift, max_shift], zero-filled."""
    n = len(x)
    padded = F.pad(x, (max_shift,) * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator)
    out = torch.empty_like(x)
    for i, (dy, dx) in enumerate(offsets.tolist()):
        out[i] = padded[i, :, dy : dy + SIDE, dx : dx + SIDE]
    return out


def augment(
    x: torch.Tensor, generator: torch.Generator, strength: float = 1.0, warp: float = 0.0
) -> torch.Tensor:
    """Each (N, 1, 28, 28) image mirrored left-right with probability 1/2, turned by up to 12
    degrees, scaled by 0.85..1.15 and moved by up to 2 pixels, each range times `strength`, and
    with `warp` > 0 every point displaced by up to `warp` pixels along a smooth random field
    (bilinear, zero-filled)."""
    n = len(x)
    u = torch.rand((n, 5), generator=generator)
    angle = (u[:, 0] * 2 - 1) * math.radians(12 * strength)
    scale = 1 + (u[:, 1] * 2 - 1) * 0.15 * strength
    flip = torch.where(u[:, 2] < 0.5, -1.0, 1.0)
    moved = (u[:, 3:5] * 2 - 1) * (2 * strength / (SIDE / 2))  # pixels in affine_grid's units
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin, moved[:, 0]], dim=1),
            torch.stack([sin * flip, cos, moved[:, 1]], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if warp:
        offsets = torch.rand((n, 2, _WARP_GRID, _WARP_GRID), generator=generator) * 2 - 1
        field = F.interpolate(
            offsets * (warp / (SIDE / 2)), size=(SIDE, SIDE), mode="bicubic", align_corners=True
        )
        grid = grid + field.permute(0, 2, 3, 1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def match_ink(x: torch.Tensor, reference: torch.Tensor, points: int = 513) -> torch.Tensor:
    """`x` with its pixel values mapped by one increasing function so that their distribution
    is `reference`'s (quantile matching on `points` quantiles, linear in between)."""
    if not x.numel() or not reference.numel():
        return x
    q = torch.linspace(0, 1, points)
    src = torch.quantile(_sample(x), q)
    dst = torch.quantile(_sample(reference), q)
    flat = x.flatten()
    i = torch.bucketize(flat, src).clamp(1, points - 1)
    lo, hi = src[i - 1], src[i]
    t = ((flat - lo) / (hi - lo).clamp(min=1e-12)).clamp(0, 1)
    return (dst[i - 1] + t * (dst[i] - dst[i - 1])).reshape(x.shape)


def _sample(x: torch.Tensor, limit: int = 4_000_000) -> torch.Tensor:
    """At most about `limit` of the values (torch.quantile takes up to 2**24), evenly spaced."""
    flat = x.flatten()
    return flat[:: max(1, math.ceil(len(flat) / limit))]
