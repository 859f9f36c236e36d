"""Does an SAE generalise beyond its training distribution? Helpers for Llama Scope's (He et al. 2024,
arXiv 2410.20526, Sec. 5) two tests: longer contexts than in training (per-position FVU and Delta LM
loss) and a fine-tuned model (a cheap, cached fine-tune of the default LM as the CPU stand-in).
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import shutil
import time
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from .activations import Activations
from .lm import DEFAULT_LM, LMTail, load_lm
from .sae import SAE
from .utils import cache_dir, check_range, seed_everything

# ---- a cheap fine-tuned variant of the default LM ------------------------------------------------


def finetune_lm(base: str = DEFAULT_LM, corpus: str = "local:gensim-lee", n_steps: int = 12, batch_size: int = 8,
                ctx_len: int = 128, lr: float = 1e-4, seed: int = 0, bf16: bool = True,
                progress: bool = True) -> str:
    """Fine-tune all weights of ``base`` on next-token prediction over ``corpus``'s train split; cached.

    A stand-in for the paper's base -> instruct comparison that fits a CPU: AdamW (weight decay 0),
    constant ``lr``, ``n_steps`` steps of ``batch_size`` chunks of ``ctx_len`` tokens, each chunk seen
    once (bf16 autocast on CPU if ``bf16``). Saved with ``save_pretrained`` under
    ``cache_dir()/lm/finetuned-<key>`` (with ``finetune.json``: settings and per-step losses);
    returns that folder, which :func:`saelib.lm.load_lm` and :func:`saelib.activations.harvest` accept.
    """
    from .text import load_corpus, tokenize_and_chunk
    from tqdm import tqdm

    check_range("n_steps", n_steps, 1)
    check_range("batch_size", batch_size, 1)
    check_range("lr", lr, 0, lo_open=True)
    settings = dict(base=base, corpus=corpus, n_steps=n_steps, batch_size=batch_size, ctx_len=ctx_len, lr=lr,
                    seed=seed, bf16=bf16, v=1)
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    target = cache_dir() / "lm" / f"finetuned-{key}"
    if (target / "finetune.json").exists():
        return str(target)
    model, tok = load_lm(base)
    model = copy.deepcopy(model).train().requires_grad_(True)
    tokens = tokenize_and_chunk(load_corpus(corpus)["train"], tok, ctx_len, max_tokens=n_steps * batch_size * ctx_len)
    gen = seed_everything(seed)
    order = torch.randperm(len(tokens), generator=gen)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    losses: list[float] = []
    t0 = time.perf_counter()
    for step in tqdm(range(n_steps), desc="fine-tune", disable=not progress, mininterval=5.0):
        idx = order[(torch.arange(batch_size) + step * batch_size) % len(tokens)]
        batch = tokens[idx]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16 and batch.device.type == "cpu"):
            loss = model(input_ids=batch, labels=batch, use_cache=False).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval().requires_grad_(False)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "finetune.json").write_text(json.dumps({**settings, "losses": losses, "n_chunks": len(tokens),
                                                   "seconds": time.perf_counter() - t0}, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return str(target)


# ---- evaluation helpers: by position, across models ------------------------------------------------


@torch.no_grad()
def lm_cross_entropy(model: str, corpus: str, split: str = "eval", n_tokens: int = 1024, ctx_len: int = 128,
                     batch_size: int = 4) -> float:
    """Mean next-token CE (nats) of the whole LM ``model`` on the first ~``n_tokens`` of ``corpus[split]``
    (no SAE; position 0's prediction included). Used to show what a fine-tune changed."""
    from .text import load_corpus, tokenize_and_chunk

    lm, tok = load_lm(model)
    tokens = tokenize_and_chunk(load_corpus(corpus)[split], tok, ctx_len, max_tokens=n_tokens)
    total = 0.0
    for i in range(0, len(tokens), batch_size):
        b = tokens[i: i + batch_size]
        logits = lm(input_ids=b, use_cache=False).logits[:, :-1]
        total += F.cross_entropy(logits.transpose(1, 2), b[:, 1:], reduction="sum").item()
    return total / (tokens.shape[0] * (tokens.shape[1] - 1))


@torch.no_grad()
def fvu_by_position(sae: SAE, acts: Activations, edges: list[int]) -> pd.DataFrame:
    """FVU of ``sae`` on the kept tokens of ``acts`` in position buckets [edges[i], edges[i+1]).

    Each bucket's FVU uses its own variance: sum ||x - x_hat||^2 / sum ||x - mean_bucket(x)||^2.
    """
    pos = acts.index[:, 1]
    x = acts.acts
    err = torch.cat([(x[i: i + 8192] - sae(x[i: i + 8192])).pow(2).sum(-1) for i in range(0, len(x), 8192)])
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (pos >= lo) & (pos < hi)
        if sel.any():
            xb = x[sel]
            rows.append({"bucket": f"{lo}-{hi - 1}", "lo": lo, "hi": hi, "tokens": int(sel.sum()),
                         "fvu": (err[sel].sum() / (xb - xb.mean(0)).pow(2).sum()).item()})
    return pd.DataFrame(rows)


@torch.no_grad()
def per_token_ce(acts: Activations, replace: Any = None, model: str | None = None, batch_size: int = 2) -> Tensor:
    """Next-token CE (n_seq, T-2) with resid[keep] replaced by ``replace(resid[keep])`` (None: clean).

    Entry [b, j] is the loss of the prediction made at position j+1 (target token j+2); like
    :class:`saelib.metrics.Splice`, position 0 and outliers are never replaced and the prediction
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


def bucket_mean(values: Tensor, edges: list[int], offset: int = 1) -> pd.DataFrame:
    """Mean of a (n_seq, T') per-position tensor over position buckets; column j is position j + ``offset``."""
    pos = torch.arange(values.shape[1]) + offset
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (pos >= lo) & (pos < hi)
        if sel.any():
            v = values[:, sel]
            rows.append({"bucket": f"{lo}-{hi - 1}", "lo": lo, "hi": hi, "mean": v.mean().item(),
                         "sem": (v.mean(1).std() / math.sqrt(v.shape[0])).item() if v.shape[0] > 1 else float("nan")})
    return pd.DataFrame(rows)
