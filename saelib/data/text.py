"""Text corpora as ``datasets.DatasetDict`` with a fixed train/eval split, tokenised into chunks.

Default (offline): gensim's bundled English Wikipedia excerpt (105 articles after dropping
redirects and stubs) plus the Lee news corpus (300 stories, 294 distinct). Every 10th document goes to
``eval``. Online users pass any HF dataset name ("name" or "name:config").

**Sample, don't truncate.** The local dump is ordered (alphabetical articles, then news), so the
first N tokens of a split are a handful of documents. :func:`chunk_split` tokenises the *whole*
split (documents joined by EOS), cuts it into ``ctx_len`` chunks (a chunk may span a document
boundary) and fixes one seeded permutation of those chunks (``DATA_SEED``); a request for N tokens
takes the first ceil(N / ctx_len) chunks of that order, so a smaller request is always a prefix of
a larger one and every request spans the split's documents. ``order="file"`` keeps document order.
"""
from __future__ import annotations

import bz2
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from torch import Tensor

from ..utils import check_choice, check_int

DEFAULT_CORPUS = "local:gensim-wiki+lee"
EVAL_EVERY = 10
DATA_SEED = 0  # the one permutation of each split's chunks (never tuned)
Order = Literal["permuted", "file"]
"""``"permuted"``: chunks in the split's fixed seeded order (the default); ``"file"``: document order."""
LOCAL_CORPORA = {"local:gensim-wiki+lee": ("wiki", "lee"), "local:gensim-wiki": ("wiki",), "local:gensim-lee": ("lee",)}


def _clean_wiki(text: str) -> str:
    """Strip the markup gensim's ``filter_wiki`` leaves: bold/italic quotes, heading equals signs."""
    text = re.sub(r"'{2,}", "", text)
    text = re.sub(r"^=+\s*(.*?)\s*=+\s*$", r"\1", text, flags=re.M)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


