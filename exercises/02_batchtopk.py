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
# # Exercises · 02 BatchTopK: sparsity over the batch
#
# After `notebooks/02_batchtopk`. Write the function, run the check under it (it compares your codes with
# `saelib.sparsifiers.batchtopk.BatchTopK` in training mode). Reference answer: `solutions/s02_batchtopk.py`.

# %% tags=["parameters"]
SOLUTIONS = False  # CI sets this to True: the reference answers replace yours, so the checks are known to pass

# %%
import torch

import checks

# %% [markdown]
# ## 1 · BatchTopK's selection in a few lines
#
# TopK keeps the $k$ largest entries of each row of the pre-activations $z$ (a `(B, m)` batch). BatchTopK
# keeps the $kB$ largest entries of $\mathrm{ReLU}(z)$ over the *whole batch* and zeroes the rest, so the
# total budget is the same but a token may get more or fewer than $k$ latents. Return the codes (the kept
# values, same shape as `pre`).

# %%
def batchtopk_codes(pre: torch.Tensor, k: int) -> torch.Tensor:
    raise NotImplementedError


# %%
if SOLUTIONS:
    from solutions.s02_batchtopk import batchtopk_codes  # noqa: F811
checks.check_batchtopk_codes(batchtopk_codes)

# %% [markdown]
# ## 2 · Where did the budget go?
#
# Run your selection on a batch whose tokens differ in scale and look at each token's L0. *Think:* the
# tokens scaled up get more latents; is that because they are harder to reconstruct, or only because
# their pre-activations are larger? (Notebook 02's section 4 separates the two.)

# %%
g = torch.Generator().manual_seed(0)
pre = torch.randn(8, 64, generator=g) * torch.linspace(0.5, 2.0, 8).unsqueeze(1)
l0 = (batchtopk_codes(pre, 8) != 0).sum(1)
print("scale of each token:", [f"{s:.2f}" for s in torch.linspace(0.5, 2.0, 8).tolist()])
print("latents per token:  ", l0.tolist(), f"(mean {l0.float().mean():.1f}, k = 8)")
