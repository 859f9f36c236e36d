"""Other libraries' checkpoint layouts, read into saelib's own config and tensors (``SAE.load`` builds from them).

=============  ======================================================  ==============
layout         files in the folder                                     converter
=============  ======================================================  ==============
saelens        cfg.json + sae_weights.safetensors (saelib's own         saelens.py
               checkpoints, SAELens v6 and v5)
sparsify       cfg.json + sae.safetensors (EleutherAI sparsify)         sparsify.py
llama_scope    hyperparams.json + checkpoints/final.safetensors         llama_scope.py
               (Llama Scope / Language-Model-SAEs)
=============  ======================================================  ==============

Only safetensors are read. A folder whose weights are a pickle (.pt, .pth, .bin, .ckpt, .pkl) is
refused: ``torch.load`` of a pickle can run arbitrary code. :mod:`.hub` fetches a folder of any of these
layouts from the Hugging Face hub (``SAE.from_pretrained``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from .. import checkpoint
from ..checkpoint import CheckpointError
from ..utils import check_choice
from . import llama_scope, saelens, sparsify
from .converted import Converted
from .llama_scope import ThresholdUnits

Layout = Literal["auto", "saelens", "sparsify", "llama_scope"]
LAYOUT_FILES: dict[str, tuple[str, ...]] = {
    "saelens": (checkpoint.CFG_FILE, checkpoint.WEIGHTS_FILE),
    "sparsify": (sparsify.CFG_FILE, sparsify.WEIGHTS_FILE),
    "llama_scope": (llama_scope.HYPERPARAMS_FILE, llama_scope.WEIGHTS_FILE),
}
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")


def detect(directory: str | Path) -> str:
    """The layout of a checkpoint folder (by its weights file), or CheckpointError saying what is there."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"SAE checkpoint directory not found: {directory}")
    for layout, files in LAYOUT_FILES.items():
        if (directory / files[-1]).is_file():
            return layout
    if (directory / llama_scope.HYPERPARAMS_FILE).is_file():
        return "llama_scope"                                  # its converter names the missing weights file
    pickles = sorted(p.name for p in directory.rglob("*") if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise CheckpointError(f"{directory} holds pickled weights {pickles[:5]}: saelib does not load pickles "
                              f"(torch.load can run arbitrary code); convert them to safetensors")
    if (directory / checkpoint.CFG_FILE).is_file():
        raise CheckpointError(f"SAE checkpoint {directory} is missing {checkpoint.WEIGHTS_FILE} "
                              f"(or sparsify's {sparsify.WEIGHTS_FILE})")
    accepted = "; ".join(f"{k}: {' + '.join(v)}" for k, v in LAYOUT_FILES.items())
    raise CheckpointError(f"{directory} is no SAE checkpoint saelib knows (accepted layouts: {accepted})")


def read(directory: str | Path, layout: Layout = "auto", threshold_units: ThresholdUnits = "raw") -> Converted:
    """A checkpoint folder of any known layout as saelib's config and tensors.

    saelib's own checkpoints (cfg.json with a ``sparsifier`` key) pass through as they are (hash-verified);
    ``threshold_units`` applies to Llama Scope only (see :mod:`.llama_scope`).
    """
    check_choice("layout", layout, get_args(Layout))
    found = detect(directory) if layout == "auto" else layout
    if found == "sparsify":
        return sparsify.convert_dir(directory)
    if found == "llama_scope":
        return llama_scope.convert_dir(directory, threshold_units)
    cfg, tensors = checkpoint.read(directory)
    if "sparsifier" in cfg:
        return Converted(cfg, tensors)
    return saelens.convert(cfg, tensors, str(Path(directory) / checkpoint.CFG_FILE))


__all__ = ["Converted", "Layout", "LAYOUT_FILES", "ThresholdUnits", "detect", "read"]
