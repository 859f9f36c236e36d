"""Check cells of the exercises: each check runs your function on small fixed inputs and compares it with
saelib's implementation (or with a known answer). It prints a line on success and raises
:class:`NotYet` with a hint otherwise. No LM, no cache: every check runs in well under a second.
"""
from __future__ import annotations

import copy
import math
from typing import Callable

import numpy as np
import torch

from saelib.companion.claims import decide
from saelib.metrics.matching import mcc, per_latent_mcc
from saelib.metrics.matching import pw_mcc as saelib_pw_mcc
from saelib.metrics.reconstruction import fvu as saelib_fvu
from saelib.metrics.uncertainty import paired_t_interval
from saelib.papers.geometry import power_diagram as saelib_power_diagram
from saelib.papers.llama_scope import fold_decoder_norms_, ranking_scores
from saelib.papers.llama_scope import global_threshold as saelib_global_threshold
from saelib.papers.pam import decoder_step as pam_decoder_step
from saelib.sae import SAE
from saelib.sparsifiers.atm import importance_score, mask_probabilities
from saelib.sparsifiers.batchtopk import BatchTopK
from saelib.sparsifiers.feature_choice import column_top_mask
from saelib.sparsifiers.gradient_topk import GradientTopK
from saelib.sparsifiers.jumprelu import JumpReLU
from saelib.train import dataset_scale as saelib_dataset_scale
from saelib.zipf import fit_zipf


class NotYet(AssertionError):
    """Your answer is not right yet (the message says how it differs, and gives a hint)."""


def _call(fn: Callable, *args):
    try:
        return fn(*args)
    except NotImplementedError:
        raise NotYet(f"{fn.__name__}: not attempted yet (replace `raise NotImplementedError`)") from None


def _close(name: str, got, want, hint: str, atol: float = 1e-5) -> None:
    got_t, want_t = torch.as_tensor(np.asarray(got, dtype=np.float64)), torch.as_tensor(np.asarray(want, dtype=np.float64))
    if got_t.shape != want_t.shape:
        raise NotYet(f"{name}: shape {tuple(got_t.shape)}, expected {tuple(want_t.shape)}. Hint: {hint}")
    same_nan = torch.isnan(got_t) == torch.isnan(want_t)
    ok = same_nan.all() and torch.allclose(got_t.nan_to_num(), want_t.nan_to_num(), atol=atol, rtol=1e-5)
    if not ok:
        err = (got_t - want_t).abs().nan_to_num(math.inf).max().item()
        raise NotYet(f"{name}: differs from the expected answer (largest difference {err:.3g}). Hint: {hint}")


def _passed(name: str) -> None:
    print(f"correct: {name}")


# ---- 00 quickstart -------------------------------------------------------------------------------

