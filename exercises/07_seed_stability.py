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
# # Exercises · 07 seed stability: matching two dictionaries
#
# After `notebooks/07_seed_stability` (and before `08_feature_consistency`, which builds PW-MCC on this).
# The check compares your answer with `saelib.metrics.matching.mcc`. Reference answer:
# `solutions/s07_seed_stability.py`.

# %% tags=["parameters"]
SOLUTIONS = False  # CI sets this to True: the reference answers replace yours, so the checks are known to pass

# %%
import torch
from scipy.optimize import linear_sum_assignment  # noqa: F401  (you will need it)

import checks

# %% [markdown]
# ## 1 · The mean matched cosine (MCC)
#
# Two SAEs trained with different seeds learn their latents in different orders. To compare them, match
# each decoder row of `A` `(n, d)` to one row of `B` `(n, d)`, one-to-one, maximising the total cosine
# (the Hungarian algorithm: `scipy.optimize.linear_sum_assignment(C, maximize=True)` on the cosine matrix
# `C`), and return the mean of the matched cosines.
#
# Use the *signed* cosine: a latent whose direction is flipped reads $-1$. *Think:* why is a flipped
# decoder row a different latent for an SAE with a ReLU, although $|\cos| = 1$?

# %%
def matched_mcc(A: torch.Tensor, B: torch.Tensor) -> float:
    raise NotImplementedError


# %%
if SOLUTIONS:
    from solutions.s07_seed_stability import matched_mcc  # noqa: F811
checks.check_matched_mcc(matched_mcc)
