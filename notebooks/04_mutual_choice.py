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
# # 04 · Mutual Choice and Feature Choice: sparsity as a budget shared by tokens and features
#
# **Paper.** Kola Ayonrinde, *Adaptive Sparse Allocation with Mutual Choice & Feature Choice Sparse
# Autoencoders* (November 2024, arXiv:2411.02124). Related: BatchTopK (Bussmann et al. 2024,
# arXiv:2412.06410, notebook 02), TopK and AuxK (Gao et al. 2024, arXiv:2406.04093).
#
# **What they claim.** A TopK SAE spends its sparsity budget in a fixed way: every token gets exactly
# $k$ latents. Seen as an *allocation* problem, a batch of $N$ tokens has a budget of $kN$ active
# (token, feature) pairs, and there are other ways to spend it. *Feature Choice* lets every feature
# pick its tokens; *Mutual Choice* keeps the $kN$ best pairs anywhere. The paper reports that Feature
# Choice SAEs have (almost) no dead latents, that both have fewer dead latents than TopK, that both
# reconstruct better than TopK at the same sparsity, and that feature densities follow a Zipf law,
# which motivates a Zipf-shaped allocation and an auxiliary loss (aux_zipf_loss) for under-used
# features. No public code was found; where we had to reconstruct something we say so.
#
# Here we train the four allocation rules on a real 135M-parameter LM on CPU, count dead latents with
# and without auxiliary losses, compare reconstruction at equal sparsity, fit the density–rank law,
# look at the "adaptive computation" histograms, and score the claims.

# %% tags=["parameters"]
PRESET = "quick"  # "quick": 2 CPU cores, offline; "full": paper-like scale on a GPU, online
SEED = 0

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from saelib import TrainConfig
from saelib.companion import ClaimsTable, colors, log_axis, save_figure, setup, shared_activations, timer
from saelib.losses import AuxZipfLoss
from saelib.metrics.reconstruction import code_stats
from saelib.metrics.splice import Splice
from saelib.sweep import Run, run_sweep
from saelib.utils import torch_threads
from saelib.zipf import fit_zipf

NB = "04_mutual_choice"
S = setup(NB, PRESET, seed=SEED)
print({k: v for k, v in vars(S).items() if k != "notebook"})

