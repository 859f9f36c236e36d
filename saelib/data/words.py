"""Single-token words and their residual activations, labelled by first letter: the data of the
first-letter absorption metric (Chanin et al. 2024, arXiv 2409.14507; :mod:`saelib.metrics.absorption`).

Words: tokens of the tokenizer's vocabulary that decode to a leading space plus >= 2 ASCII letters.
The residual at the hook layer is read at the word token of ``prefix + word`` (a short fixed prefix
so the word is not at the attention-sink position 0). Cached in ``cache_dir()/absorption``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..utils import cache_dir, check_range
from . import cache
from .lm import DEFAULT_LM, load_lm, model_digest, residual_at

LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass
class LabelledActs:
    """Activations ``acts`` (N, d) with integer ``labels`` (N,) in [0, n_classes) and the words."""

    acts: Tensor
    labels: Tensor
    words: list[str]
    n_classes: int


def alpha_words(tokenizer, min_len: int = 2) -> list[tuple[int, str]]:
    """(token id, word) for every vocabulary token that decodes to ' ' + >= ``min_len`` ASCII letters."""
    out = []
    for tid in range(len(tokenizer)):
        s = tokenizer.decode([tid])
        w = s[1:]
        if s.startswith(" ") and len(w) >= min_len and w.isascii() and w.isalpha():
            out.append((tid, w))
    return out


def first_letter_activations(model: str | None = None, layer: int = 15, max_words: int = 6000,
                             prefix: str = "Spell the word:", seed: int = 0, batch_size: int = 256) -> LabelledActs:
    """Residual activations at the word token of ``prefix + ' ' + word`` for up to ``max_words``
    single-token alphabetic words (a fixed random sample), labelled by first letter. Cached."""
    model = model or DEFAULT_LM
    check_range("max_words", max_words, 26)
    meta = dict(model=model, layer=layer, max_words=max_words, prefix=prefix, seed=seed, v=2,
                model_content=model_digest(model))
    key = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]
    t, info = cache.load_or_build(cache_dir() / "absorption" / f"{key}.safetensors",
                                  lambda: _first_letter(model, layer, max_words, prefix, seed, batch_size, meta))
    return LabelledActs(t["acts"], t["labels"], info["words"], 26)


def _first_letter(model: str, layer: int, max_words: int, prefix: str, seed: int, batch_size: int,
                  meta: dict) -> cache.Built:
    lm, tok = load_lm(model)
    vocab = alpha_words(tok)
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(vocab), size=min(max_words, len(vocab)), replace=False).tolist())
    ids = torch.tensor([vocab[i][0] for i in pick])
    words = [vocab[i][1] for i in pick]
    pre = torch.tensor(tok(prefix, add_special_tokens=False)["input_ids"])
    tokens = torch.cat([pre.expand(len(ids), -1), ids[:, None]], dim=1)
    acts = torch.cat([residual_at(lm, tokens[i: i + batch_size], layer)[:, -1].float()
                      for i in range(0, len(tokens), batch_size)])
    labels = torch.tensor([LETTERS.index(w[0].lower()) for w in words])
    return {"acts": acts.contiguous(), "labels": labels}, {"words": words, **meta}
