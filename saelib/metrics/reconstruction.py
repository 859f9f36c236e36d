"""Reconstruction metrics of one SAE on held-out activations (definitions in shared/papers/README.md).

* L0 = mean number of non-zero latents per token.
* FVU = sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 over a held-out set; explained variance = 1 - FVU.
* Dead latent = fired on no token of the evaluation window (the whole set passed in).

:func:`code_stats` measures the same under either rule of a batch-level sparsifier (BatchTopK,
Mutual / Feature Choice): the training-time batch rule or the inference threshold.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor

from ..sae import SAE
from ..utils import check_range


def l0(codes: Tensor) -> float:
    """Mean number of non-zero entries per row."""
    return (codes != 0).sum(-1).float().mean().item()


def fvu(x: Tensor, x_hat: Tensor) -> float:
    """Fraction of variance unexplained: sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 (0 = perfect, 1 = the mean)."""
    return ((x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum()).item()


@torch.no_grad()
def evaluate(sae: SAE, x: Tensor, batch_size: int = 8192) -> dict[str, float | Tensor]:
    """L0, FVU, explained variance, dead fraction and per-latent firing densities on ``x`` (N, d).

    ``dead_frac`` uses the whole of ``x`` as the window (``window_tokens`` says how many tokens).
    """
    was_training = sae.training
    sae.eval()
    sse, n_active = 0.0, 0.0
    counts = torch.zeros(sae.d_sae)
    norm_hat_sum = 0.0
    norm_sum = 0.0
    for i in range(0, len(x), batch_size):
        xb = x[i: i + batch_size]
        f = sae.encode(xb)
        x_hat = sae.decode(f)
        sse += (xb - x_hat).pow(2).sum().item()
        active = f != 0
        n_active += active.sum().item()
        counts += active.sum(0)
        norm_hat_sum += x_hat.norm(dim=-1).sum().item()
        norm_sum += xb.norm(dim=-1).sum().item()
    sae.train(was_training)
    total_var = (x - x.mean(0)).pow(2).sum().item()
    dens = counts / len(x)
    return {"l0": n_active / len(x), "fvu": sse / total_var, "explained_variance": 1 - sse / total_var,
            "dead_frac": (counts == 0).float().mean().item(), "window_tokens": len(x),
            "norm_ratio": norm_hat_sum / norm_sum, "densities": dens}


@torch.no_grad()
def code_stats(sae: SAE, x: Tensor, batch_rule: bool, batch_size: int = 4096, seed: int = 0) -> dict[str, Any]:
    """L0, FVU, dead fraction, per-latent densities and per-token L0 of ``sae`` on ``x`` (N, d).

    ``batch_rule=True`` applies the training-time batch rule (FC / MC / BatchTopK) to batches of
    ``batch_size`` tokens drawn in a shuffled order (``seed``), as in training: consecutive held-out
    tokens come from a few documents, and a per-feature top-m over one document is not what the
    SAE was trained with. ``batch_rule=False`` uses the batch-independent inference rule.
    Per-token results are returned in the original token order.
    """
    check_range("batch_size", batch_size, 1)
    if batch_rule and not hasattr(sae.sparsifier, "batch_rule"):
        raise ValueError(f"batch_rule=True needs a sparsifier with a batch rule, got {sae.sparsifier.name!r}")
    was_training = sae.training
    sae.eval()
    order = (torch.randperm(len(x), generator=torch.Generator().manual_seed(seed)) if batch_rule
             else torch.arange(len(x)))
    l0_tok = torch.zeros(len(x), dtype=torch.long)
    counts = torch.zeros(sae.d_sae)
    sse = 0.0
    with sae.sparsifier.batch_rule() if batch_rule else nullcontext():
        for idx in order.split(batch_size):
            xb = x[idx]
            f = sae.encode(xb)
            sse += (xb - sae.decode(f)).pow(2).sum().item()
            active = f != 0
            l0_tok[idx] = active.sum(-1)
            counts += active.sum(0)
    sae.train(was_training)
    total_var = (x - x.mean(0)).pow(2).sum().item()
    return {"l0": float(l0_tok.float().mean()), "fvu": sse / total_var, "dead_frac": float((counts == 0).float().mean()),
            "densities": counts / len(x), "l0_per_token": l0_tok}
