"""Train once, reuse everywhere: trained SAEs cached beside the activation cache.

A trained SAE is determined by its architecture (d_in, d_sae, sparsifier and its kwargs,
``apply_b_dec_to_input``), its init seed, its :class:`~saelib.train.TrainConfig` and its training
data. :func:`train_cached` hashes all of them into a key; the first call trains and stores the SAE
(``cache_dir()/saes/<key>/``: the SAELens-layout checkpoint, the training history and the input
scale), every later call with the same key, from any notebook, loads it. :func:`remember` caches a
result computed from a stored SAE (e.g. its splice on a given held-out set) under the same key.

What cannot be hashed is refused rather than guessed: callbacks and loss terms change training, so a
config that has them needs an explicit ``extra_key`` naming them. Sparsifiers whose state lives
outside ``state_dict`` (ATM's recorded mask dynamics) are not stored: train those directly.
An entry is complete only once its ``done.json`` exists (written last, atomically).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import pandas as pd
from torch import Tensor

from .sae import SAE
from .train import TrainConfig, TrainResult, train_sae
from .utils import atomic_path, cache_dir

FORMAT_VERSION = 1
NOT_STORABLE = ("atm",)  # state outside state_dict
_IGNORED_CFG = ("progress", "checkpoint_dir", "checkpoint_every")  # do not change the trained SAE


def tensor_digest(x: Tensor) -> str:
    """sha256 of a tensor's dtype, shape and bytes (the training data's identity when no key is given)."""
    h = hashlib.sha256(f"{x.dtype}{tuple(x.shape)}".encode())
    h.update(x.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def sae_key(d_in: int, d_sae: int, sparsifier: str, sparsifier_kwargs: dict[str, Any], apply_b_dec_to_input: bool,
            seed: int, cfg: TrainConfig, data_key: str, extra_key: str | None = None) -> str:
    """The store key: a hash of everything that determines the trained SAE."""
    if (cfg.callbacks or cfg.loss_terms) and not extra_key:
        raise ValueError("cfg has callbacks or loss_terms, which change training but cannot be hashed: "
                         "pass extra_key naming them (e.g. extra_key='aux_zipf coeff=0.03')")
    spec = {"v": FORMAT_VERSION, "d_in": d_in, "d_sae": d_sae, "sparsifier": sparsifier,
            "sparsifier_kwargs": sparsifier_kwargs, "apply_b_dec_to_input": apply_b_dec_to_input, "seed": seed,
            "train": {k: v for k, v in cfg.as_dict().items() if k not in _IGNORED_CFG}, "data": data_key,
            "extra": extra_key}
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _entry(key: str) -> Path:
    return cache_dir() / "saes" / key


def train_cached(data: Tensor, d_sae: int, sparsifier: str, cfg: TrainConfig, seed: int = 0,
                 data_key: str | None = None, extra_key: str | None = None, apply_b_dec_to_input: bool = True,
                 **sparsifier_kwargs: Any) -> tuple[TrainResult, str]:
    """``train_sae(SAE(d_in, d_sae, sparsifier, seed=seed, ...), data, cfg)``, or its stored result.

    ``data_key`` names the training data (e.g. a harvest's cache key and the rows taken); by default
    the data's content is hashed. Returns the TrainResult (the SAE in eval mode) and the store key.
    """
    if sparsifier in NOT_STORABLE:
        raise ValueError(f"sparsifier {sparsifier!r} keeps state outside state_dict and cannot be stored; "
                         f"train it with train_sae directly")
    key = sae_key(data.shape[1], d_sae, sparsifier, sparsifier_kwargs, apply_b_dec_to_input, seed, cfg,
                  data_key or tensor_digest(data), extra_key)
    entry = _entry(key)
    if (entry / "done.json").exists():
        sae = SAE.load(entry / "sae").eval()
        history = pd.read_json(entry / "history.json", orient="split")
        return TrainResult(sae, history, json.loads((entry / "done.json").read_text())["input_scale"]), key
    sae = SAE(data.shape[1], d_sae, sparsifier, apply_b_dec_to_input=apply_b_dec_to_input, seed=seed,
              **sparsifier_kwargs)
    res = train_sae(sae, data, cfg)
    res.sae.save(entry / "sae")
    with atomic_path(entry / "history.json") as tmp:
        tmp.write_text(res.history.to_json(orient="split", double_precision=15))
    with atomic_path(entry / "done.json") as tmp:
        tmp.write_text(json.dumps({"input_scale": res.input_scale, "sparsifier": sparsifier, "d_sae": d_sae,
                                   "seed": seed, "data": data_key, "extra": extra_key}))
    return res, key


def remember(key: str, name: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``compute()`` once per (stored SAE ``key``, ``name``), cached as JSON beside that SAE.

    ``name`` must say everything else the result depends on (e.g. ``"splice eval 32 seqs"``).
    """
    if not (_entry(key) / "done.json").exists():
        raise ValueError(f"no stored SAE with key {key!r} (train it with train_cached first)")
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    path = _entry(key) / "results" / f"{digest}.json"
    if path.exists():
        return json.loads(path.read_text())["value"]
    value = compute()
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"name": name, "value": value}))
    return value


def stored_keys() -> list[str]:
    """Keys of the complete entries in the store."""
    root = cache_dir() / "saes"
    return sorted(p.name for p in root.iterdir() if (p / "done.json").exists()) if root.exists() else []

