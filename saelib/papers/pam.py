"""PAM-SGD: proximal alternating method with SGD (Budd et al. 2025, *SplInterp*, arXiv 2505.11836, Sec. 4).

The SAE x_hat = rho(x W_enc + b_enc) W_dec + b_dec is trained by alternating, once per epoch t:

1. **Encoder step** (decoder fixed): SGD/Adam over mini-batches on
   MSE (+ lambda ||z||_1 for the ReLU variant)
   + mu_enc ||W_enc - W_enc^t||_F^2 + nu_enc ||b_enc - b_enc^t||^2  (anchored at the epoch start).
2. **Decoder step** in closed form on the codes z^r = rho(x^r W_enc + b_enc) of all N samples:
   minimise sum_r ||x^r - W z^r - b||^2 + alpha ||W||^2 + beta ||b||^2 + mu ||W - W^t||^2 + nu ||b - b^t||^2.
   With c = N / (N + beta + nu) and z_bar, x_bar the means,
   A = (alpha + mu) I + sum z z^T - N c z_bar z_bar^T,
   C = mu W^t + sum x z^T - c (N x_bar + nu b^t) z_bar^T,
   W = C A^{-1},  b = nu / (N + beta + nu) b^t + c (x_bar - W z_bar).
   (W is (d, m) here; saelib stores W_dec = W^T, shape (m, d).) mu = nu = beta = 0 gives ridge
   least squares with an unpenalised intercept.

rho is TopK by |z| keeping signed values (the authors' code; :class:`saelib.sparsifiers.topk.TopKAbs`) or ReLU with an L1 penalty.
Baselines: Adam on all parameters with **tied** weights (W_dec = W_enc^T, the authors' baseline)
and with **untied** weights (separates "PAM vs SGD" from "tied vs untied"). All three methods
share one loop here (same batches, loss, optimiser and initialisation) so that only the
training algorithm differs; saelib's ``train_sae`` is not used for them because its extras
(LR warm-up/decay, unit-norm decoder, AuxK, input scaling) would confound the comparison.

Used by: notebooks 09, 10.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, NamedTuple, get_args

import pandas as pd
import torch
from torch import Tensor

from ..metrics.reconstruction import evaluate
from ..sae import SAE
from ..sparsifiers.topk import TopKAbs
from ..utils import check_choice, check_range, seed_everything
from ..utils import progress as progress_bar

Method = Literal["pam", "adam_tied", "adam_untied"]
Activation = Literal["topk_abs", "relu"]
METHODS = get_args(Method)
ACTIVATIONS = get_args(Activation)
LABELS = {"pam": "PAM-SGD (untied, closed-form decoder)", "adam_tied": "Adam, tied weights (authors' baseline)",
          "adam_untied": "Adam, untied weights"}


def make_sae(d_in: int, d_sae: int, activation: Activation = "topk_abs", k: int = 15, init_std: float = 0.1,
             seed: int = 0) -> SAE:
    """An SAE in the paper's form z = x W_enc + b_enc (no b_dec pre-subtraction).

    W_enc ~ N(0, init_std^2) (the authors' MNIST init uses 0.1), zero biases, and W_dec = W_enc^T
    so every method starts from the same model (tied at step 0).
    """
    check_choice("activation", activation, ACTIVATIONS)
    check_range("init_std", init_std, 0, lo_open=True)
    sae = SAE(d_in, d_sae, TopKAbs(k) if activation == "topk_abs" else "relu", apply_b_dec_to_input=False)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sae.W_enc.copy_(torch.randn(d_in, d_sae, generator=gen) * init_std)
        sae.W_dec.copy_(sae.W_enc.t())
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae


# ---- the closed-form decoder step -----------------------------------------------------------

class DecoderStep(NamedTuple):
    W_dec: Tensor  # (m, d)
    b_dec: Tensor  # (d,)


def decoder_step(Z: Tensor, X: Tensor, alpha: float = 1e-6, beta: float = 0.0, mu: float = 0.0, nu: float = 0.0,
                 W_prev: Tensor | None = None, b_prev: Tensor | None = None) -> DecoderStep:
    """Closed-form decoder update of SplInterp's PAM-SGD (the A, C formulas above), in float64.

    ``Z`` (N, m) codes, ``X`` (N, d) targets; ``W_prev`` (m, d) and ``b_prev`` (d,) are the anchors
    of the proximal terms (needed when mu or nu > 0). Returns W_dec (m, d) and b_dec (d,).
    """
    for name, v in (("alpha", alpha), ("beta", beta), ("mu", mu), ("nu", nu)):
        check_range(name, v, 0)
    if Z.dim() != 2 or X.dim() != 2 or Z.shape[0] != X.shape[0]:
        raise ValueError(f"Z and X must be (N, m) and (N, d) with the same N, got {tuple(Z.shape)} and {tuple(X.shape)}")
    if alpha + mu <= 0:
        raise ValueError("alpha + mu must be > 0 so that A is invertible (use a tiny ridge alpha)")
    if (mu > 0 and W_prev is None) or (nu > 0 and b_prev is None):
        raise ValueError("mu > 0 needs W_prev and nu > 0 needs b_prev (the proximal anchors)")
    dtype = Z.dtype
    # Everything, the Gram products included, runs in float64: with fewer samples than latents A is
    # singular up to the tiny ridge, and float32 rounding in Z^T Z (~1e-7 relative, far above
    # alpha = 1e-6) would be amplified into a decoder with huge weights.
    Z, X = Z.double(), X.double()
    n, m = Z.shape
    Wp = W_prev.double() if W_prev is not None else Z.new_zeros(m, X.shape[1])
    bp = b_prev.double() if b_prev is not None else X.new_zeros(X.shape[1])
    c = n / (n + beta + nu)
    z_bar, x_bar = Z.mean(0), X.mean(0)
    A = (alpha + mu) * torch.eye(m, dtype=Z.dtype) + Z.t() @ Z - n * c * torch.outer(z_bar, z_bar)
    Ct = mu * Wp + Z.t() @ X - c * torch.outer(z_bar, n * x_bar + nu * bp)   # C^T, (m, d)
    W_dec = torch.linalg.solve(A, Ct)                                           # W^T = A^{-1} C^T (A symmetric)
    b_dec = nu / (n + beta + nu) * bp + c * (x_bar - z_bar @ W_dec)
    return DecoderStep(W_dec.to(dtype), b_dec.to(dtype))


def decoder_objective(Z: Tensor, X: Tensor, W_dec: Tensor, b_dec: Tensor, alpha: float = 0.0, beta: float = 0.0,
                      mu: float = 0.0, nu: float = 0.0, W_prev: Tensor | None = None,
                      b_prev: Tensor | None = None) -> float:
    """The decoder step's objective (sum of squared errors plus the ridge and proximal terms), in float64."""
    Zd, Xd, W, b = Z.double(), X.double(), W_dec.double(), b_dec.double()
    val = (Xd - Zd @ W - b).pow(2).sum() + alpha * W.pow(2).sum() + beta * b.pow(2).sum()
    if mu > 0:
        val = val + mu * (W - W_prev.double()).pow(2).sum()
    if nu > 0:
        val = val + nu * (b - b_prev.double()).pow(2).sum()
    return float(val)


# ---- training ---------------------------------------------------------------------------------

@dataclass
class PAMConfig:
    """Hyper-parameters shared by PAM-SGD and the Adam baselines (defaults: the authors' MNIST run)."""

    epochs: int = 50
    batch_size: int = 128
    lr: float = 3e-3
    steps_per_batch: int = 1      # optimiser steps on each mini-batch (the paper's ablation)
    l1_coeff: float = 0.0         # lambda of the ReLU variant's lambda * ||z||_1 (mean over the batch)
    mu_enc: float = 0.0           # encoder proximal weights (PAM-SGD only)
    nu_enc: float = 0.0
    alpha: float = 1e-6           # decoder step: ridge on W, ridge on b, proximal on W and b (PAM-SGD only)
    beta: float = 0.0
    mu_dec: float = 0.0
    nu_dec: float = 0.0
    grad_clip: float | None = None
    eval_batch_size: int = 4096
    eval_train: bool = False      # also record the training MSE every epoch (one more pass over the data)
    eval_every_epoch: bool = True  # False: test metrics only after the last epoch (same training; the history has one row)
    seed: int = 0
    progress: bool = False

    def __post_init__(self) -> None:
        check_range("epochs", self.epochs, 1)
        check_range("batch_size", self.batch_size, 1)
        check_range("lr", self.lr, 0, lo_open=True)
        check_range("steps_per_batch", self.steps_per_batch, 1)
        for name in ("l1_coeff", "mu_enc", "nu_enc", "alpha", "beta", "mu_dec", "nu_dec"):
            check_range(name, getattr(self, name), 0)
        if self.grad_clip is not None:
            check_range("grad_clip", self.grad_clip, 0, lo_open=True)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class PAMResult(NamedTuple):
    sae: SAE
    history: pd.DataFrame  # one row per epoch (epoch 0 = initialisation)


def _decode(sae: SAE, codes: Tensor, tied: bool) -> Tensor:
    return codes @ (sae.W_enc.t() if tied else sae.W_dec) + sae.b_dec


@torch.no_grad()
def evaluate_mse(sae: SAE, x: Tensor, batch_size: int = 4096) -> dict[str, float]:
    """Test MSE per entry (the paper's ``nn.MSELoss``), FVU and the fraction of non-zero codes."""
    ev = evaluate(sae, x, batch_size=batch_size)
    return {"mse": ev.mse, "fvu": ev.fvu, "l0": ev.l0, "nonzero_frac": ev.l0 / sae.d_sae}


@torch.no_grad()
def all_codes(sae: SAE, x: Tensor, batch_size: int = 4096) -> Tensor:
    """Codes rho(x W_enc + b_enc) of every row of ``x``."""
    return torch.cat([sae.encode(x[i: i + batch_size]) for i in range(0, len(x), batch_size)])


def fit(sae: SAE, x_train: Tensor, x_test: Tensor, method: Method = "pam", cfg: PAMConfig | None = None) -> PAMResult:
    """Train ``sae`` in place with ``method`` in ``METHODS`` and record test metrics after every epoch.

    * ``"pam"``: per epoch, the encoder step (Adam on W_enc, b_enc; decoder fixed; proximal terms
      anchored at the epoch start) then the closed-form decoder step on all training codes.
    * ``"adam_tied"``: Adam on (W_enc, b_enc, b_dec) with W_dec = W_enc^T.
    * ``"adam_untied"``: Adam on all four parameters.
    """
    check_choice("method", method, METHODS)
    cfg = cfg or PAMConfig()
    if x_train.dim() != 2 or x_train.shape[1] != sae.d_in or x_test.shape[-1] != sae.d_in:
        raise ValueError(f"x_train and x_test must be (N, d_in={sae.d_in}), got {tuple(x_train.shape)}, {tuple(x_test.shape)}")
    gen = seed_everything(cfg.seed)
    tied, pam = method == "adam_tied", method == "pam"
    params = [sae.W_enc, sae.b_enc] if pam else [sae.W_enc, sae.b_enc, sae.b_dec] if tied else list(sae.parameters())
    for p in sae.parameters():
        p.requires_grad_(any(p is q for q in params))
    opt = torch.optim.Adam(params, lr=cfg.lr)
    n, bs = len(x_train), min(cfg.batch_size, len(x_train))
    rows = [{"epoch": 0, **_eval_row(sae, x_train, x_test, tied, cfg), "seconds": 0.0}] if cfg.eval_every_epoch else []
    t0 = time.perf_counter()
    for epoch in progress_bar(range(1, cfg.epochs + 1), desc=method, disable=not cfg.progress):
        anchor = (sae.W_enc.detach().clone(), sae.b_enc.detach().clone())
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, bs):
            x = x_train[order[start: start + bs]]
            for _ in range(cfg.steps_per_batch):
                codes = sae.sparsifier(x @ sae.W_enc + sae.b_enc, sae.dec_norm())
                loss = (_decode(sae, codes, tied) - x).pow(2).mean()
                if cfg.l1_coeff > 0:
                    loss = loss + cfg.l1_coeff * codes.abs().sum(-1).mean()
                if pam and cfg.mu_enc > 0:
                    loss = loss + cfg.mu_enc * (sae.W_enc - anchor[0]).pow(2).sum()
                if pam and cfg.nu_enc > 0:
                    loss = loss + cfg.nu_enc * (sae.b_enc - anchor[1]).pow(2).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                opt.step()
        if pam:
            step = decoder_step(all_codes(sae, x_train, cfg.eval_batch_size), x_train, cfg.alpha, cfg.beta,
                                cfg.mu_dec, cfg.nu_dec, sae.W_dec.detach(), sae.b_dec.detach())
            with torch.no_grad():
                sae.W_dec.copy_(step.W_dec)
                sae.b_dec.copy_(step.b_dec)
        if cfg.eval_every_epoch or epoch == cfg.epochs:
            rows.append({"epoch": epoch, **_eval_row(sae, x_train, x_test, tied, cfg),
                         "seconds": time.perf_counter() - t0})
        elif tied:  # what _eval_row does besides measuring: keep the stored decoder equal to the tied one
            with torch.no_grad():
                sae.W_dec.copy_(sae.W_enc.t())
    for p in sae.parameters():
        p.requires_grad_(True)
    sae.metadata.update({"method": method, "pam_config": cfg.as_dict()})
    return PAMResult(sae, pd.DataFrame(rows))


