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
from IPython.display import Markdown, display
from threadpoolctl import threadpool_limits

from saelib.companion import ClaimsTable, colors, save_figure, setup, shared_activations, timer
from saelib.companion.claims import weakest_setting
from saelib.companion.pam_claims import MIN_RATIO, add_pam_claims
from saelib.companion.plots import plot_test_mse
from saelib.metrics.uncertainty import paired_t_interval
from saelib.papers.pam import LABELS, METHODS, PAMConfig, choose_l1, data_fraction_study, fit, l1_pilot, make_sae

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
# short texts. Our shared harvest (notebook 00) holds 128-token chunks of Wikipedia and news text,
# drawn in one fixed random order across all documents of both sources (the training harvest) and the
# whole held-out split (the held-out harvest; its documents are in neither training set); the sizes are
# printed below. With `tokens = "all"` (the quick preset) we sample `n_train` training vectors at random
# from **all kept tokens** of the training chunks and `n_test` at random from all kept tokens of the
# held-out chunks (so the test vectors come from every held-out document; the last token of every
# chunk would give only one vector per chunk); `tokens = "last"` takes the last kept token of every chunk instead.
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
for a in (train_acts, eval_acts):
    dd = a.meta["data"]
    print(f"{a.meta['split']:>5} harvest: {dd['all']['tokens']:,} tokens, {dd['all']['sequences']} sequences, "
          f"{dd['all']['documents']} documents (" + ", ".join(f"{src} {dd[src]['documents']}" for src in dd if src != "all") + ")")

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
# only; the authors' script also adds it to SGD), decoder ridge $10^{-5}$, one ReLU $\lambda$ for every
# method (the authors use $10^{-5}$ for PAM-SGD but $10^{-2}$ for SGD, which would confound the sparsity
# comparison), fixed by a pilot on the training vectors so that the ReLU arm is about as sparse as the TopK arm:
# the smallest $\lambda$ in `S.l1_candidates` at which every method's training L0 after `S.l1_pilot_epochs` epochs
# (seed `SEED`) lies in $[K/2, 2K]$; if none does, the ReLU arm is trained at `S.l1_coeff` and shown, but left out of
# the claims (issue 15's rule, fixed before the run), $W_\text{enc} \sim \mathcal N(0, 1/d)$ and every method starting from the same tied
# initialisation. Width and $K$ are scaled down for 2 CPU cores (the paper: 4,096 latents, $K = 320$ on
# $d = 2{,}304$). Every data fraction trains for `frac_epochs` epochs.
#
# **Seeds.** Every run is repeated with `n_seeds` seeds (initialisation, data subset and batch order; the
# same seeds for all three methods). The convergence runs (all training vectors) are trained once per seed;
# where `conv_epochs` = `frac_epochs` (the quick preset) they *are* the 100% point of the data-fraction study
# (the same run), so that point is not trained twice.
#
# **Sizes (quick preset) and why.** Three seeds of every run must fit the notebook's 3.5-minute budget on 2 CPU
# cores, so the quick preset uses `n_train` = 3,000 training vectors (with 2 x 576 = 1,152 latents the 100% point has
# $N/m \approx 2.6$, close to the paper's $9000/4096 \approx 2.2$), 2,000 test vectors and 8 epochs everywhere (the
# single-seed version used 6,000 vectors and 10 convergence epochs).

# %%
m = S.expansion * d
cfg = PAMConfig(epochs=S.conv_epochs, batch_size=S.pam_batch_size, lr=S.lr, alpha=S.ridge, mu_enc=S.mu_enc,
                nu_enc=S.nu_enc, grad_clip=S.grad_clip, eval_train=True, seed=SEED)


def new_sae(activation, seed):
    return make_sae(d, m, activation, k=S.k_active, init_std=d ** -0.5, seed=seed)


with timer(f"λ pilot for the ReLU arm ({len(S.l1_candidates)} candidates x 3 methods, {S.l1_pilot_epochs} epochs)"):
    pilot = l1_pilot(lambda s: new_sae("relu", s), X_train, X_test, cfg, S.l1_candidates, S.l1_pilot_epochs)
