"""Text corpora as ``datasets.DatasetDict`` with a fixed train/eval split, tokenised into chunks.

Default (offline): gensim's bundled English Wikipedia excerpt (105 articles after dropping
redirects and stubs) plus the Lee news corpus (300 stories, 294 distinct). Every 10th document goes to
``eval``. Online users pass any HF dataset name ("name" or "name:config").
"""
from __future__ import annotations

import bz2
import re
from functools import lru_cache

import torch
from datasets import Dataset, DatasetDict
from torch import Tensor

DEFAULT_CORPUS = "local:gensim-wiki+lee"
EVAL_EVERY = 10
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


def tokenize_and_chunk(ds: Dataset, tokenizer, ctx_len: int, max_tokens: int | None = None) -> Tensor:
    """Concatenate documents (separated by EOS) and cut into (n_seq, ctx_len) chunks, in order."""
    if ctx_len < 2:
        raise ValueError(f"ctx_len must be >= 2, got {ctx_len}")
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    need = None if max_tokens is None else max_tokens + ctx_len
    for text in ds["text"]:
        ids += tokenizer(text, add_special_tokens=False)["input_ids"] + ([eos] if eos is not None else [])
        if need is not None and len(ids) >= need:
            break
    n_seq = len(ids) // ctx_len
    if max_tokens is not None:
        n_seq = min(n_seq, -(-max_tokens // ctx_len))
    if n_seq == 0:
        raise ValueError(f"corpus too small for one chunk of ctx_len={ctx_len}")
    return torch.tensor(ids[: n_seq * ctx_len]).view(n_seq, ctx_len)
