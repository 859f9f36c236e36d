"""g-SAE selection (Olmo et al. 2024, arXiv 2411.10397, Sec. 3): TopK over s_i = ReLU(z_i)(1 + beta |d_i . g|).

* ``GradientTopK`` (registered as ``"gradient_topk"``): the kept *values* are ReLU(z_i); without g
  it is plain TopK.
* ``with_gradients``: a context manager that hands g to the sparsifier for evaluation (training
  uses :class:`saelib.papers.gradient_sae.feed_gradients`).

The gradients themselves come from :func:`saelib.data.harvest.harvest_gradients`.

Used by: notebook 05.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import Tensor, nn

from ..utils import check_range
from .base import Sparsifier, register


@register
class GradientTopK(Sparsifier):
    """g-SAE selection (Olmo et al. 2024, Sec. 3): TopK over s_i = ReLU(z_i)(1 + beta |d_i . g|).

    d_i = W_dec[i] / ||W_dec[i]|| (unit direction, so the score does not change when the input
    scale is folded into the weights after training); g = d CE / d x for the token. Only the
    *choice* of latents uses g: the kept values are ReLU(z_i) and no gradient flows into g or
    through the score. Non-positive z_i keep their raw value as score (they rank below every
    positive one, exactly as in TopK), so ``beta = 0`` or no g gives TopK's indices.

    g is handed in with :meth:`set_gradients` (rows consumed in order by successive forwards:
    one batch per training step via :class:`feed_gradients`, a whole evaluation set via
    :func:`with_gradients`). With no g pending, selection is plain TopK.
    """

    name = "gradient_topk"
    supports_sparse = True

    def __init__(self, k: int, beta: float = 1.0) -> None:
        super().__init__()
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        check_range("beta", beta, 0)
        self.k, self.beta = k, float(beta)
        self._pending: dict[str, Any] = {}  # plain dict: the decoder must not register as a parameter here

    # ---- handing g in ------------------------------------------------------------------
    def set_gradients(self, g: Tensor, W_dec: Tensor) -> None:
        """Queue per-token gradients (N, d); the next forwards consume them row by row."""
        if g.dim() != 2 or g.shape[1] != W_dec.shape[1]:
            raise ValueError(f"g must have shape (N, d={W_dec.shape[1]}), got {tuple(g.shape)}")
        self._pending = {"g": g.detach(), "W_dec": W_dec, "pos": 0}

    def clear_gradients(self) -> int:
        """Drop pending gradients; return how many rows were left unused."""
        left = len(self._pending["g"]) - self._pending["pos"] if self._pending else 0
        self._pending = {}
        return left

    @property
    def has_gradients(self) -> bool:
        return bool(self._pending)

    def _take(self, n: int) -> tuple[Tensor, Tensor] | None:
        if not self._pending:
            return None
        p = self._pending
        if p["pos"] + n > len(p["g"]):
            left = len(p["g"]) - p["pos"]
            self._pending = {}
            raise ValueError(f"{self.name}: a forward of {n} tokens but only {left} gradient rows are pending "
                             f"(g must be aligned row for row with the encoded tokens)")
        g = p["g"][p["pos"]: p["pos"] + n]
        p["pos"] += n
        W_dec = p["W_dec"]
        if p["pos"] == len(p["g"]):
            self._pending = {}
        return g, W_dec

    # ---- selection -------------------------------------------------------------------
    @torch.no_grad()
    def influence(self, g: Tensor, W_dec: Tensor) -> Tensor:
        """|d_i . g| for every token and latent, (N, m), with unit decoder directions d_i."""
        unit = W_dec / W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return (g.to(unit.dtype) @ unit.t()).abs()

    @torch.no_grad()
    def scores(self, pre: Tensor) -> Tensor:
        """Selection scores for (N, m) ``pre``; consumes N pending gradient rows (TopK scores if none)."""
        taken = self._take(pre.shape[0])
        if taken is None or self.beta == 0:
            return pre
        g, W_dec = taken
        return torch.where(pre > 0, pre * (1 + self.beta * self.influence(g, W_dec)), pre)

    def _indices(self, pre: Tensor) -> Tensor:
        if self.k > pre.shape[-1]:
            raise ValueError(f"k={self.k} exceeds the number of latents {pre.shape[-1]}")
        flat = pre.detach().reshape(-1, pre.shape[-1])
        return self.scores(flat).topk(self.k, dim=-1, sorted=False).indices

    def forward(self, pre: Tensor, dec_norm: Tensor) -> Tensor:
        flat = pre.reshape(-1, pre.shape[-1])
        idx = self._indices(flat)
        vals = torch.relu(flat.gather(-1, idx))
        return torch.zeros_like(flat).scatter(-1, idx, vals).reshape(pre.shape)

    def select(self, pre: Tensor, dec_norm: Tensor) -> tuple[Tensor, Tensor]:
        idx = self._indices(pre)
        rows = torch.arange(pre.shape[0], device=pre.device).repeat_interleave(self.k)
        return rows, idx.reshape(-1)

    def config(self) -> dict[str, Any]:
        return {"k": self.k, "beta": self.beta}


@contextmanager
def with_gradients(sae: nn.Module, grads: Tensor | None) -> Iterator[nn.Module]:
    """Evaluate a g-SAE (an SAE whose sparsifier is a ``GradientTopK``) with g: every token encoded
    inside consumes the next row of ``grads``.

    ``grads=None`` leaves selection as plain TopK (the "no g at inference" setting). On a clean
    exit every row must have been used (else ValueError: the rows were not aligned).
    """
    sp = sae.sparsifier
    if not isinstance(sp, GradientTopK):
        raise ValueError(f"with_gradients needs a 'gradient_topk' SAE, got {sp.name!r}")
    if grads is not None:
        sp.set_gradients(grads, sae.W_dec)
    try:
        yield sae
    except BaseException:
        sp.clear_gradients()
        raise
    left = sp.clear_gradients()
    if left:
        raise ValueError(f"with_gradients: {left} of {len(grads)} gradient rows unused; "
                         f"grads must have one row per encoded token")
