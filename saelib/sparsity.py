"""Sparsifiers: the non-linearity that turns pre-activations into sparse codes.

Every sparsifier shares one small interface, so the SAE and the training loop never
branch on the architecture:

* ``forward(pre, dec_norm)`` -> dense codes (differentiable w.r.t. ``pre``);
* ``penalty(pre, codes, dec_norm)`` -> the sparsity term added to the loss (unscaled;
  the trainer multiplies by ``TrainConfig.sparsity_coeff`` and its warm-up);
* for the TopK family (``supports_sparse = True``) also ``select(pre, dec_norm)`` ->
  (rows, cols) of the active entries, rows sorted, used by the sparse fast path.

New sparsifiers register themselves with :func:`register` and are then saved/loaded by name.
"""
from __future__ import annotations

import inspect
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

SPARSIFIERS: dict[str, type["Sparsifier"]] = {}


def register(cls: type["Sparsifier"]) -> type["Sparsifier"]:
    """Class decorator: make a sparsifier constructible by name (``make_sparsifier``)."""
    SPARSIFIERS[cls.name] = cls
    return cls


def make_sparsifier(name: str, n_latents: int | None = None, **kwargs: Any) -> "Sparsifier":
    """Build a registered sparsifier by name, e.g. ``make_sparsifier("topk", k=32)``.

    Sparsifiers with per-latent state (e.g. JumpReLU thresholds) take ``n_latents``; the SAE
    passes its width, other sparsifiers ignore it.
    """
    if name not in SPARSIFIERS:
        raise ValueError(f"sparsifier must be one of {sorted(SPARSIFIERS)}, got {name!r}")
    cls = SPARSIFIERS[name]
    if n_latents is not None and "n_latents" in inspect.signature(cls.__init__).parameters:
        kwargs["n_latents"] = n_latents
    return cls(**kwargs)


class Sparsifier(nn.Module):
    """Base class. Subclasses set ``name`` and implement ``forward``."""

    name: ClassVar[str] = "base"
    supports_sparse: ClassVar[bool] = False

    def forward(self, pre: Tensor, dec_norm: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def select(self, pre: Tensor, dec_norm: Tensor) -> tuple[Tensor, Tensor]:
        """Active entries as (rows, cols), rows sorted ascending. TopK family only."""
        raise NotImplementedError(f"{self.name} has no sparse path")

    def penalty(self, pre: Tensor, codes: Tensor, dec_norm: Tensor) -> Tensor:
        """Sparsity penalty per token, averaged over the batch. Zero by default."""
        return pre.new_zeros(())

    def config(self) -> dict[str, Any]:
        """Constructor kwargs, stored in cfg.json so ``SAE.load`` can rebuild this object."""
        return {}


@register
class ReLU(Sparsifier):
    """f = ReLU(z), trained with an L1 penalty on f_i * ||d_i|| (Anthropic, April 2024 update).

    penalty = E_x[ sum_i f_i(x) ||W_dec[i]||_2 ]; weighting by the decoder norm stops the
    optimiser from shrinking codes while growing decoder rows.
    """

    name = "relu"

    def forward(self, pre: Tensor, dec_norm: Tensor) -> Tensor:
        return torch.relu(pre)

    def penalty(self, pre: Tensor, codes: Tensor, dec_norm: Tensor) -> Tensor:
        return (codes * dec_norm).sum(-1).mean()


@register
class TopK(Sparsifier):
    """Keep the k largest ReLU(z) per token (Gao et al. 2024, Eq. 2); zero the rest.

    With ``rank_by_decoder_norm`` the ranking uses ReLU(z_i) * ||W_dec[i]|| but the kept
    values stay ReLU(z_i) (Llama Scope, He et al. 2024, Sec. 3.2).
    """

    name = "topk"
    supports_sparse = True

    def __init__(self, k: int, rank_by_decoder_norm: bool = False) -> None:
        super().__init__()
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        self.k = k
        self.rank_by_decoder_norm = bool(rank_by_decoder_norm)

    def _topk_indices(self, pre: Tensor, dec_norm: Tensor) -> Tensor:
        if self.k > pre.shape[-1]:
            raise ValueError(f"k={self.k} exceeds the number of latents {pre.shape[-1]}")
        # Ranking raw z (times ||d_i||) picks the same non-zero values as ranking ReLU(z):
        # the two orders differ only among entries that ReLU sets to zero. It saves a pass.
        scores = pre * dec_norm if self.rank_by_decoder_norm else pre
        return scores.topk(self.k, dim=-1, sorted=False).indices

    def forward(self, pre: Tensor, dec_norm: Tensor) -> Tensor:
        idx = self._topk_indices(pre.detach(), dec_norm.detach())
        vals = torch.relu(pre.gather(-1, idx))
        return torch.zeros_like(pre).scatter(-1, idx, vals)

    def select(self, pre: Tensor, dec_norm: Tensor) -> tuple[Tensor, Tensor]:
        idx = self._topk_indices(pre, dec_norm)
        rows = torch.arange(pre.shape[0], device=pre.device).repeat_interleave(self.k)
        return rows, idx.reshape(-1)

    def config(self) -> dict[str, Any]:
        return {"k": self.k, "rank_by_decoder_norm": self.rank_by_decoder_norm}


# ---- JumpReLU (Rajamanoharan et al. 2024, arXiv 2407.14435) ----------------------------------

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
    sends no gradient to z. ``threshold`` is stored raw (SAELens's name); it must stay positive.
    """

    name = "jumprelu"

    def __init__(self, n_latents: int, init_threshold: float = 0.001, bandwidth: float = 0.001) -> None:
        super().__init__()
        if init_threshold <= 0 or bandwidth <= 0:
            raise ValueError(f"init_threshold and bandwidth must be > 0, got {init_threshold}, {bandwidth}")
        self.n_latents, self.init_threshold, self.bandwidth = n_latents, init_threshold, bandwidth
        self.threshold = nn.Parameter(torch.full((n_latents,), float(init_threshold)))

    def forward(self, pre: Tensor, dec_norm: Tensor) -> Tensor:
        return _JumpReLUFn.apply(pre, self.threshold, self.bandwidth)

    def penalty(self, pre: Tensor, codes: Tensor, dec_norm: Tensor) -> Tensor:
        """L0 = E_x sum_i H(z_i - theta_i), with the STE gradient to theta only."""
        return _StepFn.apply(pre, self.threshold, self.bandwidth).sum(-1).mean()

    def config(self) -> dict[str, Any]:
        return {"n_latents": self.n_latents, "init_threshold": self.init_threshold, "bandwidth": self.bandwidth}