def check_fvu(fvu: Callable) -> None:
    """fvu(x, x_hat) = sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 (mean over the tokens)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 8, generator=g) * 3 + 5       # an offset: the mean matters
    x_hat = x + 0.5 * torch.randn(200, 8, generator=g)
    _close("fvu", _call(fvu, x, x_hat), saelib_fvu(x, x_hat),
           "divide by the variance about the mean over tokens, sum((x - x.mean(0))**2), not by sum(x**2)")
    _close("fvu (perfect reconstruction)", _call(fvu, x, x.clone()), 0.0, "a perfect reconstruction has FVU 0")
    _passed("fvu")


def check_metric_at_l0(metric_at_l0: Callable) -> None:
    """metric_at_l0(l0s, values, target): linear interpolation in log L0; NaN outside [min, max] of l0s."""
    l0s, vals = np.array([80.0, 20.0, 40.0]), np.array([0.2, 0.5, 0.35])   # unsorted on purpose
    want = {30.0: float(np.interp(np.log(30), np.log([20, 40, 80]), [0.5, 0.35, 0.2])), 40.0: 0.35,
            10.0: math.nan, 100.0: math.nan}
    for target, w in want.items():
        _close(f"metric_at_l0(target={target:g})", _call(metric_at_l0, l0s, vals, target), w,
               "sort by L0, interpolate in log(L0) (np.interp on np.log), and return NaN when the target lies "
               "outside the swept L0 range: never extrapolate")
    _passed("metric_at_l0")


def check_verdict(verdict: Callable) -> None:
    """verdict(lo, hi, margin) for an effect claim, interval in the claimed direction."""
    cases = [(2.0, 3.0, 1.0), (0.5, 3.0, 1.0), (-1.0, 0.5, 1.0), (-1.0, 2.0, 1.0), (1.0, 1.0, 1.0), (0.0, 0.9, 1.0)]
    for lo, hi, m in cases:
        got, want = _call(verdict, lo, hi, m), decide(lo, hi, m)
        if got != want:
            raise NotYet(f"verdict({lo}, {hi}, margin={m}) = {got!r}, expected {want!r}. Hint: reproduced iff lo >= m; "
                         "partly iff 0 < lo < m; not reproduced iff lo <= 0 and hi < m; otherwise inconclusive")
    _passed("verdict")


# ---- 02 BatchTopK --------------------------------------------------------------------------------

def check_batchtopk_codes(batchtopk_codes: Callable) -> None:
    """batchtopk_codes(pre, k): keep the k * B largest entries of relu(pre) over the whole (B, m) batch."""
    g = torch.Generator().manual_seed(1)
    pre, k = torch.randn(64, 40, generator=g), 5
    ref = BatchTopK(k).train()(pre, torch.ones(40))
    got = _call(batchtopk_codes, pre, k)
    _close("batchtopk_codes", got, ref, "flatten the batch, take the top k*B of relu(pre), scatter them back, "
           "zero the rest; keep the values, not a 0/1 mask")
    l0 = (torch.as_tensor(got) != 0).sum(1)
    if not (l0.float().mean() == k and l0.min() < l0.max()):
        raise NotYet("batchtopk_codes: the mean L0 should be exactly k and vary between tokens")
    _passed("batchtopk_codes")


# ---- 03 JumpReLU ---------------------------------------------------------------------------------

def _jumprelu_reference(z: torch.Tensor, theta: torch.Tensor, eps: float, g: torch.Tensor, step: bool) -> torch.Tensor:
    """saelib's STE gradient to theta: of sum(g * JumpReLU(z)), or (step, g = 1) of the summed L0 penalty."""
    s = JumpReLU(z.shape[1], bandwidth=eps)
    with torch.no_grad():
        s.threshold.copy_(theta)
    loss = s.l0(z) * len(z) if step else (s(z, torch.ones(z.shape[1])) * g).sum()
    loss.backward()
    return s.threshold.grad


def check_jumprelu_theta_grad(jumprelu_theta_grad: Callable) -> None:
    """jumprelu_theta_grad(z, theta, eps, g): the STE gradient to theta of sum(g * z * H(z - theta))."""
    g_ = torch.Generator().manual_seed(2)
    z, theta, eps = torch.randn(500, 6, generator=g_).abs() * 2, torch.linspace(0.5, 1.5, 6), 0.5
    g = torch.randn(500, 6, generator=g_)
    _close("jumprelu_theta_grad", _call(jumprelu_theta_grad, z, theta, eps, g),
           _jumprelu_reference(z, theta, eps, g, step=False),
           "-(theta / eps) * K((z - theta) / eps) * g summed over the batch, with the rectangle kernel "
           "K(u) = 1[|u| < 1/2] (Rajamanoharan et al. 2024, Eq. 11)", atol=1e-4)
    _passed("jumprelu_theta_grad")


def check_step_theta_grad(step_theta_grad: Callable) -> None:
    """step_theta_grad(z, theta, eps, g): the STE gradient to theta of sum(g * H(z - theta)) (the L0 penalty; here g = 1)."""
    g_ = torch.Generator().manual_seed(3)
    z, theta, eps = torch.randn(500, 6, generator=g_).abs() * 2, torch.linspace(0.5, 1.5, 6), 0.5
    g = torch.ones(500, 6)
    _close("step_theta_grad", _call(step_theta_grad, z, theta, eps, g), _jumprelu_reference(z, theta, eps, g, step=True),
           "like the JumpReLU one, but the step has no factor theta: -(1 / eps) * K((z - theta) / eps) * g "
           "(Eq. 12)", atol=1e-4)
    _passed("step_theta_grad")


