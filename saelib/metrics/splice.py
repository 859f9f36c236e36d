"""The LM with a reconstruction spliced in at the hook: Delta LM loss and CE loss recovered.

* Delta LM loss = CE(LM with x_hat spliced in at the hook) - CE(clean LM), on held-out text;
  CE loss recovered = (CE_zero - CE_spliced) / (CE_zero - CE_clean). See :class:`Splice`.
* :func:`per_token_ce`: the same loss per prediction (position buckets, Llama Scope Sec. 5).
* :func:`lm_cross_entropy`: the whole LM's CE on a corpus, no SAE (what a fine-tune changed).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.harvest import Activations
from ..data.lm import LMTail, load_lm
from ..data.text import Order, load_corpus, tokenize_and_chunk
from ..sae import SAE


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
        self.ce_clean_per_seq = self.sequence_ce(lambda r: r)
        self.ce_clean = float(self.ce_clean_per_seq.sum()) / self.n_tokens
        self.ce_zero = self.cross_entropy(torch.zeros_like)

    @property
    def n_predictions(self) -> int:
        """Predictions per sequence (positions 1 .. T-2)."""
        return self.tokens.shape[1] - 2

    @property
    def n_tokens(self) -> int:
        """Number of predictions the CE averages over."""
        return self.tokens.shape[0] * self.n_predictions

    @torch.no_grad()
    def sequence_ce(self, replace: Callable[[Tensor], Tensor]) -> np.ndarray:
        """(n_seq,) next-token CE summed over each sequence, with resid[keep] replaced by ``replace(resid[keep])``."""
        out = []
        for i in range(0, len(self.tokens), self.batch_size):
            r = self.resid[i: i + self.batch_size].clone()
            k = self.keep[i: i + self.batch_size]
            r[k] = replace(r[k])
            logits = self.tail(r)[:, 1:-1]
            tgt = self.tokens[i: i + self.batch_size, 2:]
            out.append(F.cross_entropy(logits.transpose(1, 2), tgt, reduction="none").double().sum(1))
        return torch.cat(out).numpy()

    def cross_entropy(self, replace: Callable[[Tensor], Tensor]) -> float:
        """Mean next-token CE with resid[keep] replaced by ``replace(resid[keep])``."""
        return float(self.sequence_ce(replace).sum()) / self.n_tokens

    def evaluate(self, sae: SAE) -> dict[str, Any]:
        """CE clean / spliced / zero-ablated, Delta LM loss and CE loss recovered for ``sae``, and the
        spliced CE summed per sequence (``ce_spliced_per_seq``; the clean one is ``ce_clean_per_seq``)."""
        was_training = sae.training
        sae.eval()
        per_seq = self.sequence_ce(sae)
        sae.train(was_training)
        ce = float(per_seq.sum()) / self.n_tokens
        return {"ce_clean": self.ce_clean, "ce_spliced": ce, "ce_zero": self.ce_zero,
                "delta_lm_loss": ce - self.ce_clean,
                "ce_recovered": (self.ce_zero - ce) / (self.ce_zero - self.ce_clean), "ce_spliced_per_seq": per_seq}


@torch.no_grad()
def per_token_ce(acts: Activations, replace: Any = None, model: str | None = None, batch_size: int = 2) -> Tensor:
    """Next-token CE (n_seq, T-2) with resid[keep] replaced by ``replace(resid[keep])`` (None: clean).

    Entry [b, j] is the loss of the prediction made at position j+1 (target token j+2); like
    :class:`Splice`, position 0 and outliers are never replaced and the prediction
    at position 0 is left out.
    """
    lm, _ = load_lm(model or acts.meta["model"])
    tail = LMTail(lm, int(acts.meta["layer"]))
    out = []
    for i in range(0, len(acts.tokens), batch_size):
        r = acts.resid[i: i + batch_size].clone()
        if replace is not None:
            k = acts.keep[i: i + batch_size]
            r[k] = replace(r[k])
        logits = tail(r)[:, 1:-1]
        tgt = acts.tokens[i: i + batch_size, 2:]
        out.append(F.cross_entropy(logits.transpose(1, 2), tgt, reduction="none"))
    return torch.cat(out)


@torch.no_grad()
def lm_cross_entropy(model: str, corpus: str, split: str = "eval", n_tokens: int = 1024, ctx_len: int = 128,
                     batch_size: int = 4, order: Order = "permuted") -> float:
    """Mean next-token CE (nats) of the whole LM ``model`` on the first ~``n_tokens`` of ``corpus[split]``
    in chunk ``order`` (no SAE; position 0's prediction included). Used to show what a fine-tune changed."""
    lm, tok = load_lm(model)
    tokens = tokenize_and_chunk(load_corpus(corpus)[split], tok, ctx_len, max_tokens=n_tokens, order=order)
    total = 0.0
    for i in range(0, len(tokens), batch_size):
        b = tokens[i: i + batch_size]
        logits = lm(input_ids=b, use_cache=False).logits[:, :-1]
        total += F.cross_entropy(logits.transpose(1, 2), b[:, 1:], reduction="sum").item()
    return total / (tokens.shape[0] * (tokens.shape[1] - 1))
