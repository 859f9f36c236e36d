"""Feature Choice SAEs and the Zipf auxiliary loss (Ayonrinde 2024, arXiv 2411.02124).

Sparsity as allocation of a budget of k*N active (token, feature) pairs for a batch of N tokens,
given the ReLU'd affinities A = ReLU(Z) in R^{N x F}:

* TopK (token choice): each row keeps its top k                    (``saelib.sparsity.TopK``)
* Mutual Choice (global choice): the top k*N of the whole matrix   (``MutualChoice`` = BatchTopK)
* Feature Choice (this module): each column i keeps its top m_i tokens, sum_i m_i <= k*N.

No public code for the paper was found. What is ours (named in the docstrings): the Zipf
allocation's ranks and exponent, the per-latent inference threshold, and the whole
``AuxZipfLoss``, a reconstruction in the spirit of the paper's aux_zipf_loss, whose formula
was not found.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from .fastpath import sparse_decode
from .sparsity import BatchRule, Sparsifier, flat_topk_indices, register
from .utils import check_choice, check_range

ALLOCATIONS = ("uniform", "zipf")
THRESHOLD_MODES = ("per_latent", "global")


def uniform_allocation(n_tokens: int, n_latents: int, k: int) -> Tensor:
    """m_i = max(1, floor(k N / F)) for every latent (paper: m = kN/F). Sums to k N when F divides k N."""
    check_range("n_tokens", n_tokens, 1)
    check_range("n_latents", n_latents, 1)
    m = max(1, (k * n_tokens) // n_latents)
    return torch.full((n_latents,), min(m, n_tokens), dtype=torch.long)


def zipf_allocation(ranks: Tensor, total: int, cap: int, alpha: float = 1.0) -> Tensor:
    """Integer m_i proportional to rank_i^-alpha, clipped to [1, cap], summing to ``total``.

    ``ranks`` holds 1..F (1 = most used latent). The scale c in m_i = clip(c rank_i^-alpha, 1, cap)
    is found by bisection (latents at the cap hand their excess to the others: water-filling);
    the integer parts are then topped up by largest remainder (ties to the better rank), which
    keeps m non-increasing in rank. ``total`` must lie in [F, F*cap].
    """
    n = ranks.numel()
    check_range("alpha", alpha, 0)
    check_range("cap", cap, 1)
    if not n <= total <= n * cap:
        raise ValueError(f"total must be in [n_latents={n}, n_latents*cap={n * cap}], got {total}")
    r = ranks.double()
    base = r.pow(-alpha)
    lo, hi = 0.0, float(cap) / float(base.min()) + 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if float((mid * base).clamp(1, cap).sum()) < total:
            lo = mid
        else:
            hi = mid
    real = (hi * base).clamp(1, cap)
    m = real.floor()
    rest = int(total - m.sum())
    if rest > 0:
        frac = (real - m).masked_fill(m >= cap, -1.0)
        order = torch.argsort(frac * (n + 1) - r / (n + 1), descending=True)  # frac first, then rank
        m[order[:rest]] += 1
    return m.long()


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


def ranks_from(values: Tensor) -> Tensor:
    """Rank 1 for the largest value, F for the smallest (ties broken by index)."""
    order = torch.argsort(values, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(1, values.numel() + 1, device=values.device)
    return ranks


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
      firing frequency would be circular (it equals the allocation).

    Inference (``.eval()``): batch-independent f = ReLU(z) [z > theta], theta an EMA (``threshold_beta``,
    started after ``threshold_start`` batches) of the smallest positive kept activation:
    ``threshold_mode="per_latent"`` (default, our choice) keeps one theta_i per latent, which
    preserves FC's per-latent densities; ``"global"`` keeps one theta, the EMA of the
    (number kept)-th largest affinity of the batch. Latents with no estimate never fire.
    ``batch_rule()`` forces the training rule in eval mode.
    """

    name = "feature_choice"
    supports_sparse = True

    def __init__(self, k: int, n_latents: int, allocation: str = "uniform", zipf_alpha: float = 1.0,
                 freq_beta: float = 0.9, threshold_mode: str = "per_latent", threshold_beta: float = 0.999,
                 threshold_start: int = 1000) -> None:
        super().__init__()
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        if not isinstance(n_latents, int) or n_latents < 1:
            raise ValueError(f"n_latents must be a positive int, got {n_latents!r}")
        check_choice("allocation", allocation, ALLOCATIONS)
        check_choice("threshold_mode", threshold_mode, THRESHOLD_MODES)
        check_range("zipf_alpha", zipf_alpha, 0)
        check_range("freq_beta", freq_beta, 0, 1)
        check_range("threshold_beta", threshold_beta, 0, 1)
        if threshold_beta >= 1 or freq_beta >= 1:
            raise ValueError(f"threshold_beta and freq_beta must be < 1, got {threshold_beta}, {freq_beta}")
        if not isinstance(threshold_start, int) or threshold_start < 0:
            raise ValueError(f"threshold_start must be a non-negative int, got {threshold_start!r}")
        self.k, self.n_latents, self.allocation = k, n_latents, allocation
        self.zipf_alpha, self.freq_beta = float(zipf_alpha), float(freq_beta)
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
        total = min(max(self.k * n_tokens, self.n_latents), self.n_latents * n_tokens)
        return zipf_allocation(ranks_from(self.demand.cpu()), total, n_tokens, self.zipf_alpha).to(self.demand.device)

    def _mask(self, pre: Tensor) -> Tensor:
        """Boolean N x F mask of the kept entries (and update demand / threshold when training)."""
        pre = pre.detach()
        n, f = pre.shape
        if f != self.n_latents:
            raise ValueError(f"pre has {f} latents, sparsifier was built for n_latents={self.n_latents}")
        mask = column_top_mask(pre, self.budget(n))
        if self.training and not self._force_batch_rule:
            self._update(pre, mask)
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
                "threshold_beta": self.threshold_beta, "threshold_start": self.threshold_start}