@lru_cache(maxsize=4)
def _local_documents(parts: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki
    from gensim.test.utils import datapath

    docs: list[tuple[str, str]] = []
    if "wiki" in parts:
        path = datapath("enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
        for _title, raw, _pid in extract_pages(bz2.BZ2File(path)):
            text = _clean_wiki(filter_wiki(raw))
            if not text.upper().startswith("#REDIRECT") and len(text) > 500:
                docs.append(("wiki", text))
    if "lee" in parts:
        with open(datapath("lee_background.cor"), encoding="utf8", errors="replace") as fh:
            docs += [("lee", line.strip()) for line in fh if line.strip()]
    unique = dict.fromkeys(docs)  # the Lee corpus repeats some stories: dedupe so no text is in both splits
    return tuple(unique)


def load_corpus(name: str = DEFAULT_CORPUS, text_field: str = "text", **load_kwargs) -> DatasetDict:
    """Return ``{"train", "eval"}`` splits with a ``text`` column (and ``source`` for local corpora).

    Non-local names go to ``datasets.load_dataset(name, config, split="train", **load_kwargs)``
    (``"name:config"``); 5% is held out with a fixed seed.
    """
    if name.startswith("local:"):
        if name not in LOCAL_CORPORA:
            raise ValueError(f"corpus must be one of {sorted(LOCAL_CORPORA)} or an HF dataset name, got {name!r}")
        docs = _local_documents(LOCAL_CORPORA[name])
        split = {"train": [d for i, d in enumerate(docs) if i % EVAL_EVERY != EVAL_EVERY - 1],
                 "eval": [d for i, d in enumerate(docs) if i % EVAL_EVERY == EVAL_EVERY - 1]}
        return DatasetDict({k: Dataset.from_dict({"text": [t for _, t in v], "source": [s for s, _ in v]})
                            for k, v in split.items()})
    from datasets import load_dataset  # online path: any HF dataset

    hf_name, _, config = name.partition(":")
    ds = load_dataset(hf_name, config or None, split="train", **load_kwargs)
    if text_field != "text":
        ds = ds.rename_column(text_field, "text")
    parts = ds.train_test_split(test_size=0.05, seed=0, shuffle=True)
    return DatasetDict({"train": parts["train"], "eval": parts["test"]})


@dataclass(frozen=True)
class Chunks:
    """Chunks of one split: ``tokens`` (n_seq, ctx_len) and ``doc`` (n_seq, ctx_len), the index in the split
    of the document each token comes from (an EOS belongs to the document it ends); ``sources[i]`` names
    document i's source; ``n_split_chunks`` counts the chunks of the whole split."""

    tokens: Tensor
    doc: Tensor
    sources: tuple[str, ...]
    n_split_chunks: int


def _tokenize_split(ds: Dataset, tokenizer, batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Every document's token ids followed by EOS, concatenated; and the document index of each token."""
    eos = [] if tokenizer.eos_token_id is None else [tokenizer.eos_token_id]
    ids, doc, n = [], [], 0
    for start in range(0, len(ds), batch):
        for row in tokenizer(ds[start: start + batch]["text"], add_special_tokens=False)["input_ids"]:
            ids.append(np.asarray(row + eos, dtype=np.int64))
            doc.append(np.full(len(ids[-1]), n, dtype=np.int32))
            n += 1
    empty = np.zeros(0, dtype=np.int64)
    return (np.concatenate(ids) if ids else empty), (np.concatenate(doc) if doc else empty.astype(np.int32))


def chunk_split(ds: Dataset, tokenizer, ctx_len: int, max_tokens: int | None = None,
                order: Order = "permuted", seed: int = DATA_SEED) -> Chunks:
    """The first ceil(``max_tokens`` / ctx_len) chunks of ``ds`` in ``order`` (all chunks if None); module docstring."""
    check_int("ctx_len", ctx_len, 2)
    check_choice("order", order, ("permuted", "file"))
    if max_tokens is not None:
        check_int("max_tokens", max_tokens, 1)
    ids, doc = _tokenize_split(ds, tokenizer)
    n_all = len(ids) // ctx_len
    if n_all == 0:
        raise ValueError(f"corpus too small for one chunk of ctx_len={ctx_len}")
    n = n_all if max_tokens is None else min(n_all, -(-max_tokens // ctx_len))
    if order == "permuted":
        take = torch.randperm(n_all, generator=torch.Generator().manual_seed(seed))[:n]
    else:
        take = torch.arange(n)
    tokens = torch.from_numpy(ids[: n_all * ctx_len]).view(n_all, ctx_len)[take]
    docs = torch.from_numpy(doc[: n_all * ctx_len]).view(n_all, ctx_len)[take]
    sources = tuple(ds["source"]) if "source" in ds.column_names else ("corpus",) * len(ds)
    return Chunks(tokens.contiguous(), docs.contiguous(), sources, n_all)


def tokenize_and_chunk(ds: Dataset, tokenizer, ctx_len: int, max_tokens: int | None = None,
                       order: Order = "permuted") -> Tensor:
    """The token ids of :func:`chunk_split` (``order="file"``: the first chunks in document order)."""
    return chunk_split(ds, tokenizer, ctx_len, max_tokens, order).tokens


def sequence_documents(doc: Tensor) -> Tensor:
    """(n_seq,) the document each sequence belongs to: the one contributing most of its tokens (lowest on ties)."""
    return torch.mode(doc, dim=1).values


def data_record(doc: Tensor, sources: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Documents, tokens and sequences per source (and in all) for chunks whose per-token documents are ``doc``.

    ``documents`` counts documents with at least one token here; ``split_documents`` those in the split;
    a sequence counts for the source of :func:`sequence_documents`.
    """
    src = np.asarray(sources)
    tok = Counter(src[doc.reshape(-1).numpy()].tolist())
    docs = Counter(src[torch.unique(doc).numpy()].tolist())
    seqs = Counter(src[sequence_documents(doc).numpy()].tolist())
    split = Counter(sources)
    names = sorted(split)
    rec = {name: {"documents": docs[name], "split_documents": split[name], "tokens": tok[name],
                  "sequences": seqs[name]} for name in names}
    rec["all"] = {k: sum(r[k] for r in rec.values()) for k in ("documents", "split_documents", "tokens", "sequences")}
    return rec
