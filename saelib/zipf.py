"""The Zipf-law maths shared by Feature Choice's allocation, the aux-Zipf loss and the density plots
(Ayonrinde 2024, arXiv 2411.02124): ranks, an integer Zipf budget, and a log-log fit.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .utils import check_range


def ranks_from(values: Tensor) -> Tensor:
    """Rank 1 for the largest value, F for the smallest (ties broken by index)."""
    order = torch.argsort(values, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(1, values.numel() + 1, device=values.device)
    return ranks


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


def fit_zipf(densities: Tensor, min_density: float = 0.0, top_frac: float = 1.0) -> dict[str, float]:
    """Least-squares fit of log d = log c - alpha log rank over latents with d > ``min_density``.

    Ranks are taken over *all* latents (1 = densest), so dead latents only shorten the fitted
    range. ``top_frac`` < 1 fits only the densest ceil(top_frac x n) of those n latents: a fit that
    leaves out the low end (Ayonrinde 2024: densities are Zipf "except at the low end").
    Returns alpha, c, r2 (coefficient of determination in log-log space) and n (latents fitted).
    """
    check_range("top_frac", top_frac, 0, 1, lo_open=True)
    d = densities.double().flatten()
    ranks = ranks_from(d).double()
    live = d > min_density
    live &= ranks <= math.ceil(top_frac * int(live.sum()))   # the live latents come first in rank order
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