# ---- 07 / 08: matching dictionaries --------------------------------------------------------------

def check_matched_mcc(matched_mcc: Callable) -> None:
    """matched_mcc(A, B): mean signed cosine of decoder rows after the best one-to-one matching."""
    g = torch.Generator().manual_seed(4)
    A = torch.randn(30, 10, generator=g)
    perm = torch.randperm(30, generator=g)
    B = A[perm] * torch.rand(30, 1, generator=g).add(0.5) + 0.3 * torch.randn(30, 10, generator=g)
    B[:3] = -B[:3]                                   # sign-flipped copies must not count as matches
    _close("matched_mcc", _call(matched_mcc, A, B), mcc(A, B),
           "normalise the rows, C = A_n @ B_n.T, then scipy.optimize.linear_sum_assignment(C, maximize=True); "
           "average the *signed* cosines C[rows, cols], not their absolute values")
    _passed("matched_mcc")


# ---- 09 SplInterp --------------------------------------------------------------------------------

def check_power_diagram(power_diagram: Callable) -> None:
    """power_diagram(W_enc, b_enc) -> (sites (m, d), r2 (m,)) with ||x - mu_i||^2 - r_i^2 = ||x||^2 - z_i(x)."""
    g = torch.Generator().manual_seed(5)
    W, b = torch.randn(3, 7, generator=g, dtype=torch.float64), torch.randn(7, generator=g, dtype=torch.float64)
    got = _call(power_diagram, W, b)
    if not (isinstance(got, tuple) and len(got) == 2):
        raise NotYet("power_diagram: return a tuple (sites, r2)")
    want = saelib_power_diagram(W, b)
    hint = "expand ||x - mu||^2 - r^2 and match it to ||x||^2 - (w . x + b): mu_i = w_i / 2, r_i^2 = ||w_i||^2 / 4 + b_i"
    _close("power_diagram sites", got[0], want[0], hint)
    _close("power_diagram r2", got[1], want[1], hint)
    _passed("power_diagram")


def check_ridge_decoder(ridge_decoder: Callable) -> None:
    """ridge_decoder(Z, X, alpha) -> W (m, d) minimising ||X - Z W||^2 + alpha ||W||^2 (no intercept)."""
    g = torch.Generator().manual_seed(6)
    Z, X = torch.randn(50, 12, generator=g, dtype=torch.float64), torch.randn(50, 4, generator=g, dtype=torch.float64)
    want = torch.linalg.solve(Z.T @ Z + 0.1 * torch.eye(12, dtype=torch.float64), Z.T @ X)
    _close("ridge_decoder", _call(ridge_decoder, Z, X, 0.1), want,
           "set the gradient to zero: (Z^T Z + alpha I) W = Z^T X; use torch.linalg.solve, not an explicit inverse")
    _passed("ridge_decoder")


# ---- 01 Llama Scope ------------------------------------------------------------------------------