# %% [markdown]
# ## 1 · Sparsity as allocation
#
# Every SAE here shares the encoder and decoder of notebook 00: pre-activations
# $Z = (X - b_\text{dec}) W_\text{enc} + b_\text{enc} \in \mathbb R^{N \times F}$ for a batch of $N$
# tokens and $F$ latents, affinities $A = \mathrm{ReLU}(Z)$, reconstruction
# $\hat X = (A \odot M) W_\text{dec} + b_\text{dec}$ with unit-norm decoder rows. The rules differ only
# in the binary mask $M \in \{0,1\}^{N \times F}$, each spending (at most) the same budget
# $\sum_{t,i} M_{ti} = kN$:
#
# | rule | who chooses | mask | per-token L0 | per-feature count |
# |---|---|---|---|---|
# | **TopK** | each token (row) | $M_{ti} = [A_{ti} \in \mathrm{top}_k(A_{t,:})]$ | exactly $k$ | free |
# | **Feature Choice (FC)** | each feature (column) | $M_{ti} = [A_{ti} \in \mathrm{top}_{m_i}(A_{:,i})]$, $\sum_i m_i \le kN$ | free | exactly $m_i$ |
# | **Mutual Choice (MC)** | both: the global best pairs | $M_{ti} = [A_{ti} \in \mathrm{top}_{kN}(A)]$ | free, mean $k$ | free |
#
# Mutual Choice is exactly the **BatchTopK** rule of notebook 02 (Bussmann et al.): the two papers
# arrived at it independently; `saelib` has one implementation registered under both names.
#
# **Feature Choice allocations.**
# * *Uniform*: $m_i = \max(1, \lfloor kN/F \rfloor)$; every feature fires on the same fraction of tokens.
# * *Zipf*: $m_i \propto \mathrm{rank}_i^{-\alpha}$, scaled so that $\sum_i m_i = kN$ with $1 \le m_i \le N$
#   (latents at the cap hand their excess to the others). The paper's parameters were not found, so
#   **our choices**: $\alpha$ = `S.zipf_alpha`; ranks come from an exponential moving average of each
#   latent's *demand*, the fraction of the batch's tokens for which it is among the global top $kN$
#   affinities (what Mutual Choice would give it). Ranking by FC's own firing frequency would be
#   circular: under FC that frequency *is* the allocation.
#
# **Inference.** FC and MC depend on the rest of the batch. At inference a batch-independent rule
# replaces them, $f_i = A_i\,[z_i > \theta_i]$, with thresholds estimated during training as moving
# averages of the smallest kept activation:
# $$\theta_i \leftarrow \beta\,\theta_i + (1-\beta)\min_{t:\,M_{ti}=1} A_{ti}.$$
# MC (= BatchTopK) uses one global $\theta$ (minimum over the whole batch); for FC **our choice** is one
# $\theta_i$ per latent, which preserves each feature's training-time density (a global threshold is
# implemented too: `threshold_mode="global"`).
#
# **Auxiliary losses.** TopK and MC can use **AuxK** (Gao et al.): the top $k_\text{aux}$ pre-activations
# among *dead* latents reconstruct the residual $e = x - \hat x$,
# $\mathcal L_\text{AuxK} = \lVert e - \hat e \rVert^2$, weighted by $1/32$. The paper's
# **aux_zipf_loss** generalises this to *under-used* latents; its formula was not found, so ours is a
# reconstruction in its spirit:
# 1. $d_i$: moving average of latent $i$'s firing density in the training batches;
# 2. a Zipf fit $\log d = \log c - \alpha \log \mathrm{rank}$ on the live latents gives a target
#    $t_i = c\,\mathrm{rank}_i^{-\alpha}$ for every latent (dead ones get the tail's targets);
# 3. latent $i$ is under-used if $d_i < \tfrac12 t_i$, with shortfall $w_i = 1 - d_i/t_i$;
# 4. AuxK's loss over the under-used latents, with latent $i$'s gradients (encoder column and decoder
#    row) scaled by $w_i$: $\mathcal L_\text{aux-zipf} = \tfrac1{32}\lVert e - \sum_{i \in \text{top}_{k_\text{aux}}} w_i\!\cdot\! a_i\, d_i\rVert^2$
#    (the $w_i$ acts on the gradient only, the forward value is AuxK's).
#
# **Pairing (our choice, following the brief):** TopK ± AuxK; MC ± AuxK and MC + aux_zipf;
# FC (uniform, Zipf) ± aux_zipf.
#
# **Scaled down for 2 CPU cores (chosen on cost):** width $F = 2d = 1152$ (a first run at $4d$ cost more
# than twice the CPU budget and was stopped before any result), one intra-op thread (the machine is
# shared; `S.threads`), half an epoch of the shared 160k-token harvest
# (~140 steps of 576 tokens; 576 makes $kN/F$ an integer), learning rate 3e-3, threshold averages with
# $\beta = 0.9$ started after 50 batches, a dead window of 10k training tokens for AuxK (instead of
# Gao's 10M), $k_\text{aux} = d/2$. The paper trains far longer and wider (up to 34M latents).

# %%
with timer("activations (cached)"):
    train_acts, eval_acts = shared_activations(S)
X, X_eval = train_acts.acts, eval_acts.acts
d = X.shape[1]
F = S.expansion * d
with timer("splice (clean CE cached once)"):
    splice = Splice(eval_acts, max_seqs=S.splice_seqs)