lam_relu = choose_l1(pilot, S.k_active)
relu_scored = lam_relu is not None
acts = {f"TopK (|z|, K={S.k_active})": ("topk_abs", 0.0), "ReLU + L1": ("relu", lam_relu if relu_scored else S.l1_coeff)}
print(f"training L0 of the ReLU pilots (target [{S.k_active / 2:g}, {2 * S.k_active}]); "
      + (f"chosen λ = {lam_relu:g}" if relu_scored else
         f"no candidate qualifies: the ReLU arm is trained at λ = {S.l1_coeff:g}, shown, and left out of the claims"))
display(pilot.pivot(index="l1_coeff", columns="method", values="train_l0").round(1))


seeds = list(range(S.n_seeds))
conv = {}  # conv[activation, method, seed]: the per-epoch test history
with timer(f"convergence runs ({m} latents, {S.conv_epochs} epochs, 3 methods x 2 activations x {S.n_seeds} seeds)"):
    for s in seeds:
        for name, (act, l1) in acts.items():
            for meth in METHODS:
                conv[name, meth, s] = fit(new_sae(act, s), X_train, X_test, meth,
                                          PAMConfig(**{**cfg.as_dict(), "l1_coeff": l1, "seed": s})).history
pd.DataFrame({k: h.iloc[-1][["train_mse", "test_mse", "test_l0", "test_nonzero_frac"]] for k, h in conv.items()}).T.groupby(
    level=[0, 1]).mean().round(4)

# %%
fig = plot_test_mse(conv, list(acts), METHODS, seeds, SEED, METHOD_STYLE, train=True,
                    ylabel="MSE per dimension (standardised, log)",
                      title="{name}: test MSE vs epoch (seed {seed} marked, {n_faint} more faint)")
save_figure(fig, NB, "test_mse_vs_epoch")
plt.show()

# %% [markdown]
# ## 3 · Sample efficiency and sparsity
# Nested random subsets of the training vectors; every method sees the same subset, initialisation
# and batches. The 100% point is the convergence runs above; below 100% only the final test metrics are
# recorded (`eval_every_epoch=False`).

# %%
reuse = S.conv_epochs == S.frac_epochs and S.fractions[-1] == 1.0  # the convergence runs are the 100% point
print("training vectors per fraction:", {f"{100 * f:g}%": max(1, round(f * len(X_train))) for f in S.fractions},
      f"(latents: {m})")
with timer("data-fraction study (fractions below 100%)"):
    frac = pd.concat([data_fraction_study(X_train, X_test, lambda s, a=act: new_sae(a, s),
                                          PAMConfig(**{**cfg.as_dict(), "l1_coeff": l1, "eval_every_epoch": False}),
                                          S.fractions[:-1] if reuse else S.fractions,
                                          seeds=tuple(seeds), epochs=lambda f: S.frac_epochs,
                                          progress=False).assign(activation=name)
                      for name, (act, l1) in acts.items()])
full = [{"seed": s, "fraction": 1.0, "n_train": len(X_train), "method": meth, "epochs": S.conv_epochs,
         **conv[name, meth, s].iloc[-1][["train_mse", "test_mse", "test_fvu", "test_l0", "test_nonzero_frac"]].to_dict(),
         "activation": name}
        for s in seeds for name in acts for meth in METHODS] if reuse else []
frac = pd.concat([frac, pd.DataFrame(full)], ignore_index=True)
frac.groupby(["activation", "fraction", "n_train", "method"])["test_mse"].mean().unstack("method").round(3)

# %%
fig, axes = plt.subplots(1, 3, figsize=(20, 4.8))
for ax, name in zip(axes, acts):
    for meth in METHODS:
        dd = frac[(frac.activation == name) & (frac.method == meth)].groupby("fraction")["test_mse"]
        ax.errorbar(100 * dd.mean().index, dd.mean(), yerr=dd.std().fillna(0), capsize=3, ms=6, **METHOD_STYLE[meth])
    ax.set(yscale="log", ylabel="final test MSE per dimension (log)",
           title=f"{name}: sample efficiency (mean ± sd over {S.n_seeds} seeds)")