def check_dataset_scale(dataset_scale: Callable) -> None:
    """dataset_scale(x) = sqrt(d) / E||x|| (the mean over tokens of the row norms)."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(300, 16, generator=g) * torch.rand(300, 1, generator=g).mul(4) + 2.0   # rows of varied norm
    s = _call(dataset_scale, x)
    _close("dataset_scale", s, saelib_dataset_scale(x),
           "s = sqrt(d) / mean over tokens of ||x_t|| (x.norm(dim=1).mean()), so that the scaled tokens have "
           "average norm sqrt(d), whatever the layer's own scale")
    _close("mean norm of s * x", (float(s) * x).norm(dim=1).mean(), math.sqrt(16), "E||s x|| should equal sqrt(d)",
           atol=1e-4)
    _passed("dataset_scale")


def check_global_threshold(global_threshold: Callable) -> None:
    """global_threshold(scores, k): one theta with exactly N k of the (N, m) scores above it."""
    g = torch.Generator().manual_seed(8)
    sae = SAE(12, 40, "topk", k=4, seed=3)
    x = torch.randn(100, 12, generator=g)
    scores = ranking_scores(sae, x)
    theta = _call(global_threshold, scores.clone(), 4)
    _close("global_threshold", theta, saelib_global_threshold(sae, x, 4),
           "sort all N*m scores in one list; theta is the midpoint of the (N k)-th and (N k + 1)-th largest, "
           "so that f = z * (score > theta) keeps exactly N k activations", atol=1e-6)
    kept = int((scores > float(theta)).sum())
    if kept != 100 * 4:
        raise NotYet(f"global_threshold: {kept} scores lie above theta, expected N k = 400. Hint: the strict "
                     "inequality must keep the (N k)-th largest score and drop the (N k + 1)-th")
    _passed("global_threshold")


def check_fold_decoder_norms(fold_decoder_norms: Callable) -> None:
    """fold_decoder_norms(W_enc, b_enc, W_dec) -> (W_enc', b_enc', W_dec') with unit decoder rows, same output."""
    g = torch.Generator().manual_seed(9)
    sae = SAE(10, 24, "relu", seed=4)
    with torch.no_grad():
        sae.W_dec.mul_(torch.rand(24, 1, generator=g).mul(3).add(0.2))
        sae.b_enc.copy_(0.1 * torch.randn(24, generator=g))
    got = _call(fold_decoder_norms, sae.W_enc.detach().clone(), sae.b_enc.detach().clone(), sae.W_dec.detach().clone())
    if not (isinstance(got, tuple) and len(got) == 3):
        raise NotYet("fold_decoder_norms: return a tuple (W_enc, b_enc, W_dec)")
    ref = copy.deepcopy(sae)
    fold_decoder_norms_(ref)
    hint = ("with n_i = ||W_dec[i]||: multiply column i of W_enc and b_enc[i] by n_i, divide row i of W_dec by n_i; "
            "then ReLU(z_i) n_i * (d_i / n_i) is unchanged")
    for name, a, b in zip(("W_enc", "b_enc", "W_dec"), got, (ref.W_enc, ref.b_enc, ref.W_dec)):
        _close(f"fold_decoder_norms {name}", a, b.detach(), hint)
    _passed("fold_decoder_norms")


# ---- 04 Mutual Choice and Feature Choice ---------------------------------------------------------

def check_feature_choice_mask(feature_choice_mask: Callable) -> None:
    """feature_choice_mask(pre, m): in each column i keep the m[i] largest *positive* entries (a bool mask)."""
    g = torch.Generator().manual_seed(10)
    pre = torch.randn(50, 30, generator=g) - 0.8            # many columns have fewer than m_i positive entries
    m = torch.randint(1, 20, (30,), generator=g)
    got = _call(feature_choice_mask, pre, m)
    _close("feature_choice_mask", torch.as_tensor(got).to(torch.float64), column_top_mask(pre, m).to(torch.float64),
           "each *column* (latent) chooses its m[i] largest entries (topk over dim=0, not per row), and only "
           "positive entries count: ReLU(z) = 0 is never a choice")
    _passed("feature_choice_mask")


def check_zipf_fit(zipf_fit: Callable) -> None:
    """zipf_fit(densities, min_density) -> (alpha, r2): log d = log c - alpha log rank over latents with d > min_density."""
    g = torch.Generator().manual_seed(11)
    ranks = torch.arange(1, 201, dtype=torch.float64)
    d = 0.3 * ranks ** -0.9 * torch.exp(0.2 * torch.randn(200, generator=g, dtype=torch.float64))
    d[torch.randperm(200, generator=g)[:15]] = 0.0           # dead latents
    hint = ("rank every latent by density (1 = densest), keep those with d > min_density, and fit a straight line "
            "to log(density) against log(rank); alpha is minus its slope, r2 the fit's R^2 in log-log space")
    for cut in (0.0, 1e-2):
        got = _call(zipf_fit, d.clone(), cut)
        if not (isinstance(got, tuple) and len(got) == 2):
            raise NotYet("zipf_fit: return a tuple (alpha, r2)")
        want = fit_zipf(d, cut)
        _close(f"zipf_fit(min_density={cut:g}) alpha", got[0], want["alpha"], hint, atol=1e-6)
        _close(f"zipf_fit(min_density={cut:g}) r2", got[1], want["r2"], hint, atol=1e-6)
    _passed("zipf_fit")


# ---- 05 g-SAE ------------------------------------------------------------------------------------

def _gsae(k: int, beta: float, g: torch.Tensor, W_dec: torch.Tensor) -> GradientTopK:
    sp = GradientTopK(k, beta)
    sp.set_gradients(g, W_dec)
    return sp


def _gsae_inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    pre, g = torch.randn(40, 30, generator=gen), torch.randn(40, 8, generator=gen)
    W_dec = torch.randn(30, 8, generator=gen) * torch.rand(30, 1, generator=gen).mul(3).add(0.1)  # non-unit rows
    return pre, g, W_dec


def check_gsae_scores(gsae_scores: Callable) -> None:
    """gsae_scores(pre, g, W_dec, beta): ReLU(z_i)(1 + beta |d_i . g|) with unit d_i; z_i <= 0 keeps its raw value."""
    pre, g, W_dec = _gsae_inputs(12)
    _close("gsae_scores", _call(gsae_scores, pre, g, W_dec, 2.0), _gsae(5, 2.0, g, W_dec).scores(pre),
           "d_i = W_dec[i] / ||W_dec[i]|| (unit rows, so folding a scale into the weights changes nothing); "
           "score = z * (1 + beta * |g @ d.T|) where z > 0, and z itself elsewhere", atol=1e-5)
    _passed("gsae_scores")


def check_gsae_codes(gsae_codes: Callable) -> None:
    """gsae_codes(pre, g, W_dec, beta, k): the k best-scoring latents per token, keeping the values ReLU(z)."""
    pre, g, W_dec = _gsae_inputs(13)
    want = _gsae(5, 2.0, g, W_dec)(pre, W_dec.norm(dim=1))
    _close("gsae_codes", _call(gsae_codes, pre, g, W_dec, 2.0, 5), want,
           "choose with the scores (topk over them per row), but keep the *activation* ReLU(z) at the chosen "
           "indices, not the score: g only decides which latents fire")
    _passed("gsae_codes")


# ---- 06 ATM --------------------------------------------------------------------------------------

def _atm_stats(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    mag = torch.rand(64, generator=gen).mul(2).add(0.1)
    freq = torch.rand(64, generator=gen).pow(3).mul(0.3).add(1e-4)
    return mag, freq, mag * freq * torch.rand(64, generator=gen).add(0.5)


def check_atm_importance(atm_importance: Callable) -> None:
    """atm_importance(mag, freq, contrib, weights): w_m z(log m) + w_p z(log p) + w_r z(log r), z over latents."""
    mag, freq, contrib = _atm_stats(14)
    w = (0.5, 0.3, 0.2)
    _close("atm_importance", _call(atm_importance, mag, freq, contrib, w), importance_score(mag, freq, contrib, w),
           "take the log of each statistic first (they span orders of magnitude), z-score each over the latents "
           "((v - v.mean()) / v.std()), then the weighted sum", atol=1e-4)
    _passed("atm_importance")


def check_atm_mask_probabilities(atm_mask_probabilities: Callable) -> None:
    """atm_mask_probabilities(I, c, T, max_mask_frac): sigmoid((tau - I)/T) below tau = mean - c std, capped."""
    gen = torch.Generator().manual_seed(15)
    imp = torch.randn(100, generator=gen)
    for c, T, cap in ((0.5, 0.3, 0.5), (0.0, 1.0, 0.1)):           # the second case hits the cap
        got = _call(atm_mask_probabilities, imp.clone(), c, T, cap)
        _close(f"atm_mask_probabilities(c={c}, T={T}, max_mask_frac={cap})", got, mask_probabilities(imp, c, T, cap)[0],
               "tau = I.mean() - c * I.std(); p = sigmoid((tau - I) / T) for latents below tau and 0 elsewhere; "
               "and at most floor(max_mask_frac * n) latents (the least important) may have p > 0", atol=1e-6)
    _passed("atm_mask_probabilities")


# ---- 08 feature consistency ----------------------------------------------------------------------

def _seed_dicts(seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    truth = torch.randn(20, 6, generator=gen)
    dicts = [truth[torch.randperm(20, generator=gen)] + 0.6 * torch.randn(20, 6, generator=gen) for _ in range(4)]
    dicts[1][:4] = dicts[1][4]                                  # duplicated latents: two compete for one partner
    return dicts


def check_pw_mcc(pw_mcc: Callable) -> None:
    """pw_mcc(dicts): mean MCC over every unordered pair of different seeds."""
    dicts = _seed_dicts(16)
    _close("pw_mcc", _call(pw_mcc, [d.clone() for d in dicts]), saelib_pw_mcc(dicts),
           "average mcc(dicts[i], dicts[j]) over i < j only (itertools.combinations): a seed paired with itself "
           "scores 1 and inflates the mean")
    _passed("pw_mcc")


def check_per_latent_consistency(per_latent_consistency: Callable) -> None:
    """per_latent_consistency(dicts, ref): each latent of dicts[ref], its matched cosine averaged over the other seeds."""
    dicts = _seed_dicts(17)
    _close("per_latent_consistency", _call(per_latent_consistency, [d.clone() for d in dicts], 0),
           per_latent_mcc(dicts, ref=0),
           "match one-to-one with the Hungarian algorithm (linear_sum_assignment on the cosine matrix, "
           "maximize=True) against each other seed, then average each latent's matched cosine over those seeds; "
           "a row-wise argmax lets two latents share one partner")
    _passed("per_latent_consistency")


# ---- 10 SplInterp on the LM ----------------------------------------------------------------------

def check_pam_decoder(pam_decoder: Callable) -> None:
    """pam_decoder(Z, X, alpha) -> (W (m, d), b (d,)) minimising ||X - Z W - 1 b^T||^2 + alpha ||W||^2."""
    gen = torch.Generator().manual_seed(18)
    Z = torch.randn(60, 10, generator=gen, dtype=torch.float64).relu()   # codes are >= 0: their mean is not 0
    X = torch.randn(60, 5, generator=gen, dtype=torch.float64) + 3.0
    got = _call(pam_decoder, Z, X, 0.1)
    if not (isinstance(got, tuple) and len(got) == 2):
        raise NotYet("pam_decoder: return a tuple (W, b)")
    want = pam_decoder_step(Z, X, alpha=0.1)
    hint = ("the optimal b is mean(X) - mean(Z) @ W; put it back and W solves ridge on the *centred* data: "
            "(Zc^T Zc + alpha I) W = Zc^T Xc with Zc = Z - Z.mean(0), Xc = X - X.mean(0)")
    _close("pam_decoder W", got[0], want.W_dec, hint)
    _close("pam_decoder b", got[1], want.b_dec, hint)
    _passed("pam_decoder")


def check_relative_gain_interval(relative_gain_interval: Callable) -> None:
    """relative_gain_interval(mse_pam, mse_adam): 100 (1 - pam/adam) % per seed, paired 95% t-interval over seeds."""
    pam, adam = np.array([0.80, 0.86, 0.78]), np.array([0.90, 0.88, 0.91])
    got = _call(relative_gain_interval, pam, adam)
    want = paired_t_interval(100 * (1 - pam / adam), np.zeros(3))
    if not (isinstance(got, tuple) and len(got) == 3):
        raise NotYet("relative_gain_interval: return a tuple (estimate, lo, hi)")
    _close("relative_gain_interval", got, [want.estimate, want.lo, want.hi],
           "one gain per seed, g_s = 100 (1 - pam_s / adam_s); mean +- t_{S-1, 0.975} sd(g) / sqrt(S) with "
           "scipy.stats.t.ppf (with 3 seeds t is 4.30, not 1.96)", atol=1e-6)
    _passed("relative_gain_interval")