print(f"train {len(X):,} tokens, eval {len(X_eval):,} tokens, d = {d}, F = {F}; "
      f"Δ LM loss over {splice.n_tokens:,} held-out predictions")

# %% [markdown]
# ## 2 · The grid
#
# At $k$ = `S.k`: the four rules without auxiliary loss, and each with its auxiliary loss(es). At the other
# $k$ of `S.ks`: the four rules without auxiliary loss, for the reconstruction–sparsity curves. Every SAE
# has the same width, seed, data order and optimiser settings. The sweep helper measures each on the
# held-out tokens with its inference rule (thresholds for MC and FC), including Δ LM loss.

# %%
thr = dict(threshold_beta=S.threshold_beta, threshold_start=S.threshold_start)
rules = {"TopK": ("topk", {}),
         "MC": ("mutual_choice", thr),
         "FC-uniform": ("feature_choice", dict(allocation="uniform", **thr)),
         "FC-zipf": ("feature_choice", dict(allocation="zipf", zipf_alpha=S.zipf_alpha, freq_beta=S.freq_beta, **thr))}
aux_for = {"TopK": ["AuxK"], "MC": ["AuxK", "aux_zipf"], "FC-uniform": ["aux_zipf"], "FC-zipf": ["aux_zipf"]}


def make_run(rule: str, k: int, aux: str = "none") -> Run:
    arch, kw = rules[rule]
    tk = {"auxk_coeff": S.aux_coeff if aux == "AuxK" else 0.0}
    if aux == "aux_zipf":  # a fresh, stateful loss object per run
        tk["loss_terms"] = {"aux_zipf": AuxZipfLoss(F, coeff=S.aux_coeff, beta=S.aux_beta, below=S.aux_below)}
    return Run(arch, F, k=k, sparsifier_kwargs=dict(kw), train_kwargs=tk, label=f"{rule} k={k} aux={aux}")


runs = ([make_run(r, S.k) for r in rules] + [make_run(r, S.k, a) for r in rules for a in aux_for[r]]
        + [make_run(r, k) for k in S.ks if k != S.k for r in rules])
meta = pd.DataFrame([dict(label=r.label, rule=r.label.split(" ")[0], aux=r.label.split("aux=")[1]) for r in runs])
base = TrainConfig(epochs=S.epochs, lr=S.lr, batch_size=S.batch_size, dead_window_tokens=S.dead_window_tokens,
                   seed=SEED)
store = {}
with torch_threads(S.threads), timer(f"sweep: {len(runs)} SAEs"):
    table = run_sweep(runs, X, X_eval, base, splice=splice, seed=SEED, store=store).merge(meta, on="label")

# %% [markdown]
# **The same SAEs under the training-time batch rule.** Held-out tokens in shuffled batches of the
# training batch size (consecutive held-out tokens come from a handful of documents, and a per-feature
# top-$m$ inside one document is not what the SAE was trained on). TopK is the same under both rules.

# %%
stats = {}
for lab in table["label"]:
    sae = store[lab].sae
    has_batch_rule = hasattr(sae.sparsifier, "batch_rule")
    stats[lab] = {"threshold": code_stats(sae, X_eval, batch_rule=False),
                  "batch": code_stats(sae, X_eval, batch_rule=True, batch_size=S.batch_size, seed=SEED)
                  if has_batch_rule else None}
    stats[lab]["batch"] = stats[lab]["batch"] or stats[lab]["threshold"]
for rule in ("batch", "threshold"):
    for col in ("l0", "fvu", "dead_frac"):
        table[f"{col}_{rule}"] = [stats[lab][rule][col] for lab in table["label"]]
table["near_dead"] = [float((stats[lab]["threshold"]["densities"] * len(X_eval) < 10).float().mean())
                      for lab in table["label"]]
table[["label", "l0_batch", "fvu_batch", "l0_threshold", "fvu_threshold", "delta_lm_loss", "dead_frac_threshold",
       "near_dead"]].round(3)