relu = frac[frac.activation == "ReLU + L1"]
for meth in METHODS:
    dd = relu[relu.method == meth].groupby("fraction")["test_nonzero_frac"]
    axes[2].errorbar(100 * dd.mean().index, 100 * dd.mean(), yerr=100 * dd.std().fillna(0), capsize=3, ms=6,
                     **METHOD_STYLE[meth])
axes[2].set(ylabel="non-zero codes (% of latents, test)", title="ReLU + L1: sparsity of the codes")
lo_x = 100 * min(S.fractions) / 1.5
for ax in axes:
    ax.set_xscale("log")
    ax.set_xticks([100 * f for f in S.fractions], [f"{100 * f:g}" for f in S.fractions])
    ax.set_xlabel("training vectors used (% of n_train, log)")
    ax.set_xlim(lo_x, 150)
for ax in axes[:2]:  # N < 2m: at or below PAM's interpolation threshold, shown but not scored (pam_claims)
    ax.axvspan(lo_x, min(150, 100 * MIN_RATIO * m / len(X_train)), color="0.85", zorder=0,
               label=f"N < {MIN_RATIO:g} m = {MIN_RATIO * m:,.0f}: not scored")
    ax.axvline(100 * m / len(X_train), color="0.4", ls=":", lw=1.5, label=f"N = m = {m:,}")
handles, names = axes[0].get_legend_handles_labels()  # one legend for the three panels, below them (off the data)
fig.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(names), fontsize=11)
save_figure(fig, NB, "sample_efficiency_and_sparsity")
plt.show()

# %% [markdown]
# ### A diagnostic: is it the proximal term?
# The authors' LLM script anchors the encoder with $\mu_\text{enc} = \nu_\text{enc} = 10^{-3}$, summed over all
# $d \times m$ weights, while the MSE is a mean: the anchor is not small next to the loss. We rerun
# PAM-SGD on all the training vectors without it (the MNIST setting) and compare final test MSEs
# (seed 0, TopK only, for the budget). This is a diagnostic, not part of the claims.

# %%
diag = list(acts)[:1]  # TopK only (budget)
with timer("PAM-SGD without the proximal term"):
    no_prox = {name: fit(new_sae(act, SEED), X_train, X_test, "pam",
                         PAMConfig(**{**cfg.as_dict(), "l1_coeff": l1, "mu_enc": 0.0, "nu_enc": 0.0,
                                      "eval_every_epoch": False})).history.test_mse.iloc[-1]
               for name, (act, l1) in acts.items() if name in diag}
pd.DataFrame({"PAM-SGD, no proximal term": no_prox,
              **{LABELS[meth]: {a: conv[a, meth, SEED].test_mse.iloc[-1] for a in diag} for meth in METHODS}}).round(4)

