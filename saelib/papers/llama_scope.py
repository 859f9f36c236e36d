"""Llama Scope (He et al. 2024, arXiv 2410.20526): the modifications to TopK SAEs and their
post-processing, the evaluation helpers notebook 01 needs, and a loader for the released
checkpoints.

Training recipe (the paper's modifications to TopK; reference code OpenMOSS/Language-Model-SAEs):

* dataset-wise normalisation: train on s x with s = sqrt(d) / E||x|| (:func:`saelib.train.dataset_scale`),
  then fold s into the weights (:meth:`SAE.fold_input_scale_`) so the saved SAE reads raw x;
* encoder without b_dec pre-subtraction: z = x W_enc + b_enc;
* decoder-norm-weighted TopK: rank ReLU(z_i) ||d_i||, keep ReLU(z_i); decoder rows are *not*
  renormalised (``TopK(rank_by_decoder_norm=True)``, ``TrainConfig(unit_norm_decoder=False)``);
* MSE only (no L1, no AuxK); K annealing from d/2 to k over the first 10% of steps (:class:`saelib.callbacks.KAnnealing`);
* init: Kaiming-uniform decoder rescaled to the norm with the lowest initial MSE (coarse then
  fine grid), W_enc = W_dec^T, b_enc = 0 (:func:`llama_scope_init_`).

Post-processing (after training): fold decoder norms into the encoder (:func:`fold_decoder_norms_`) and
convert TopK to JumpReLU with one global threshold (:func:`topk_to_jumprelu`).

The generalisation tests (long contexts, a fine-tuned model) live in :mod:`saelib.papers.generalisation`,
the narrow-vs-wide geometry in :mod:`saelib.metrics.splitting`, the loader for the released
checkpoints in :mod:`saelib.papers.llama_scope_release`, K annealing in :mod:`saelib.callbacks`.

Used by: notebook 01.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..callbacks import KAnnealing
from ..sae import SAE
from ..train import TrainConfig, TrainResult, dataset_scale, train_sae
from ..utils import check_choice, check_range

BDecInit = Literal["mean", "zero"]

# ---- folding ------------------------------------------------------------------------------


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


# ---- initialisation -----------------------------------------------------------------------------


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
def llama_scope_init_(sae: SAE, x: Tensor, seed: int = 0, b_dec: BDecInit = "mean",
                      norm: float | None = None) -> float:
    """Llama Scope initialisation (in place); returns the decoder norm used.

    Decoder rows Kaiming-uniform, rescaled to a common norm (``norm``, or the grid-searched norm with
    the lowest initial MSE on ``x``); W_enc = W_dec^T; b_enc = 0; b_dec the mean of ``x``
    (``b_dec="mean"``, the reference code's option) or zero (``"zero"``). ``x`` must be on the
    training scale (already multiplied by the dataset scale).
    """
    check_choice("b_dec", b_dec, get_args(BDecInit))
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
    sae.fold_input_scale_(scale)
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
def topk_to_jumprelu(sae: SAE, x_calib: Tensor, k: int | None = None, fold_norms: bool = True,
                     theta: float | None = None) -> SAE:
    """A JumpReLU copy of a TopK SAE with the global threshold of :func:`global_threshold`.

    ``fold_norms=True``: decoder norms folded into the encoder, one threshold theta for every latent,
    f_i = z_i [z_i > theta]. ``fold_norms=False``: weights untouched, per-latent theta_i = theta/||d_i||,
    f_i = z_i [z_i ||d_i|| > theta]. Both give identical reconstructions. ``theta``: a threshold already
    computed on ``x_calib`` (e.g. by the other ``fold_norms`` variant), so it is not computed again.
    """
    if sae.sparsifier.name != "topk":
        raise ValueError(f"sae.sparsifier must be 'topk', got {sae.sparsifier.name!r}")
    k = k or sae.sparsifier.k
    theta = global_threshold(sae, x_calib, k) if theta is None else float(theta)
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