# %% [markdown]
# ## 3 · Dead latents
#
# A latent is **dead** if it never fires on the ~16k held-out tokens under the inference rule (the
# evaluation window); "near-dead" if it fires on fewer than 10 of them (density < 6e-4, our choice).
# Both are shown for every rule, without and with its auxiliary loss.

# %%
main = table[table["k"] == S.k].copy()
dead_tab = main.pivot_table(index="rule", columns="aux", values="dead_frac_threshold").reindex(list(rules)) * 100
near_tab = main.pivot_table(index="rule", columns="aux", values="near_dead").reindex(list(rules)) * 100
print(f"% dead latents (held-out window: {len(X_eval):,} tokens)")
display(dead_tab.round(2))
print("% near-dead latents (< 10 firings on the held-out tokens)")
display(near_tab.round(2))

# %%
auxes = ["none", "AuxK", "aux_zipf"]
pal = colors(4)
fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), sharey=False)
for ax, tab, name in zip(axes, [dead_tab, near_tab], ["Dead latents (0 firings)", "Near-dead latents (< 10 firings)"]):
    xs = np.arange(len(rules))
    for j, aux in enumerate(auxes):
        vals = tab[aux].values if aux in tab else np.full(len(rules), np.nan)
        ax.bar(xs + (j - 1) * 0.27, np.nan_to_num(vals), width=0.27, color=pal[j], label=f"aux: {aux}")
        for x_, v in zip(xs + (j - 1) * 0.27, vals):
            if not np.isnan(v):
                ax.text(x_, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(xs, list(rules))
    ax.set(ylabel="% of latents", title=name)
    ax.set_ylim(0, max(1.0, np.nanmax(tab.values) * 1.25))
handles, labels = axes[0].get_legend_handles_labels()
fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize=10)
fig.suptitle(f"Held-out window: {len(X_eval):,} tokens, inference rule, k = {S.k}, F = {F}", fontweight="bold")
save_figure(fig, NB, "dead_latents")
plt.show()

# %% [markdown]
# **Did the auxiliary losses act at all?** AuxK only acts on latents silent for the whole dead window
# (`S.dead_window_tokens` training tokens) and aux_zipf only on latents below half their Zipf target; the
# share of logged training steps on which each loss was non-zero:

# %%
aux_use = pd.DataFrame([{"SAE": lab, "aux": aux,
                         "steps with loss > 0": float((store[lab].history["auxk" if aux == "AuxK" else "aux_zipf"] > 0).mean()),
                         "latents dead in training (end)": float(store[lab].history["dead_frac"].iloc[-1])}
                        for lab, aux in zip(main["label"], main["aux"]) if aux != "none"])
aux_use.round(3)

# %% [markdown]
# ## 4 · Reconstruction vs sparsity
#
# FVU (fraction of variance unexplained, held-out) and Δ LM loss (next-token cross-entropy with the
# reconstruction spliced into layer 15, minus the clean one; positive = worse) against L0, for the SAEs
# without auxiliary loss at every $k$. Solid lines and filled markers: the training-time batch rule
# (L0 = $k$ for TopK and MC, at most $k$ for FC, which cannot keep non-positive affinities). Dashed lines
# and open markers: the inference thresholds, whose L0 is *measured*. Δ LM loss is shown for the
# inference rule only: the splice runs whole sequences, so a batch rule there would choose within a few
# documents.

# %%
curves = table[table["aux"] == "none"]
fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
for (rule, _), col in zip(rules.items(), pal):
    sel = curves[curves["rule"] == rule].sort_values("k")
    axes[0].plot(sel["l0_batch"], sel["fvu_batch"], "o-", color=col, ms=7, label=f"{rule} (batch rule)")
    if rule != "TopK":
        axes[0].plot(sel["l0_threshold"], sel["fvu_threshold"], "o--", color=col, ms=7, mfc="white",
                     label=f"{rule} (inference threshold)")
    axes[1].plot(sel["l0_threshold"], sel["delta_lm_loss"], "o--" if rule != "TopK" else "o-", color=col, ms=7,
                 mfc="white" if rule != "TopK" else col, label=f"{rule} (inference rule)")
