"""The LM with a reconstruction spliced in at the hook: Delta LM loss and CE loss recovered.

* Delta LM loss = CE(LM with x_hat spliced in at the hook) - CE(clean LM), on held-out text;
  CE loss recovered = (CE_zero - CE_spliced) / (CE_zero - CE_clean). See :class:`Splice`.
* :func:`per_token_ce`: the same loss per prediction (position buckets, Llama Scope Sec. 5).
* :func:`lm_cross_entropy`: the whole LM's CE on a corpus, no SAE (what a fine-tune changed).

The tail runs in fp32 by default; ``tail_dtype="bfloat16"`` (opt-in, ~1.8x faster than fp32 on a CPU
with bf16 GEMMs) runs its GEMMs and attention in bf16 (:class:`~saelib.data.lm.LMTail`), the log-softmax
and CE always in fp32. Its effect at layer 15 of the default LM on 32 held-out sequences
(``benchmarks/splice_throughput.py``): clean and spliced CE move by < 1e-3 nats, Delta LM by < 1.5e-3,
CE_zero by +0.014 (CE recovered by < 1e-3). Clean, zero and spliced CE of one Splice share its precision.
"""
from __future__ import annotations

import json
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.harvest import _META_KEYS, Activations
from ..data.lm import TAIL_DTYPES, LMTail, TailDtype, load_lm, model_digest
from ..data.text import Order, load_corpus, tokenize_and_chunk
from ..sae import SAE
from ..utils import check_choice


CE_ROWS = 64
"""Rows of logits per log-softmax call: a (64, V) fp32 block stays in cache (~4x faster than one call
over all (B*(T-2), V) logits at V = 49k); rows are independent, so the result does not depend on it."""


def next_token_ce(tail: LMTail, resid: Tensor, tokens: Tensor) -> Tensor:
    """(B, T-2) fp32 CE of the predictions made at positions 1 .. T-2 (targets ``tokens[:, 2:]``).

    The head runs on those positions only; the log-softmax runs in fp32 (a bf16 tail's logits are
    upcast) on contiguous rows, :data:`CE_ROWS` at a time (the last-dim kernel: ~5x faster than over
    a transposed view, as this was computed before, and closer to a float64 log-softmax)."""
    logits = tail(resid, positions=slice(1, -1))
    b, t, v = logits.shape
    flat, tgt = logits.reshape(b * t, v), tokens[:, 2:].reshape(b * t)
    ce = [F.cross_entropy(flat[i: i + CE_ROWS].float(), tgt[i: i + CE_ROWS], reduction="none")
          for i in range(0, b * t, CE_ROWS)]
    return torch.cat(ce).view(b, t)


class Splice:
    """Cross-entropy of the LM with a function of the residual spliced in at ``layer``.

    Built once per (model, eval activations): it keeps the clean residual after the hook
    (the prefix never re-runs) and the clean per-token CE; each evaluation only runs the
    blocks after the hook. Position 0 (attention sink) and outlier tokens are never
    replaced; the loss excludes the prediction made at position 0. ``tail_dtype`` (module
    docstring): the precision of the tail, for the clean, zero-ablated and spliced CE alike.
    """

    def __init__(self, eval_acts: Activations, max_seqs: int | None = 32, batch_size: int = 8,
                 model: str | None = None, tail_dtype: TailDtype = "float32") -> None:
        check_choice("tail_dtype", tail_dtype, TAIL_DTYPES)
        name = model or eval_acts.meta.get("model")
        layer = eval_acts.meta.get("layer")
        if name is None or layer is None:
            raise ValueError("eval_acts.meta must name the 'model' and 'layer' it was harvested from")
        lm, _ = load_lm(name)
        self.tail = LMTail(lm, int(layer), dtype=tail_dtype)
        self.tail_dtype = tail_dtype
        n = len(eval_acts.tokens) if max_seqs is None else min(max_seqs, len(eval_acts.tokens))
        self.resid, self.tokens, self.keep = eval_acts.resid[:n], eval_acts.tokens[:n], eval_acts.keep[:n]
        self.batch_size = batch_size
        self.settings = {**{k: eval_acts.meta.get(k) for k in _META_KEYS}, "tail_model": name,
                         "tail_model_content": model_digest(name), "n_seqs": n, "tail_dtype": tail_dtype}
        self.ce_clean_per_seq = self.sequence_ce(lambda r: r)
        self.ce_clean = float(self.ce_clean_per_seq.sum()) / self.n_tokens
        self.ce_zero = self.cross_entropy(torch.zeros_like)

    @property
    def cache_name(self) -> str:
        """Everything a result of this splice depends on besides the SAE (the held-out harvest, the
        sequences, the tail's precision): the ``name`` to pass to :func:`saelib.store.remember`."""
        return "splice " + json.dumps(self.settings, sort_keys=True)

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
            out.append(next_token_ce(self.tail, r, self.tokens[i: i + self.batch_size]).double().sum(1))
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
        out.append(next_token_ce(tail, r, acts.tokens[i: i + batch_size]))
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
        v = logits.shape[-1]  # over contiguous rows, as next_token_ce: faster and closer to a float64 reference
        total += F.cross_entropy(logits.reshape(-1, v), b[:, 1:].reshape(-1), reduction="sum").item()
    return total / (tokens.shape[0] * (tokens.shape[1] - 1))
