"""A toy problem on which the JumpReLU straight-through estimators can be checked exactly.

Rajamanoharan et al. (2024, Sec. 4, App. B) show that the STE gradient w.r.t. theta, averaged
over a batch, is a kernel density estimate of the gradient of the *expected* loss, even though
the loss of any one sample is piecewise constant in theta. The toy makes that testable:

    z_i ~ N(0, 1) independently per latent i;   f_i = JumpReLU_theta_i(z_i) = z_i H(z_i - theta_i)
    L(theta) = E_z[ sum_i (a z_i - f_i)^2 ] + lam * P(L0),   L0 = sum_i H(z_i - theta_i)
    P(L0) = E[L0] (paper, Eq. 9)   or   (E[L0] / T - 1)^2 (the l0_target variant).

The expected loss is computed by Gauss-Legendre quadrature split at each theta_i (so the
discontinuity never sits inside a panel) with the sparsifier's own forward, and differentiated
by central finite differences; the STE gradient comes from autograd on a Monte Carlo batch.
Closed form, for reference: dL/dtheta_i = (2a - 1) theta_i^2 phi(theta_i) - lam phi(theta_i) (L0 penalty).

Used by: notebook 03.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ..sparsifiers.jumprelu import JumpReLU


def _sparsifier(thetas: Tensor, bandwidth: float, l0_target: float | None) -> JumpReLU:
    s = JumpReLU(n_latents=len(thetas), init_threshold=1.0, bandwidth=bandwidth, l0_target=l0_target).double()
    with torch.no_grad():
        s.threshold.copy_(thetas.double())
    return s


def toy_loss(s: JumpReLU, z: Tensor, a: float = 0.2, lam: float = 0.5) -> Tensor:
    """Batch loss: mean_x sum_i (a z_i - f_i)^2 + lam * penalty (the sparsifier's own penalty)."""
    ones = torch.ones(z.shape[-1], dtype=z.dtype)
    f = s(z, ones)
    return (a * z - f).pow(2).sum(-1).mean() + lam * s.penalty(z, f, ones)


def ste_theta_grad(thetas: Tensor, bandwidth: float, n_samples: int = 1_000_000, a: float = 0.2,
                   lam: float = 0.5, l0_target: float | None = None, seed: int = 0) -> Tensor:
    """d(batch loss)/d theta from the STEs, on ``n_samples`` draws of z ~ N(0, I)."""
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    s = _sparsifier(thetas, bandwidth, l0_target)
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n_samples, len(thetas), generator=g, dtype=torch.float64)
    toy_loss(s, z, a, lam).backward()
    return s.threshold.grad.detach().clone()


def expected_loss(thetas: Tensor, a: float = 0.2, lam: float = 0.5, l0_target: float | None = None,
                  n_nodes: int = 200, half_width: float = 12.0) -> float:
    """E_z[loss] by Gauss-Legendre quadrature on [-w, theta_i] and [theta_i, w] for every latent."""
    thetas = thetas.double()
    s = _sparsifier(thetas, 1.0, None)
    x, w = (torch.from_numpy(v) for v in np.polynomial.legendre.leggauss(n_nodes))
    panels = [(torch.full_like(thetas, -half_width), thetas), (thetas, torch.full_like(thetas, half_width))]
    z = torch.cat([(lo + hi)[None] / 2 + x[:, None] * (hi - lo)[None] / 2 for lo, hi in panels])
    weights = torch.cat([w[:, None] * (hi - lo)[None] / 2 for lo, hi in panels])
    weights = weights * torch.exp(-z ** 2 / 2) / math.sqrt(2 * math.pi)
    with torch.no_grad():
        f = s(z, torch.ones(len(thetas), dtype=torch.float64))
        mse = ((a * z - f).pow(2) * weights).sum()
        l0 = ((f != 0).double() * weights).sum()
    pen = l0 if l0_target is None else (l0 / l0_target - 1) ** 2
    return float(mse + lam * pen)


def fd_theta_grad(thetas: Tensor, h: float = 1e-4, **kwargs) -> Tensor:
    """Central finite differences of :func:`expected_loss` in each theta_i."""
    thetas = thetas.double()
    out = torch.empty_like(thetas)
    for i in range(len(thetas)):
        e = torch.zeros_like(thetas)
        e[i] = h
        out[i] = (expected_loss(thetas + e, **kwargs) - expected_loss(thetas - e, **kwargs)) / (2 * h)
    return out


def closed_form_grad(thetas: Tensor, a: float = 0.2, lam: float = 0.5) -> Tensor:
    """d E[loss] / d theta for the L0 penalty: (2a - 1) theta^2 phi(theta) - lam phi(theta)."""
    t = thetas.double()
    phi = torch.exp(-t ** 2 / 2) / math.sqrt(2 * math.pi)
    return (2 * a - 1) * t ** 2 * phi - lam * phi
