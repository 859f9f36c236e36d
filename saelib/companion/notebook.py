"""Notebook plumbing: one call to set a notebook up, one to get the shared cached activations."""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Iterator

from ..data.harvest import Activations, harvest
from ..utils import atomic_path, figures_dir, seed_everything
from .plots import set_style
from .presets import NOTEBOOKS, TEXT_FREE, resolve


def setup(notebook: str, preset: str, seed: int = 0, **overrides) -> SimpleNamespace:
    """Seed everything, apply the house plot style and return the resolved preset settings."""
    settings = resolve(notebook, preset, **overrides)
    settings.seed = seed
    seed_everything(seed)
    set_style()
    return settings


def shared_activations(s: SimpleNamespace, progress: bool = True) -> tuple[Activations, Activations]:
    """The shared harvest (train and held-out eval) for the preset's model, layer and corpus; cached.

    Also records what text they hold (documents, tokens, sequences per split and source) as the
    ``"data"`` entry of ``figures/<notebook>/run.json`` (``run_all.sh`` adds the time and provenance).
    """
    train, held_out = _harvest_pair(s, progress)
    if s.data_order == "permuted":
        record_run(s.notebook, data={a.meta["split"]: {"order": a.meta["order"], **a.meta["data"]}
                                     for a in (train, held_out)})
    return train, held_out


def _harvest_pair(s: SimpleNamespace, progress: bool) -> tuple[Activations, Activations]:
    common = dict(model=s.model, layer=s.layer, corpus=s.corpus, ctx_len=s.ctx_len, device=s.device,
                  progress=progress, order=s.data_order)
    return (harvest(split="train", n_tokens=s.n_train_tokens, **common),
            harvest(split="eval", n_tokens=s.n_eval_tokens, **common))


def build_shared(preset: str = "quick") -> None:
    """Build every distinct shared harvest the notebooks of ``preset`` ask for (run_all does this first,
    so that no notebook's time includes it)."""
    seen = set()
    for name in NOTEBOOKS:
        s = resolve(name, preset)
        key = tuple(getattr(s, k, None) for k in ("model", "layer", "corpus", "ctx_len", "data_order",
                                                   "n_train_tokens", "n_eval_tokens"))
        if name not in TEXT_FREE and key not in seen:
            seen.add(key)
            _harvest_pair(s, progress=True)


def record_run(notebook: str, **entries) -> None:
    """Merge ``entries`` into ``figures/<notebook>/run.json`` (written atomically; other keys kept)."""
    path = figures_dir(notebook) / "run.json"
    doc = json.loads(path.read_text()) if path.exists() else {}
    doc.update(entries)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))


@contextmanager
def timer(label: str, store: dict | None = None) -> Iterator[None]:
    """Print (and optionally store) the wall time of a block."""
    t0 = time.perf_counter()
    yield
    dt = time.perf_counter() - t0
    if store is not None:
        store[label] = dt
    print(f"{label}: {dt:.1f} s")

