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
# # 07 · Seed stability: do two SAEs trained on the same data learn the same latents?
#
# **Paper.** Gonçalo Paulo and Nora Belrose, *Sparse Autoencoders Trained on the Same Data Learn
# Different Features* (EleutherAI, 2025, arXiv:2501.16615).
#
# **What it claims.** Train two SAEs that are identical except for the random seed of their
# initialisation: same data, same order, same hyper-parameters. Only part of their latents are
# shared (for a TopK SAE with 32k latents on Pythia-160M, about 42%), and the shared fraction
# **falls as the SAE gets wider**, **rises with longer training**, and is **higher for ReLU + L1 SAEs
# than for TopK** ones. With many seeds, a sizeable fraction of latents is found by no other seed.
#
# This notebook repeats those measurements at CPU scale on a real language model.

# %% tags=["parameters"]
PRESET = "quick"  # "quick": 2 CPU cores, offline; "full": paper-like widths on a GPU
SEED = 0          # data-order seed; SAE init seeds are 0 .. n_seeds-1

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import HTML, display
from scipy import stats

from saelib import TrainConfig
from saelib.companion import ClaimsTable, colors, log_axis, save_figure, setup, shared_activations, timer
from saelib.companion.examples import examples_html, latent_activations, top_examples
from saelib.data.lm import load_lm
from saelib.metrics.matching import match_saes, shared_counts, threshold_sweep
from saelib.multiseed import pairwise_summary, snapshot_scores, train_seeds
from saelib.utils import torch_threads

NB = "07_seed_stability"
S = setup(NB, PRESET, seed=SEED)
t_start = time.perf_counter()
print({k: v for k, v in vars(S).items() if k not in ("notebook",)})

# %% [markdown]
# ## 1 · When are two latents "the same"?
#
# An SAE latent $i$ has a decoder direction $d_i$ (row $i$ of $W_\text{dec}$) and an encoder direction
# $e_i$ (column $i$ of $W_\text{enc}$). For SAEs $A$ and $B$, normalise every direction to unit length
# and form the signed cosine matrices
#
# $$C^\text{dec}_{ij} = \hat d^A_i \cdot \hat d^B_j, \qquad C^\text{enc}_{ij} = \hat e^A_i \cdot \hat e^B_j .$$
#
# The Hungarian algorithm (`scipy.optimize.linear_sum_assignment`, maximising) pairs every latent of
# $A$ with one latent of $B$ so that the total cosine is largest, separately for $C^\text{dec}$ (partner
# $\pi_\text{dec}(i)$) and for $C^\text{enc}$ (partner $\pi_\text{enc}(i)$). Following the paper, latent $i$ is
#
# * **shared** when $C^\text{dec}_{i\pi_\text{dec}(i)} > 0.7$ **and** $C^\text{enc}_{i\pi_\text{enc}(i)} > 0.7$
#   (the criterion behind every "shared" number below);
# * **strictly shared** when in addition $\pi_\text{dec}(i) = \pi_\text{enc}(i)$;
# * and **Equal** is the fraction of latents with $\pi_\text{dec}(i) = \pi_\text{enc}(i)$, whatever the cosines.
#
# Latents that never fire on the held-out tokens are replaced by zero vectors, so they are never shared.
# With $S$ seeds, each number is the mean over the $\binom{S}{2}$ pairs.

# %% [markdown]
# ## 2 · Activations and scale
#
# The paper trained on MLP outputs of Pythia-160M (layer 6) with 8B tokens. We use the shared cached
# harvest: the **residual stream** after block 15 of SmolLM2-135M on ≈159k training tokens (this
# library harvests only the residual stream; an MLP-output hook would need a second harvest and is
# left to the reader). All SAEs see the same tokens in the same order (data seed `SEED`); only the
# initialisation seed changes.
#
# *Scale (quick preset):* TopK $k = 32$, widths 64–512 latents, 3 init seeds, 4 epochs over ≈159k
# tokens (≈635k token presentations), Adam lr $10^{-3}$, batches of 256. The paper's widths reach
# 131k latents; ours are 0.1–0.9× the model width (at 64 latents, $k = 32$ keeps half of them, like
# the paper's 32-latent point). Why batches of 256: in a first run with batches of 1,024 and
# 2 epochs (≈310 Adam steps) *no* latent passed the 0.7 criterion at any width from 128 to 1,024
# (every matched encoder cosine stayed below 0.4), so the measurement could not speak to any trend;
# smaller batches give 4x more optimiser steps per token for the same compute.

