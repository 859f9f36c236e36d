"""Presets: the settings behind ``PRESET = "quick"`` / ``"full"`` in every notebook, in one place.

``quick`` runs on 2 CPU cores offline (every notebook <= 4 min after the shared harvest);
``full`` is paper-like scale for a GPU and an online machine (any HF model/dataset name).
Each notebook owns one entry; the shared harvest settings are merged into every entry so
all notebooks read the same cached activations.
"""
from __future__ import annotations

from types import SimpleNamespace

from .lm import DEFAULT_LM
from .text import DEFAULT_CORPUS

HARVEST = {
    "quick": dict(model=DEFAULT_LM, corpus=DEFAULT_CORPUS, layer=15, ctx_len=128,
                  n_train_tokens=160_000, n_eval_tokens=16_384, splice_seqs=32, device="cpu"),
    "full": dict(model="HuggingFaceTB/SmolLM2-135M", corpus="wikitext:wikitext-103-raw-v1", layer=15,
                 ctx_len=1024, n_train_tokens=4_000_000, n_eval_tokens=131_072, splice_seqs=128,
                 device="cuda"),
}

NOTEBOOKS: dict[str, dict[str, dict]] = {
    "00_quickstart": {
        "quick": dict(expansion=4, k=32, topk_epochs=3.0, relu_epochs=2.0, l1_coeffs=[1.0, 2.0, 3.0],
                      lr=1e-3, batch_size=1024, n_latents_shown=4),
        "full": dict(expansion=32, k=64, topk_epochs=1.0, relu_epochs=1.0, l1_coeffs=[0.5, 1.0, 2.0, 3.0, 4.0],
                     lr=2e-4, batch_size=4096, n_latents_shown=8),
    },
}


def resolve(notebook: str, preset: str, **overrides) -> SimpleNamespace:
    """Settings for ``notebook`` under ``preset`` (harvest settings included), with overrides applied."""
    if notebook not in NOTEBOOKS:
        raise ValueError(f"notebook must be one of {sorted(NOTEBOOKS)}, got {notebook!r}")
    if preset not in NOTEBOOKS[notebook]:
        raise ValueError(f"preset must be one of {sorted(NOTEBOOKS[notebook])}, got {preset!r}")
    settings = {**HARVEST[preset], **NOTEBOOKS[notebook][preset], "preset": preset, "notebook": notebook}
    unknown = set(overrides) - set(settings)
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)}; accepted: {sorted(settings)}")
    settings.update(overrides)
    return SimpleNamespace(**settings)
