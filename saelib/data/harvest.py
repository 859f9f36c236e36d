"""Harvest residual-stream activations once and cache them (safetensors in ``cache_dir()``).

The cache key holds everything that determines the content: model, layer, corpus, split,
token count, context length, chunk order, outlier rule and a format version. Every notebook that
asks for the same harvest reuses the same file.

Which text: the first ceil(n_tokens / ctx_len) chunks of the split in its fixed seeded order
(:func:`saelib.data.text.chunk_split`; ``n_tokens=None`` takes the whole split), so a smaller
harvest holds the same sequences as the start of a larger one. Only those chunks go through the
LM. Each token's document is kept (``doc``), and ``meta["data"]`` counts the documents, tokens and
sequences per source (:func:`saelib.data.text.data_record`).

Kept tokens: position 0 of every chunk is dropped (an attention sink with a ~100x norm;
the tokenizer adds no BOS), and so are *outliers*: tokens whose norm exceeds
``outlier_factor`` x the median norm (about 1e-4 of tokens at layer 15). The full
residual (n_seq, T, d) is kept too, for splicing reconstructions back into the LM.

The LM-loss gradients at the hook (g-SAE, Olmo et al. 2024) are harvested here too
(:func:`harvest_gradients`), cached under the same key fields, row-aligned with ``acts``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property

import torch
import torch.nn.functional as F
from torch import Tensor

from ..utils import cache_dir, check_choice, check_int, check_range
from ..utils import progress as progress_bar
from . import cache
from .lm import DEFAULT_LM, LMTail, load_lm, model_digest, residual_at
from .text import DEFAULT_CORPUS, LOCAL_CORPORA, Order, chunk_split, data_record, load_corpus, sequence_documents

FORMAT_VERSION = 3  # 3: chunk order in the key, per-token documents stored; 2: one hash-verified file


@dataclass
class Activations:
    """Residual activations of a tokenised corpus: ``resid`` (n_seq, T, d), ``tokens`` (n_seq, T),
    ``keep`` (n_seq, T) marks the tokens used for training/evaluation (``acts`` = resid[keep]);
    ``doc`` (n_seq, T), when known, the index in the split of each token's document."""

    resid: Tensor
    tokens: Tensor
    keep: Tensor
    meta: dict = field(default_factory=dict)
    doc: Tensor | None = None

    @cached_property
    def sequence_documents(self) -> Tensor:
        """(n_seq,) each sequence's document (the one giving most of its tokens): the unit to resample
        when one document contributes several sequences."""
        if self.doc is None:
            raise ValueError("these activations carry no per-token documents (doc is None)")
        return sequence_documents(self.doc)

    @cached_property
    def acts(self) -> Tensor:
        """(N, d) kept activations, row-major over (sequence, position)."""
        return self.resid[self.keep]

    @cached_property
    def index(self) -> Tensor:
        """(N, 2) (sequence, position) of every row of ``acts``."""
        return self.keep.nonzero()

    @property
    def d_model(self) -> int:
        return self.resid.shape[-1]

    def __len__(self) -> int:
        return int(self.keep.sum())


def keep_mask(resid: Tensor, outlier_factor: float) -> Tensor:
    """Drop position 0 and tokens with ||x|| > outlier_factor * median ||x|| (positions >= 1)."""
    norms = resid.norm(dim=-1)
    keep = torch.ones_like(norms, dtype=torch.bool)
    keep[:, 0] = False
    median = norms[:, 1:].median()
    return keep & (norms <= outlier_factor * median)