axes[0].set(xlabel="L0 (active latents per token, held-out)", ylabel="FVU (held-out)",
            title=f"Reconstruction vs sparsity, F = {F}")
axes[1].set(xlabel="L0 (active latents per token, held-out)", ylabel="Δ LM loss (nats, spliced − clean)",
            title="LM degradation vs sparsity (inference rule)")
for ax in axes:
    log_axis(ax, "x", ticks=(8, 16, 32, 64, 128))
handles, labels = axes[0].get_legend_handles_labels()
fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4, fontsize=9)
axes[1].legend(fontsize=8, loc="upper right")
save_figure(fig, NB, "fvu_vs_l0")
plt.show()

# %% [markdown]
# ## 5 · Feature density vs rank: a Zipf law?
#
# Held-out firing densities (inference rule) of the $k$ = `S.k` SAEs without auxiliary loss, sorted, on
# log–log axes, with a least-squares fit $\log d = \log c - \alpha \log \mathrm{rank}$ over the live
# latents (those that fire at least once). $R^2$ is the fit's coefficient of determination in log–log
# space. FC's densities are set by its allocation (flat for uniform, Zipf-shaped by construction for
# FC-zipf); TopK's and MC's are the ones that say whether features "naturally" follow Zipf.

# %%
fits = {}
fig, ax = plt.subplots(figsize=(8, 5.2))
for (rule, _), col in zip(rules.items(), pal):
    dens = stats[f"{rule} k={S.k} aux=none"]["threshold"]["densities"]
    fit = fits[rule] = fit_zipf(dens, 0.0)
    srt = dens.sort(descending=True).values.numpy()
    r = np.arange(1, len(srt) + 1)
    ax.plot(r[srt > 0], srt[srt > 0], color=col, lw=2, label=f"{rule}: α = {fit['alpha']:.2f}, R² = {fit['r2']:.2f}")
    ax.plot(r, fit["c"] * r ** -fit["alpha"], color=col, lw=1, ls=":")
ax.set_ylim(top=1.5)
ax.set(xscale="log", yscale="log", xlabel="latent rank (1 = densest)", ylabel="firing density (fraction of held-out tokens)",
       title=f"Density vs rank, k = {S.k}, F = {F} (dotted: Zipf fits)")
ax.legend(fontsize=9, loc="lower left")
save_figure(fig, NB, "density_rank")
plt.show()
pd.DataFrame(fits).T.round(3)

# %% [markdown]
# ## 6 · Adaptive computation
#
# Left: how many latents each held-out token gets (features per token). Right: on how many tokens each
# latent fires (tokens per feature, as a fraction of held-out tokens, log scale). Both under the
# training-time batch rule on shuffled held-out batches, $k$ = `S.k`, no auxiliary loss. TopK is a spike
# at $k$ on the left; FC-uniform is a spike on the right; MC lets both vary.

# %%
fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
l0_max = max(int(stats[f"{r} k={S.k} aux=none"]["batch"]["l0_per_token"].max()) for r in rules)
bins_t = np.arange(0, l0_max + 3) - 0.5
bins_f = np.logspace(-5, 0, 41)
for (rule, _), col in zip(rules.items(), pal):
    st = stats[f"{rule} k={S.k} aux=none"]["batch"]
    axes[0].hist(st["l0_per_token"].numpy(), bins=bins_t, histtype="step", lw=2, color=col, label=rule)
    axes[1].hist(st["densities"].clamp_min(1e-5).numpy(), bins=bins_f, histtype="step", lw=2, color=col, label=rule)
axes[0].set(xlabel="active latents on the token", ylabel="held-out tokens", yscale="log",
            title="Features per token (batch rule)")