# %% [markdown]
# ## 4 · Claims check
#
# How an interval and a margin become a verdict, and why one seed is not enough, are explained once in
# [`docs/uncertainty.md`](../docs/uncertainty.md); the terms are in [`docs/glossary.md`](../docs/glossary.md).
#
# The verdict model and the statistics are those of notebook 09 (specified before the run; the first three
# claims come from the same function, `saelib.companion.pam_claims.add_pam_claims`): with $[lo, hi]$
# the 95% interval of the effect in the claimed direction and $m$ the smallest effect that counts,
# *reproduced* if $lo \ge m$, *partly* if $0 < lo < m$, *not reproduced* if $lo \le 0$ and $hi < m$, *inconclusive*
# otherwise or when a stated precondition fails. Every claim compares training methods, so the uncertainty is
# seed-to-seed: `n_seeds` seeds, the same for every arm, a t-interval over paired per-seed differences.
#
# * **Scored fractions**, as in 09: only those with $N \ge 2m$ training vectors, above PAM's interpolation
#   threshold (the shaded band of the figure above is shown, not scored). With $m$ = 1,152 latents and 3,000
#   training vectors in `quick` that is the 100% point alone, so the low-data claim is inconclusive there.
# * **Scored activations**: TopK, and ReLU + L1 only where the λ pilot of Section 2 put every method's training L0
#   within $[K/2, 2K]$ (otherwise its sparsity is not comparable and it is shown, not scored; the claim names say which).
# * *Lower test MSE than tied / untied Adam* at every scored (activation, fraction): per seed, the log-ratio
#   $100\,\ln(\text{MSE}_\text{Adam}/\text{MSE}_\text{PAM})$ %;
#   "every setting" rule (`saelib.companion.claims.weakest_setting`): if a setting is not reproduced on its own the claim is not reproduced (that setting is
#   reported), else the setting with the lowest lower bound decides. $m = 1\%$ (a smaller relative gap is a tie).
# * *Advantage largest at low data*: per seed and activation, the log-ratio to the better baseline averaged over
#   scored fractions $\le 10\%$ minus averaged over fractions $\ge 50\%$; both activations by the same rule; $m = 1$.
# * *Fewer epochs*: per seed and activation, (epochs the faster baseline needs) $-$ (epochs PAM-SGD needs) to reach
#   1.05 x the **best** final test MSE of that seed (never reached: one epoch past the last); both activations;
#   $m = 1$ epoch (the resolution).
# * *Sparser ReLU codes*: per seed and fraction, $\min(\text{nz}_\text{tied}, \text{nz}_\text{untied}) - \text{nz}_\text{PAM}$, the fraction of
#   non-zero codes in percent points of the latents; every fraction by the same rule; $m = 1$ pp. Precondition: the
#   codes are sparse at all, i.e. every method's seed-mean non-zero fraction at 100% data is at most 25% of the latents
#   (a code with more active latents than that is a dense autoencoder, and "sparser" is then not the paper's claim).


# %%
claims = ClaimsTable(NB, PRESET, SEED)
T_INTERVAL = f"paired t over {S.n_seeds} seeds"
scored_acts = list(acts) if relu_scored else [a for a in acts if not a.startswith("ReLU")]
no_relu = (f"ReLU + L1 left out: no λ in {S.l1_candidates} puts every method's training L0 within [K/2, 2K] = "
           f"[{S.k_active / 2:g}, {2 * S.k_active}] (pilot, Section 2)")
add_pam_claims(claims, frac, conv, scored_acts, seeds, data="LLM", n_latents=m, paper_data="Gemma-2-2B",
               left_out="" if relu_scored else no_relu)

nz_seed = relu.pivot_table(index=["fraction", "seed"], columns="method", values="test_nonzero_frac")
sparse_gain = {f: paired_t_interval(100 * g[["adam_tied", "adam_untied"]].min(axis=1).to_numpy(), 100 * g["pam"].to_numpy())
               for f, g in nz_seed.groupby(level="fraction")}
f_dec, iv = weakest_setting(sparse_gain, margin=1.0)
nz_full = nz_seed.loc[1.0].mean()
claims.add_claim("PAM-SGD gives sparser ReLU codes (LLM)",
                 statistic=f"min(nz_tied, nz_untied) - nz_PAM, non-zero codes in percent points of the latents, per fraction, "
                           f"{T_INTERVAL}; every fraction (aggregate: the weakest)",
                 interval=iv, margin=1.0, direction="greater", uncertainty="seeds", n_seeds=S.n_seeds,
                 measured=f"deciding fraction {100 * f_dec:g}%: {iv.estimate:+.2f} pp [{iv.lo:+.2f}, {iv.hi:+.2f}]; at 100%: "
                          + ", ".join(f"{meth} {100 * nz_full[meth]:.1f}%" for meth in METHODS) + " non-zero",
                 precondition=(relu_scored and bool((nz_full <= 0.25).all()),
                               "the ReLU codes are sparse (every method <= 25% non-zero at 100% data)" if relu_scored
                               else no_relu),
                 paper="PAM-SGD codes have fewer non-zeros (ReLU, Gemma-2-2B)")
claims.save()
claims.show()

# %%
# NBVAL_CHECK_OUTPUT
print(claims.verdicts())

# %% [markdown]
# ## What to take away

# %%
tied_c, untied_c, low_c, fast_c, sparse_c = claims.claims
mean_by = frac.groupby(["activation", "fraction", "method"])["test_mse"].mean().unstack("method")