def _eval_row(sae: SAE, x_train: Tensor, x_test: Tensor, tied: bool, cfg: PAMConfig) -> dict[str, float]:
    if tied:  # keep the stored decoder equal to the tied one, so sae.decode and checkpoints agree
        with torch.no_grad():
            sae.W_dec.copy_(sae.W_enc.t())
    test = evaluate_mse(sae, x_test, cfg.eval_batch_size)
    train = evaluate_mse(sae, x_train, cfg.eval_batch_size)["mse"] if cfg.eval_train else float("nan")
    return {"train_mse": train, "test_mse": test["mse"], "test_fvu": test["fvu"], "test_l0": test["l0"],
            "test_nonzero_frac": test["nonzero_frac"]}


def paper_epochs(fraction: float, cap: int = 20, floor: int = 10) -> int:
    """Epochs the authors' data-fraction ablation uses: min(cap, max(floor, int(cap * fraction)))."""
    check_range("fraction", fraction, 0, 1, lo_open=True)
    return min(cap, max(floor, int(cap * fraction)))


def epochs_to_reach(history: pd.DataFrame, target: float, column: str = "test_mse") -> float:
    """First epoch whose ``column`` is <= ``target`` (inf if never)."""
    hit = history.loc[history[column] <= target, "epoch"]
    return float(hit.iloc[0]) if len(hit) else math.inf


