"""JumpReLU (Rajamanoharan et al. 2024, arXiv 2407.14435) and its straight-through estimators.

Used by: notebooks 01 (TopK -> JumpReLU conversion), 02, 03, 06.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .base import Sparsifier, register


def _rect(u: Tensor) -> Tensor:
    """Rectangle kernel K(u) = 1{|u| < 1/2}."""
    return (u.abs() < 0.5).to(u.dtype)


class _JumpReLUFn(torch.autograd.Function):
    """f = z * H(z - theta). Exact gradient to z (H); STE to theta: -(theta/eps) K((z - theta)/eps) (Eq. 11)."""

    @staticmethod
    def forward(ctx, z: Tensor, theta: Tensor, eps: float) -> Tensor:
        ctx.save_for_backward(z, theta)
        ctx.eps = eps
        return z * (z > theta).to(z.dtype)

    @staticmethod
    def backward(ctx, g: Tensor):  # type: ignore[override]
        z, theta = ctx.saved_tensors
        grad_z = g * (z > theta).to(z.dtype)
        grad_theta = (-(theta / ctx.eps) * _rect((z - theta) / ctx.eps) * g).reshape(-1, z.shape[-1]).sum(0)
        return grad_z, grad_theta, None


class _StepFn(torch.autograd.Function):
    """H(z - theta). No gradient to z; STE to theta: -(1/eps) K((z - theta)/eps) (Eq. 12)."""

    @staticmethod
    def forward(ctx, z: Tensor, theta: Tensor, eps: float) -> Tensor:
        ctx.save_for_backward(z, theta)
        ctx.eps = eps
        return (z > theta).to(z.dtype)

    @staticmethod
    def backward(ctx, g: Tensor):  # type: ignore[override]
        z, theta = ctx.saved_tensors
        grad_theta = (-(1.0 / ctx.eps) * _rect((z - theta) / ctx.eps) * g).reshape(-1, z.shape[-1]).sum(0)
        return None, grad_theta, None


@register
class JumpReLU(Sparsifier):
    """f_i = z_i * H(z_i - theta_i) with a learned, per-latent, positive threshold theta.

    Trained with straight-through estimators (rectangle kernel of bandwidth ``bandwidth``) for
    theta, through the output and through the L0 penalty sum_i H(z_i - theta_i); the penalty
    sends no gradient to z (Rajamanoharan et al. 2024, Eqs. 11-12).

    ``threshold`` is stored raw (SAELens's name). It is kept positive by projection: every
    forward first clamps it in place to ``>= MIN_THRESHOLD`` (projected gradient descent; the
    clamp runs only when some entry is below, so it never disturbs a graph built this step).
    No log-parametrisation: under Adam a log-theta barely moves in short runs.

    Penalty: ``l0_target=None`` gives the paper's L0 = E_x sum_i H(z_i - theta_i) (Eq. 9);
    a number T gives the variant (L0 / T - 1)^2 used by some libraries (not in the paper).
    """

    name = "jumprelu"
    MIN_THRESHOLD: ClassVar[float] = 1e-6

    def __init__(self, n_latents: int, init_threshold: float = 0.001, bandwidth: float = 0.001,
                 l0_target: float | None = None) -> None:
        super().__init__()
        if init_threshold <= 0 or bandwidth <= 0:
            raise ValueError(f"init_threshold and bandwidth must be > 0, got {init_threshold}, {bandwidth}")
        if l0_target is not None and not l0_target > 0:
            raise ValueError(f"l0_target must be None or > 0, got {l0_target!r}")
        self.n_latents, self.init_threshold, self.bandwidth = n_latents, init_threshold, bandwidth
        self.l0_target = None if l0_target is None else float(l0_target)
        self.threshold = nn.Parameter(torch.full((n_latents,), float(init_threshold)))

    @torch.no_grad()
    def clamp_threshold_(self) -> None:
        """Project theta onto theta >= MIN_THRESHOLD (in place, only when needed)."""
        if bool((self.threshold < self.MIN_THRESHOLD).any()):
            self.threshold.clamp_(min=self.MIN_THRESHOLD)

    def after_step_(self) -> None:
        self.clamp_threshold_()

    def data_parallel_problem(self) -> str | None:
        if self.l0_target is None:
            return None
        return ("jumprelu with l0_target: the penalty (L0 / l0_target - 1)^2 is not a mean over tokens, so "
                "averaging the ranks' gradients is not the whole batch's gradient; train it in one process")

    def forward(self, pre: Tensor, dec_norm: Tensor) -> Tensor:
        self.clamp_threshold_()
        return _JumpReLUFn.apply(pre, self.threshold, self.bandwidth)

    def l0(self, pre: Tensor) -> Tensor:
        """E_x sum_i H(z_i - theta_i) over the batch, with the STE gradient to theta only (Eq. 12)."""
        return _StepFn.apply(pre, self.threshold, self.bandwidth).sum(-1).mean()

    def penalty(self, pre: Tensor, codes: Tensor, dec_norm: Tensor) -> Tensor:
        """L0 (paper), or (L0 / l0_target - 1)^2 when ``l0_target`` is set."""
        l0 = self.l0(pre)
        return l0 if self.l0_target is None else (l0 / self.l0_target - 1).pow(2)

    def config(self) -> dict[str, Any]:
        cfg = {"n_latents": self.n_latents, "init_threshold": self.init_threshold, "bandwidth": self.bandwidth}
        if self.l0_target is not None:
            cfg["l0_target"] = self.l0_target
        return cfg
