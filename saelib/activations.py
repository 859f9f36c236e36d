"""Harvest residual-stream activations once and cache them (safetensors in ``cache_dir()``).

The cache key holds everything that determines the content: model, layer, corpus, split,
token count, context length, outlier rule and a format version. Every notebook that asks
for the same harvest reuses the same file.

Kept tokens: position 0 of every chunk is dropped (an attention sink with a ~100x norm;
the tokenizer adds no BOS), and so are *outliers*: tokens whose norm exceeds
``outlier_factor`` x the median norm (about 1e-4 of tokens at layer 15). The full
residual (n_seq, T, d) is kept too, for splicing reconstructions back into the LM.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor
from tqdm import tqdm

from .lm import DEFAULT_LM, load_lm, residual_at
from .text import DEFAULT_CORPUS, load_corpus, tokenize_and_chunk
from .utils import atomic_path, cache_dir

FORMAT_VERSION = 1


@dataclass
class Activations:
    """Residual activations of a tokenised corpus: ``resid`` (n_seq, T, d), ``tokens`` (n_seq, T),
    ``keep`` (n_seq, T) marks the tokens used for training/evaluation (``acts`` = resid[keep])."""

    resid: Tensor
    tokens: Tensor
    keep: Tensor
    meta: dict = field(default_factory=dict)

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
            n_tokens: int = 160_000, ctx_len: int = 128, outlier_factor: float = 10.0,
            batch_size: int = 16, device: str = "cpu", progress: bool = True) -> Activations:
    """Residual activations after block ``layer`` on ~``n_tokens`` tokens of ``corpus[split]``, cached."""
    if split not in ("train", "eval"):
        raise ValueError(f"split must be one of ['train', 'eval'], got {split!r}")
    if n_tokens < ctx_len:
        raise ValueError(f"n_tokens must be >= ctx_len={ctx_len}, got {n_tokens}")
    meta = dict(model=model, layer=layer, corpus=corpus, split=split, n_tokens=n_tokens, ctx_len=ctx_len,
                outlier_factor=outlier_factor)
    path = cache_dir() / "activations" / f"{_key(**meta)}.safetensors"
    if path.exists():
        t = load_file(str(path))
        return Activations(t["resid"], t["tokens"], t["keep"].bool(), {**meta, **json.loads(path.with_suffix(".json").read_text())})
    lm, tok = load_lm(model)
    home = next(lm.parameters()).device  # the LM is shared (cached): put it back where it was
    tokens = tokenize_and_chunk(load_corpus(corpus)[split], tok, ctx_len, max_tokens=n_tokens)
    try:
        lm.to(device)
        chunks = [residual_at(lm, tokens[i: i + batch_size].to(device), layer).cpu()
                  for i in tqdm(range(0, len(tokens), batch_size), desc=f"harvest L{layer} {split}",
                                disable=not progress, mininterval=5.0)]
    finally:
        lm.to(home)
    resid = torch.cat(chunks).float().contiguous()
    keep = keep_mask(resid, outlier_factor)
    info = {"n_seq": len(tokens), "n_kept": int(keep.sum()),
            "n_outliers": int((~keep[:, 1:]).sum()), "median_norm": float(resid[:, 1:].norm(dim=-1).median())}
    with atomic_path(path.with_suffix(".json")) as tmp:  # the .safetensors last: it marks completion
        tmp.write_text(json.dumps(info))
    with atomic_path(path) as tmp:
        save_file({"resid": resid, "tokens": tokens, "keep": keep.to(torch.uint8)}, str(tmp))
    return Activations(resid, tokens, keep, {**meta, **info})
