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
# # 10 · SplInterp on a language model: PAM-SGD vs SGD on residual-stream activations
#
# **Paper.** Budd, Ideami, Macdowall Rynne, Duggar & Balestriero, *SplInterp: Improving our
# Understanding and Training of Sparse Autoencoders* (2025, arXiv:2505.11836); reference code
# `splInterp2025/splInterp` (`exp_e3_LLM_SGD_PAM_ablations.py`).
#
# **What they claim.** On Gemma-2-2B activations (layer 12, the last token of 10,000 short texts),
# PAM-SGD (Adam on the encoder, then a closed-form least-squares decoder; see notebook 09 for the
# method and its equations) trains SAEs that reach a lower test MSE than SGD, most of all when
# training data is scarce, converge in fewer epochs, and, with ReLU, give **sparser codes**.
#
# Here the same study runs on the default offline LM (SmolLM2-135M, residual stream after block 15
# of 30), with TopK and ReLU SAEs, against two Adam baselines: tied weights (the authors') and untied.

# %% tags=["parameters"]
PRESET = "quick"  # "quick": 2 CPU cores, offline; "full": paper-like scale on a GPU, online
SEED = 0

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from saelib.companion import ClaimsTable, colors, save_figure, setup, shared_activations, timer
from saelib.papers.pam import LABELS, METHODS, PAMConfig, data_fraction_study, epochs_to_reach, fit, make_sae

NB = "10_splinterp_llm"
S = setup(NB, PRESET, seed=SEED)
if S.threads:  # small matrices: one thread is faster than two fighting over a busy CPU
    torch.set_num_threads(S.threads)
    threadpool_limits(S.threads)
METHOD_STYLE = {m: dict(color=c, marker=mk, label=LABELS[m]) for m, c, mk in zip(METHODS, colors(3), "os^")}
print({k: v for k, v in vars(S).items() if k in ("preset", "model", "layer", "tokens", "n_train", "expansion", "k_active")})

# %% [markdown]
# ## 1 · The activations
#
# The paper took the residual stream at a middle layer for the **last token** of each of 10,000
# short texts. Our shared harvest (notebook 00) holds 128-token chunks of Wikipedia and news text;
# with `tokens = "all"` (the quick preset) we sample `n_train` training vectors from **all kept
# tokens** of the training chunks and `n_test` from the held-out chunks (~1,250 chunks would give
# only ~1,250 last-token vectors); `tokens = "last"` takes the last kept token of every chunk instead.
# As in the authors' script, each dimension is standardised (zero mean, unit variance, with the
# training statistics), so an MSE of 1 means "no better than predicting the mean".

# %%
with timer("shared harvest (cached)"):
    train_acts, eval_acts = shared_activations(S)


def pick(acts, n, seed):
    """All kept tokens (random sample of n) or the last kept token of every chunk."""
    if S.tokens == "last":
        last = (acts.keep * torch.arange(acts.keep.shape[1])).argmax(1)
        x = acts.resid[torch.arange(len(last)), last]
    else:
        x = acts.acts
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    return x[idx[:n] if n else idx].float()


X_train, X_test = pick(train_acts, S.n_train, SEED), pick(eval_acts, S.n_test, SEED + 1)
mean, std = X_train.mean(0), X_train.std(0) + 1e-8
X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
d = X_train.shape[1]
print(f"train {tuple(X_train.shape)}, test {tuple(X_test.shape)}; test variance per dim {X_test.var(0).mean():.3f}")

# %% [markdown]
# ## 2 · Three ways to train the same SAE
#
# $z = \rho(W_\text{enc}^\top x + b_\text{enc})$, $\hat x = W z + b$, with $m = $ `expansion` $\times\, d$ latents and
# $\rho$ = TopK by $|z|$ keeping signs, or ReLU with $\lambda\lVert z\rVert_1$. **PAM-SGD**: per epoch, one Adam pass
# over the encoder with the decoder fixed and proximal terms $\mu_\text{enc}\lVert W_\text{enc} - W_\text{enc}^t\rVert^2 + \nu_\text{enc}\lVert b_\text{enc} - b_\text{enc}^t\rVert^2$,
# then the exact ridge least-squares decoder on all training codes. **Adam, tied**: $W = W_\text{enc}$
# (the authors' baseline). **Adam, untied**: all four parameters free.
#
# **Choices made here**, following the authors' LLM script where it is explicit: Adam lr $10^{-3}$,
# batch 256, gradient-norm clipping at 1.0 (all methods), $\mu_\text{enc} = \nu_\text{enc} = 10^{-3}$ (PAM-SGD
# only; the authors' script also adds it to SGD), decoder ridge $10^{-5}$, ReLU $\lambda = 10^{-5}$ for every
# method (the authors use $10^{-5}$ for PAM-SGD but $10^{-2}$ for SGD, which would confound the sparsity
# comparison), $W_\text{enc} \sim \mathcal N(0, 1/d)$ and every method starting from the same tied
# initialisation. Width and $K$ are scaled down for 2 CPU cores (the paper: 4,096 latents, $K = 320$ on
# $d = 2{,}304$). Every data fraction trains for `frac_epochs` epochs.

