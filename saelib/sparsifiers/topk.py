"""TopK (Gao et al. 2024, arXiv 2406.04093, Eq. 2) and SplInterp's signed TopK-by-|z|.

* ``TopK``: keep the k largest ReLU(z) per token; optionally ranked by ReLU(z_i) ||d_i|| (Llama Scope).
  Supports the sparse fast path.
* ``TopKAbs``: keep the k entries of largest |z| *with their signs* (Budd et al. 2025, SplInterp,
  the authors' code). Its kept values are not ReLU(z), so it has no sparse path.

Used by: TopK in notebooks 00-08; TopKAbs in 09, 10.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import Sparsifier, register


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


@register
class TopKAbs(Sparsifier):
    """rho(z): keep the k entries of largest |z| with their signs, zero the rest (SplInterp's TopK)."""

    name = "topk_abs"

    def __init__(self, k: int) -> None:
        super().__init__()
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        self.k = k

    def forward(self, pre: Tensor, dec_norm: Tensor) -> Tensor:
        if self.k > pre.shape[-1]:
            raise ValueError(f"k={self.k} exceeds the number of latents {pre.shape[-1]}")
        idx = pre.detach().abs().topk(self.k, dim=-1, sorted=False).indices
        return torch.zeros_like(pre).scatter(-1, idx, pre.gather(-1, idx))

    def config(self) -> dict[str, Any]:
        return {"k": self.k}
