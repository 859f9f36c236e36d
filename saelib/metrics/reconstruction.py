"""Reconstruction metrics of one SAE on held-out activations (definitions in docs/glossary.md).

* L0 = mean number of non-zero latents per token.
* FVU = sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 over a held-out set; explained variance = 1 - FVU.
* Dead latent = fired on no token of the evaluation window (the whole set passed in).

:func:`evaluate` is the one evaluation path: every metric above, shrinkage, per-sequence sums for
the bootstrap, optionally Delta LM loss through the splice, under the inference threshold or the
training-time batch rule of a batch-level sparsifier, with or without g (g-SAE).
"""
from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from ..data.harvest import Activations
from ..sae import SAE
from ..sparsifiers.gradient_topk import with_gradients
from ..utils import check_range

if TYPE_CHECKING:
    from .splice import Splice


def l0(codes: Tensor) -> float:
    """Mean number of non-zero entries per row."""
    return (codes != 0).sum(-1).float().mean().item()


def fvu(x: Tensor, x_hat: Tensor) -> float:
    """Fraction of variance unexplained: sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 (0 = perfect, 1 = the mean)."""
    return ((x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum()).item()


@dataclass(frozen=True)
class PerSequence:
    """Per held-out sequence sums (one entry per sequence, in sequence order): the unit a bootstrap
    resamples. ``var`` is sum ||x - mean(x)||^2 with the mean over the whole evaluation set, so
    FVU = sse.sum() / var.sum() on any resample of sequences. ``ce_*`` (with a splice; else None) sum
    each sequence's next-token CE over its ``n_predictions``, for the splice's sequences only: the first
    ``len(ce_spliced)`` of the held-out order."""

    sse: np.ndarray
    var: np.ndarray
    active: np.ndarray
    n_tokens: np.ndarray
    ce_spliced: np.ndarray | None = None
    ce_clean: np.ndarray | None = None
    n_predictions: int = 0

    @property
    def delta_lm(self) -> np.ndarray:
        """Per-sequence Delta LM loss (mean over the sequence's predictions)."""
        if self.ce_spliced is None:
            raise ValueError("no splice was evaluated (pass splice= to evaluate)")
        return (self.ce_spliced - self.ce_clean) / self.n_predictions


@dataclass(frozen=True)
class Evaluation:
    """Held-out metrics of one SAE (definitions in ``docs/glossary.md``).

    * ``l0``: mean active latents per token; ``fvu`` (= NMSE): sum ||x - x_hat||^2 / sum ||x - mean||^2;
      ``mse``: mean squared error per entry, sum ||x - x_hat||^2 / (N d).
    * ``dead_frac``: latents that fired on none of the ``window_tokens`` evaluated; ``densities``: firing
      frequency per latent; ``hf_10`` / ``hf_1``: fraction of latents firing on > 10% / > 1% of tokens.
    * Shrinkage: ``gamma``, the best rescale of the reconstruction about the mean,
      argmin_g sum ||(x - mean) - g (x_hat - mean)||^2 (> 1: too small, the L1 signature);
      ``norm_ratio`` = E||x_hat|| / E||x||; ``cosine`` = mean cos(x, x_hat).
    * ``delta_lm_loss`` / ``ce_recovered`` with a splice (NaN without).
    * ``per_sequence`` (when sequences are known) and ``l0_per_token`` (in the input's row order).
    """

    l0: float
    fvu: float
    mse: float
    dead_frac: float
    window_tokens: int
    densities: Tensor
    gamma: float
    norm_ratio: float
    cosine: float
    l0_per_token: Tensor
    delta_lm_loss: float = math.nan
    ce_recovered: float = math.nan
    per_sequence: PerSequence | None = None

    @property
    def nmse(self) -> float:
        return self.fvu

    @property
    def explained_variance(self) -> float:
        return 1 - self.fvu

    @property
    def hf_10(self) -> float:
        return float((self.densities > 0.1).float().mean())

    @property
    def hf_1(self) -> float:
        return float((self.densities > 0.01).float().mean())

    def row(self) -> dict[str, float]:
        """The scalar metrics, as one table row (the sweep's columns)."""
        return {"l0": self.l0, "fvu": self.fvu, "nmse": self.fvu, "dead_frac": self.dead_frac, "hf_10": self.hf_10,
                "hf_1": self.hf_1, "norm_ratio": self.norm_ratio, "gamma": self.gamma, "cosine": self.cosine,
                "delta_lm_loss": self.delta_lm_loss, "ce_recovered": self.ce_recovered}

    def __getitem__(self, name: str):
        """``ev["fvu"]``: dict-style access, as the notebooks written before this type use it."""
        return getattr(self, name)


@torch.no_grad()
def evaluate(sae: SAE, data: Tensor | Activations, splice: Splice | None = None, batch_rule: bool = False,
             batch_size: int = 8192, seed: int = 0, grads: Tensor | None = None) -> Evaluation:
    """Every held-out metric of ``sae`` on ``data`` (an (N, d) tensor, or :class:`Activations`, whose
    rows carry their sequence so that :class:`PerSequence` sums come back too). The SAE is evaluated in
    eval mode: batch-level sparsifiers (BatchTopK, Mutual / Feature Choice) use their inference threshold.

    ``batch_rule=True`` applies the training-time batch rule instead, to batches of ``batch_size`` tokens
    drawn in a shuffled order (``seed``), as in training (consecutive tokens come from one document, and a
    per-feature top-m over one document is not what the SAE was trained with). ``grads`` (rows aligned with
    ``data``) are shown to a gradient-aware selection (g-SAE), the splice included. ``splice`` adds
    Delta LM loss over its sequences (the first ones of ``data``).
    """
    x = data.acts if isinstance(data, Activations) else data
    seq = data.index[:, 0] if isinstance(data, Activations) else None
    check_range("batch_size", batch_size, 1)
    if batch_rule and not hasattr(sae.sparsifier, "batch_rule"):
        raise ValueError(f"batch_rule=True needs a sparsifier with a batch rule, got {sae.sparsifier.name!r}")
    if grads is not None and len(grads) < len(x):
        raise ValueError(f"grads must have a row per row of data ({len(x)}), got {len(grads)}")
    was_training = sae.training
    sae.eval()
    order = (torch.randperm(len(x), generator=torch.Generator().manual_seed(seed)) if batch_rule
             else torch.arange(len(x)))
    mean = x.mean(0)
    sse_tok, var_tok, dot_tok, hat_tok = (torch.zeros(len(x), dtype=torch.float64) for _ in range(4))
    l0_tok = torch.zeros(len(x), dtype=torch.long)
    counts = torch.zeros(sae.d_sae)
    sums = torch.zeros(3, dtype=torch.float64)  # sum ||x_hat||, sum ||x||, sum cos(x, x_hat)
    with sae.sparsifier.batch_rule() if batch_rule else nullcontext():
        for idx in order.split(batch_size):
            xb = x[idx]
            with nullcontext() if grads is None else with_gradients(sae, grads[idx]):
                f = sae.encode(xb)
            x_hat = sae.decode(f)
            sse_tok[idx] = (xb - x_hat).pow(2).sum(-1).double()
            xc, hc = xb - mean, x_hat - mean
            var_tok[idx] = xc.pow(2).sum(-1).double()
            dot_tok[idx] = (xc * hc).sum(-1).double()
            hat_tok[idx] = hc.pow(2).sum(-1).double()
            active = f != 0
            l0_tok[idx] = active.sum(-1)
            counts += active.sum(0)
            sums[0] += x_hat.norm(dim=-1).sum().double()
            sums[1] += xb.norm(dim=-1).sum().double()
            sums[2] += torch.cosine_similarity(xb, x_hat, dim=-1).sum().double()
    sae.train(was_training)
    n = len(x)
    fvu_ = float(sse_tok.sum() / var_tok.sum())
    lm: dict[str, float] = {}
    per_seq = None
    if seq is not None:
        n_seq = int(data.tokens.shape[0])

        def by_seq(v: Tensor) -> np.ndarray:
            return torch.zeros(n_seq, dtype=torch.float64).index_add_(0, seq, v.double()).numpy()
        per_seq = dict(sse=by_seq(sse_tok), var=by_seq(var_tok), active=by_seq(l0_tok), n_tokens=by_seq(torch.ones(n)))
    if splice is not None:
        n_splice = int(splice.keep.sum())
        with (nullcontext() if grads is None else with_gradients(sae, grads[:n_splice])), \
                (sae.sparsifier.batch_rule() if batch_rule else nullcontext()):
            lm = splice.evaluate(sae)  # under the same rule as the rest (the splice's batches: its sequences)
        if per_seq is not None:
            per_seq.update(ce_spliced=lm["ce_spliced_per_seq"], ce_clean=splice.ce_clean_per_seq,
                           n_predictions=splice.n_predictions)
    hat_sum = float(hat_tok.sum())
    return Evaluation(
        l0=float(l0_tok.double().mean()), fvu=fvu_, mse=float(sse_tok.sum()) / x.numel(), dead_frac=float((counts == 0).float().mean()), window_tokens=n,
        densities=counts / n, gamma=float(dot_tok.sum()) / hat_sum if hat_sum > 0 else math.nan,
        norm_ratio=float(sums[0] / sums[1]), cosine=float(sums[2]) / n, l0_per_token=l0_tok,
        delta_lm_loss=lm.get("delta_lm_loss", math.nan), ce_recovered=lm.get("ce_recovered", math.nan),
        per_sequence=None if per_seq is None else PerSequence(**per_seq))