def l1_pilot(make: Callable[[int], SAE], x_train: Tensor, x_test: Tensor, cfg: PAMConfig, candidates: Sequence[float],
             epochs: int, methods: Sequence[str] = METHODS) -> pd.DataFrame:
    """Training L0 of a ReLU SAE ``make(cfg.seed)`` after ``epochs`` epochs of each method at each candidate
    L1 coefficient (one row per (``l1_coeff``, ``method``): the input of :func:`choose_l1`)."""
    rows = []
    for lam in candidates:
        for method in methods:
            run_cfg = replace(cfg, epochs=epochs, l1_coeff=lam, eval_every_epoch=False)
            res = fit(make(cfg.seed), x_train, x_test, method, run_cfg)
            rows.append({"l1_coeff": lam, "method": method, "train_l0": evaluate_mse(res.sae, x_train)["l0"]})
    return pd.DataFrame(rows)


def choose_l1(train_l0: pd.DataFrame, k: int) -> float | None:
    """The ReLU arm's lambda from a pilot: the smallest candidate at which *every* method's training L0 lies
    in [k / 2, 2 k] (the TopK arm's K), or None when no candidate does (the ReLU claims are then dropped).

    ``train_l0``: one row per (candidate, method) pilot run, with columns ``l1_coeff``, ``method``, ``train_l0``.
    Issue 15's rule: the sparsity of the two arms must be comparable before their comparison means anything.
    """
    check_range("k", k, 1)
    missing = {"l1_coeff", "method", "train_l0"} - set(train_l0.columns)
    if missing or train_l0.empty:
        raise ValueError(f"train_l0 must be a non-empty table with columns l1_coeff, method, train_l0; missing {sorted(missing)}")
    ok = train_l0["train_l0"].between(k / 2, 2 * k).groupby(train_l0["l1_coeff"]).all()
    return float(ok[ok].index.min()) if ok.any() else None