# %%
m = S.expansion * d
cfg = PAMConfig(epochs=S.conv_epochs, batch_size=S.pam_batch_size, lr=S.lr, alpha=S.ridge, mu_enc=S.mu_enc,
                nu_enc=S.nu_enc, grad_clip=S.grad_clip, seed=SEED)
acts = {f"TopK (|z|, K={S.k_active})": ("topk_abs", 0.0), "ReLU + L1": ("relu", S.l1_coeff)}


def new_sae(activation, seed):
    return make_sae(d, m, activation, k=S.k_active, init_std=d ** -0.5, seed=seed)


conv, final = {}, {}
with timer(f"convergence runs ({m} latents, {S.conv_epochs} epochs, 3 methods x 2 activations)"):
    for name, (act, l1) in acts.items():
        for meth in METHODS:
            conv[name, meth] = fit(new_sae(act, SEED), X_train, X_test, meth,
                                   PAMConfig(**{**cfg.as_dict(), "l1_coeff": l1})).history
pd.DataFrame({k: h.iloc[-1][["test_mse", "test_l0", "test_nonzero_frac"]] for k, h in conv.items()}).T.round(4)

# %%
fig, axes = plt.subplots(1, 2, figsize=(15, 4.8))
for ax, name in zip(axes, acts):
    for meth in METHODS:
        h = conv[name, meth]
        ax.plot(h["epoch"][1:], h["test_mse"][1:], ms=5, **METHOD_STYLE[meth])
    ax.set(yscale="log", xlabel="epoch", ylabel="test MSE per dimension (standardised, log)",
           title=f"{name}: test MSE vs epoch")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.legend(fontsize=9)
save_figure(fig, NB, "test_mse_vs_epoch")
plt.show()

# %% [markdown]
# ## 3 · Sample efficiency and sparsity
# Nested random subsets of the training vectors; every method sees the same subset, initialisation
# and batches.

# %%
with timer("data-fraction study"):
    frac = pd.concat([data_fraction_study(X_train, X_test, lambda s, a=act: new_sae(a, s),
                                          PAMConfig(**{**cfg.as_dict(), "l1_coeff": l1}), S.fractions,
                                          seeds=tuple(range(S.n_seeds)), epochs=lambda f: S.frac_epochs,
                                          progress=False).assign(activation=name)
                      for name, (act, l1) in acts.items()])
frac.groupby(["activation", "fraction", "n_train", "method"])["test_mse"].mean().unstack("method").round(3)

# %%
fig, axes = plt.subplots(1, 3, figsize=(20, 4.8))
for ax, name in zip(axes, acts):
    for meth in METHODS:
        dd = frac[(frac.activation == name) & (frac.method == meth)].groupby("fraction")["test_mse"].mean()
        ax.plot(100 * dd.index, dd, ms=6, **METHOD_STYLE[meth])
    ax.set(yscale="log", ylabel="final test MSE per dimension (log)", title=f"{name}: sample efficiency")
relu = frac[frac.activation == "ReLU + L1"]
for meth in METHODS:
    dd = relu[relu.method == meth].groupby("fraction")["test_nonzero_frac"].mean()
    axes[2].plot(100 * dd.index, 100 * dd, ms=6, **METHOD_STYLE[meth])
axes[2].set(ylabel="non-zero codes (% of latents, test)", title="ReLU + L1: sparsity of the codes")
for ax in axes:
    ax.set_xscale("log")
    ax.set_xticks([100 * f for f in S.fractions], [f"{100 * f:g}" for f in S.fractions])
    ax.set_xlabel("training vectors used (% of n_train, log)")
    ax.legend(fontsize=9)
save_figure(fig, NB, "sample_efficiency_and_sparsity")
plt.show()

# %% [markdown]
# ### A diagnostic: is it the proximal term?
# The authors' LLM script anchors the encoder with $\mu_\text{enc} = \nu_\text{enc} = 10^{-3}$, summed over all
# $d \times m$ weights, while the MSE is a mean: the anchor is not small next to the loss. We rerun
# PAM-SGD on all the training vectors without it (the MNIST setting) and compare final test MSEs.
# This is a diagnostic, not part of the claims.

# %%
with timer("PAM-SGD without the proximal term"):
    no_prox = {name: fit(new_sae(act, SEED), X_train, X_test, "pam",
                         PAMConfig(**{**cfg.as_dict(), "l1_coeff": l1, "mu_enc": 0.0, "nu_enc": 0.0})).history.test_mse.iloc[-1]
               for name, (act, l1) in acts.items()}
pd.DataFrame({"PAM-SGD, no proximal term": no_prox,
              **{LABELS[meth]: {a: conv[a, meth].test_mse.iloc[-1] for a in acts} for meth in METHODS}}).round(4)