def fr_list(a, b):
    """Fractions where PAM-SGD's seed-mean test MSE is below baseline b's, for activation a."""
    return ", ".join(f"{100 * f:g}%" for f in S.fractions if mean_by.loc[(a, f), "pam"] < mean_by.loc[(a, f), b]) or "none"


best_full = {a: min(METHODS, key=lambda meth: mean_by.loc[(a, 1.0), meth]) for a in acts}
peak = {a: max(S.fractions, key=lambda f: mean_by.loc[(a, f), "pam"]) for a in acts}
display(Markdown(rf"""
* **PAM-SGD vs Adam** on SmolLM2's layer-{S.layer} residuals (all tokens, standardised, {m} latents, {S.n_seeds} seeds).
  Lower test MSE than tied Adam: {tied_c.verdict} ({tied_c.measured}); than untied Adam: {untied_c.verdict}
  ({untied_c.measured}). Seed-mean MSE below tied Adam at {", ".join(f"{a}: {fr_list(a, 'adam_tied')}" for a in acts)};
  below untied Adam at {", ".join(f"{a}: {fr_list(a, 'adam_untied')}" for a in acts)}. Best method at 100% data:
  {", ".join(f"{a}: {LABELS[best_full[a]]}" for a in acts)}.
* **Interpolation threshold.** PAM-SGD's seed-mean test MSE is highest at {", ".join(f"{100 * peak[a]:g}% ({a})" for a in acts)}
  of the {len(X_train):,} training vectors. The exact least-squares decoder is nearly singular where the number of
  training vectors is close to the number of latents, {m}: here at {100 * m / len(X_train):.0f}% of the training vectors (notebook 09).
  So the MSE claims score only the fractions with at least {MIN_RATIO * m:,.0f} training vectors.
* **Low data** ({low_c.verdict}): {low_c.measured}.
* **Fewer epochs** ({fast_c.verdict}): {fast_c.measured}.
* **The proximal term** (a diagnostic, seed 0): PAM-SGD's final test MSE without it
  {", ".join(f"{a}: {no_prox[a]:.3f}" for a in diag)}, with it {", ".join(f"{a}: {conv[a, 'pam', SEED].test_mse.iloc[-1]:.3f}" for a in diag)};
  the Adam baselines {", ".join(f"{LABELS[meth].split(' (')[0]} {conv[a, meth, SEED].test_mse.iloc[-1]:.3f}" for a in diag for meth in METHODS[1:])}.
* **Sparsity** ({sparse_c.verdict}): {sparse_c.measured}. The λ pilot gave training L0
  {"; ".join(f"λ = {lam:g}: " + "/".join(f"{v:.0f}" for v in pilot[pilot.l1_coeff == lam]["train_l0"]) for lam in S.l1_candidates)}
  (PAM / tied / untied; target [{S.k_active / 2:g}, {2 * S.k_active}]), so the ReLU arm ran at λ = {acts["ReLU + L1"][1]:g}
  ({"chosen by the pilot" if relu_scored else "no candidate qualified: left out of the claims"}); {"the precondition fails, so the claim is not tested here" if sparse_c.verdict == "inconclusive" and sparse_c.precondition else "the codes are sparse enough for the comparison"}.
  The paper's sparser PAM-SGD codes may come from its different L1 weights for the two methods.
* Scale caveat: a 135M model instead of Gemma-2-2B, all tokens of 128-token chunks instead of the last token of short
  texts, {len(X_train):,} training vectors, {m} latents with $K = {S.k_active}$ (paper: 4,096, $K = 320$), {S.conv_epochs} epochs
  (paper: 100). `PRESET = "full"` moves towards the paper's settings on a GPU.
"""))

# %% [markdown]
# **Reading the verdicts.** The low-data statistic compares the relative gaps, not their signs: it can come
# out *reproduced* while PAM-SGD is worse than both Adam baselines at every fraction, as long as it is less far
# behind at low data; read it together with the first two claims. The fewer-epochs target is 1.05 x the *best*
# final test MSE of the seed, a level worth reaching; a method that never reaches it is counted one epoch past the
# last, which can only understate the baselines' counts.