axes[1].set(xscale="log", yscale="log", xlabel="fraction of held-out tokens the latent fires on (dead at 1e-5)",
            ylabel="latents", title="Tokens per feature (batch rule)")
for ax in axes:
    ax.legend(fontsize=9)
save_figure(fig, NB, "adaptive_computation")
plt.show()

# %% [markdown]
# ## 7 · Does the inference threshold reproduce training-time sparsity?
#
# For every MC and FC SAE: L0 under the batch rule and under the inference threshold, on the held-out
# tokens and on (seen) training tokens. Tolerance, fixed before running (the same as notebook 02):
# **5%** relative L0 error.

# %%
L0_TOL = 0.05
X_seen = X[: len(X_eval)]
chk = []
for r in table[table["rule"] != "TopK"].itertuples():
    sae = store[r.label].sae
    seen_b = code_stats(sae, X_seen, batch_rule=True, batch_size=S.batch_size, seed=SEED)["l0"]
    seen_t = code_stats(sae, X_seen, batch_rule=False)["l0"]
    chk.append({"SAE": r.label, "L0 batch (held-out)": r.l0_batch, "L0 thr. (held-out)": r.l0_threshold,
                "L0 batch (train)": seen_b, "L0 thr. (train)": seen_t,
                "rel. err held-out": r.l0_threshold / r.l0_batch - 1, "rel. err train": seen_t / seen_b - 1})
chk = pd.DataFrame(chk)
chk.round(3)

# %% [markdown]
# ## 8 · Claims check
#
# Criteria fixed before running:
# * **FC near zero dead**: dead latents (held-out window) $\le$ 1% for every FC SAE at $k$ = `S.k`
#   (uniform and Zipf, with and without aux_zipf); partly if for at least one.
# * **MC/FC fewer dead than TopK**: at $k$ = `S.k`, MC, FC-uniform and FC-zipf each have strictly fewer dead
#   latents than TopK, without auxiliary loss and with (TopK+AuxK vs MC+AuxK, MC+aux_zipf, FC+aux_zipf):
#   reproduced if all comparisons hold, partly if more than half.
# * **Reconstruction at equal L0**: FVU under the batch rule at the same $k$ (L0 = $k$ for TopK and MC,
#   $\le k$ for FC, so the comparison is conservative for FC), every $k$ of `S.ks`, no auxiliary loss:
#   reproduced if MC, FC-uniform and FC-zipf all beat TopK at every $k$, partly if more than half of
#   the comparisons.
# * **Zipf law**: the log–log fit of TopK's and MC's held-out densities over their live latents has
#   $R^2 \ge 0.9$ for both; partly if for one of them or $R^2 \ge 0.8$ for both.
# * **Threshold**: every MC and FC SAE's inference L0 within 5% of its batch-rule L0 on held-out tokens;
#   partly if on training tokens only.

# %%
claims = ClaimsTable(NB, PRESET, SEED)
fc = main[main["rule"].str.startswith("FC")]
n_ok = int((fc["dead_frac_threshold"] <= 0.01).sum())
claims.check("Feature Choice has (near) zero dead latents (<= 1%)",
             "dead: " + ", ".join(f"{r.rule}/{r.aux} {r.dead_frac_threshold:.1%}" for r in fc.itertuples()),
             reproduced=n_ok == len(fc), partly=n_ok > 0, paper="FC: no dead latents (Table of dead %, abstract)")

dead = main.set_index(["rule", "aux"])["dead_frac_threshold"]
pairs = [((r, "none"), ("TopK", "none")) for r in ("MC", "FC-uniform", "FC-zipf")]
pairs += [((r, a), ("TopK", "AuxK")) for r in ("MC", "FC-uniform", "FC-zipf") for a in aux_for[r]]
wins = sum(dead[a] < dead[b] for a, b in pairs)
claims.check("MC and FC have fewer dead latents than TopK",
             f"fewer in {wins}/{len(pairs)} comparisons; TopK {dead[('TopK', 'none')]:.1%} (none), "
             f"{dead[('TopK', 'AuxK')]:.1%} (AuxK); MC {dead[('MC', 'none')]:.1%}",
             reproduced=wins == len(pairs), partly=wins > len(pairs) / 2, paper="fewer dead latents than TopK")