# %% [markdown]
# ## 4 · Claims check
#
# The rules are those of notebook 09, decided before running: *lower test MSE* at every data fraction
# for both activations: reproduced, at more than half of the (activation, fraction) pairs: partly;
# *most at low data*: relative gap to the better baseline averaged over fractions $\le 10\%$ larger than over
# fractions $\ge 50\%$, for both activations (partly: one); *fewer epochs*: first epoch at or below
# 1.05 x the worst final test MSE earlier than both baselines, for both activations (partly: one);
# *sparser ReLU codes*: a lower fraction of non-zero codes than both baselines at every data fraction
# (partly: more than half).

# %%
claims = ClaimsTable(NB, PRESET, SEED)
mean_mse = frac.groupby(["activation", "fraction", "method"])["test_mse"].mean().unstack("method")
for b, label in (("adam_tied", "tied"), ("adam_untied", "untied")):
    w = mean_mse["pam"] < mean_mse[b]
    claims.check(f"PAM-SGD reaches lower test MSE than {label} Adam on LLM activations (TopK and ReLU, all fractions)",
                 f"lower at {w.sum()}/{len(w)} (activation, fraction) pairs; "
                 + "; ".join(f"{a}: {w[a].sum()}/{len(w[a])}" for a in acts),
                 reproduced=bool(w.all()), partly=w.mean() > 0.5,
                 paper="PAM-SGD below SGD at every training-set size (Gemma-2-2B, TopK and ReLU)")
gap = 1 - mean_mse["pam"] / mean_mse[["adam_tied", "adam_untied"]].min(1)
low = {a: gap[a][gap[a].index <= 0.1].mean() for a in acts}
high = {a: gap[a][gap[a].index >= 0.5].mean() for a in acts}
more_low = [low[a] > high[a] for a in acts]
claims.check("PAM-SGD's advantage is largest in the low-data regime (LLM)",
             "; ".join(f"{a}: relative gap {low[a]:+.1%} (<=10% data) vs {high[a]:+.1%} (>=50%)" for a in acts),
             reproduced=all(more_low), partly=any(more_low), paper="largest gains at small training fractions")
target = {a: 1.05 * max(conv[a, meth]["test_mse"].iloc[-1] for meth in METHODS) for a in acts}
first = {(a, meth): epochs_to_reach(conv[a, meth], target[a]) for a in acts for meth in METHODS}
faster = [first[a, "pam"] < min(first[a, "adam_tied"], first[a, "adam_untied"]) for a in acts]
claims.check("PAM-SGD converges in fewer epochs (LLM)",
             "; ".join(f"{a}: epochs to reach {target[a]:.3f}: PAM {first[a, 'pam']:.0f}, tied {first[a, 'adam_tied']:.0f}, "
                       f"untied {first[a, 'adam_untied']:.0f}" for a in acts),
             reproduced=all(faster), partly=any(faster), paper="faster convergence in test loss vs epoch")
nz = relu.groupby(["fraction", "method"])["test_nonzero_frac"].mean().unstack("method")
sparser = (nz["pam"] < nz["adam_tied"]) & (nz["pam"] < nz["adam_untied"])
claims.check("PAM-SGD gives sparser ReLU codes (LLM)",
             f"sparser than both baselines at {sparser.sum()}/{len(sparser)} fractions; at 100%: "
             + ", ".join(f"{meth} {100 * nz.loc[1.0, meth]:.1f}%" for meth in METHODS) + " non-zero",
             reproduced=bool(sparser.all()), partly=sparser.mean() > 0.5,
             paper="PAM-SGD codes have fewer non-zeros (ReLU, Gemma-2-2B)")
claims.save()
claims.show()

# %%
# NBVAL_CHECK_OUTPUT
print(claims.verdicts())

# %% [markdown]
# ## What to take away
#
# * **None of the paper's LLM claims reproduce at this scale.** On SmolLM2's layer-15 residuals (all
#   tokens, standardised, 1,152 latents), PAM-SGD ends with a *higher* test MSE than both Adam baselines
#   at every data fraction, with TopK and with ReLU, and needs more epochs to reach a common level. The
#   authors' own tied baseline is the best of the three here, the opposite of the MNIST ordering
#   (notebook 09).
# * **Interpolation threshold again.** PAM-SGD's error peaks where the number of training vectors is
#   just above the number of latents (25% = 1,500 vectors for 1,152 latents): the exact least-squares
#   decoder is then nearly singular, as in notebook 09 at 200 digits for 256 latents.
# * **Not the proximal term.** Dropping $\mu_\text{enc}, \nu_\text{enc}$ improves PAM-SGD only slightly (table above);
#   it stays behind both Adam baselines.
# * **Sparsity.** With $\lambda = 10^{-5}$ for every method the L1 term is negligible and all three keep about
#   half of the ReLU codes non-zero; the differences are a fraction of a percentage point and change
#   sign across data fractions. The paper's sparser PAM-SGD codes may come from its different L1
#   weights for the two methods.
# * Scale caveat: a 135M model instead of Gemma-2-2B, all tokens of 128-token chunks instead of the
#   last token of short texts, 6,000 training vectors, 1,152 latents with $K = 64$ (paper: 4,096, $K = 320$),
#   10 epochs (paper: 100), one seed. `PRESET = "full"` moves towards the paper's settings on a GPU.
