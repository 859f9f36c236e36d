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
# # Exercises · 06 ATM: which latents does the mask pick?
#
# After `notebooks/06_atm`. ATM is *reconstructed* from the paper's abstract (notebook 06 names every
# constant). The checks compare with `saelib.sparsifiers.atm.importance_score` and
# `saelib.sparsifiers.atm.mask_probabilities`. Reference answers: `solutions/s06_atm.py`. Terms:
# [`docs/glossary.md`](../docs/glossary.md) (ATM is not a temporal SAE: see its entry).

# %% tags=["parameters"]
SOLUTIONS = False  # CI sets this to True: the reference answers replace yours, so the checks are known to pass

# %%
import torch

import checks

# %% [markdown]
# ## 1 · Importance
#
# ATM tracks, per latent, its mean magnitude when active $m_i$, its firing frequency $p_i$ and its
# reconstruction contribution $r_i$. They span orders of magnitude, so it combines their z-scored logs
# (z-scored over the latents, $z(v) = (v - \bar v)/\mathrm{sd}(v)$):
# $$I_i = w_m\, z(\log m)_i + w_p\, z(\log p)_i + w_r\, z(\log r)_i .$$
# Add $10^{-8}$ inside each log, as saelib does, so that a zero statistic stays finite. Return $I$ `(F,)`.

# %%
def atm_importance(mag: torch.Tensor, freq: torch.Tensor, contrib: torch.Tensor,
                   weights: tuple[float, float, float]) -> torch.Tensor:
    raise NotImplementedError


# %%
if SOLUTIONS:
    from solutions.s06_atm import atm_importance  # noqa: F811
checks.check_atm_importance(atm_importance)

# %% [markdown]
# ## 2 · Masking probabilities
#
# With threshold $\tau = \bar I - c\,\mathrm{sd}(I)$, a latent below $\tau$ is masked for the next step with
# probability $\sigma\bigl((\tau - I_i)/T\bigr)$ ($T$ a temperature annealed during training); a latent at
# or above $\tau$ is never masked; and at most $\lfloor$ `max_mask_frac` $\cdot F\rfloor$ latents, the
# least important, are eligible. Return the `(F,)` probabilities.

# %%
def atm_mask_probabilities(importance: torch.Tensor, c: float, temperature: float, max_mask_frac: float) -> torch.Tensor:
    raise NotImplementedError


# %%
if SOLUTIONS:
    from solutions.s06_atm import atm_mask_probabilities  # noqa: F811
checks.check_atm_mask_probabilities(atm_mask_probabilities)

# %% [markdown]
# ## 3 · A mask that feeds itself
#
# A masked latent's code is 0 for that step, so it gets no gradient. Below, a toy: latents whose importance
# only changes while they are unmasked (a small random drift) and stays put while masked. *Think:* which
# latents end up masked most of the time? Compare ATM's and ReLU-L1's absorption and FVU in notebook 06's claims
# table: why could a mask like this leave ATM close to its ReLU-L1 base at evaluation (where nothing is
# masked)? What would a mask that lets latents recover need?

# %%
gen = torch.Generator().manual_seed(0)
imp = torch.randn(200, generator=gen)
low = imp < imp.sort().values[20]                   # the 20 least important at the start
masked_steps = torch.zeros(200)
for step in range(300):
    p = atm_mask_probabilities(imp, c=0.5, temperature=0.2, max_mask_frac=0.2)
    masked = torch.rand(200, generator=gen) < p
    masked_steps += masked
    imp = torch.where(masked, imp, imp + 0.05 * torch.randn(200, generator=gen))   # only unmasked latents move
print(f"the 20 least important at the start were masked {masked_steps[low].mean() / 3:.0f}% of the steps; "
      f"the other 180, {masked_steps[~low].mean() / 3:.0f}%")
