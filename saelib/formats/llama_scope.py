"""Llama Scope / Language-Model-SAEs checkpoints (He et al. 2024, arXiv 2410.20526) in saelib.

Layout (OpenMOSS/Language-Model-SAEs, late 2024, the released Llama Scope SAEs): ``hyperparams.json``
(d_model, d_sae, act_fn, jump_relu_threshold, top_k, norm_activation, dataset_average_activation_norm
{in, out}, sparsity_include_decoder_norm, use_decoder_bias, apply_decoder_bias_to_pre_encoder) and
``checkpoints/final.safetensors`` with nn.Linear tensors ``encoder.weight`` (d_sae, d_model),
``encoder.bias``, ``decoder.weight`` (d_model, d_sae), ``decoder.bias``.

Forward pass assumed (the reference code's): x_n = x s_in with s = sqrt(d)/norm;
z = x_n E^T + b_E; latent i fires iff z_i ||D[:, i]|| > theta; x_hat = (f D^T + b_D) / s_out.
**Assumption on theta's units** (not documented with the release): ``threshold_units="raw"``
(default) reads ``jump_relu_threshold`` in raw-activation units, so theta = threshold * s_in, as
SAELens's loader does (the released values times s_in are nearly equal across layers whose norms
differ 3x, which supports it); ``"normalized"`` uses it as is. The scales s_in, s_out are folded into
the weights after loading (``Converted.input_scale``), so the SAE reads raw activations.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal, get_args

import torch

from ..checkpoint import read_safetensors
from ..utils import check_choice
from .converted import Converted

ThresholdUnits = Literal["raw", "normalized"]
HYPERPARAMS_FILE, WEIGHTS_FILE = "hyperparams.json", "checkpoints/final.safetensors"


def convert_dir(path: str | Path, threshold_units: ThresholdUnits = "raw") -> Converted:
    """Read a folder in the released Llama Scope layout (module docstring) as saelib's config and tensors."""
    check_choice("threshold_units", threshold_units, get_args(ThresholdUnits))
    path = Path(path)
    hp_path, w_path = path / HYPERPARAMS_FILE, path / WEIGHTS_FILE
    for p in (hp_path, w_path):
        if not p.is_file():
            raise FileNotFoundError(f"Llama Scope folder {path} lacks {p.relative_to(path)}")
    hp = json.loads(hp_path.read_text())
    t = {k: v.float() for k, v in read_safetensors(w_path)[1].items()}
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
    include_norm = bool(hp.get("sparsity_include_decoder_norm", True))
    act = hp.get("act_fn", "jumprelu").lower()
    check_choice("act_fn", act, ("jumprelu", "topk", "relu"))
    meta = {"source": "Llama Scope (He et al. 2024)", "hook_point_in": hp.get("hook_point_in"),
            "hook_point_out": hp.get("hook_point_out"), "original_hyperparams": hp}
    tensors = {"W_enc": enc_w.t().contiguous(), "b_enc": enc_b, "W_dec": dec_w.t().contiguous(), "b_dec": dec_b}
    if act == "jumprelu":
        theta = float(hp["jump_relu_threshold"]) * (s_in if threshold_units == "raw" else 1.0)
        tensors["threshold"] = theta / dec_w.norm(dim=0) if include_norm else torch.full((m,), theta)
        sparsifier, kwargs = "jumprelu", {}
    elif act == "topk":
        sparsifier, kwargs = "topk", {"k": int(hp["top_k"]), "rank_by_decoder_norm": include_norm}
    else:
        sparsifier, kwargs = "relu", {}
    cfg = {"d_in": d, "d_sae": m, "sparsifier": sparsifier, "sparsifier_kwargs": kwargs,
           "apply_b_dec_to_input": bool(hp.get("apply_decoder_bias_to_pre_encoder", False)), "metadata": meta}
    return Converted(cfg, tensors, (s_in, s_out))
