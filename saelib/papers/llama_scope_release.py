"""Load the released Llama Scope SAEs (He et al. 2024, arXiv 2410.20526) on Llama-3.1-8B as saelib SAEs.

:func:`load_llama_scope_dir` converts a folder in the released layout (``hyperparams.json`` +
``checkpoints/final.safetensors``) into an :class:`~saelib.sae.SAE` on raw activations;
:func:`load_llama_scope` downloads one from the hub first (online use only).

Used by: notebook 01 (its pointers to the released SAEs); tested on a small folder made locally.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from ..formats.llama_scope import ThresholdUnits
from ..sae import SAE
from ..utils import check_choice

Sublayer = Literal["R", "A", "M", "TC"]
LLAMA_SCOPE_SUBLAYERS = get_args(Sublayer)


def llama_scope_location(layer: int, sublayer: Sublayer = "R", expansion: int = 8) -> tuple[str, str]:
    """(hub repo, folder) of a released Llama Scope SAE on Llama-3.1-8B (as listed by SAELens).

    Repos ``fnlp/Llama3_1-8B-Base-LX{sublayer}-{expansion}x``, folders
    ``Llama3_1-8B-Base-L{layer}{sublayer}-{expansion}x`` holding ``hyperparams.json`` and
    ``checkpoints/final.safetensors`` (the collection is browsable at hf.co/fnlp/Llama-Scope).
    """
    check_choice("sublayer", sublayer, LLAMA_SCOPE_SUBLAYERS)
    check_choice("expansion", expansion, (8, 32))
    if not (isinstance(layer, int) and 0 <= layer < 32):
        raise ValueError(f"layer must be an int in [0, 31], got {layer!r}")
    return (f"fnlp/Llama3_1-8B-Base-LX{sublayer}-{expansion}x", f"Llama3_1-8B-Base-L{layer}{sublayer}-{expansion}x")


def load_llama_scope_dir(path: str | Path, threshold_units: ThresholdUnits = "raw") -> SAE:
    """Convert a folder in the released Llama Scope layout into a saelib :class:`SAE` on raw activations.

    The converter, its layout and its assumption on the threshold's units are in
    :mod:`saelib.formats.llama_scope`; this is ``SAE.load(path, layout="llama_scope")``.
    """
    return SAE.load(path, layout="llama_scope", threshold_units=threshold_units)


def load_llama_scope(layer: int, sublayer: Sublayer = "R", expansion: int = 8, threshold_units: ThresholdUnits = "raw",
                     revision: str | None = None) -> SAE:
    """Download a released Llama Scope SAE from the hub (online) and convert it (``SAE.from_pretrained``)."""
    repo, folder = llama_scope_location(layer, sublayer, expansion)
    return SAE.from_pretrained(repo, folder, revision=revision, layout="llama_scope", threshold_units=threshold_units)
