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
# # Exercises · 03 JumpReLU: training through a step
#
# After `notebooks/03_jumprelu`. The checks compare your gradients with autograd through
# `saelib.sparsifiers.jumprelu.JumpReLU`. Reference answers: `solutions/s03_jumprelu.py`.

# %% tags=["parameters"]
SOLUTIONS = False  # CI sets this to True: the reference answers replace yours, so the checks are known to pass

# %%
import torch

import checks

# %% [markdown]
# ## 1 · The pseudo-derivative of JumpReLU
#
# $f(z) = z\,H(z - \theta)$ has derivative $\partial f/\partial\theta = -z\,\delta(z - \theta)$, zero almost
# everywhere: a sampled gradient never sees the jump. The straight-through estimator replaces the Dirac
# $\delta$ by a kernel of width $\varepsilon$, $\frac1\varepsilon K\!\left(\frac{z-\theta}{\varepsilon}\right)$ with the
# rectangle $K(u) = \mathbb 1[\lvert u\rvert < \tfrac12]$, and $z$ by $\theta$ (they agree where the kernel is non-zero,
# as $\varepsilon \to 0$):
#
# $$\frac{\tilde\partial f}{\tilde\partial\theta} = -\frac{\theta}{\varepsilon} K\!\left(\frac{z-\theta}{\varepsilon}\right).$$
#
# Given a batch `z` `(B, m)`, thresholds `theta` `(m,)`, the bandwidth `eps` and the upstream gradient `g`
# `(B, m)` (= $\partial L/\partial f$), return $\partial L/\partial\theta$ `(m,)`: the pseudo-derivative times `g`,
# summed over the batch.

# %%
def jumprelu_theta_grad(z: torch.Tensor, theta: torch.Tensor, eps: float, g: torch.Tensor) -> torch.Tensor:
    raise NotImplementedError


# %%
if SOLUTIONS:
    from solutions.s03_jumprelu import jumprelu_theta_grad  # noqa: F811
checks.check_jumprelu_theta_grad(jumprelu_theta_grad)

# %% [markdown]
# ## 2 · The L0 penalty's pseudo-derivative
#
# The penalty counts active latents, $\sum_i H(z_i - \theta_i)$. Derive its straight-through gradient to
# $\theta$ the same way (what replaces the factor $\theta$?) and return it for upstream gradient `g`.
#
# *Think:* this gradient is always $\le 0$ for $g = 1$ (raising $\theta$ lowers L0); the reconstruction's
# gradient from exercise 1 pushes back. Where do the two balance?

# %%
def step_theta_grad(z: torch.Tensor, theta: torch.Tensor, eps: float, g: torch.Tensor) -> torch.Tensor:
    raise NotImplementedError


# %%
if SOLUTIONS:
    from solutions.s03_jumprelu import step_theta_grad  # noqa: F811
checks.check_step_theta_grad(step_theta_grad)
