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
# # Exercises · 05 g-SAE: let the loss gradient choose the latents
#
# After `notebooks/05_gradient_sae`. The checks compare with `saelib.sparsifiers.gradient_topk.GradientTopK`.
# Reference answers: `solutions/s05_gradient_sae.py`. Terms: [`docs/glossary.md`](../docs/glossary.md)
# (g-SAE is not GradSAE: see its entry).

# %% tags=["parameters"]
SOLUTIONS = False  # CI sets this to True: the reference answers replace yours, so the checks are known to pass

# %%
import torch

import checks

# %% [markdown]
# ## 1 · The selection score
#
# For a token with pre-activations $z$ `(m,)` and the gradient of the LM loss with respect to the residual
# stream, $g = \partial\,\mathrm{CE} / \partial x$ `(d,)`, the g-SAE ranks latent $i$ by
# $$s_i = \mathrm{ReLU}(z_i)\,\bigl(1 + \beta\,\lvert d_i \cdot g\rvert\bigr), \qquad d_i = W_{\mathrm{dec},i} / \lVert W_{\mathrm{dec},i}\rVert,$$
# where $\lvert d_i \cdot g\rvert$ is how much moving along latent $i$'s direction would change the loss.
# A latent with $z_i \le 0$ keeps $z_i$ as its score (it ranks below every positive one, as in TopK).
# `pre` is `(N, m)`, `g` `(N, d)`, `W_dec` `(m, d)`; return the `(N, m)` scores.

# %%
def gsae_scores(pre: torch.Tensor, g: torch.Tensor, W_dec: torch.Tensor, beta: float) -> torch.Tensor:
    raise NotImplementedError


# %%
if SOLUTIONS:
    from solutions.s05_gradient_sae import gsae_scores  # noqa: F811
checks.check_gsae_scores(gsae_scores)

# %% [markdown]
# ## 2 · The codes
#
# Keep, for each token, the $k$ latents with the largest scores, and give them their *activations*
# $\mathrm{ReLU}(z_i)$: the gradient only chooses; it never changes a value. Return the `(N, m)` codes.

# %%
def gsae_codes(pre: torch.Tensor, g: torch.Tensor, W_dec: torch.Tensor, beta: float, k: int) -> torch.Tensor:
    raise NotImplementedError


# %%
if SOLUTIONS:
    from solutions.s05_gradient_sae import gsae_codes  # noqa: F811
checks.check_gsae_codes(gsae_codes)

# %% [markdown]
# ## 3 · How much does $\beta$ change the choice?
#
# With $\beta = 0$ the g-SAE is TopK. Count how many of each token's $k$ latents differ from TopK's as
# $\beta$ grows (random inputs here; notebook 05 fixes $\beta$ from pilot runs on training data). *Think:*
# the paper's $g$ comes from the loss summed over a sequence, so it depends on the token's position; what
# does that mean for evaluating a g-SAE on a token whose gradient you cannot compute (at generation time)?

# %%
gen = torch.Generator().manual_seed(0)
pre, g, W_dec = torch.randn(500, 256, generator=gen), torch.randn(500, 32, generator=gen), torch.randn(256, 32, generator=gen)
topk = gsae_codes(pre, g, W_dec, 0.0, 16) != 0
for beta in (0.1, 0.3, 1.0, 3.0):
    changed = ((gsae_codes(pre, g, W_dec, beta, 16) != 0) & ~topk).sum(1).float().mean()
    print(f"beta = {beta:3.1f}: {changed:4.1f} of 16 latents per token differ from TopK's")