# %%
with timer("harvest (cached after the first run)"):
    train_acts, eval_acts = shared_activations(S, progress=False)
X, X_eval = train_acts.acts, eval_acts.acts
steps_per_epoch = -(-len(X) // S.batch_size)
every = max(1, steps_per_epoch // S.snapshots_per_epoch)
cfg = lambda **kw: TrainConfig(epochs=S.epochs, lr=S.lr, batch_size=S.batch_size, seed=SEED,  # noqa: E731
                               progress=False, **kw)
seeds = list(range(S.n_seeds))
print(f"train {len(X):,} tokens, eval {len(X_eval):,} tokens, d = {X.shape[1]}; {steps_per_epoch} steps per epoch")

# %% [markdown]
# ## 3 · Sharing vs width
#
# Three seeds at each width; we snapshot $W_\text{dec}$ and $W_\text{enc}$ of the runs at the preset's
# `arch_width` (128 latents in the quick preset) every half epoch for Section 4.

# %%
runs = {}
with torch_threads(S.threads), timer("width sweep"):
    for m in S.widths:
        runs[m] = train_seeds(X, m, "topk", seeds, cfg(), X_eval, snapshot_every=every if m == S.arch_width else None,
                              k=S.k)
by_width = pd.concat([pairwise_summary(r, S.threshold).assign(width=m, l0=r.metrics["l0"].mean(),
                                                                fvu=r.metrics["fvu"].mean())
                      for m, r in runs.items()])
width_table = by_width.groupby("width").mean(numeric_only=True).drop(columns=["seed_a", "seed_b"])
width_table.round(3)

# %%
PAPER_WIDTH = pd.DataFrame({"width": [32, 768, 4096, 32768, 131072], "shared": [0.81, 0.785, 0.70, 0.416, 0.276],
                            "equal": [1.00, 0.95, 0.92, 0.79, 0.70]})
fig, ax = plt.subplots(figsize=(8.5, 4.6))
pal = colors(4)
ax.plot(width_table.index, width_table["shared"], "o-", lw=2, color=pal[0], label="shared (ours)")
ax.plot(width_table.index, width_table["shared_strict"], "o--", color=pal[0], label="strictly shared (ours)")
ax.plot(width_table.index, width_table["equal"], "s-", color=pal[2], label="Equal (ours)")
ax.plot(PAPER_WIDTH["width"], PAPER_WIDTH["shared"], "o:", color=pal[1], label="shared (paper, Pythia-160M MLP)")
ax.plot(PAPER_WIDTH["width"], PAPER_WIDTH["equal"], "s:", color=pal[3], label="Equal (paper)")
log_axis(ax, "x", ticks=(32, 128, 512, 2048, 8192, 32768, 131072))
ax.set(xlabel="SAE width (latents, log scale)", ylabel="fraction of latents", ylim=(0, 1.05),
       title=f"Shared latents between seeds vs width (TopK k={S.k}, threshold {S.threshold})")
ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.0, 1.0))
save_figure(fig, NB, "shared_vs_width")
plt.show()

# %% [markdown]
# ## 4 · Sharing vs training length
#
# The paper trained separate runs on 0.8B, 8B and 80B tokens. Here, the snapshots of one pair of
# runs (seeds 0 and 1, `arch_width` latents) every half epoch: cheaper, but the snapshots before the end have
# not gone through the learning-rate decay of the final 20% of steps, so this is "how far along is
# a run", not "how long was the schedule".

# %%
train_curve = snapshot_scores(runs[S.arch_width], threshold=S.threshold)
fig, ax = plt.subplots(figsize=(7.5, 4.3))
ax.plot(train_curve["tokens"] / 1e3, train_curve["shared"], "o-", lw=2, color=pal[0], label="shared (seeds 0 vs 1)")
ax.plot(train_curve["tokens"] / 1e3, train_curve["pw_mcc"], "s--", color=pal[2], label="mean matched decoder cosine (PW-MCC)")
ax.set(xlabel="training tokens seen (thousands)", ylabel="fraction / cosine", ylim=(0, 1),
       title=f"Sharing during training ({S.arch_width} latents, TopK k={S.k})")
ax.legend(fontsize=9)
save_figure(fig, NB, "shared_vs_training")
plt.show()
train_curve.round(3)

