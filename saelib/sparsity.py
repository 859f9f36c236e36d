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

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

SPARSIFIERS: dict[str, type["Sparsifier"]] = {}


def register(cls: type["Sparsifier"]) -> type["Sparsifier"]:
    """Class decorator: make a sparsifier constructible by name (``make_sparsifier``)."""
    SPARSIFIERS[cls.name] = cls
    return cls


def make_sparsifier(name: str, **kwargs: Any) -> "Sparsifier":
    """Build a registered sparsifier by name, e.g. ``make_sparsifier("topk", k=32)``."""
    if name not in SPARSIFIERS:
        raise ValueError(f"sparsifier must be one of {sorted(SPARSIFIERS)}, got {name!r}")
    return SPARSIFIERS[name](**kwargs)


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
