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
# # Exercises · 08 Feature consistency: PW-MCC, per latent, and against chance
#
# After `notebooks/08_feature_consistency` (and `exercises/07_seed_stability`, where you wrote the matched
# MCC of two dictionaries: here it is imported from saelib as `mcc`). The checks compare with
# `saelib.metrics.matching.pw_mcc` and `saelib.metrics.matching.per_latent_mcc`. Reference answers:
# `solutions/s08_feature_consistency.py`. Terms: [`docs/glossary.md`](../docs/glossary.md).

# %% tags=["parameters"]
SOLUTIONS = False  # CI sets this to True: the reference answers replace yours, so the checks are known to pass

# %%
import itertools  # noqa: F401  (for your answers)

import numpy as np  # noqa: F401
import torch
from scipy.optimize import linear_sum_assignment  # noqa: F401

import checks
from saelib.metrics.matching import mcc  # noqa: F401  (mcc(A, B): mean matched signed cosine of two dictionaries)

# %% [markdown]
# ## 1 · PW-MCC
#
# Train $S$ SAEs that differ only in their seed; PW-MCC is the mean, over the $\binom S2$ unordered pairs of
# different seeds, of the MCC between their decoders (Song et al. 2025). `dicts` is a list of `(m, d)`
# decoders; return a float.

# %%
def pw_mcc(dicts: list[torch.Tensor]) -> float:
    raise NotImplementedError


# %%
if SOLUTIONS:
    from solutions.s08_feature_consistency import pw_mcc  # noqa: F811
checks.check_pw_mcc(pw_mcc)

# %% [markdown]
# ## 2 · Consistency per latent
#
# Which latents are the consistent ones? For each latent of `dicts[ref]`, match `dicts[ref]` one-to-one
# against every other seed (Hungarian algorithm on the cosine matrix) and average the latent's matched
# cosine over those seeds. Return an `(m,)` tensor or array.

# %%
def per_latent_consistency(dicts: list[torch.Tensor], ref: int) -> torch.Tensor:
    raise NotImplementedError


# %%
if SOLUTIONS:
    from solutions.s08_feature_consistency import per_latent_consistency  # noqa: F811
checks.check_per_latent_consistency(per_latent_consistency)

# %% [markdown]
# ## 3 · What does chance score?
#
# Before reading a PW-MCC of 0.3 as "little agreement", ask what unrelated dictionaries score. Random
# directions in $d = 16$ dimensions: as the number of latents $m$ grows past $d$, the Hungarian matching finds
# ever closer partners by chance. *Think:* why must notebooks 07 and 08 report this baseline beside every
# consistency number, and compare widths above $d$ against it?

# %%
gen = torch.Generator().manual_seed(0)
for m in (8, 16, 64, 256):
    rand = [torch.randn(m, 16, generator=gen) for _ in range(3)]
    print(f"m = {m:3d} latents in d = 16: PW-MCC of 3 random dictionaries = {pw_mcc(rand):.3f}")
