"""Gradient SAEs (g-SAE): the training hook, the choice of beta, steering, and evaluation with g.

Olmo, Wilson, Forsey, Hepner, Howe & Wingate, *Features that Make a Difference: Leveraging
Gradients for Improved Dictionary Learning* (Nov 2024, arXiv:2411.10397).

* The selection rule is the sparsifier :class:`saelib.sparsifiers.gradient_topk.GradientTopK`
  (``"gradient_topk"``) with its evaluation context ``with_gradients``; the LM-loss gradients g
  at the hook come from :func:`saelib.data.harvest.harvest_gradients`.
* ``feed_gradients`` (a ``TrainConfig.callbacks`` entry) hands g to the sparsifier in training.
* ``default_beta``: the scale-only anchor beta_0 (the paper gives no beta); ``pick_beta``: the rule
  that fixes beta from pilot runs on training tokens (the largest whose FVU cost is within a bound).
* ``logit_lens_tokens`` / ``steering_effect``: the steering measurement of the paper's Sec. 5.
* Evaluation with g: :func:`saelib.metrics.reconstruction.evaluate` with ``grads=``.

Used by: notebook 05.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

from ..data.lm import LMTail, logit_lens, unembedding
from ..sparsifiers.gradient_topk import GradientTopK
from ..train import TrainState
from ..utils import check_range


class feed_gradients:
    """Training callback: before each step, queue ``grads[state.batch_index]`` for the g-SAE.

    ``grads`` is aligned row for row with the training data passed to ``train_sae``.
    """

    def __init__(self, grads: Tensor) -> None:
        if grads.dim() != 2:
            raise ValueError(f"grads must be (N, d), got shape {tuple(grads.shape)}")
        self.grads = grads

    def __call__(self, state: TrainState) -> None:
        sp = state.sae.sparsifier
        if not isinstance(sp, GradientTopK):
            raise ValueError(f"feed_gradients needs a 'gradient_topk' SAE, got {sp.name!r}")
        sp.set_gradients(self.grads[state.batch_index], state.sae.W_dec)


def default_beta(grads: Tensor, d: int | None = None) -> float:
    """beta = 1 / median_tokens E_u |u . g| for a random unit u: sqrt(pi d / 2) / median ||g||.

    A scale-only choice (the paper gives no beta): for a typical token and a typical direction
    the influence term beta |d_i . g| is about 1, i.e. the score is about doubled.
    """
    d = d or grads.shape[1]
    med = float(grads.norm(dim=1).median())
    if not med > 0:
        raise ValueError("grads must not be all zero")
    return math.sqrt(math.pi * d / 2) / med


def pick_beta(pilot_fvu: Mapping[float, float], max_cost: float) -> tuple[float | None, dict[float, float]]:
    """The largest beta > 0 whose FVU cost over beta = 0 is at most ``max_cost`` (in percent).

    ``pilot_fvu`` maps each pilot's beta to its FVU (on training tokens, with g at evaluation) and
    must hold beta = 0, the TopK reference. Returns (beta or None if no candidate meets the bound,
    the cost 100 (FVU(beta) / FVU(0) - 1) of every candidate).
    """
    check_range("max_cost", max_cost, 0)
    if 0.0 not in pilot_fvu or len(pilot_fvu) < 2:
        raise ValueError(f"pilot_fvu must hold beta = 0 (the reference) and at least one beta > 0, got {sorted(pilot_fvu)}")
    if any(b < 0 for b in pilot_fvu) or not pilot_fvu[0.0] > 0:
        raise ValueError("pilot_fvu: every beta must be >= 0 and the reference FVU > 0")
    cost = {b: 100 * (f / pilot_fvu[0.0] - 1) for b, f in sorted(pilot_fvu.items()) if b > 0}
    ok = [b for b, c in cost.items() if c <= max_cost]
    return (max(ok) if ok else None), cost


# ---- steering ----------------------------------------------------------------------------

@torch.no_grad()
def logit_lens_tokens(tail: LMTail, directions: Tensor, n: int = 5) -> Tensor:
    """Top-``n`` output tokens of each direction (L, d): W_U (gamma * d_hat), gamma = final-norm gain
    (:func:`saelib.data.lm.logit_lens` through :func:`~saelib.data.lm.unembedding`)."""
    return logit_lens(directions, unembedding(tail.model)).topk(n, dim=-1).indices


@torch.no_grad()
def steering_effect(tail: LMTail, resid: Tensor, directions: Tensor, alpha: float, n_top: int = 5,
                    positions: slice = slice(1, None)) -> Tensor:
    """Mean change of log p(top logit-lens tokens of d_i) when alpha * d_i_hat is added at the hook.

    For each direction i (L, d): add ``alpha`` times its unit vector to the residual at every
    position in ``positions`` of the contexts ``resid`` (B, T, d), run the LM tail, and average
    log p(t) - log p_clean(t) over those positions, the contexts and the direction's ``n_top``
    tokens t. Returns (L,) in nats.
    """
    check_range("alpha", alpha, 0)
    unit = directions / directions.norm(dim=1, keepdim=True).clamp_min(1e-12)
    targets = logit_lens_tokens(tail, unit, n_top)
    clean = torch.log_softmax(tail(resid)[:, positions], dim=-1)
    out = []
    for i in range(len(unit)):
        r = resid.clone()
        r[:, positions] += alpha * unit[i]
        lp = torch.log_softmax(tail(r)[:, positions], dim=-1)
        out.append((lp[..., targets[i]] - clean[..., targets[i]]).mean())
    return torch.stack(out)

