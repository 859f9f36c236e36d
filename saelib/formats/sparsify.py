"""EleutherAI sparsify checkpoints (``cfg.json`` + ``sae.safetensors``, one folder per hookpoint) in saelib.

Read against sparsify 1.3.3 (``sparse_coder.py``, ``fused_encoder.py``): tensors ``encoder.weight``
(num_latents, d_in), ``encoder.bias``, ``W_dec`` (num_latents, d_in), ``b_dec``; cfg.json is the
``SparseCoderConfig`` plus ``d_in``. Its forward: z = ReLU((x - b_dec) E^T + b_E) (a transcoder,
``transcode=True``, does not subtract b_dec), keep the k largest, x_hat = f W_dec + b_dec: saelib's
``topk`` (ReLU after the top-k picks the same values). ``multi_topk`` only changes the training loss.

Not representable, refused naming the key: ``activation`` other than ``topk`` (``groupmax``), and
``skip_connection`` (a ``W_skip`` term). A transcoder loads as an SAE mapping its input to its
predicted output (``metadata["transcode"]``).
"""
from __future__ import annotations

from pathlib import Path

from ..checkpoint import CheckpointError, read_json, read_safetensors
from .converted import Converted, refuse_extra_tensors, require

CFG_FILE, WEIGHTS_FILE = "cfg.json", "sae.safetensors"


def convert_dir(directory: str | Path) -> Converted:
    """Read a sparsify folder (module docstring) as saelib's config and tensors."""
    directory = Path(directory)
    cfg_path, w_path = directory / CFG_FILE, directory / WEIGHTS_FILE
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise CheckpointError(f"sparsify checkpoint {directory} is missing {p.name}")
    cfg = read_json(cfg_path)
    _, t = read_safetensors(w_path)
    source = str(cfg_path)
    activation = cfg.get("activation", "topk")          # older sparsify had TopK only and no key
    if activation != "topk":
        raise CheckpointError(f"{source}: activation={activation!r} is not representable in saelib (accepted: ['topk'])")
    if cfg.get("skip_connection", False) or "W_skip" in t:
        raise CheckpointError(f"{source}: skip_connection=True (a W_skip term) is not representable in saelib")
    refuse_extra_tensors(t, {"encoder.weight", "encoder.bias", "W_dec", "b_dec"}, str(w_path))
    d_in = int(require(cfg, "d_in", source))
    d_sae = int(cfg.get("num_latents") or d_in * int(require(cfg, "expansion_factor", source)))
    k = require(cfg, "k", source)
    transcode = bool(cfg.get("transcode", False))
    for name in ("encoder.weight", "encoder.bias", "W_dec", "b_dec"):
        if name not in t:
            raise CheckpointError(f"{w_path} lacks the tensor {name!r}")
    if tuple(t["encoder.weight"].shape) != (d_sae, d_in):
        raise CheckpointError(f"{w_path}: encoder.weight has shape {tuple(t['encoder.weight'].shape)}, but "
                              f"cfg.json implies (num_latents, d_in) = ({d_sae}, {d_in})")
    tensors = {"W_enc": t["encoder.weight"].float().t().contiguous(), "b_enc": t["encoder.bias"].float(),
               "W_dec": t["W_dec"].float(), "b_dec": t["b_dec"].float()}
    meta = {"source": "sparsify", "sparsify_cfg": cfg, "transcode": transcode}
    native = {"d_in": d_in, "d_sae": d_sae, "sparsifier": "topk", "sparsifier_kwargs": {"k": int(k)},
              "apply_b_dec_to_input": not transcode, "metadata": meta}
    return Converted(native, tensors)
