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
# # Exercises · 01 Llama Scope: normalise, convert, fold
#
# After `notebooks/01_llama_scope`. Three pieces of the recipe's plumbing: the dataset-wise normalisation,
# the global threshold that turns a TopK SAE into a JumpReLU one, and folding decoder norms into the
# encoder. The checks compare with `saelib.train.dataset_scale`, `saelib.papers.llama_scope.global_threshold`
# and `saelib.papers.llama_scope.fold_decoder_norms_`. Reference answers: `solutions/s01_llama_scope.py`.
# Terms: [`docs/glossary.md`](../docs/glossary.md).

# %% tags=["parameters"]
SOLUTIONS = False  # CI sets this to True: the reference answers replace yours, so the checks are known to pass

# %%
import math  # noqa: F401  (for your answers: math.sqrt)

import torch

import checks

# %% [markdown]
# ## 1 · Dataset-wise normalisation
#
# Llama Scope trains on $s\,x$ with one scalar per layer,
# $$s = \frac{\sqrt d}{\mathbb E_t \lVert x_t\rVert},$$
# so that every layer's tokens have average norm $\sqrt d$ and one learning rate can serve all layers.
# `x` is `(N, d)`; return $s$ as a float.

# %%
def dataset_scale(x: torch.Tensor) -> float:
    raise NotImplementedError


# %%
if SOLUTIONS:
    from solutions.s01_llama_scope import dataset_scale  # noqa: F811
checks.check_dataset_scale(dataset_scale)

# %% [markdown]
# *Think:* Adam's update is invariant to a global rescaling of the loss, and TopK's choice is invariant to a
# global rescaling of $x$. So what can $s$ change, and why does notebook 01 test it across *layers* (with a
# gradient clip) rather than on one layer?

# %% [markdown]
# ## 2 · TopK → JumpReLU: one global threshold
#
# After training, Llama Scope replaces TopK's per-token choice by one threshold $\theta$: $f_i = z_i$ where
# the ranking score (here `scores`, `(N, m)`, already $\mathrm{ReLU}(z_i)\lVert d_i\rVert$) exceeds $\theta$.
# Choose $\theta$ on calibration tokens so that exactly $Nk$ of the $N m$ scores lie *strictly* above it:
# halfway between the $Nk$-th and the $(Nk+1)$-th largest score. Return it as a float.

# %%
def global_threshold(scores: torch.Tensor, k: int) -> float:
    raise NotImplementedError


# %%
if SOLUTIONS:
    from solutions.s01_llama_scope import global_threshold  # noqa: F811
checks.check_global_threshold(global_threshold)

# %% [markdown]
# The average L0 on the calibration tokens is now exactly $k$, but each token's L0 varies. Look at how much:

# %%
g = torch.Generator().manual_seed(0)
scores = torch.randn(1000, 64, generator=g).relu() * torch.rand(1000, 1, generator=g).add(0.5)  # tokens of varied scale
theta = global_threshold(scores, 8)
l0 = (scores > theta).sum(1).float()
print(f"theta = {theta:.3f}; L0 per token: mean {l0.mean():.2f}, min {l0.min():.0f}, max {l0.max():.0f} (k = 8)")

# %% [markdown]
# ## 3 · Folding decoder norms into the encoder
#
# Llama Scope does not renormalise decoder rows during training. Afterwards it rescales so that every
# decoder row has unit norm without changing any output: with $n_i = \lVert d_i\rVert$, multiply encoder
# column $i$ and $b_{\mathrm{enc},i}$ by $n_i$ and divide decoder row $i$ by $n_i$. `W_enc` is `(d, m)`,
# `b_enc` `(m,)`, `W_dec` `(m, d)`; return the three new tensors.

# %%
def fold_decoder_norms(W_enc: torch.Tensor, b_enc: torch.Tensor, W_dec: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    raise NotImplementedError


# %%
if SOLUTIONS:
    from solutions.s01_llama_scope import fold_decoder_norms  # noqa: F811
checks.check_fold_decoder_norms(fold_decoder_norms)

# %% [markdown]
# *Think:* why is this exact for ReLU and JumpReLU (whose threshold must be multiplied by $n_i$ too), and
# for TopK ranked by $\mathrm{ReLU}(z_i)\lVert d_i\rVert$, but not for a plain TopK that ranks by $z_i$?
# Try it: fold, then compare which latents a plain TopK picks before and after.

# %%
W_enc, W_dec = torch.randn(6, 12, generator=g), torch.randn(12, 6, generator=g) * torch.rand(12, 1, generator=g).mul(3)
x = torch.randn(5, 6, generator=g)
W2, b2, _ = fold_decoder_norms(W_enc, torch.zeros(12), W_dec)
before, after = (x @ W_enc).topk(3, dim=1).indices.sort(1).values, (x @ W2).topk(3, dim=1).indices.sort(1).values
print("plain TopK picks the same latents after folding, token by token:", (before == after).all(1).tolist())
