"""The output rows of the words a cycle adds (ml/train.py): where they start, how they are held
to their drawings' typical features, and how far they may reach into the old words' drawings.

The linear layers take the convolutions' flattened output; "hidden" features are fc2's output
(128 numbers), on which the output layer's rows act.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ml.network import QuickDrawNet


def head_logits(model: QuickDrawNet, features: torch.Tensor) -> torch.Tensor:
    """The linear layers (with their dropout when in train mode) on conv features."""
    return model.fc3(model.fc2(model.fc1(features)))


def _mean_direction(hidden: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
    """The mean of a class's hidden features, scaled to `norm`: the row that points at the
    class's typical drawing (imprinting starts new rows there; the blend pulls them back)."""
    direction = hidden.mean(0)
    return direction / direction.norm().clamp(min=1e-12) * norm


def imprint_new_rows(
    model: QuickDrawNet, feats: torch.Tensor, targets: torch.Tensor, old: int
) -> None:
    """Weight imprinting (Qi et al., 2018): each new class's row starts as the mean of its
    drawings' penultimate features, scaled to the old rows' mean norm, its bias the old biases'
    mean minus the mean logit this row gives the other classes' drawings (so the new word starts
    out likely on its own drawings and not on the rest)."""
    head = model.fc3[0]
    assert isinstance(head, nn.Linear)
    with torch.no_grad():
        hidden = model.fc2(model.fc1(feats))  # eval mode: no dropout
        norm = head.weight[:old].norm(dim=1).mean()
        bias = head.bias[:old].mean()
        for k in range(old, head.out_features):
            mine = targets == k
            if not mine.any():
                continue
            row = _mean_direction(hidden[mine], norm)
            others = hidden[~mine] @ row if (~mine).any() else torch.zeros(1)
            head.weight[k] = row
            head.bias[k] = bias - others.mean()


def blend_prototypes(
    model: QuickDrawNet, feats: torch.Tensor, targets: torch.Tensor, old: int, share: float
) -> None:
    """Each new row becomes (1 - share) * itself + share * its drawings' mean hidden features
    scaled to the row's norm; the bias keeps the row's mean logit on its own drawings."""
    head = model.fc3[0]
    assert isinstance(head, nn.Linear)
    with torch.no_grad():
        hidden = model.fc2(model.fc1(feats))
        for k in range(old, head.out_features):
            mine = targets == k
            if not mine.any():
                continue
            row = head.weight[k].clone()
            proto = _mean_direction(hidden[mine], row.norm())
            blended = (1 - share) * row + share * proto
            before = (hidden[mine] @ row).mean()
            after = (hidden[mine] @ blended).mean()
            head.weight[k] = blended
            head.bias[k] += before - after


def freeze_all_but_new_rows(model: QuickDrawNet, old: int) -> list[Any]:
    """Returns the gradient hooks' handles, to remove after training."""
    for p in model.parameters():
        p.requires_grad_(False)
    head = model.fc3[0]
    assert isinstance(head, nn.Linear)
    handles = []
    for param in (head.weight, head.bias):
        param.requires_grad_(True)
        # Zero the old rows' gradients: with no weight decay, Adam then leaves them untouched.
        handles.append(
            param.register_hook(lambda grad: torch.cat([torch.zeros_like(grad[:old]), grad[old:]]))
        )
    return handles


def calibrate_new_rows(
    model: QuickDrawNet, feats: torch.Tensor, targets: torch.Tensor, old: int, theft: float
) -> None:
    """Lower each new word's bias until it outscores the old words on at most `theft` of
    their own training drawings: a new word may win only where the old words' answer is
    weak."""
    head = model.fc3[0]
    assert isinstance(head, nn.Linear)
    mine = targets < old
    if not mine.any() or head.out_features == old:
        return
    with torch.no_grad():
        logits = head_logits(model.eval(), feats[mine])
        best_old = logits[:, :old].max(dim=1).values
        margin = logits[:, old:] - best_old[:, None]
        excess = torch.quantile(margin, 1 - theft, dim=0)
        head.bias[old:] -= excess.clamp(min=0)
