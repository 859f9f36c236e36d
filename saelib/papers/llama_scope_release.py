"""Load the released Llama Scope SAEs (He et al. 2024, arXiv 2410.20526) on Llama-3.1-8B as saelib SAEs.

:func:`load_llama_scope_dir` converts a folder in the released layout (``hyperparams.json`` +
``checkpoints/final.safetensors``) into an :class:`~saelib.sae.SAE` on raw activations;
:func:`load_llama_scope` downloads one from the hub first (online use only).

Used by: notebook 01 (its pointers to the released SAEs); tested on a small folder made locally.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal, get_args

import torch

from ..sae import SAE
from ..utils import check_choice

ThresholdUnits = Literal["raw", "normalized"]
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

    Layout (OpenMOSS/Language-Model-SAEs, late 2024): ``hyperparams.json`` (d_model, d_sae, act_fn,
    jump_relu_threshold, top_k, norm_activation, dataset_average_activation_norm {in, out},
    sparsity_include_decoder_norm, use_decoder_bias, apply_decoder_bias_to_pre_encoder) and
    ``checkpoints/final.safetensors`` with nn.Linear tensors ``encoder.weight`` (d_sae, d_model),
    ``encoder.bias``, ``decoder.weight`` (d_model, d_sae), ``decoder.bias``.

    Forward pass assumed (the reference code's): x_n = x s_in with s = sqrt(d)/norm;
    z = x_n E^T + b_E; latent i fires iff z_i ||D[:, i]|| > theta; x_hat = (f D^T + b_D) / s_out.
    **Assumption on theta's units** (not documented with the release): ``threshold_units="raw"``
    (default) reads ``jump_relu_threshold`` in raw-activation units, so theta = threshold * s_in, as
    SAELens's loader does (the released values times s_in are nearly equal across layers whose norms
    differ 3x, which supports it); ``"normalized"`` uses it as is.
    """
    check_choice("threshold_units", threshold_units, get_args(ThresholdUnits))
    path = Path(path)
    hp_path, w_path = path / "hyperparams.json", path / "checkpoints" / "final.safetensors"
    for p in (hp_path, w_path):
        if not p.is_file():
            raise FileNotFoundError(f"Llama Scope folder {path} lacks {p.relative_to(path)}")
    from safetensors.torch import load_file

    hp = json.loads(hp_path.read_text())
    t = {k: v.float() for k, v in load_file(str(w_path)).items()}
    d, m = int(hp["d_model"]), int(hp["d_sae"])
    norm_mode = hp.get("norm_activation", "dataset-wise")
    check_choice("norm_activation", norm_mode, ("dataset-wise", "inference"))
    if norm_mode == "dataset-wise":
        norms = hp["dataset_average_activation_norm"]
        s_in, s_out = math.sqrt(d) / float(norms["in"]), math.sqrt(d) / float(norms["out"])
    else:
        s_in = s_out = 1.0
    enc_w, enc_b, dec_w = t["encoder.weight"], t["encoder.bias"], t["decoder.weight"]
    if tuple(enc_w.shape) != (m, d) or tuple(dec_w.shape) != (d, m):
        raise ValueError(f"encoder.weight must be (d_sae, d_model)=({m}, {d}) and decoder.weight (d_model, d_sae), "
                         f"got {tuple(enc_w.shape)} and {tuple(dec_w.shape)}")
    dec_b = t.get("decoder.bias", torch.zeros(d)) if hp.get("use_decoder_bias", True) else torch.zeros(d)
    pre_sub = bool(hp.get("apply_decoder_bias_to_pre_encoder", False))
    include_norm = bool(hp.get("sparsity_include_decoder_norm", True))
    act = hp.get("act_fn", "jumprelu").lower()
    check_choice("act_fn", act, ("jumprelu", "topk", "relu"))
    meta = {"source": "Llama Scope (He et al. 2024)", "hook_point_in": hp.get("hook_point_in"),
            "hook_point_out": hp.get("hook_point_out"), "original_hyperparams": hp}
    dnorm = dec_w.norm(dim=0)
    if act == "jumprelu":
        theta = float(hp["jump_relu_threshold"]) * (s_in if threshold_units == "raw" else 1.0)
        sae = SAE(d, m, "jumprelu", apply_b_dec_to_input=pre_sub, metadata=meta)
        sae.sparsifier.threshold.data.copy_(theta / dnorm if include_norm else torch.full((m,), theta))
    elif act == "topk":
        sae = SAE(d, m, "topk", apply_b_dec_to_input=pre_sub, metadata=meta, k=int(hp["top_k"]),
                  rank_by_decoder_norm=include_norm)
    else:
        sae = SAE(d, m, "relu", apply_b_dec_to_input=pre_sub, metadata=meta)
    with torch.no_grad():
        sae.W_enc.copy_(enc_w.t())
        sae.b_enc.copy_(enc_b)
        sae.W_dec.copy_(dec_w.t())
        sae.b_dec.copy_(dec_b)
    sae.fold_input_scale_(s_in, s_out)
    return sae


def load_llama_scope(layer: int, sublayer: Sublayer = "R", expansion: int = 8, threshold_units: ThresholdUnits = "raw",
                     revision: str | None = None) -> SAE:
    """Download a released Llama Scope SAE from the hub (online) and convert it (:func:`load_llama_scope_dir`)."""
    from huggingface_hub import snapshot_download

    repo, folder = llama_scope_location(layer, sublayer, expansion)
    root = snapshot_download(repo, allow_patterns=[f"{folder}/hyperparams.json", f"{folder}/checkpoints/final.safetensors"],
                             revision=revision)
    return load_llama_scope_dir(Path(root) / folder, threshold_units)