def _key(**kw) -> str:
    blob = json.dumps({**kw, "v": FORMAT_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def harvest(model: str = DEFAULT_LM, layer: int = 15, corpus: str = DEFAULT_CORPUS, split: str = "train",
            n_tokens: int | None = 160_000, ctx_len: int = 128, outlier_factor: float = 10.0,
            batch_size: int = 16, device: str = "cpu", progress: bool = True, order: Order = "permuted") -> Activations:
    """Residual activations after block ``layer`` on ~``n_tokens`` tokens of ``corpus[split]`` (None: all of it)
    in chunk ``order`` (module docstring), cached."""
    # every argument is checked before the LM loads (a first load converts the GGUF: ~20 s)
    if split not in ("train", "eval"):
        raise ValueError(f"split must be one of ['train', 'eval'], got {split!r}")
    check_int("layer", layer, 0)
    check_int("ctx_len", ctx_len, 3)   # the splice's loss needs predictions at positions 1 .. T-2
    if n_tokens is not None:
        check_int("n_tokens", n_tokens, ctx_len)
    check_choice("order", order, ("permuted", "file"))
    check_int("batch_size", batch_size, 1)
    check_range("outlier_factor", outlier_factor, 0, lo_open=True)
    if corpus.startswith("local:") and corpus not in LOCAL_CORPORA:
        raise ValueError(f"corpus must be one of {sorted(LOCAL_CORPORA)} or an HF dataset name, got {corpus!r}")
    meta = dict(model=model, layer=layer, corpus=corpus, split=split, n_tokens=n_tokens, ctx_len=ctx_len,
                outlier_factor=outlier_factor, order=order)
    path = cache_dir() / "activations" / f"{_key(**meta, model_content=model_digest(model))}.safetensors"
    t, info = cache.load_or_build(path, lambda: _harvest(model, layer, corpus, split, n_tokens, ctx_len,
                                                         outlier_factor, batch_size, device, progress, order))
    return Activations(t["resid"], t["tokens"], t["keep"].bool(), {**meta, **info}, t["doc"].long())


def _harvest(model: str, layer: int, corpus: str, split: str, n_tokens: int | None, ctx_len: int,
             outlier_factor: float, batch_size: int, device: str, progress: bool, order: Order) -> cache.Built:
    lm, tok = load_lm(model)
    home = next(lm.parameters()).device  # the LM is shared (cached): put it back where it was
    chunks = chunk_split(load_corpus(corpus)[split], tok, ctx_len, max_tokens=n_tokens, order=order)
    tokens = chunks.tokens
    try:
        lm.to(device)
        parts = [residual_at(lm, tokens[i: i + batch_size].to(device), layer).cpu()
                 for i in progress_bar(range(0, len(tokens), batch_size), desc=f"harvest L{layer} {split}",
                                       disable=not progress)]
    finally:
        lm.to(home)
    resid = torch.cat(parts).float().contiguous()
    keep = keep_mask(resid, outlier_factor)
    info = {"n_seq": len(tokens), "n_kept": int(keep.sum()),
            "n_outliers": int((~keep[:, 1:]).sum()), "median_norm": float(resid[:, 1:].norm(dim=-1).median()),
            "data": data_record(chunks.doc, chunks.sources), "split_sequences": chunks.n_split_chunks}
    return {"resid": resid, "tokens": tokens, "keep": keep.to(torch.uint8), "doc": chunks.doc.int()}, info


# ---- LM-loss gradients at the hook (g-SAE) ------------------------------------------------------

_META_KEYS = ("model", "layer", "corpus", "split", "n_tokens", "ctx_len", "outlier_factor", "order")


def sequence_gradients(tail: LMTail, resid: Tensor, tokens: Tensor) -> Tensor:
    """g = d/d resid of the next-token CE summed over each sequence, for (B, T, d) ``resid``.

    The loss is the one :class:`saelib.metrics.splice.Splice` averages: predictions made at positions
    1 .. T-2 (the prediction at position 0, the attention sink, is excluded), summed per sequence.
    """
    x = resid.detach().clone().requires_grad_(True)
    logits = tail.logits(x)[:, 1:-1]
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 2:].reshape(-1), reduction="sum")
    (g,) = torch.autograd.grad(loss, x)
    return g


def harvest_gradients(acts: Activations, max_seqs: int | None = None, batch_size: int = 8,
                      device: str = "cpu", progress: bool = True) -> Tensor:
    """LM-loss gradients at the hook for the kept tokens of the first ``max_seqs`` sequences.

    Returns (N', d) with row i aligned to ``acts.acts[i]`` (N' = kept tokens of those sequences).
    The backward pass starts from the cached clean residual ``acts.resid`` (the blocks before the
    hook never run again). Cached in ``cache_dir()/activations`` under a key made of the
    harvest's key fields plus ``max_seqs``; written atomically.
    """
    missing = [k for k in _META_KEYS if k not in acts.meta]
    if missing:
        raise ValueError(f"acts.meta must hold {list(_META_KEYS)} (from activations.harvest); missing {missing}")
    n_seq = len(acts.tokens) if max_seqs is None else int(max_seqs)
    check_range("max_seqs", n_seq, 1, len(acts.tokens))
    check_range("batch_size", batch_size, 1)
    meta = {k: acts.meta[k] for k in _META_KEYS}
    path = cache_dir() / "activations" / \
        f"grad-{_key(**meta, model_content=model_digest(meta['model']), kind='lm_grad', max_seqs=n_seq)}.safetensors"
    t, _ = cache.load_or_build(path, lambda: _gradients(acts, n_seq, meta, batch_size, device, progress))
    return t["grad"]


def _gradients(acts: Activations, n_seq: int, meta: dict, batch_size: int, device: str, progress: bool) -> cache.Built:
    lm, _ = load_lm(acts.meta["model"])
    home = next(lm.parameters()).device
    tail = LMTail(lm.to(device), int(acts.meta["layer"]))
    keep = acts.keep[:n_seq]
    rows = []
    try:
        for i in progress_bar(range(0, n_seq, batch_size), desc=f"gradients L{acts.meta['layer']} {acts.meta['split']}",
                              disable=not progress):
            j = min(i + batch_size, n_seq)
            g = sequence_gradients(tail, acts.resid[i:j].to(device), acts.tokens[i:j].to(device)).cpu()
            rows.append(g[keep[i:j]])
    finally:
        lm.to(home)  # the LM is shared (cached by load_lm): leave it where it was
    grad = torch.cat(rows).contiguous()
    return {"grad": grad}, {**meta, "max_seqs": n_seq, "n_rows": len(grad)}
