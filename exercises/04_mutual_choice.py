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
# # Exercises · 04 Mutual and Feature Choice: columns choose, and a Zipf fit with a stated range
#
# After `notebooks/04_mutual_choice`. The checks compare with
# `saelib.sparsifiers.feature_choice.column_top_mask` and `saelib.zipf.fit_zipf`. Reference answers:
# `solutions/s04_mutual_choice.py`. Terms: [`docs/glossary.md`](../docs/glossary.md).

# %% tags=["parameters"]
SOLUTIONS = False  # CI sets this to True: the reference answers replace yours, so the checks are known to pass

# %%
import torch

import checks

# %% [markdown]
# ## 1 · Feature Choice: each latent chooses its tokens
#
# For a batch of $N$ tokens the affinities are $A = \mathrm{ReLU}(Z)$, `(N, F)`. TopK lets each *row*
# (token) keep its $k$ largest; Mutual Choice (= BatchTopK) keeps the $kN$ largest of the whole matrix;
# Feature Choice lets each *column* $i$ (latent) keep its $m_i$ largest entries, with $\sum_i m_i \le kN$.
# Return the boolean `(N, F)` mask of the kept entries; an entry with $A = 0$ is never kept.

# %%
def feature_choice_mask(pre: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    raise NotImplementedError


# %%
if SOLUTIONS:
    from solutions.s04_mutual_choice import feature_choice_mask  # noqa: F811
checks.check_feature_choice_mask(feature_choice_mask)

# %% [markdown]
# Under the uniform allocation $m_i = kN/F$ every latent fires on the same number of tokens, so no latent can
# be dead in training, but the tokens' L0 can be anything from 0 up. See both:

# %%
g = torch.Generator().manual_seed(0)
pre = torch.randn(256, 64, generator=g)
mask = feature_choice_mask(pre, torch.full((64,), 8 * 256 // 64))
l0 = mask.sum(1)
print(f"tokens per latent: {mask.sum(0).min()}..{mask.sum(0).max()};  latents per token: mean {l0.float().mean():.1f}, "
      f"min {l0.min()}, max {l0.max()}, tokens with none: {(l0 == 0).sum()} of 256 (k = 8)")

# %% [markdown]
# ## 2 · A Zipf law, fitted over a stated range
#
# Rank the latents by firing density $d$ (rank 1 = densest, over *all* latents) and fit
# $\log d = \log c - \alpha \log \mathrm{rank}$ by least squares over the latents with $d >$ `min_density`.
# Return `(alpha, r2)`, with `r2` the coefficient of determination of the fit in log-log space.

# %%
def zipf_fit(densities: torch.Tensor, min_density: float) -> tuple[float, float]:
    raise NotImplementedError


# %%
if SOLUTIONS:
    from solutions.s04_mutual_choice import zipf_fit  # noqa: F811
checks.check_zipf_fit(zipf_fit)

# %% [markdown]
# ## 3 · Move the fit range, watch the verdict
#
# The paper says the densities are Zipf-distributed "except at the low end". Below, a density curve that is
# an exact power law at the head and falls away faster in its tail (as rare latents do). Notebook 04's claim
# asks for $R^2 \ge 0.9$. *Think:* for which cutoffs does the claim pass? Since the answer depends on the
# cutoff, why must the cutoff be fixed (from the paper's words) *before* the fit is seen?

# %%
ranks = torch.arange(1, 2049, dtype=torch.float64)
dens = 0.2 * ranks ** -1.0 * torch.exp(-ranks / 300)
for cut in (0.0, 1e-6, 1e-5, 1e-4):
    alpha, r2 = zipf_fit(dens, cut)
    print(f"min_density {cut:7.0e}: {int((dens > cut).sum()):5d} latents fitted, alpha = {alpha:.2f}, R^2 = {r2:.3f}"
          f" -> {'passes' if r2 >= 0.9 else 'fails'} R^2 >= 0.9")