# ---- Zipf law of feature densities ------------------------------------------------------------

def fit_zipf(densities: Tensor, min_density: float = 0.0) -> dict[str, float]:
    """Least-squares fit of log d = log c - alpha log rank over latents with d > ``min_density``.

    Ranks are taken over *all* latents (1 = densest), so dead latents only shorten the fitted
    range. Returns alpha, c, r2 (coefficient of determination in log-log space) and n (latents fitted).
    """
    d = densities.double().flatten()
    ranks = ranks_from(d).double()
    live = d > min_density
    n = int(live.sum())
    if n < 3:
        return {"alpha": math.nan, "c": math.nan, "r2": math.nan, "n": n}
    lx, ly = ranks[live].log(), d[live].log()
    xm, ym = lx.mean(), ly.mean()
    slope = float(((lx - xm) * (ly - ym)).sum() / (lx - xm).pow(2).sum())
    intercept = float(ym - slope * xm)
    resid = ly - (intercept + slope * lx)
    r2 = 1 - float(resid.pow(2).sum() / (ly - ym).pow(2).sum())
    return {"alpha": -slope, "c": math.exp(intercept), "r2": r2, "n": n}


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


# ---- evaluation under either rule ---------------------------------------------------------------

@torch.no_grad()
def code_stats(sae: Any, x: Tensor, batch_rule: bool, batch_size: int = 4096, seed: int = 0) -> dict[str, Any]:
    """L0, FVU, dead fraction, per-latent densities and per-token L0 of ``sae`` on ``x`` (N, d).

    ``batch_rule=True`` applies the training-time batch rule (FC / MC / BatchTopK) to batches of
    ``batch_size`` tokens drawn in a shuffled order (``seed``), as in training: consecutive held-out
    tokens come from a few documents, and a per-feature top-m over one document is not what the
    SAE was trained with. ``batch_rule=False`` uses the batch-independent inference rule.
    Per-token results are returned in the original token order.
    """
    from contextlib import nullcontext

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
