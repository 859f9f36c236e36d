"""Auxiliary losses for dead and under-used latents.

* :func:`auxk_loss` (Gao et al. 2024, App. A.2): the top ``k_aux`` dead latents reconstruct the
  detached residual; used inside :func:`saelib.train.train_sae`.
* :class:`AuxZipfLoss`: a ``TrainConfig.loss_terms`` entry, our reconstruction of Ayonrinde 2024's
  aux_zipf_loss (its formula was not found).
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from .fastpath import sparse_decode
from .sae import SAE
from .utils import check_range
from .zipf import fit_zipf, ranks_from


def auxk_loss(sae: SAE, x: Tensor, pre: Tensor, residual: Tensor, dead: Tensor, k_aux: int, sparse: bool) -> Tensor:
    """AuxK: reconstruct the (detached) residual from the top ``k_aux`` dead latents, no decoder bias."""
    n_dead = int(dead.sum())
    if n_dead == 0:
        return pre.new_zeros(())
    k = min(k_aux, n_dead)
    with torch.no_grad():
        idx = pre.detach().masked_fill(~dead, float("-inf")).topk(k, dim=-1, sorted=False).indices
    rows = torch.arange(x.shape[0], device=x.device).repeat_interleave(k)
    cols = idx.reshape(-1)
    vals = sae.active_values(x, pre, rows, cols, sparse)
    e_hat = sparse_decode(rows, cols, vals, sae.W_dec, x.shape[0])
    return (e_hat - residual).pow(2).sum(-1).mean()


class AuxZipfLoss:
    """Auxiliary loss for dead *and under-used* latents; a ``TrainConfig.loss_terms`` entry.

    A reconstruction (the paper's aux_zipf_loss formula was not found), generalising AuxK
    (Gao et al. 2024, App. A.2):
    1. d_i: EMA (``beta``) of each latent's firing density in the training batches.
    2. Target t_i = c rank_i^-alpha from a Zipf fit (``fit_zipf``) on the live latents
       (d_i > ``min_density``); ranks over all latents, so dead ones get the tail's targets.
    3. Under-used: d_i < ``below`` * t_i; shortfall w_i = 1 - d_i / t_i in (1 - below, 1].
    4. Each token's top ``k_aux`` pre-activations among the under-used latents reconstruct the
       detached residual x - x_hat (no decoder bias), as in AuxK; the forward is AuxK's, the
       gradient to latent i (encoder column and decoder row) is scaled by w_i.
    Loss = ``coeff`` * E ||e_hat - (x - x_hat)||^2. Returns 0 while no latent is under-used.
    """

    def __init__(self, n_latents: int, coeff: float = 1 / 32, k_aux: int | None = None, beta: float = 0.9,
                 below: float = 0.5, min_density: float = 1e-4) -> None:
        check_range("n_latents", n_latents, 1)
        check_range("coeff", coeff, 0)
        check_range("beta", beta, 0, 1)
        check_range("below", below, 0, 1)
        check_range("min_density", min_density, 0)
        if k_aux is not None:
            check_range("k_aux", k_aux, 1)
        self.n_latents, self.coeff, self.k_aux, self.beta = n_latents, coeff, k_aux, beta
        self.below, self.min_density = below, min_density
        self.density: Tensor | None = None
        self.n_updates = 0
        self.last_n_under = 0

    @torch.no_grad()
    def update_density(self, fired_frac: Tensor) -> Tensor:
        """EMA of the per-latent firing fraction (the first batch is taken as is)."""
        if self.density is None:
            self.density = fired_frac.clone()
        else:
            self.density.mul_(self.beta).add_((1 - self.beta) * fired_frac)
        self.n_updates += 1
        return self.density

    def targets(self) -> tuple[Tensor, Tensor]:
        """(target density t, shortfall weight w, zero where not under-used) from the current EMA."""
        if self.density is None:
            raise ValueError("no density estimate yet: call the loss on a training state first")
        d = self.density
        fit = fit_zipf(d, self.min_density)
        if math.isnan(fit["alpha"]):
            return torch.zeros_like(d), torch.zeros_like(d)
        t = fit["c"] * ranks_from(d).to(d.dtype).pow(-fit["alpha"])
        under = d < self.below * t
        w = torch.where(under, (1 - d / t).clamp(0, 1), torch.zeros_like(d))
        return t, w

    def __call__(self, state: Any) -> Tensor:
        sae, x, out = state.sae, state.x, state.out
        if x is None or out is None:
            raise ValueError("state must carry x and out (loss terms run after the forward)")
        if self.n_latents != sae.d_sae:
            raise ValueError(f"n_latents={self.n_latents} does not match the SAE's d_sae={sae.d_sae}")
        sparse = out.rows is not None
        with torch.no_grad():
            if sparse:
                fired = torch.zeros(sae.d_sae, device=x.device)
                fired.index_add_(0, out.cols[out.vals > 0], torch.ones_like(out.vals[out.vals > 0]))
            else:
                fired = (out.codes > 0).float().sum(0)
            self.update_density(fired / x.shape[0])
            _, w = self.targets()
        under = w > 0
        self.last_n_under = int(under.sum())
        if self.last_n_under == 0 or self.coeff == 0:
            return x.new_zeros(())
        k = min(self.k_aux or sae.d_in // 2, self.last_n_under)
        pre = out.pre
        with torch.no_grad():
            idx = pre.detach().masked_fill(~under, float("-inf")).topk(k, dim=-1, sorted=False).indices
        rows = torch.arange(x.shape[0], device=x.device).repeat_interleave(k)
        cols = idx.reshape(-1)
        vals = sae.active_values(x, pre, rows, cols, sparse)
        wc = w[cols]
        vals = wc * vals + (1 - wc) * vals.detach()         # same value, gradient scaled by w_i
        wr = w[:, None]
        W = wr * sae.W_dec + (1 - wr) * sae.W_dec.detach()
        e_hat = sparse_decode(rows, cols, vals, W, x.shape[0])
        residual = (x - out.x_hat).detach()
        return self.coeff * (e_hat - residual).pow(2).sum(-1).mean()
