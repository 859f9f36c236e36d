# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext,-all
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercises · 10 SplInterp on the LM: PAM's decoder with a bias, and a gain with its interval
#
# After `notebooks/10_splinterp_llm` (and `exercises/09_splinterp_mnist`, where you wrote the decoder
# without a bias). The checks compare with `saelib.papers.pam.decoder_step` and
# `saelib.metrics.uncertainty.paired_t_interval`. Reference answers: `solutions/s10_splinterp_llm.py`.
# Terms: [`docs/glossary.md`](../docs/glossary.md).

# %% tags=["parameters"]
SOLUTIONS = False  # CI sets this to True: the reference answers replace yours, so the checks are known to pass

# %%
import math  # noqa: F401  (for your answers)

import numpy as np
import torch
from scipy import stats  # noqa: F401

import checks
from saelib.companion.claims import decide

# %% [markdown]
# ## 1 · The decoder step, with a bias
#
# PAM-SGD alternates an SGD step on the encoder with an exact solve for the decoder. With the codes $Z$
# `(N, m)` fixed, find $W$ `(m, d)` and $b$ `(d,)` minimising
# $$\lVert X - Z W - \mathbf 1 b^\top\rVert^2 + \alpha \lVert W\rVert^2 .$$
# Set the gradient in $b$ to zero first, substitute, and solve for $W$. Return `(W, b)`.

# %%
def pam_decoder(Z: torch.Tensor, X: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    raise NotImplementedError


# %%
if SOLUTIONS:
    from solutions.s10_splinterp_llm import pam_decoder  # noqa: F811
checks.check_pam_decoder(pam_decoder)

# %% [markdown]
# ## 2 · A relative gain and its interval over seeds
#
# Notebook 10 trains each method with the same seeds and scores "PAM-SGD reaches lower test MSE than Adam"
# by the per-seed gain $g_s = 100\,(1 - \mathrm{MSE}^{\mathrm{PAM}}_s / \mathrm{MSE}^{\mathrm{Adam}}_s)$ %,
# and a 95% $t$-interval of its mean over the $S$ seeds. Return `(estimate, lo, hi)`.

# %%
def relative_gain_interval(mse_pam: np.ndarray, mse_adam: np.ndarray) -> tuple[float, float, float]:
    raise NotImplementedError


# %%
if SOLUTIONS:
    from solutions.s10_splinterp_llm import relative_gain_interval  # noqa: F811
checks.check_relative_gain_interval(relative_gain_interval)

# %% [markdown]
# ## 3 · From the interval to a verdict
#
# The claim's margin is 1 (a gain under 1% is a tie). Below, the same mean gain of 3% measured with three
# different seed-to-seed spreads. *Think:* the middle seed alone shows a 3% gain, three times the margin, in
# every case; what do the intervals say, and how many seeds would the widest case need?
# ([`docs/glossary.md`](../docs/glossary.md) defines the verdicts.)

# %%
adam = np.array([1.00, 1.00, 1.00])
for spread in (0.002, 0.02, 0.05):
    pam = 0.97 + spread * np.array([-1.0, 0.0, 1.0])
    est, lo, hi = relative_gain_interval(pam, adam)
    print(f"seed spread {spread:.3f}: gain {est:+.1f}% [{lo:+.1f}, {hi:+.1f}] -> {decide(lo, hi, 1.0)}")