# %% [markdown]
# ## 5 · TopK vs ReLU + L1 at matched L0
#
# The paper's ReLU SAE (at ~27k latents) shared more latents than its TopK SAE (0.82 vs 0.74).
# Architectures must be compared at the same sparsity: we first train ReLU + L1 (λ fixed in the
# preset, not tuned), measure its held-out L0, and then train TopK and BatchTopK with
# $k$ = that L0 (rounded). Width `arch_width` (128 in the quick preset), 2 seeds each.

# %%
arch_seeds = list(range(S.arch_seeds))
with torch_threads(S.threads), timer("architectures"):
    arch = {"ReLU-L1": train_seeds(X, S.arch_width, "relu", arch_seeds, cfg(sparsity_coeff=S.l1_coeff, auxk_coeff=0.0),
                                   X_eval)}
    k_match = max(1, int(round(arch["ReLU-L1"].metrics["l0"].mean())))
    arch[f"TopK k={k_match}"] = train_seeds(X, S.arch_width, "topk", arch_seeds, cfg(), X_eval, k=k_match)
    arch[f"BatchTopK k={k_match}"] = train_seeds(X, S.arch_width, "batchtopk", arch_seeds, cfg(), X_eval, k=k_match,
                                                 threshold_start=min(50, steps_per_epoch // 2))
arch_table = pd.DataFrame([{"SAE": name, "L0": r.metrics["l0"].mean(), "FVU": r.metrics["fvu"].mean(),
                            "dead %": 100 * r.metrics["dead_frac"].mean(),
                            **pairwise_summary(r, S.threshold).mean(numeric_only=True).drop(["seed_a", "seed_b"])}
                           for name, r in arch.items()])
arch_table.round(3)

# %% [markdown]
# ## 6 · Threshold sweep
#
# 0.7 is a convention. The curves show, for seeds 0 vs 1 at `arch_width` latents, the fraction of latents
# whose matched cosine exceeds each threshold $t$: decoder only, encoder only, and both (the
# "shared" criterion). The dotted line marks $t = 0.7$.

# %%
sweeps = {name: threshold_sweep(match_saes(r.saes[0], r.saes[1], *r.alive()[:2]))
          for name, r in [(f"TopK k={S.k}", runs[S.arch_width])] + list(arch.items())}
fig, axes = plt.subplots(1, 3, figsize=(16, 4.3), sharey=True)
for ax, col_name in zip(axes, ["decoder", "encoder", "both"]):
    for (name, sw), col in zip(sweeps.items(), colors(len(sweeps))):
        ax.plot(sw["threshold"], sw[col_name], lw=2, color=col, label=name)
    ax.axvline(S.threshold, color="grey", ls=":")
    ax.set(xlabel="cosine threshold t", title=f"matched {col_name} cosine > t" if col_name != "both"
           else "decoder AND encoder > t")
axes[0].set_ylabel("fraction of latents (seeds 0 vs 1)")
axes[0].legend(fontsize=9)
save_figure(fig, NB, "threshold_sweep")
plt.show()

# %% [markdown]
# ## 7 · Shared with how many other seeds?
#
# For every latent of seed 0 we count in how many of the other $S - 1 = 2$ seeds it is shared. The
# paper (9 seeds, 32k latents) found 17% of latents shared with all 8 others and 35% with none.

# %%
counts = {m: shared_counts(r.saes, S.threshold, alive=r.alive()) for m, r in runs.items()}
dist = pd.DataFrame({m: np.bincount(c, minlength=S.n_seeds) / len(c) for m, c in counts.items()}).T
dist.columns = [f"shared with {j} other seed{'s' if j != 1 else ''}" for j in dist.columns]
fig, ax = plt.subplots(figsize=(8, 4.3))
dist.plot.bar(stacked=True, ax=ax, color=colors(S.n_seeds), rot=0)
ax.set(xlabel="SAE width (latents)", ylabel="fraction of seed 0's latents",
       title=f"How many of the other {S.n_seeds - 1} seeds share each latent (TopK k={S.k})")
ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.0, 1.0))
save_figure(fig, NB, "shared_count_bars")
plt.show()
dist.round(3)

# %% [markdown]
# ## 8 · Are rare latents less reproducible?
#
# Seed 0's latents (`arch_width` latents), grouped into octiles of their firing density on held-out tokens
# (dead latents left out): the fraction shared with each other seed, and the mean number of other
# seeds sharing it.