def data_fraction_study(x_train: Tensor, x_test: Tensor, make: Any, cfg: PAMConfig,
                        fractions: list[float] = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0), methods: tuple[str, ...] = METHODS,
                        seeds: tuple[int, ...] = (0,), epochs: Any = paper_epochs, progress: bool = True) -> pd.DataFrame:
    """Final test metrics of every method trained on nested random subsets of ``x_train`` (SplInterp Fig. 1).

    ``make(seed)`` returns a fresh SAE; ``epochs(fraction)`` the number of epochs (default: the
    authors' rule, :func:`paper_epochs`). For each seed, one permutation of the training set gives
    nested subsets; every method sees the same subset, initialisation and batch order.
    """
    for f in fractions:
        check_range("fractions", f, 0, 1, lo_open=True)
    n = len(x_train)
    rows = []
    bar = progress_bar(total=len(seeds) * len(fractions) * len(methods), desc="data fractions",
                       disable=not progress)
    for seed in seeds:
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(10_000 + seed))
        for frac in fractions:
            sub = x_train[perm[: max(1, round(frac * n))]]
            for method in methods:
                run_cfg = replace(cfg, epochs=epochs(frac), seed=seed)
                last = fit(make(seed), sub, x_test, method, run_cfg).history.iloc[-1]
                rows.append({"seed": seed, "fraction": frac, "n_train": len(sub), "method": method,
                             "epochs": run_cfg.epochs, "train_mse": last["train_mse"], "test_mse": last["test_mse"],
                             "test_fvu": last["test_fvu"],
                             "test_l0": last["test_l0"], "test_nonzero_frac": last["test_nonzero_frac"]})
                bar.update()
    bar.close()
    return pd.DataFrame(rows)
