"""Notebook plumbing: one call to set a notebook up, one to get the shared cached activations."""
from __future__ import annotations

import time
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Iterator

from ..data.harvest import Activations, harvest
from ..utils import seed_everything
from .plots import set_style
from .presets import resolve


def setup(notebook: str, preset: str, seed: int = 0, **overrides) -> SimpleNamespace:
    """Seed everything, apply the house plot style and return the resolved preset settings."""
    settings = resolve(notebook, preset, **overrides)
    settings.seed = seed
    seed_everything(seed)
    set_style()
    return settings


def shared_activations(s: SimpleNamespace, progress: bool = True) -> tuple[Activations, Activations]:
    """The shared harvest (train and held-out eval) for the preset's model, layer and corpus; cached."""
    common = dict(model=s.model, layer=s.layer, corpus=s.corpus, ctx_len=s.ctx_len, device=s.device,
                  progress=progress)
    return (harvest(split="train", n_tokens=s.n_train_tokens, **common),
            harvest(split="eval", n_tokens=s.n_eval_tokens, **common))


@contextmanager
def timer(label: str, store: dict | None = None) -> Iterator[None]:
    """Print (and optionally store) the wall time of a block."""
    t0 = time.perf_counter()
    yield
    dt = time.perf_counter() - t0
    if store is not None:
        store[label] = dt
    print(f"{label}: {dt:.1f} s")