# %%
ref = runs[S.arch_width]
dens = ref.densities[0].numpy()
live = dens > 0
freq = pd.DataFrame({"log10 density": np.log10(dens[live]), "shared with": counts[S.arch_width][live]})
freq["octile"] = pd.qcut(freq["log10 density"], 8)
by_freq = freq.groupby("octile", observed=True).agg(density=("log10 density", "mean"),
                                                   frac_shared=("shared with", lambda c: (c / (S.n_seeds - 1)).mean()))
rho_freq = stats.spearmanr(freq["log10 density"], freq["shared with"])[0] if freq["shared with"].nunique() > 1 else np.nan
fig, ax = plt.subplots(figsize=(7.5, 4.3))
ax.plot(by_freq["density"], by_freq["frac_shared"], "o-", lw=2, color=pal[0])
ax.set(xlabel="log10 firing density (octile mean, held-out tokens)", ylabel="fraction of other seeds sharing it",
       ylim=(0, 1), title=f"Sharing vs firing frequency ({S.arch_width} latents; Spearman ρ = {rho_freq:+.2f})")
save_figure(fig, NB, "shared_vs_frequency")
plt.show()

# %% [markdown]
# ## 9 · A shared latent and an orphan
#
# Among seed 0's latents firing on 0.1–5% of held-out tokens: the one shared with the most other
# seeds (ties: highest worst-case cosine), and the orphan, shared with the fewest (ties: weakest
# decoder match). For each, its top-activating held-out tokens and those of its decoder partner in seed 1.

# %%
_, tok = load_lm(S.model)
m01 = match_saes(ref.saes[0], ref.saes[1], *ref.alive()[:2])
mid = (dens > 1e-3) & (dens < 5e-2)
c = counts[S.arch_width]
cand = np.flatnonzero(mid)
worst_cos = np.minimum(m01.cos_dec, m01.cos_enc)[cand]
shared_lat = int(cand[np.lexsort((worst_cos, c[cand]))[-1]])  # most seeds sharing it, then highest cosine
orphan_lat = int(cand[np.lexsort((m01.cos_dec[cand], c[cand]))[0]])  # fewest seeds, then weakest match
blocks = []
for label, lat in [("shared", shared_lat), ("orphan", orphan_lat)]:
    partner = int(m01.partner_dec[lat])
    for s, l, who in [(0, lat, f"seed 0 latent {lat}"), (1, partner, f"seed 1 latent {partner} (decoder partner)")]:
        vals = latent_activations(ref.saes[s], eval_acts, [l])[:, 0]
        blocks.append(examples_html(f"{label.upper()} · {who} · density {ref.densities[s][l]:.2%} · "
                                    f"cos_dec {m01.cos_dec[lat]:.2f}, cos_enc {m01.cos_enc[lat]:.2f}",
                                    top_examples(vals, eval_acts, tok, n=5)))
display(HTML("".join(blocks)))

# %% [markdown]
# ## 10 · Our numbers beside the paper's
#
# Why ours differ: the paper's SAEs saw 8B tokens of Pythia-160M MLP outputs (a 768-wide space);
# ours saw ≈159k tokens of a 576-wide residual stream, 4 times over. Short training lowers sharing
# (the paper's own Fig. 2: 0.07 shared at 0.8B tokens), and our widths are at the narrow end of the
# paper's range, where it found the most sharing.

# %%
first, last = train_curve.iloc[0], train_curve.iloc[-1]
tk_arch, relu_arch = arch_table.iloc[1], arch_table.iloc[0]
compare = pd.DataFrame([
    ("shared, narrowest width", "0.81 (32 latents)", f"{width_table['shared'].iloc[0]:.3f} ({width_table.index[0]} latents)"),
    ("shared, ~768 latents", "0.785 (768)", f"{width_table['shared'].iloc[-1]:.3f} ({width_table.index[-1]})"),
    ("Equal, ~768 latents", "0.95 (768)", f"{width_table['equal'].iloc[-1]:.3f} ({width_table.index[-1]})"),
    ("shared vs training", "0.07 → 0.42 → 0.61 (0.8B → 8B → 80B tokens, 32k latents)",
     f"{first['shared']:.3f} → {last['shared']:.3f} ({first['tokens'] / 1e3:.0f}k → {last['tokens'] / 1e3:.0f}k tokens)"),
    ("ReLU-L1 vs TopK", "0.82 vs 0.74 (~27k latents)", f"{relu_arch['shared']:.3f} vs {tk_arch['shared']:.3f} (L0 ≈ {k_match})"),
    ("shared with no other seed", "35% (9 seeds, 32k)", f"{dist.iloc[-1, 0]:.1%} ({S.n_seeds} seeds, {dist.index[-1]})")],
    columns=["quantity", "paper (Pythia-160M, TopK k=32)", "ours (SmolLM2-135M, quick preset)"])
