"""Mutual Choice and Feature Choice SAEs (Ayonrinde 2024, arXiv 2411.02124).

Sparsity as allocation of a budget of k*N active (token, feature) pairs for a batch of N tokens,
given the ReLU'd affinities A = ReLU(Z) in R^{N x F}:

* TopK (token choice): each row keeps its top k                    (``saelib.sparsifiers.topk.TopK``)
* Mutual Choice (global choice): the top k*N of the whole matrix   (``MutualChoice`` = BatchTopK, below)
* Feature Choice (this module): each column i keeps its top m_i tokens, sum_i m_i <= k*N.

No public code for the paper was found. What is ours (named in the docstrings): the Zipf
allocation's ranks and exponent (:mod:`saelib.zipf`) and the per-latent inference threshold. The
paper's aux_zipf_loss is reconstructed as :class:`saelib.losses.AuxZipfLoss`.

Used by: notebook 04.
"""
from __future__ import annotations

import math
from typing import Any, Literal, get_args

import torch
from torch import Tensor

from ..distributed import DataParallel
from ..utils import check_choice, check_range
from ..zipf import ranks_from, zipf_allocation
from .base import BatchRule, Sparsifier, register
from .batchtopk import BatchTopK, flat_topk_indices, gathered_kth_largest

Allocation = Literal["uniform", "zipf"]
ThresholdMode = Literal["per_latent", "global"]
ALLOCATIONS = get_args(Allocation)
THRESHOLD_MODES = get_args(ThresholdMode)


