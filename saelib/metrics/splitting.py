"""Feature splitting: what does a wider SAE add to a narrower one? (Llama Scope, He et al. 2024,
arXiv 2410.20526, Sec. 6; Bricken et al. 2023 for feature splitting.)

For each wide decoder row: its best cosine to the narrow dictionary, and the residual after
orthogonal matching pursuit on a few narrow atoms; both against a data-shaped null
(:func:`null_directions`). Cosines come from :func:`saelib.metrics.matching.cosine_matrix`.
"""
from __future__ import annotations

import math

import pandas as pd
import torch
from torch import Tensor

from ..utils import check_range
from .matching import cosine_matrix, normalize_rows


@torch.no_grad()
def max_cosine(targets: Tensor, dictionary: Tensor) -> tuple[Tensor, Tensor]:
    """For each row of ``targets``, the largest cosine to any row of ``dictionary`` and its index."""
    return cosine_matrix(targets, dictionary).max(dim=1)


NULL_ROWS = 256


@torch.no_grad()
def null_directions(x: Tensor, n: int, seed: int = 0) -> Tensor:
    """``n`` random unit directions shaped like the data: rows of N(0, Cov(x)), normalised.

    The null reference for "is this latent close to that dictionary?": a trained decoder row lives
    where the data varies, so isotropic random directions (far from everything in high dimension)
    would make any dictionary look related. Sampled as centred data rows mixed with Gaussian
    weights, which has covariance Cov(x) without forming it.
    """
    check_range("n", n, 1)
    gen = torch.Generator().manual_seed(seed)
    xc = x - x.mean(0)
    # the (n, N) weights drawn NULL_ROWS rows at a time (a multiple of 16, so the draws are those of one (n, N)
    # draw, which took 1.5 GB at n 2,300, N 160k; now 160 MB)
    rows = [(torch.randn(min(NULL_ROWS, n - i), len(xc), generator=gen) / math.sqrt(len(xc))) @ xc
            for i in range(0, n, NULL_ROWS)]
    return normalize_rows(torch.cat(rows))


@torch.no_grad()
def omp_residual(targets: Tensor, dictionary: Tensor, n_atoms: int) -> tuple[Tensor, Tensor]:
    """Orthogonal matching pursuit of every (unit) target on ``n_atoms`` atoms of a (unit) dictionary.

    Greedy: pick the atom most correlated (in absolute value) with the residual, refit all picked
    atoms by least squares, repeat. Returns the relative residual norms ||t - D_S c|| / ||t|| (0:
    a sparse combination of the dictionary; ~1: a new direction) and the chosen atoms (n, n_atoms).
    """
    check_range("n_atoms", n_atoms, 1, dictionary.shape[0])
    t, D = normalize_rows(targets), normalize_rows(dictionary)
    r, chosen = t.clone(), []
    for _ in range(n_atoms):
        corr = (r @ D.t()).abs()
        if chosen:
            corr.scatter_(1, torch.stack(chosen, 1), -1.0)
        chosen.append(corr.argmax(1))
        A = D[torch.stack(chosen, 1)]                      # (n, s, d)
        coef = torch.linalg.lstsq(A.transpose(1, 2), t.unsqueeze(-1)).solution  # (n, s, 1)
        r = t - (A.transpose(1, 2) @ coef).squeeze(-1)
    return r.norm(dim=1), torch.stack(chosen, 1)


@torch.no_grad()
def split_families(wide_dec: Tensor, narrow_dec: Tensor, min_cos: float = 0.5,
                   alive: Tensor | None = None) -> pd.DataFrame:
    """Narrow latents with the wide latents whose nearest narrow latent they are (cosine >= ``min_cos``).

    One row per narrow latent with at least two such children, most children first: a candidate
    "feature split" (one narrow direction refined into several wide ones).
    """
    cos, nearest = max_cosine(wide_dec, narrow_dec)
    ok = cos >= min_cos
    if alive is not None:
        ok &= alive
    rows = []
    for j in nearest[ok].unique().tolist():
        kids = torch.nonzero(ok & (nearest == j)).flatten()
        if len(kids) >= 2:
            order = cos[kids].argsort(descending=True)
            rows.append({"narrow": j, "n_children": len(kids), "children": kids[order].tolist(),
                         "cosines": [round(v, 3) for v in cos[kids][order].tolist()]})
    return (pd.DataFrame(rows, columns=["narrow", "n_children", "children", "cosines"])
            .sort_values(["n_children", "narrow"], ascending=[False, True]).reset_index(drop=True))