compare

# %% [markdown]
# ## 11 · Claims check
#
# Criteria, fixed before looking at the results:
# * *falls with width*: reproduced if the shared fraction at the widest SAE is below that at the
#   narrowest **and** Spearman ρ(width, shared) ≤ −0.8; partly if only the first holds.
# * *rises with training*: reproduced if the last snapshot shares more than the first **and**
#   Spearman ρ(tokens, shared) ≥ 0.8 over the snapshots; partly if only the first holds.
# * *ReLU ≥ TopK at matched L0*: reproduced if ReLU-L1's shared fraction ≥ TopK's (k = ReLU's L0)
#   and at least one of them shares some latents (0 vs 0 is not evidence).

# %%
claims = ClaimsTable(NB, PRESET, SEED)
sh = width_table["shared"]
rho_w = stats.spearmanr(sh.index, sh.values)[0] if sh.nunique() > 1 else np.nan  # nan: no trend to rank
claims.check("Shared fraction falls as the SAE gets wider",
             f"{sh.iloc[0]:.3f} at {sh.index[0]} → {sh.iloc[-1]:.3f} at {sh.index[-1]} latents (ρ = {rho_w:+.2f})",
             reproduced=sh.iloc[-1] < sh.iloc[0] and rho_w <= -0.8, partly=sh.iloc[-1] < sh.iloc[0],
             paper="0.81 (32) → 0.276 (131k)")
rho_t = stats.spearmanr(train_curve["tokens"], train_curve["shared"])[0] if train_curve["shared"].nunique() > 1 else np.nan
claims.check("Shared fraction rises with training",
             f"{first['shared']:.3f} → {last['shared']:.3f} over {len(train_curve)} snapshots (ρ = {rho_t:+.2f})",
             reproduced=last["shared"] > first["shared"] and rho_t >= 0.8, partly=last["shared"] > first["shared"],
             paper="0.07 → 0.61 (0.8B → 80B tokens)")
testable = max(relu_arch["shared"], tk_arch["shared"]) > 0  # 0 vs 0 is no evidence either way
claims.check("ReLU-L1 shares at least as many latents as TopK (matched L0)",
             f"{relu_arch['shared']:.3f} (ReLU-L1, L0 {relu_arch['L0']:.1f}) vs {tk_arch['shared']:.3f} (TopK k={k_match})"
             + ("" if testable else "; no latent shared by either: untestable at this scale"),
             reproduced=testable and relu_arch["shared"] >= tk_arch["shared"], paper="0.82 vs 0.74")
claims.save()
print(f"notebook compute: {time.perf_counter() - t_start:.0f} s wall")
claims.show()

# %%
# NBVAL_CHECK_OUTPUT
print(claims.verdicts())

# %% [markdown]
# ## What to take away
#
# * Two SAEs that differ only in their initial weights do not learn the same dictionary. In the quick
#   run, at most ~5% of TopK latents passed the paper's criterion (decoder AND encoder cosine > 0.7)
#   and over 90% of seed 0's latents were shared with neither other seed; a single SAE is one sample
#   of many possible dictionaries.
# * Training length is the dominant factor at this scale: sharing went from 0 to ~5% over 4 epochs
#   and was still rising (the paper's own 0.8B-token run shared only 7%). With batches of 1,024 and
#   2 epochs, nothing was shared at all.
# * Width went the *opposite* way from the paper here (sharing rose slightly from 64 to 512 latents):
#   our widths sit at the narrow end, below the model width, where every run is still far from
#   converged, so this does not contradict the paper's trend at 1k-131k latents; it is simply not
#   reproduced at this scale.
# * ReLU + L1 shared about twice as many latents as TopK and BatchTopK at the same L0 (≈11), as the
#   paper reports; the threshold sweep shows the ReLU advantage holds at every threshold, mostly on
#   the decoder side.
