"""Llama Scope (He et al. 2024, arXiv 2410.20526): the modifications to TopK SAEs and their
post-processing, the evaluation helpers notebook 01 needs, and a loader for the released
checkpoints.

Training recipe (the paper's modifications to TopK; reference code OpenMOSS/Language-Model-SAEs):

* dataset-wise normalisation: train on s x with s = sqrt(d) / E||x|| (:func:`saelib.train.dataset_scale`),
  then fold s into the weights (:func:`fold_input_scale_`) so the saved SAE reads raw x;
* encoder without b_dec pre-subtraction: z = x W_enc + b_enc;
* decoder-norm-weighted TopK: rank ReLU(z_i) ||d_i||, keep ReLU(z_i); decoder rows are *not*
  renormalised (``TopK(rank_by_decoder_norm=True)``, ``TrainConfig(unit_norm_decoder=False)``);
* MSE only (no L1, no AuxK); K annealing from d/2 to k over the first 10% of steps (:class:`KAnnealing`);
* init: Kaiming-uniform decoder rescaled to the norm with the lowest initial MSE (coarse then
  fine grid), W_enc = W_dec^T, b_enc = 0 (:func:`llama_scope_init_`).

Post-processing (after training): fold decoder norms into the encoder (:func:`fold_decoder_norms_`) and
convert TopK to JumpReLU with one global threshold (:func:`topk_to_jumprelu`).
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from .activations import Activations
from .lm import DEFAULT_LM, LMTail, load_lm
from .sae import SAE
from .train import TrainConfig, TrainResult, dataset_scale, train_sae
from .utils import cache_dir, check_choice, check_range, seed_everything

# ---- folding ------------------------------------------------------------------------------


@torch.no_grad()
def fold_input_scale_(sae: SAE, scale_in: float, scale_out: float | None = None) -> SAE:
    """Make an SAE trained on (s_in x -> s_out y) read raw x and write raw y (in place).

    Without b_dec pre-subtraction: z = (s_in x) W_enc + b_enc = x (s_in W_enc) + b_enc, and
    x_hat / s_out = f (W_dec / s_out) + b_dec / s_out. With pre-subtraction b_dec appears on both
    sides, so s_in must equal s_out (then this is :meth:`SAE.fold_input_scale_`).
    """
    scale_out = scale_in if scale_out is None else scale_out
    for name, v in (("scale_in", scale_in), ("scale_out", scale_out)):
        check_range(name, v, 0, lo_open=True)
    if sae.apply_b_dec_to_input:
        if not math.isclose(scale_in, scale_out):
            raise ValueError("scale_out must equal scale_in when apply_b_dec_to_input=True "
                             f"(got {scale_in} and {scale_out})")
        sae.fold_input_scale_(scale_in)
        return sae
    sae.W_enc.mul_(scale_in)
    sae.W_dec.div_(scale_out)
    sae.b_dec.div_(scale_out)
    return sae


@torch.no_grad()
def fold_decoder_norms_(sae: SAE) -> Tensor:
    """Rescale so every decoder row has unit norm without changing any output (in place).

    W_enc[:, i] *= n_i, b_enc[i] *= n_i, W_dec[i] /= n_i (and a JumpReLU threshold theta_i *= n_i),
    so f_i d_i is unchanged. Exact for ReLU, JumpReLU and decoder-norm-ranked TopK (whose ranking
    score ReLU(z_i) n_i is invariant); plain TopK ranks by z and would change, so it is refused.
    Returns the norms n that were folded.
    """
    sp = sae.sparsifier
    if sp.name == "topk" and not getattr(sp, "rank_by_decoder_norm", False):
        raise ValueError("sae.sparsifier must be 'relu', 'jumprelu' or TopK with rank_by_decoder_norm=True "
                         "(folding norms changes a plain TopK's ranking)")
    if sp.name not in ("topk", "relu", "jumprelu"):
        raise ValueError(f"sae.sparsifier must be one of ['jumprelu', 'relu', 'topk'], got {sp.name!r}")
    norms = sae.dec_norm().clone()
    if (norms <= 0).any():
        raise ValueError("every decoder row must have a positive norm to fold")
    sae.W_enc.mul_(norms)
    sae.b_enc.mul_(norms)
    sae.W_dec.div_(norms[:, None])
    if sp.name == "jumprelu":
        sp.threshold.mul_(norms)
    return norms


# ---- K annealing and initialisation -----------------------------------------------------------


@dataclass
class KAnnealing:
    """Training callback: k falls linearly from ``k_start`` to ``k_end`` over the first ``frac``
    of the steps, then stays at ``k_end`` (Llama Scope: k_start = d_model / 2, frac = 0.1)."""

    k_start: int
    k_end: int
    frac: float = 0.1

    def __post_init__(self) -> None:
        check_range("k_end", self.k_end, 1)
        check_range("k_start", self.k_start, self.k_end)
        check_range("frac", self.frac, 0, 1, lo_open=True)

    def k_at(self, progress: float) -> int:
        """k after a fraction ``progress`` of training."""
        t = min(1.0, max(0.0, progress) / self.frac)
        return int(round(self.k_start + t * (self.k_end - self.k_start)))

    def __call__(self, state: Any) -> None:
        state.sae.sparsifier.k = self.k_at(state.frac)


@torch.no_grad()
def init_norm_grid_search(sae: SAE, x: Tensor, coarse: tuple[float, float, int] = (0.1, 1.0, 10),
                          fine_halfwidth: tuple[float, float] = (0.09, 0.1), fine_points: int = 20
                          ) -> tuple[float, pd.DataFrame]:
    """Decoder norm c with the lowest initial MSE on ``x`` (Language-Model-SAEs' ``initialization_search``).

    All rows have norm c and W_enc = W_dec^T, so the chosen latents do not depend on c and
    x_hat(c) = c^2 g + b_dec with g computed once at c = 1: each grid point costs one vector op.
    Coarse grid linspace(0.1, 1, 10), then 20 points in [c* - 0.09, c* + 0.1].
    """
    unit = sae.W_dec / sae.W_dec.norm(dim=1, keepdim=True)
    probe = copy.deepcopy(sae)
    probe.W_dec.copy_(unit)
    probe.W_enc.copy_(unit.t())
    probe.b_enc.zero_()
    g = probe.decode(probe.encode(x)) - probe.b_dec
    r = x - sae.b_dec

    def mse(c: float) -> float:
        return (r - c * c * g).pow(2).sum(-1).mean().item()

    rows = [{"norm": float(c), "mse": mse(float(c)), "stage": "coarse"} for c in np.linspace(*coarse)]
    best = min(rows, key=lambda d: d["mse"])["norm"]
    lo, hi = max(1e-3, best - fine_halfwidth[0]), best + fine_halfwidth[1]
    rows += [{"norm": float(c), "mse": mse(float(c)), "stage": "fine"} for c in np.linspace(lo, hi, fine_points)]
    table = pd.DataFrame(rows)
    return float(table.loc[table["mse"].idxmin(), "norm"]), table


@torch.no_grad()
def llama_scope_init_(sae: SAE, x: Tensor, seed: int = 0, b_dec: str = "mean",
                      norm: float | None = None) -> float:
    """Llama Scope initialisation (in place); returns the decoder norm used.

    Decoder rows Kaiming-uniform, rescaled to a common norm (``norm``, or the grid-searched norm with
    the lowest initial MSE on ``x``); W_enc = W_dec^T; b_enc = 0; b_dec the mean of ``x``
    (``b_dec="mean"``, the reference code's option) or zero (``"zero"``). ``x`` must be on the
    training scale (already multiplied by the dataset scale).
    """
    check_choice("b_dec", b_dec, ("mean", "zero"))
    gen = torch.Generator().manual_seed(seed)
    w = torch.empty(sae.d_in, sae.d_sae)  # nn.Linear(d_sae -> d_in).weight, as in the reference code
    torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=gen)
    w = w.t() / w.t().norm(dim=1, keepdim=True)
    sae.W_dec.copy_(w)
    sae.W_enc.copy_(w.t())
    sae.b_enc.zero_()
    sae.b_dec.copy_(x.mean(0) if b_dec == "mean" else torch.zeros(sae.d_in))
    if norm is None:
        norm, _ = init_norm_grid_search(sae, x)
    check_range("norm", norm, 0, lo_open=True)
    sae.W_dec.mul_(norm)
    sae.W_enc.copy_(sae.W_dec.t())
    return float(norm)


# ---- the training recipe, as stackable modifications ------------------------------------------


@dataclass
class Recipe:
    """Which Llama Scope modifications a TopK run uses (all True = the paper's recipe).

    ``rank_by_decoder_norm``: rank by ReLU(z_i)||d_i|| and leave decoder norms free (else rank by z
    and keep unit-norm decoder rows); ``k_annealing``: k from d/2 to k over the first 10% of steps;
    ``dataset_norm``: train on x sqrt(d)/E||x||, folded back afterwards.
    """

    rank_by_decoder_norm: bool = True
    k_annealing: bool = True
    dataset_norm: bool = True
    anneal_frac: float = 0.1

    def label(self) -> str:
        parts = ["TopK"] + [name for on, name in ((self.rank_by_decoder_norm, "dec-norm rank"),
                                                   (self.k_annealing, "K anneal"),
                                                   (self.dataset_norm, "dataset norm")) if on]
        return " + ".join(parts)


def train_llama_scope(x: Tensor, d_sae: int, k: int, recipe: Recipe | None = None, epochs: float = 1.0,
                      lr: float = 8e-4, batch_size: int = 2048, seed: int = 0, dead_window_tokens: int = 100_000,
                      progress: bool = True, **train_kwargs: Any) -> TrainResult:
    """Train a TopK SAE with the Llama Scope recipe (or a subset of it) on rows of ``x`` (N, d).

    MSE only (no AuxK), Adam betas (0.9, 0.9999), encoder without b_dec pre-subtraction, Llama Scope
    init. The returned SAE reads raw activations (the dataset scale is folded in). ``train_kwargs``
    go to :class:`TrainConfig` (e.g. ``warmup_frac``, ``grad_clip``).
    """
    recipe = recipe or Recipe()
    check_range("k", k, 1, d_sae)
    d = x.shape[1]
    gen = torch.Generator().manual_seed(seed)
    sample = x[torch.randperm(len(x), generator=gen)[: min(len(x), 8192)]]
    scale = dataset_scale(sample) if recipe.dataset_norm else 1.0
    xs = x * scale if recipe.dataset_norm else x
    sae = SAE(d, d_sae, "topk", apply_b_dec_to_input=False, seed=seed, k=k,
              rank_by_decoder_norm=recipe.rank_by_decoder_norm)
    init_norm = llama_scope_init_(sae, sample[:4096] * scale, seed=seed)
    callbacks = [KAnnealing(max(k, d // 2), k, recipe.anneal_frac)] if recipe.k_annealing else []
    cfg = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, beta2=train_kwargs.pop("beta2", 0.9999),
                      unit_norm_decoder=not recipe.rank_by_decoder_norm, auxk_coeff=0.0, normalize_input=False,
                      init_b_dec_to_mean=True, seed=seed, dead_window_tokens=dead_window_tokens,
                      progress=progress, callbacks=callbacks, **train_kwargs)
    res = train_sae(sae, xs, cfg)
    sae = res.sae
    sae.sparsifier.k = k
    fold_input_scale_(sae, scale)
    sae.metadata.update({"train_input_scale": scale, "folded_input_scale": True, "init_decoder_norm": init_norm,
                         "recipe": recipe.label(), "paper": "Llama Scope (He et al. 2024, arXiv 2410.20526)"})
    return TrainResult(sae, res.history, scale)


# ---- TopK -> JumpReLU ----------------------------------------------------------------------------


@torch.no_grad()
def ranking_scores(sae: SAE, x: Tensor) -> Tensor:
    """ReLU(z) * ||d_i|| (decoder-norm-ranked TopK) or ReLU(z) (plain TopK) for the rows of ``x``."""
    z = torch.relu(sae.pre_acts(x))
    return z * sae.dec_norm() if getattr(sae.sparsifier, "rank_by_decoder_norm", False) else z


@torch.no_grad()
def global_threshold(sae: SAE, x: Tensor, k: int, batch_size: int = 4096) -> float:
    """theta between the (N k)-th and (N k + 1)-th largest ranking scores over all N rows of ``x``.

    Llama Scope's post-processing: with this one threshold (and f = z [score > theta]) the N tokens keep
    exactly N k activations in total, so the *average* L0 on them is k while per-token L0 varies.
    We take the midpoint of the two order statistics so that the strict inequality keeps N k.
    Chunked: the global top N k + 1 always lie inside the union of each chunk's top N k + 1.
    """
    check_range("k", k, 1, sae.d_sae)
    n_keep = len(x) * k + 1
    best = torch.empty(0)
    for i in range(0, len(x), batch_size):
        s = ranking_scores(sae, x[i: i + batch_size]).flatten()
        best = torch.cat([best, s.topk(min(n_keep, s.numel()), sorted=False).values])
        if best.numel() > n_keep:
            best = best.topk(n_keep, sorted=False).values
    top2 = best.topk(2, largest=False).values  # the (N k + 1)-th and (N k)-th largest
    theta = top2.mean().item()
    if theta <= 0:
        raise ValueError(f"fewer than N*k={n_keep - 1} positive scores on x: k={k} is too large for this SAE")
    return theta


@torch.no_grad()
def topk_to_jumprelu(sae: SAE, x_calib: Tensor, k: int | None = None, fold_norms: bool = True) -> SAE:
    """A JumpReLU copy of a TopK SAE with the global threshold of :func:`global_threshold`.

    ``fold_norms=True``: decoder norms folded into the encoder, one threshold theta for every latent,
    f_i = z_i [z_i > theta]. ``fold_norms=False``: weights untouched, per-latent theta_i = theta/||d_i||,
    f_i = z_i [z_i ||d_i|| > theta]. Both give identical reconstructions.
    """
    if sae.sparsifier.name != "topk":
        raise ValueError(f"sae.sparsifier must be 'topk', got {sae.sparsifier.name!r}")
    k = k or sae.sparsifier.k
    theta = global_threshold(sae, x_calib, k)
    ranked = getattr(sae.sparsifier, "rank_by_decoder_norm", False)
    out = SAE(sae.d_in, sae.d_sae, "jumprelu", apply_b_dec_to_input=sae.apply_b_dec_to_input,
              metadata={**sae.metadata, "converted_from": f"topk k={k}", "global_threshold": theta,
                        "calibration_tokens": len(x_calib), "norms_folded": fold_norms})
    for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
        getattr(out, name).copy_(getattr(sae, name))
    norms = sae.dec_norm() if ranked else torch.ones(sae.d_sae)
    out.sparsifier.threshold.copy_(theta / norms)
    if fold_norms and ranked:
        fold_decoder_norms_(out)
    return out


# ---- loading released Llama Scope checkpoints -----------------------------------------------------

LLAMA_SCOPE_SUBLAYERS = ("R", "A", "M", "TC")


def llama_scope_location(layer: int, sublayer: str = "R", expansion: int = 8) -> tuple[str, str]:
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


def load_llama_scope_dir(path: str | Path, threshold_units: str = "raw") -> SAE:
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
    check_choice("threshold_units", threshold_units, ("raw", "normalized"))
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
    return fold_input_scale_(sae, s_in, s_out)


def load_llama_scope(layer: int, sublayer: str = "R", expansion: int = 8, threshold_units: str = "raw",
                     revision: str | None = None) -> SAE:
    """Download a released Llama Scope SAE from the hub (online) and convert it (:func:`load_llama_scope_dir`)."""
    from huggingface_hub import snapshot_download

    repo, folder = llama_scope_location(layer, sublayer, expansion)
    root = snapshot_download(repo, allow_patterns=[f"{folder}/hyperparams.json", f"{folder}/checkpoints/final.safetensors"],
                             revision=revision)
    return load_llama_scope_dir(Path(root) / folder, threshold_units)


# ---- a cheap fine-tuned variant of the default LM ------------------------------------------------


def finetune_lm(base: str = DEFAULT_LM, corpus: str = "local:gensim-lee", n_steps: int = 12, batch_size: int = 8,
                ctx_len: int = 128, lr: float = 1e-4, seed: int = 0, bf16: bool = True,
                progress: bool = True) -> str:
    """Fine-tune all weights of ``base`` on next-token prediction over ``corpus``'s train split; cached.

    A stand-in for the paper's base -> instruct comparison that fits a CPU: AdamW (weight decay 0),
    constant ``lr``, ``n_steps`` steps of ``batch_size`` chunks of ``ctx_len`` tokens, each chunk seen
    once (bf16 autocast on CPU if ``bf16``). Saved with ``save_pretrained`` under
    ``cache_dir()/lm/finetuned-<key>`` (with ``finetune.json``: settings and per-step losses);
    returns that folder, which :func:`saelib.lm.load_lm` and :func:`saelib.activations.harvest` accept.
    """
    from .text import load_corpus, tokenize_and_chunk
    from tqdm import tqdm

    check_range("n_steps", n_steps, 1)
    check_range("batch_size", batch_size, 1)
    check_range("lr", lr, 0, lo_open=True)
    settings = dict(base=base, corpus=corpus, n_steps=n_steps, batch_size=batch_size, ctx_len=ctx_len, lr=lr,
                    seed=seed, bf16=bf16, v=1)
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    target = cache_dir() / "lm" / f"finetuned-{key}"
    if (target / "finetune.json").exists():
        return str(target)
    model, tok = load_lm(base)
    model = copy.deepcopy(model).train().requires_grad_(True)
    tokens = tokenize_and_chunk(load_corpus(corpus)["train"], tok, ctx_len, max_tokens=n_steps * batch_size * ctx_len)
    gen = seed_everything(seed)
    order = torch.randperm(len(tokens), generator=gen)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    losses: list[float] = []
    t0 = time.perf_counter()
    for step in tqdm(range(n_steps), desc="fine-tune", disable=not progress, mininterval=5.0):
        idx = order[(torch.arange(batch_size) + step * batch_size) % len(tokens)]
        batch = tokens[idx]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16 and batch.device.type == "cpu"):
            loss = model(input_ids=batch, labels=batch, use_cache=False).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval().requires_grad_(False)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "finetune.json").write_text(json.dumps({**settings, "losses": losses, "n_chunks": len(tokens),
                                                   "seconds": time.perf_counter() - t0}, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return str(target)


# ---- evaluation helpers: by position, across models ------------------------------------------------


@torch.no_grad()
def lm_cross_entropy(model: str, corpus: str, split: str = "eval", n_tokens: int = 1024, ctx_len: int = 128,
                     batch_size: int = 4) -> float:
    """Mean next-token CE (nats) of the whole LM ``model`` on the first ~``n_tokens`` of ``corpus[split]``
    (no SAE; position 0's prediction included). Used to show what a fine-tune changed."""
    from .text import load_corpus, tokenize_and_chunk

    lm, tok = load_lm(model)
    tokens = tokenize_and_chunk(load_corpus(corpus)[split], tok, ctx_len, max_tokens=n_tokens)
    total = 0.0
    for i in range(0, len(tokens), batch_size):
        b = tokens[i: i + batch_size]
        logits = lm(input_ids=b, use_cache=False).logits[:, :-1]
        total += F.cross_entropy(logits.transpose(1, 2), b[:, 1:], reduction="sum").item()
    return total / (tokens.shape[0] * (tokens.shape[1] - 1))


@torch.no_grad()
def fvu_by_position(sae: SAE, acts: Activations, edges: list[int]) -> pd.DataFrame:
    """FVU of ``sae`` on the kept tokens of ``acts`` in position buckets [edges[i], edges[i+1]).

    Each bucket's FVU uses its own variance: sum ||x - x_hat||^2 / sum ||x - mean_bucket(x)||^2.
    """
    pos = acts.index[:, 1]
    x = acts.acts
    err = torch.cat([(x[i: i + 8192] - sae(x[i: i + 8192])).pow(2).sum(-1) for i in range(0, len(x), 8192)])
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (pos >= lo) & (pos < hi)
        if sel.any():
            xb = x[sel]
            rows.append({"bucket": f"{lo}-{hi - 1}", "lo": lo, "hi": hi, "tokens": int(sel.sum()),
                         "fvu": (err[sel].sum() / (xb - xb.mean(0)).pow(2).sum()).item()})
    return pd.DataFrame(rows)


@torch.no_grad()
def per_token_ce(acts: Activations, replace: Any = None, model: str | None = None, batch_size: int = 2) -> Tensor:
    """Next-token CE (n_seq, T-2) with resid[keep] replaced by ``replace(resid[keep])`` (None: clean).

    Entry [b, j] is the loss of the prediction made at position j+1 (target token j+2); like
    :class:`saelib.metrics.Splice`, position 0 and outliers are never replaced and the prediction
    at position 0 is left out.
    """
    lm, _ = load_lm(model or acts.meta["model"])
    tail = LMTail(lm, int(acts.meta["layer"]))
    out = []
    for i in range(0, len(acts.tokens), batch_size):
        r = acts.resid[i: i + batch_size].clone()
        if replace is not None:
            k = acts.keep[i: i + batch_size]
            r[k] = replace(r[k])
        logits = tail(r)[:, 1:-1]
        tgt = acts.tokens[i: i + batch_size, 2:]
        out.append(F.cross_entropy(logits.transpose(1, 2), tgt, reduction="none"))
    return torch.cat(out)


def bucket_mean(values: Tensor, edges: list[int], offset: int = 1) -> pd.DataFrame:
    """Mean of a (n_seq, T') per-position tensor over position buckets; column j is position j + ``offset``."""
    pos = torch.arange(values.shape[1]) + offset
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (pos >= lo) & (pos < hi)
        if sel.any():
            v = values[:, sel]
            rows.append({"bucket": f"{lo}-{hi - 1}", "lo": lo, "hi": hi, "mean": v.mean().item(),
                         "sem": (v.mean(1).std() / math.sqrt(v.shape[0])).item() if v.shape[0] > 1 else float("nan")})
    return pd.DataFrame(rows)


# ---- feature geometry: narrow vs wide dictionaries ---------------------------------------------------


def unit_rows(w: Tensor) -> Tensor:
    """Rows of ``w`` scaled to unit norm."""
    return w / w.norm(dim=1, keepdim=True).clamp_min(1e-12)


@torch.no_grad()
def max_cosine(targets: Tensor, dictionary: Tensor) -> tuple[Tensor, Tensor]:
    """For each row of ``targets``, the largest cosine to any row of ``dictionary`` and its index."""
    c = unit_rows(targets) @ unit_rows(dictionary).t()
    return c.max(dim=1)


@torch.no_grad()
def omp_residual(targets: Tensor, dictionary: Tensor, n_atoms: int) -> tuple[Tensor, Tensor]:
    """Orthogonal matching pursuit of every (unit) target on ``n_atoms`` atoms of a (unit) dictionary.

    Greedy: pick the atom most correlated (in absolute value) with the residual, refit all picked
    atoms by least squares, repeat. Returns the relative residual norms ||t - D_S c|| / ||t|| (0:
    a sparse combination of the dictionary; ~1: a new direction) and the chosen atoms (n, n_atoms).
    """
    check_range("n_atoms", n_atoms, 1, dictionary.shape[0])
    t, D = unit_rows(targets), unit_rows(dictionary)
    r, chosen = t.clone(), []
    for _ in range(n_atoms):
        corr = (r @ D.t()).abs()
        if chosen:
            corr.scatter_(1, torch.stack(chosen, 1), -1.0)
        chosen.append(corr.argmax(1))
        A = D[torch.stack(chosen, 1)]                      # (n, s, d)
        coef = torch.linalg.lstsq(A.transpose(1, 2), t.unsqueeze(-1)).solution  # (n, s, 1)
        r = t - (A.transpose(1, 2) @ coef).squeeze(-1)
    return r.norm(dim=1), torch.stack(chosen, 1)


@torch.no_grad()
def split_families(wide_dec: Tensor, narrow_dec: Tensor, min_cos: float = 0.5,
                   alive: Tensor | None = None) -> pd.DataFrame:
    """Narrow latents with the wide latents whose nearest narrow latent they are (cosine >= ``min_cos``).

    One row per narrow latent with at least two such children, most children first: a candidate
    "feature split" (one narrow direction refined into several wide ones).
    """
    cos, nearest = max_cosine(wide_dec, narrow_dec)
    ok = cos >= min_cos
    if alive is not None:
        ok &= alive
    rows = []
    for j in nearest[ok].unique().tolist():
        kids = torch.nonzero(ok & (nearest == j)).flatten()
        if len(kids) >= 2:
            order = cos[kids].argsort(descending=True)
            rows.append({"narrow": j, "n_children": len(kids), "children": kids[order].tolist(),
                         "cosines": [round(v, 3) for v in cos[kids][order].tolist()]})
    return (pd.DataFrame(rows, columns=["narrow", "n_children", "children", "cosines"])
            .sort_values(["n_children", "narrow"], ascending=[False, True]).reset_index(drop=True))
