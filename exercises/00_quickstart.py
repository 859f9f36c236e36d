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
# # Exercises · 00 quickstart: the metrics and the verdict
#
# After `notebooks/00_quickstart`. Write each function where it says `raise NotImplementedError`, then run
# the check cell under it: it prints `correct: ...` or says how your answer differs, with a hint. The
# reference answers are in `solutions/s00_quickstart.py`; look only after trying. Terms are defined in
# [`docs/glossary.md`](../docs/glossary.md). Every cell runs in a second, without the LM.

# %% tags=["parameters"]
SOLUTIONS = False  # CI sets this to True: the reference answers replace yours, so the checks are known to pass

# %%
import math  # noqa: F401  (for your answers: math.nan)

import numpy as np
import torch

import checks

# %% [markdown]
# ## 1 · Fraction of variance unexplained
#
# $$\mathrm{FVU} = \frac{\sum_n \lVert x_n - \hat x_n\rVert^2}{\sum_n \lVert x_n - \bar x\rVert^2},$$
# with $\bar x$ the mean over the tokens. `x` and `x_hat` are `(N, d)` tensors; return a float.
#
# *Think:* why the variance about the mean and not $\sum_n \lVert x_n\rVert^2$? (Residual streams have a
# large mean; what would a "reconstruction" that outputs the mean score under each?)

# %%
def fvu(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    raise NotImplementedError


# %%
if SOLUTIONS:
    from solutions.s00_quickstart import fvu  # noqa: F811
checks.check_fvu(fvu)

# %% [markdown]
# ## 2 · A metric at matched L0
#
# A ReLU-L1 sweep gives SAEs at a few L0s; TopK sits at one L0. To compare them, interpolate the sweep's
# metric at TopK's L0, linearly in $\log$ L0 between the two sweep points that bracket it. Outside the
# swept range return `math.nan`: an extrapolated value would be a guess, and a claim built on it is
# inconclusive. `l0s` need not be sorted.

# %%
def metric_at_l0(l0s: np.ndarray, values: np.ndarray, target: float) -> float:
    raise NotImplementedError


# %%
if SOLUTIONS:
    from solutions.s00_quickstart import metric_at_l0  # noqa: F811
checks.check_metric_at_l0(metric_at_l0)

# %% [markdown]
# ## 3 · The verdict
#
# A claim fixes a margin $m$ before the run; the run gives a 95% interval $[lo, hi]$ of the effect in the
# claimed direction. Return `"reproduced"` if $lo \ge m$, `"partly"` if $0 < lo < m$, `"not reproduced"`
# if $lo \le 0$ and $hi < m$, and `"inconclusive"` otherwise.
#
# *Think:* why is an interval $[-1, 2]$ with margin 1 "inconclusive" and not "not reproduced"? What would
# more seeds do to it?

# %%
def verdict(lo: float, hi: float, margin: float) -> str:
    raise NotImplementedError


# %%
if SOLUTIONS:
    from solutions.s00_quickstart import verdict  # noqa: F811
checks.check_verdict(verdict)
