"""Evaluation metrics shared by every notebook (definitions in shared/papers/README.md).

* L0 = mean number of non-zero latents per token.
* FVU = sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 over a held-out set; explained variance = 1 - FVU.
* Dead latent = fired on no token of the evaluation window (the whole set passed in).
* Delta LM loss = CE(LM with x_hat spliced in at the hook) - CE(clean LM), on held-out text;
  CE loss recovered = (CE_zero - CE_spliced) / (CE_zero - CE_clean). See :class:`Splice`.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .activations import Activations
from .lm import LMTail, load_lm
from .sae import SAE


def l0(codes: Tensor) -> float:
    """Mean number of non-zero entries per row."""
    return (codes != 0).sum(-1).float().mean().item()


def fvu(x: Tensor, x_hat: Tensor) -> float:
    """Fraction of variance unexplained: sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 (0 = perfect, 1 = the mean)."""
    return ((x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum()).item()


@torch.no_grad()
def evaluate(sae: SAE, x: Tensor, batch_size: int = 8192) -> dict[str, float | Tensor]:
    """L0, FVU, explained variance, dead fraction and per-latent firing densities on ``x`` (N, d).

    ``dead_frac`` uses the whole of ``x`` as the window (``window_tokens`` says how many tokens).
    """
    was_training = sae.training
    sae.eval()
    sse, n_active = 0.0, 0.0
    counts = torch.zeros(sae.d_sae)
    norm_hat_sum = 0.0
    norm_sum = 0.0
    for i in range(0, len(x), batch_size):
        xb = x[i: i + batch_size]
        f = sae.encode(xb)
        x_hat = sae.decode(f)
        sse += (xb - x_hat).pow(2).sum().item()
        active = f != 0
        n_active += active.sum().item()
        counts += active.sum(0)
        norm_hat_sum += x_hat.norm(dim=-1).sum().item()
        norm_sum += xb.norm(dim=-1).sum().item()
    sae.train(was_training)
    total_var = (x - x.mean(0)).pow(2).sum().item()
    dens = counts / len(x)
    return {"l0": n_active / len(x), "fvu": sse / total_var, "explained_variance": 1 - sse / total_var,
            "dead_frac": (counts == 0).float().mean().item(), "window_tokens": len(x),
            "norm_ratio": norm_hat_sum / norm_sum, "densities": dens}


class Splice:
    """Cross-entropy of the LM with a function of the residual spliced in at ``layer``.

    Built once per (model, eval activations): it keeps the clean residual after the hook
    (the prefix never re-runs) and the clean per-token CE; each evaluation only runs the
    blocks after the hook. Position 0 (attention sink) and outlier tokens are never
    replaced; the loss excludes the prediction made at position 0.
    """

    def __init__(self, eval_acts: Activations, max_seqs: int | None = 32, batch_size: int = 8,
                 model: str | None = None) -> None:
        name = model or eval_acts.meta.get("model")
        layer = eval_acts.meta.get("layer")
        if name is None or layer is None:
            raise ValueError("eval_acts.meta must name the 'model' and 'layer' it was harvested from")
        lm, _ = load_lm(name)
        self.tail = LMTail(lm, int(layer))
        n = len(eval_acts.tokens) if max_seqs is None else min(max_seqs, len(eval_acts.tokens))
        self.resid, self.tokens, self.keep = eval_acts.resid[:n], eval_acts.tokens[:n], eval_acts.keep[:n]
        self.batch_size = batch_size
        self.ce_clean = self.cross_entropy(lambda r: r)
        self.ce_zero = self.cross_entropy(torch.zeros_like)

    @property
    def n_tokens(self) -> int:
        """Number of predictions the CE averages over."""
        return self.tokens.shape[0] * (self.tokens.shape[1] - 2)

    @torch.no_grad()
    def cross_entropy(self, replace: Callable[[Tensor], Tensor]) -> float:
        """Mean next-token CE with resid[keep] replaced by ``replace(resid[keep])``."""
        total, count = 0.0, 0
        for i in range(0, len(self.tokens), self.batch_size):
            r = self.resid[i: i + self.batch_size].clone()
            k = self.keep[i: i + self.batch_size]
            r[k] = replace(r[k])
            logits = self.tail(r)[:, 1:-1]
            tgt = self.tokens[i: i + self.batch_size, 2:]
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), reduction="sum").item()
            count += tgt.numel()
        return total / count

    def evaluate(self, sae: SAE) -> dict[str, float]:
        """CE clean / spliced / zero-ablated, Delta LM loss and CE loss recovered for ``sae``."""
        was_training = sae.training
        sae.eval()
        ce = self.cross_entropy(sae)
        sae.train(was_training)
        return {"ce_clean": self.ce_clean, "ce_spliced": ce, "ce_zero": self.ce_zero,
                "delta_lm_loss": ce - self.ce_clean,
                "ce_recovered": (self.ce_zero - ce) / (self.ce_zero - self.ce_clean)}