cv = curves.set_index(["rule", "k"])["fvu_batch"]
cmp = [(r, k, cv[(r, k)] / cv[("TopK", k)] - 1) for r in ("MC", "FC-uniform", "FC-zipf") for k in S.ks]
wins = sum(g < 0 for *_, g in cmp)
claims.check("MC and FC reconstruct better than TopK at equal sparsity",
             f"lower FVU in {wins}/{len(cmp)} (rule, k); relative change "
             + ", ".join(f"{r}@{k} {g:+.1%}" for r, k, g in cmp),
             reproduced=wins == len(cmp), partly=wins > len(cmp) / 2,
             paper="MC, FC better reconstruction than TopK at equal sparsity")

r2 = [fits["TopK"]["r2"], fits["MC"]["r2"]]
claims.check("Feature densities follow a Zipf law (log-log R² >= 0.9)",
             f"TopK α = {fits['TopK']['alpha']:.2f}, R² = {r2[0]:.2f}; MC α = {fits['MC']['alpha']:.2f}, R² = {r2[1]:.2f}",
             reproduced=min(r2) >= 0.9, partly=max(r2) >= 0.9 or min(r2) >= 0.8,
             paper="densities Zipf-distributed except at the low end")

worst_eval, worst_train = chk["rel. err held-out"].abs().max(), chk["rel. err train"].abs().max()
claims.check("Inference threshold reproduces training L0 (within 5%)",
             f"worst L0 error {worst_eval:.1%} held-out, {worst_train:.1%} training tokens ({len(chk)} SAEs)",
             reproduced=worst_eval <= L0_TOL, partly=worst_train <= L0_TOL,
             paper="batch-independent threshold at inference")
claims.save()
claims.show()

# %%
# NBVAL_CHECK_OUTPUT
print(claims.verdicts())

# %% [markdown]
# ## What to take away
#
# * TopK, Feature Choice and Mutual Choice are three ways of spending the same budget of $kN$
#   (token, feature) pairs: by rows, by columns, or globally. Mutual Choice is BatchTopK under another
#   name.
# * Feature Choice guarantees every latent its share of tokens during training, so it cannot leave
#   latents dead there; whether that survives the switch to the inference threshold, and whether MC/FC
#   beat TopK on dead latents and on reconstruction at this scale, is what the claims table reports,
#   with the numbers printed beside each verdict. With ~140 training steps and 1,152 latents almost no
#   latent dies under *any* rule here, so the dead-latent comparison has little to separate; the
#   near-dead column and the aux-use table show how little the auxiliary losses had to do.
# * The price of FC is on the token side: under the batch rule a token gets whatever the features chose
#   to give it, possibly nothing (left histogram). Compare FC's batch-rule and threshold FVU in the
#   table of section 2: the batch-independent per-latent thresholds behave differently from the rule
#   the SAE was trained with, which is why the reconstruction claim is scored on the batch rule.
# * Mutual Choice is BatchTopK: its gap to TopK here is the one notebook 02 measures.
# * Whether densities are Zipf depends on how much of the rank range one asks about: the log–log plot
#   shows where the straight line fails (head and tail), which is what the $R^2$ criterion penalises.
# * The aux_zipf loss here is a reconstruction of a loss whose formula we did not find; read its effect
#   as that of *our* loss.
# * Scale caveat: ~80k training tokens, ~140 steps, 1,152 latents; the paper trained far longer, up to
#   34M latents. `PRESET = "full"` runs a paper-like configuration on a GPU.
