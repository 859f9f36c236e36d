"""Does an SAE generalise beyond its training distribution? Helpers for Llama Scope's (He et al. 2024,
arXiv 2410.20526, Sec. 5) two tests: longer contexts than in training (per-position FVU and Delta LM
loss) and a fine-tuned model (a cheap, cached fine-tune of the default LM as the CPU stand-in, and a
weight-perturbed model as the positive control).
The per-token CE they use is :func:`saelib.metrics.splice.per_token_ce`.

Used by: notebook 01.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor

from ..data.harvest import Activations
from ..data.lm import DEFAULT_LM, decoder_layers, load_lm
from ..data.text import Order, load_corpus, tokenize_and_chunk
from ..sae import SAE
from ..utils import building, cache_dir, check_range, release_memory, seed_everything
from ..utils import progress as progress_bar

# ---- a cheap fine-tuned variant of the default LM ------------------------------------------------


def finetune_lm(base: str = DEFAULT_LM, corpus: str = "local:gensim-lee", n_steps: int = 12, batch_size: int = 8,
                ctx_len: int = 128, lr: float = 1e-4, seed: int = 0, bf16: bool = False,
                progress: bool = True, order: Order = "permuted") -> str:
    """Fine-tune all weights of ``base`` on next-token prediction over ``corpus``'s train split; cached.

    A stand-in for the paper's base -> instruct comparison that fits a CPU: AdamW (weight decay 0),
    constant ``lr``, ``n_steps`` steps of ``batch_size`` chunks of ``ctx_len`` tokens (the first chunks of
    the train split in chunk ``order``), each chunk seen once, in fp32. ``bf16=True`` runs it under bf16 autocast
    on CPU: fast only where the CPU has bf16 units (AMX, AVX-512-BF16), about 20x slower than fp32 on an AVX2 CPU
    (8 steps of 2 x 128 tokens at 135M parameters: 505 s, against 37 s in fp32 with the model load), and its rounding differs from
    one CPU to another, so the fine-tuned weights would too. Saved with ``save_pretrained`` under
    ``cache_dir()/lm/finetuned-<key>`` (with ``finetune.json``: settings and per-step losses);
    returns that folder, which :func:`saelib.data.lm.load_lm` and :func:`saelib.data.harvest.harvest` accept.
    """
    check_range("n_steps", n_steps, 1)
    check_range("batch_size", batch_size, 1)
    check_range("lr", lr, 0, lo_open=True)
    settings = dict(base=base, corpus=corpus, n_steps=n_steps, batch_size=batch_size, ctx_len=ctx_len, lr=lr,
                    seed=seed, bf16=bf16, order=order, v=1)
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    target = cache_dir() / "lm" / f"finetuned-{key}"
    with building(target, done="finetune.json") as out:  # once, even with two kernels starting together
        if out is not None:
            _finetune(out, settings, progress)
            release_memory()  # the copy and its optimiser state (~3 GB): returned to the OS, not kept in the heap
    return str(target)


def _finetune(out: Path, settings: dict, progress: bool) -> None:
    base, corpus, ctx_len, seed, lr = (settings[k] for k in ("base", "corpus", "ctx_len", "seed", "lr"))
    n_steps, batch_size, bf16 = settings["n_steps"], settings["batch_size"], settings["bf16"]
    model, tok = load_lm(base)
    model = copy.deepcopy(model).train().requires_grad_(True)
    tokens = tokenize_and_chunk(load_corpus(corpus)["train"], tok, ctx_len, max_tokens=n_steps * batch_size * ctx_len,
                                order=settings["order"])
    gen = seed_everything(seed)
    order = torch.randperm(len(tokens), generator=gen)
    # One AdamW per parameter, stepped as soon as that parameter's gradient is complete, which then is
    # freed: no moment holds every gradient (-0.5 GB at 135M parameters). The same update as one AdamW
    # stepped after the backward (AdamW is per-parameter; tested), e.g. the tied embedding steps once.
    opts = {p: torch.optim.AdamW([p], lr=lr, weight_decay=0.0, foreach=False) for p in model.parameters()}

    def step_and_free(p: torch.Tensor) -> None:
        opts[p].step()
        p.grad = None

    hooks = [p.register_post_accumulate_grad_hook(step_and_free) for p in opts]
    losses: list[float] = []
    t0 = time.perf_counter()
    for step in progress_bar(range(n_steps), desc="fine-tune", disable=not progress):
        idx = order[(torch.arange(batch_size) + step * batch_size) % len(tokens)]
        batch = tokens[idx]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16 and batch.device.type == "cpu"):
            loss = model(input_ids=batch, labels=batch, use_cache=False).loss
        loss.backward()
        losses.append(loss.item())
    for h in hooks:
        h.remove()
    model.eval().requires_grad_(False)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "finetune.json").write_text(json.dumps({**settings, "losses": losses, "n_chunks": len(tokens),
                                                   "seconds": time.perf_counter() - t0}, indent=2))


def perturb_lm(base: str = DEFAULT_LM, rel_noise: float = 0.1, up_to_layer: int | None = None,
               seed: int = 0) -> str:
    """A positive control for a transfer test: ``base`` with Gaussian noise on the weight matrices of its
    blocks ``0 .. up_to_layer`` (all blocks if None), cached like :func:`finetune_lm`.

    Each 2-D weight W becomes W + ``rel_noise`` * rms(W) * N(0, 1) (seeded); norms, biases, the embedding
    and the blocks after ``up_to_layer`` keep their values, so a splice at ``up_to_layer`` runs the base
    model's tail. A model moved this far should fail a "transfers with small degradation" test: if it
    passes too, the test cannot tell. Saved under ``cache_dir()/lm/perturbed-<key>`` (with ``perturb.json``).
    """
    check_range("rel_noise", rel_noise, 0, lo_open=True)
    settings = dict(base=base, rel_noise=rel_noise, up_to_layer=up_to_layer, seed=seed, v=1)
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    target = cache_dir() / "lm" / f"perturbed-{key}"
    with building(target, done="perturb.json") as out:
        if out is not None:
            model, tok = load_lm(base)
            model = copy.deepcopy(model)
            blocks = decoder_layers(model)
            last = len(blocks) - 1 if up_to_layer is None else up_to_layer
            check_range("up_to_layer", last, 0, len(blocks) - 1)
            gen = torch.Generator().manual_seed(seed)
            with torch.no_grad():
                for block in list(blocks)[: last + 1]:
                    for w in block.parameters():
                        if w.dim() == 2:
                            rms = w.pow(2).mean().sqrt()
                            w.add_(rel_noise * rms * torch.randn(w.shape, generator=gen, dtype=w.dtype))
            model.save_pretrained(out)
            tok.save_pretrained(out)
            (out / "perturb.json").write_text(json.dumps({**settings, "blocks": last + 1}, indent=2))
            del model
            release_memory()
    return str(target)


# ---- evaluation helpers: by position ------------------------------------------------------------


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
