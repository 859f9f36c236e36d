"""Check cells of the exercises: each check runs your function on small fixed inputs and compares it with
saelib's implementation (or with a known answer). It prints a line on success and raises
:class:`NotYet` with a hint otherwise. No LM, no cache: every check runs in well under a second.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from saelib.companion.claims import decide
from saelib.metrics.matching import mcc
from saelib.metrics.reconstruction import fvu as saelib_fvu
from saelib.papers.geometry import power_diagram as saelib_power_diagram
from saelib.sparsifiers.batchtopk import BatchTopK
from saelib.sparsifiers.jumprelu import JumpReLU


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
