"""SAELens checkpoints (``cfg.json`` + ``sae_weights.safetensors``, SAELens v6 and the older v5 form) in saelib.

Read against SAELens 6.54 (``sae_lens/saes/*.py``, ``loading/pretrained_sae_loaders.py``); what each
architecture computes there, with z = (x - b_dec [apply_b_dec_to_input]) W_enc + b_enc:

==========================  ==========================================  =====================================
SAELens                     SAELens's codes                             saelib
==========================  ==========================================  =====================================
``standard``                ReLU(z)                                     ``relu``
``topk`` (k)                ReLU of the k largest z (ReLU after top-k)  ``topk``
``topk`` + ``rescale_acts_  ReLU of the k largest z_i ||d_i||, decoded   ``topk`` on weights with the decoder
by_decoder_norm``           as (f / ||d||) W_dec                        norms folded in (SAELens's own fold)
``jumprelu`` (threshold)    ReLU(z) * [z > theta_i]                     ``jumprelu`` (also BatchTopK's
                                                                        inference form, which SAELens saves so)
==========================  ==========================================  =====================================

The v5 form (no ``sae_lens_version`` >= 6): ``activation_fn`` (or ``activation_fn_str``) ``relu`` or
``topk`` with ``activation_fn_kwargs: {"k": ...}``, and a ``scaling_factor`` tensor when
``finetuning_scaling_factor`` is set (v5 decodes (f * scaling_factor) W_dec: folded into W_dec).

Not representable, refused naming the key: other architectures (gated, ...; ``batchtopk`` is a training
checkpoint that SAELens itself does not load for inference: ``save_inference_model`` writes it as a
JumpReLU), other activation functions,
``normalize_activations`` other than ``none`` (``expected_average_only_in``: the dataset-wise factor is
not in the checkpoint, and SAELens itself ignores it when loading from disk; ``constant_norm_rescale``
and ``layer_norm`` are per-token, not linear; ``covariance_whitening`` needs its matrices), tensors
other than the architecture's. ``reshape_activations="hook_z"`` is accepted: saelib reads the
(n_heads * d_head) input flattened. JumpReLU thresholds below ``JumpReLU.MIN_THRESHOLD`` (1e-6) are
raised to it by saelib's positivity projection (differs only for 0 < z <= 1e-6). Weights are read in
float32, as saelib computes.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..checkpoint import CheckpointError
from .converted import BASE_TENSORS, Converted, refuse_extra_tensors, require

ARCHITECTURES = ("standard", "topk", "jumprelu")
NORMALIZATIONS = ("none",)
RESHAPES = ("none", "hook_z")


def _choice(key: str, value: Any, accepted: tuple[str, ...], source: str, why: str = "") -> None:
    if value not in accepted:
        raise CheckpointError(f"{source}: {key}={value!r} is not representable in saelib "
                              f"(accepted: {list(accepted)}){why}")


def _normalization(cfg: dict[str, Any]) -> str:
    value = cfg.get("normalize_activations", "none")
    if value is None or value is False:
        return "none"
    return "expected_average_only_in" if value is True else value  # v5 stored a bool


def _int_k(cfg: dict[str, Any], source: str) -> int:
    kwargs = cfg.get("activation_fn_kwargs") or {}
    k = cfg["k"] if "k" in cfg else kwargs.get("k")
    if k is None:
        raise CheckpointError(f"{source} lacks the key 'k' (nor activation_fn_kwargs.k)")
    if isinstance(k, bool) or not float(k).is_integer() or k < 1:
        raise CheckpointError(f"{source}: k={k!r} is not representable in saelib (a positive integer is needed)")
    return int(k)


def convert(cfg: dict[str, Any], tensors: dict[str, Tensor], source: str) -> Converted:
    """A SAELens cfg.json and its tensors as saelib's (module docstring); ``source`` names the files in errors."""
    arch = cfg.get("architecture", "standard")
    act = cfg.get("activation_fn", cfg.get("activation_fn_str", "relu"))  # v5 keys; v6 has neither
    if arch == "standard" and act == "topk":
        arch = "topk"                                                    # the v5 spelling of TopK
    _choice("architecture", arch, ARCHITECTURES, source,
            ": a BatchTopK training checkpoint; SAELens's save_inference_model writes its inference form "
            "(architecture 'jumprelu'), which loads" if arch == "batchtopk" else "")
    if arch != "topk":
        _choice("activation_fn", act, ("relu",), source)
    norm = _normalization(cfg)
    _choice("normalize_activations", norm, NORMALIZATIONS, source,
            ": the dataset-wise factor of 'expected_average_only_in' is not stored in the checkpoint (fold it "
            "with SAELens's fold_activation_norm_scaling_factor and save again)" if norm == "expected_average_only_in"
            else "")
    _choice("reshape_activations", cfg.get("reshape_activations", "none"), RESHAPES, source)
    d_in, d_sae = int(require(cfg, "d_in", source)), int(require(cfg, "d_sae", source))
    t = {k: v.float() for k, v in tensors.items()}
    state = {"threshold"} if arch == "jumprelu" else set()
    refuse_extra_tensors(t, set(BASE_TENSORS) | state | {"scaling_factor", "finetuning_scaling_factor"}, source)
    _fold_finetuning_scaling_factor(cfg, t, source)
    if cfg.get("rescale_acts_by_decoder_norm", False):
        if arch != "topk":
            raise CheckpointError(f"{source}: rescale_acts_by_decoder_norm is only defined for topk in SAELens, "
                                  f"got architecture={arch!r}")
        _fold_decoder_norm(t, source)
    apply_b_dec = bool(cfg.get("apply_b_dec_to_input", True))
    meta = {"source": "SAELens", "saelens_cfg": cfg}
    if arch == "standard":
        sparsifier, kwargs = "relu", {}
    elif arch == "topk":
        sparsifier, kwargs = "topk", {"k": _int_k(cfg, source)}
    else:
        sparsifier, kwargs = "jumprelu", {}
    native = {"d_in": d_in, "d_sae": d_sae, "sparsifier": sparsifier, "sparsifier_kwargs": kwargs,
              "apply_b_dec_to_input": apply_b_dec, "metadata": meta}
    return Converted(native, t)


def _fold_finetuning_scaling_factor(cfg: dict[str, Any], t: dict[str, Tensor], source: str) -> None:
    """v5: decode((f * s)) = f (s W_dec); all-ones factors (written for a while by default) are dropped."""
    s = t.pop("scaling_factor", None)
    s = t.pop("finetuning_scaling_factor", s)
    if s is None or bool(torch.all(s == 1)):
        return
    if not cfg.get("finetuning_scaling_factor", False):
        raise CheckpointError(f"{source}: a scaling_factor tensor that is not all ones, but "
                              f"finetuning_scaling_factor is not set (as SAELens refuses too)")
    if "W_dec" in t:
        t["W_dec"] = t["W_dec"] * s[:, None]


def _fold_decoder_norm(t: dict[str, Tensor], source: str) -> None:
    """SAELens's ``_fold_norm_topk``: W_enc, b_enc times ||d_i||, W_dec rows divided by it (codes = SAELens's)."""
    if "W_dec" not in t:
        raise CheckpointError(f"{source} lacks the tensor 'W_dec'")
    n = t["W_dec"].norm(dim=-1)
    t["W_dec"] = t["W_dec"] / n[:, None]
    if "W_enc" in t:
        t["W_enc"] = t["W_enc"] * n[None, :]
    if "b_enc" in t:
        t["b_enc"] = t["b_enc"] * n
