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
# # Exercises · 09 SplInterp: power diagrams and the interpolation threshold
#
# After `notebooks/09_splinterp_mnist`. The checks compare with `saelib.papers.geometry.power_diagram` and
# with the closed-form ridge solution. Reference answers: `solutions/s09_splinterp_mnist.py`.

# %% tags=["parameters"]
SOLUTIONS = False  # CI sets this to True: the reference answers replace yours, so the checks are known to pass

# %%
import torch

import checks

# %% [markdown]
# ## 1 · A TopK encoder is a power diagram
#
# With pre-activations $z_i(x) = w_i \cdot x + b_i$ (`W_enc` is `(d, m)`, column $i$ is $w_i$), find sites
# $\mu_i$ and squared radii $r_i^2$ such that the power distance $\lVert x - \mu_i\rVert^2 - r_i^2$ equals
# $\lVert x\rVert^2 - z_i(x)$ for every $x$. Then the $k$ largest pre-activations are the $k$ nearest sites.
# Return `(sites, r2)` with `sites` of shape `(m, d)`.

# %%
def power_diagram(W_enc: torch.Tensor, b_enc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    raise NotImplementedError


# %%
if SOLUTIONS:
    from solutions.s09_splinterp_mnist import power_diagram  # noqa: F811
checks.check_power_diagram(power_diagram)

# %% [markdown]
# ## 2 · PAM's decoder step is least squares
#
# With the codes $Z$ `(N, m)` fixed, the decoder that minimises $\lVert X - ZW\rVert^2 + \alpha\lVert W\rVert^2$
# (no intercept here) has a closed form. Return $W$ `(m, d)`.

# %%
def ridge_decoder(Z: torch.Tensor, X: torch.Tensor, alpha: float) -> torch.Tensor:
    raise NotImplementedError


# %%
if SOLUTIONS:
    from solutions.s09_splinterp_mnist import ridge_decoder  # noqa: F811
checks.check_ridge_decoder(ridge_decoder)

# %% [markdown]
# ## 3 · Watch the spike
#
# Fit your decoder to $N$ noisy samples of a linear map over $m = 64$ codes, with the tiny ridge PAM-SGD
# uses ($\alpha = 10^{-6}$), and measure the error on fresh samples. Near $N = m$ the Gram matrix
# $Z^\top Z$ is nearly singular and the fit chases the noise: the test error peaks (the interpolation
# threshold of least squares). Move `alpha` up to $10^{-1}$ and run again: what happens to the peak?

# %%
m, d, alpha = 64, 16, 1e-6
g = torch.Generator().manual_seed(0)
W_true = torch.randn(m, d, generator=g, dtype=torch.float64)


def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    Z = torch.randn(n, m, generator=g, dtype=torch.float64)
    return Z, Z @ W_true + 0.5 * torch.randn(n, d, generator=g, dtype=torch.float64)


Z_test, X_test = sample(2000)
for n in (16, 32, 48, 56, 64, 72, 96, 128, 256, 512):
    Z, X = sample(n)
    W = ridge_decoder(Z, X, alpha)
    print(f"N = {n:4d} ({n / m:4.2f} m): test MSE {((X_test - Z_test @ W) ** 2).mean():10.2f}")