def uniform_allocation(n_tokens: int, n_latents: int, k: int) -> Tensor:
    """m_i = max(1, floor(k N / F)) for every latent (paper: m = kN/F). Sums to k N when F divides k N."""
    check_range("n_tokens", n_tokens, 1)
    check_range("n_latents", n_latents, 1)
    m = max(1, (k * n_tokens) // n_latents)
    return torch.full((n_latents,), min(m, n_tokens), dtype=torch.long)


def column_top_mask(pre: Tensor, m: Tensor) -> Tensor:
    """Boolean mask keeping, in each column i of ``pre`` (N, F), its ``m[i]`` largest *positive* entries.

    Columns are split into two groups by budget (m_i <= 4 x median, the rest) so the few Zipf-head
    columns with large m_i do not force a full sort of every column.
    """
    n, f = pre.shape
    if m.shape != (f,):
        raise ValueError(f"m must have shape ({f},), got {tuple(m.shape)}")
    mask = torch.zeros_like(pre, dtype=torch.bool)
    split = max(1, int(m.float().median()) * 4)
    for cols in (torch.nonzero(m <= split).flatten(), torch.nonzero(m > split).flatten()):
        if cols.numel() == 0:
            continue
        mc = m[cols].clamp(max=n)
        m_max = int(mc.max())
        top = pre[:, cols].topk(m_max, dim=0, sorted=True)
        keep = (torch.arange(m_max, device=pre.device)[:, None] < mc[None, :]) & (top.values > 0)
        mask[top.indices[keep], cols.expand(m_max, -1)[keep]] = True
    return mask


@torch.no_grad()
def gathered_column_top_mask(pre: Tensor, m: Tensor, dp: DataParallel) -> Tensor:
    """:func:`column_top_mask` over the rows of every rank together: this rank's part of the mask.

    Each rank sends, per column, its top min(max m, rows) values; the m_i-th largest of those is
    column i's cut t_i. Entries above t_i are kept, ties at t_i go to the lowest ranks first (in row
    order), so each column keeps exactly m_i entries over the ranks before zeros are dropped, as one
    process would (up to its arbitrary order among ties). Memory: (world x min(max m, rows), F) per rank,
    the whole batch's pre-activations when a Zipf head's m_i reaches the batch size.
    """
    n, f = pre.shape
    if m.shape != (f,):
        raise ValueError(f"m must have shape ({f},), got {tuple(m.shape)}")
    mc = m.to(pre.device).clamp(max=n * dp.world_size)
    r = min(int(mc.max()), n)
    if r == 0:
        return torch.zeros_like(pre, dtype=torch.bool)
    every = dp.gather(pre.topk(r, dim=0, sorted=False).values).reshape(-1, f)
    cut = every.sort(dim=0, descending=True).values.gather(0, (mc - 1).clamp(min=0)[None, :]).squeeze(0)
    cut = torch.where(mc > 0, cut, torch.full_like(cut, math.inf))
    above, at = pre > cut, pre == cut
    counts = dp.gather(torch.stack([above.sum(0), at.sum(0)]))  # (world, 2, F)
    need = mc - counts[:, 0].sum(0)
    take = (need - counts[: dp.rank, 1].sum(0)).clamp(min=0).minimum(counts[dp.rank, 1])
    ties = at & (at.long().cumsum(0) <= take[None, :])
    return (above | ties) & (pre > 0)


@register
class MutualChoice(BatchTopK):
    """Mutual Choice (Ayonrinde 2024, arXiv 2411.02124): the global top k*N of the N x F affinity
    matrix -- the same rule as BatchTopK, shared implementation, with the same inference threshold."""

    name = "mutual_choice"


@register
class FeatureChoice(BatchRule, Sparsifier):
    """Feature Choice (Ayonrinde 2024): each latent i keeps its top m_i tokens of the batch.

    Training (``.train()``): A = ReLU(Z) for the N x F batch; column i keeps its m_i largest
    entries (zeros stay zero), sum_i m_i <= k N.
    * ``allocation="uniform"``: m_i = max(1, floor(kN/F)).
    * ``allocation="zipf"`` (our parametrisation; the paper's was not found): m_i ~ rank_i^-alpha
      (alpha = ``zipf_alpha``), water-filled to sum to k N with m_i <= N. Ranks come from an EMA
      (``freq_beta``) of each latent's *demand*: the fraction of the batch's tokens for which it is
      among the global top k N affinities (what Mutual Choice would give it). Ranking by FC's own
      firing frequency would be circular (it equals the allocation). ``max_density`` < 1 caps every
      m_i at floor(max_density N) (ours, an extension: with alpha = 1 the head latents otherwise take
      every token of the batch); the excess goes to the other latents by the same water-filling.

    Inference (``.eval()``): batch-independent f = ReLU(z) [z > theta], theta an EMA (``threshold_beta``,
    started after ``threshold_start`` batches) of the smallest positive kept activation:
    ``threshold_mode="per_latent"`` (default, our choice) keeps one theta_i per latent, which
    preserves FC's per-latent densities; ``"global"`` keeps one theta, the EMA of the
    (number kept)-th largest affinity of the batch. Latents with no estimate never fire.
    ``batch_rule()`` forces the training rule in eval mode.

    Data-parallel training (:mod:`saelib.distributed`): N is every rank's rows together; budgets, each
    column's top m_i (:func:`gathered_column_top_mask`), the Zipf demand and the thresholds' updates all
    use the whole batch, so they equal a single process's.
    """

    name = "feature_choice"
    supports_sparse = True

    def __init__(self, k: int, n_latents: int, allocation: Allocation = "uniform", zipf_alpha: float = 1.0,
                 freq_beta: float = 0.9, threshold_mode: ThresholdMode = "per_latent", threshold_beta: float = 0.999,
                 threshold_start: int = 1000, max_density: float = 1.0) -> None:
        super().__init__()
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        if not isinstance(n_latents, int) or n_latents < 1:
            raise ValueError(f"n_latents must be a positive int, got {n_latents!r}")
        check_choice("allocation", allocation, ALLOCATIONS)
        check_choice("threshold_mode", threshold_mode, THRESHOLD_MODES)
        check_range("zipf_alpha", zipf_alpha, 0)
        check_range("max_density", max_density, 0, 1, lo_open=True)
        check_range("freq_beta", freq_beta, 0, 1)
        check_range("threshold_beta", threshold_beta, 0, 1)
        if threshold_beta >= 1 or freq_beta >= 1:
            raise ValueError(f"threshold_beta and freq_beta must be < 1, got {threshold_beta}, {freq_beta}")
        if not isinstance(threshold_start, int) or threshold_start < 0:
            raise ValueError(f"threshold_start must be a non-negative int, got {threshold_start!r}")
        self.k, self.n_latents, self.allocation = k, n_latents, allocation
        self.zipf_alpha, self.freq_beta, self.max_density = float(zipf_alpha), float(freq_beta), float(max_density)
        self.threshold_mode, self.threshold_beta, self.threshold_start = threshold_mode, float(threshold_beta), threshold_start
        n_thr = n_latents if threshold_mode == "per_latent" else 1
        self.register_buffer("threshold", torch.full((n_thr,), -1.0))  # < 0: not estimated yet
        self.register_buffer("demand", torch.zeros(n_latents))
        self.register_buffer("n_batches", torch.tensor(0, dtype=torch.long))
        self._force_batch_rule = False

    # ---- allocation ----------------------------------------------------------------------
    def budget(self, n_tokens: int) -> Tensor:
        """m_i for a batch of ``n_tokens`` (uses the current demand ranks for ``zipf``)."""
        if self.allocation == "uniform":
            return uniform_allocation(n_tokens, self.n_latents, self.k)
        cap = max(1, math.floor(self.max_density * n_tokens))
        total = min(max(self.k * n_tokens, self.n_latents), self.n_latents * cap)
        return zipf_allocation(ranks_from(self.demand.cpu()), total, cap, self.zipf_alpha).to(self.demand.device)

    def data_parallel_problem(self) -> str | None:
        return None  # gathers each column's top m_i across ranks

    def _mask(self, pre: Tensor) -> Tensor:
        """Boolean N x F mask of the kept entries (and update demand / threshold when training)."""
        pre = pre.detach()
        n, f = pre.shape
        if f != self.n_latents:
            raise ValueError(f"pre has {f} latents, sparsifier was built for n_latents={self.n_latents}")
        dp = self._dp if not self._force_batch_rule else None
        if dp is not None:
            mask = gathered_column_top_mask(pre, self.budget(n * dp.world_size), dp)
        else:
            mask = column_top_mask(pre, self.budget(n))
        if self.training and not self._force_batch_rule:
            self._update(pre, mask) if dp is None else self._update_gathered(pre, mask, dp)
        return mask

    @torch.no_grad()
    def _update(self, pre: Tensor, mask: Tensor) -> None:
        n, f = pre.shape
        if self.allocation == "zipf":
            flat = pre.reshape(-1)
            t_mc = flat[flat_topk_indices(flat, min(self.k * n, flat.numel()))].min()
            dem = (pre >= t_mc).float().mean(0)
            if int(self.n_batches) == 0:
                self.demand.copy_(dem)
            else:
                self.demand.mul_(self.freq_beta).add_((1 - self.freq_beta) * dem)
        self.n_batches += 1
        n_kept = int(mask.sum())
        if int(self.n_batches) <= self.threshold_start or n_kept == 0:
            return
        if self.threshold_mode == "per_latent":
            est = pre.masked_fill(~mask, math.inf).min(0).values
            has = mask.any(0)
        else:
            flat = pre.reshape(-1)
            est = flat[flat_topk_indices(flat, n_kept)].min().clamp_min(0).reshape(1)
            has = torch.ones(1, dtype=torch.bool, device=pre.device)
        fresh = has & (self.threshold < 0)
        old = has & (self.threshold >= 0)
        self.threshold[fresh] = est[fresh]
        self.threshold[old] = self.threshold_beta * self.threshold[old] + (1 - self.threshold_beta) * est[old]

    @torch.no_grad()
    def _update_gathered(self, pre: Tensor, mask: Tensor, dp: DataParallel) -> None:
        """:meth:`_update` with every rank's rows as the batch (each rank calls it, in step)."""
        n, f = pre.shape
        n_all = n * dp.world_size
        if self.allocation == "zipf":
            t_mc = gathered_kth_largest(pre.reshape(-1), min(self.k * n_all, n_all * f), dp)
            dem = dp.sum((pre >= t_mc).float().sum(0)) / n_all
            if int(self.n_batches) == 0:
                self.demand.copy_(dem)
            else:
                self.demand.mul_(self.freq_beta).add_((1 - self.freq_beta) * dem)
        self.n_batches += 1
        n_kept = int(dp.sum(mask.sum()))
        if int(self.n_batches) <= self.threshold_start or n_kept == 0:
            return
        if self.threshold_mode == "per_latent":
            est = dp.min(pre.masked_fill(~mask, math.inf).min(0).values)
            has = dp.sum(mask.any(0).long()) > 0
        else:
            est = gathered_kth_largest(pre.reshape(-1), n_kept, dp).clamp_min(0).reshape(1)
            has = torch.ones(1, dtype=torch.bool, device=pre.device)
        fresh = has & (self.threshold < 0)
        old = has & (self.threshold >= 0)
        self.threshold[fresh] = est[fresh]
        self.threshold[old] = self.threshold_beta * self.threshold[old] + (1 - self.threshold_beta) * est[old]

    def _effective_threshold(self) -> Tensor:
        return torch.where(self.threshold >= 0, self.threshold, torch.full_like(self.threshold, math.inf))

    def forward(self, pre: Tensor, dec_norm: Tensor) -> Tensor:
        if pre.dim() != 2:
            shape = pre.shape
            return self.forward(pre.reshape(-1, shape[-1]), dec_norm).reshape(shape)
        if not self._use_batch_rule():
            return torch.relu(pre) * (pre > self._effective_threshold()).to(pre.dtype)
        return torch.relu(pre) * self._mask(pre).to(pre.dtype)

    def select(self, pre: Tensor, dec_norm: Tensor) -> tuple[Tensor, Tensor]:
        if not self._use_batch_rule():
            rows, cols = ((pre > self._effective_threshold()) & (pre > 0)).nonzero(as_tuple=True)
            return rows, cols
        rows, cols = self._mask(pre).nonzero(as_tuple=True)
        return rows, cols

    def config(self) -> dict[str, Any]:
        return {"k": self.k, "n_latents": self.n_latents, "allocation": self.allocation,
                "zipf_alpha": self.zipf_alpha, "freq_beta": self.freq_beta, "threshold_mode": self.threshold_mode,
                "threshold_beta": self.threshold_beta, "threshold_start": self.threshold_start,
                "max_density": self.max_density}
