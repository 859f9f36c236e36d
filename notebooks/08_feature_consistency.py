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
# # 08 · Feature consistency: do SAEs trained from different seeds converge to the same dictionary?
#
# **Paper.** Xiangchen Song, Aashiq Muhamed, Yujia Zheng, Lingjing Kong, Zeyu Tang, Mona T. Diab,
# Virginia Smith, Kun Zhang, *Position: Mechanistic Interpretability Should Prioritize Feature
# Consistency in SAEs* (2025, arXiv:2505.20254).
#
# **What it claims.** If an SAE's features are real, two runs that differ only in their random
# initialisation should find the same ones. The paper measures this with the **pairwise
# dictionary mean correlation coefficient (PW-MCC)**, validates it on a synthetic "model organism"
# whose true features are known (there PW-MCC tracks the agreement with the ground truth,
# **GT-MCC**; TopK SAEs reach PW-MCC ≈ 0.95, ReLU + L1 only ≈ 0.61), and then reports on a language
# model that TopK-style SAEs are the most consistent (PW-MCC ≈ 0.80) and that consistency depends
# on how often a latent fires.
#
# This notebook reproduces the synthetic experiment at the paper's data settings, extends it to
# see where PW-MCC stops tracking the ground truth, and repeats the LLM measurements at CPU scale.
#
# **Seeds and pairs.** The $\binom{S}{2}$ pairs of $S$ seeds are not independent (pairs $(0,1)$ and
# $(0,2)$ share seed 0), so an interval over all pairs would be too narrow. Every number a claim rests
# on is measured on **disjoint pairs** $(0,1), (2,3), (4,5)$: six seeds give three independent pairs,
# and each claim's interval is a 95% t-interval over those pairs (for a correlation: over the pairs'
# Fisher $z = \operatorname{artanh} r$, transformed back).

# %% tags=["parameters"]
PRESET = "quick"  # "quick": 2 CPU cores, offline; "full": paper-scale training on a GPU
SEED = 0          # data-order seed; SAE init seeds are 0 .. n_seeds-1

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

import torch
from IPython.display import Markdown, display

from saelib import TrainConfig
from saelib.companion import ClaimsTable, colors, log_axis, save_figure, setup, shared_activations, timer
from saelib.data.synthetic import make_synthetic
from saelib.metrics.matching import gt_mcc, mcc, per_latent_mcc, pw_mcc
from saelib.metrics.uncertainty import Interval, fisher_t_interval, paired_bootstrap, paired_t_interval
from saelib.multiseed import dictionaries, snapshot_scores, train_seeds
from saelib.sweep import at_matched_l0
from saelib.utils import torch_threads

NB = "08_feature_consistency"
S = setup(NB, PRESET, seed=SEED)
t_start = time.perf_counter()
print({k: v for k, v in vars(S).items() if k not in ("notebook",)})

# %% [markdown]
# ## 1 · A model organism with known features
#
# The ground-truth dictionary $A \in \mathbb{R}^{m \times n}$ has $m = 32$ unit-norm Gaussian rows in
# $n = 16$ dimensions (twice over-complete, so the features cannot be orthogonal). Each of
# $N = 50{,}000$ samples switches on $k = 3$ distinct features chosen uniformly at random, with
# non-negative coefficients:
#
# $$x = s A, \qquad s \in \mathbb{R}^{m}_{\ge 0},\ \lVert s \rVert_0 = 3,\ s_i = |\epsilon_i|,\ \epsilon_i \sim \mathcal N(0, 1).$$
#
# The data come from their own random stream (seed 42, as in the paper's code), independent of the
# stream that initialises the SAEs. Sharing one stream is a trap the paper's README warns about: with
# equal shapes an initialisation can *be* the ground truth and every score reads 1 from step 0.
# Below we check that the initial decoders are far from $A$.

# %%
data = make_synthetic(m=32, n=16, k=3, n_samples=50_000, seed=42)
print(f"X {tuple(data.X.shape)}, true features active per sample: {(data.S > 0).sum(1).float().mean():.0f}, "
      f"feature frequencies {data.frequencies.min():.3f}-{data.frequencies.max():.3f}")

# %% [markdown]
# ## 2 · Measuring agreement: MCC, PW-MCC, GT-MCC
#
# For two dictionaries $U \in \mathbb{R}^{p \times n}$ and $V \in \mathbb{R}^{q \times n}$ (rows = latent
# directions, decoder rows for an SAE), normalise the rows and take the signed cosine matrix
# $C = \hat U \hat V^\top$. The Hungarian algorithm finds the one-to-one assignment $\pi$ that
# maximises $\sum_i C_{i\pi(i)}$ (equivalently minimises the cost $1 - C$), and
#
# $$\mathrm{MCC}(U, V) = \frac{1}{\min(p, q)} \sum_{i \text{ matched}} C_{i\pi(i)}.$$
#
# The cosine is *signed*: a latent whose direction is flipped counts as $-1$, not as a match.
# **GT-MCC** $= \mathrm{MCC}(A, W_\text{dec})$ asks how well an SAE recovered the truth;
# **PW-MCC** $= \binom{S}{2}^{-1} \sum_{s < s'} \mathrm{MCC}(W_\text{dec}^{(s)}, W_\text{dec}^{(s')})$ asks how well
# $S$ seeds agree with each other, and needs no ground truth. Latents that never fire are set to
# zero vectors, so they match nothing (cosine 0).

# %% [markdown]
# ## 3 · TopK vs ReLU + L1 on the organism
#
# Both SAEs have 32 latents (= $m$). **TopK** keeps $k = 3$ latents per sample; **ReLU + L1** uses the
# paper's coefficient $\lambda = 10^{-2}$ (our L1 term is $\lambda \sum_i f_i \lVert W_{\text{dec},i} \rVert$
# with unit-norm decoder rows, i.e. a plain L1; but our reconstruction term sums the squared error over
# the 16 dimensions where the paper's code averages it, so the same $\lambda$ is 16 times weaker
# relative to reconstruction, which changes the L0 that ReLU + L1 ends at; the table prints it). As in the paper the
# inputs are not rescaled. Six init seeds (three disjoint pairs), one data order. We snapshot the decoders during
# training.
#
# *Choices where we differ (quick preset):* the paper trains full-batch with Adam at lr $10^{-4}$ for
# 30,000 steps; here minibatches of 1,024 at lr $10^{-3}$ for 60 epochs (the cell prints the step
# count; the `full` preset uses the paper's schedule). Our trainer adds its usual linear warm-up/decay, unit-norm
# decoder, $b_\text{dec}$ initialised to the data mean and, for TopK, the AuxK loss.

# %%
def synth_cfg(epochs, **kw):
    return TrainConfig(epochs=epochs, batch_size=S.synth_batch_size, lr=S.synth_lr, normalize_input=False,
                       seed=SEED, progress=False, log_every=50, **kw)


seeds = list(range(S.synth_seeds))
PAIRS = [(a, a + 1) for a in range(0, S.synth_seeds - 1, 2)]  # disjoint seed pairs: the independent units
print(f"{len(seeds)} init seeds, disjoint pairs {PAIRS}; "
      f"{-(-len(data.X) // S.synth_batch_size) * int(S.synth_epochs):,} steps per SAE")
with torch_threads(1), timer(f"synthetic: TopK and ReLU-L1, {len(seeds)} seeds each"):
    syn = {"TopK k=3": train_seeds(data.X, 32, "topk", seeds, synth_cfg(S.synth_epochs, sparse="off"),
                                   snapshot_every=S.synth_snapshot_every, k=3),
           "ReLU-L1": train_seeds(data.X, 32, "relu", seeds, synth_cfg(S.synth_epochs, sparsity_coeff=S.synth_l1,
                                  auxk_coeff=0.0), snapshot_every=S.synth_snapshot_every)}
from saelib import SAE  # noqa: E402  (only for the initialisation check)
init_gt = [gt_mcc(data.A, SAE(16, 32, "topk", k=3, seed=s).W_dec.detach()) for s in seeds]
print(f"GT-MCC of the initial decoders: {np.mean(init_gt):.3f} (max {max(init_gt):.3f})")

# %% [markdown]
# Per disjoint pair $(a, b)$: PW-MCC of the pair (the MCC of its two decoders, dead latents as zero
# vectors) and GT-MCC averaged over its two seeds, at the end of training and at every snapshot. The
# table shows means over seeds (L0, FVU, dead, GT-MCC) and over the disjoint pairs (PW-MCC).

# %%
def pair_scores(r, pairs, truth=None):
    """Final PW-MCC, mean L0 (and mean GT-MCC) of each disjoint seed pair, in ``pairs`` order."""
    dec, alive = dictionaries(r), r.alive()
    rows = []
    for a, b in pairs:
        row = {"pair": f"{a}-{b}", "pw_mcc": pw_mcc([dec[a], dec[b]], [alive[a], alive[b]]),
               "l0": float(r.metrics["l0"].iloc[[a, b]].mean())}
        if truth is not None:
            row["gt_mcc"] = float(np.mean([gt_mcc(truth, dec[s], alive[s]) for s in (a, b)]))
        rows.append(row)
    return pd.DataFrame(rows)


def pair_curves(r, pairs, truth=None):
    """snapshot_scores on each disjoint pair (PW-MCC of the pair, GT-MCC mean of its two seeds)."""
    return [snapshot_scores(r._replace(snapshots=[r.snapshots[a], r.snapshots[b]]), truth=truth).assign(pair=f"{a}-{b}")
            for a, b in pairs]


syn_pairs = {name: pair_scores(r, PAIRS, data.A) for name, r in syn.items()}
curves_by_pair = {name: pair_curves(r, PAIRS, data.A) for name, r in syn.items()}
curves = {name: pd.concat(cs).groupby(["step", "tokens"], as_index=False).mean(numeric_only=True)
          for name, cs in curves_by_pair.items()}
final = pd.DataFrame([{"SAE": name, "L0": r.metrics["l0"].mean(), "FVU": r.metrics["fvu"].mean(),
                       "dead %": 100 * r.metrics["dead_frac"].mean(),
                       "GT-MCC": np.mean([gt_mcc(data.A, w, a) for w, a in zip(dictionaries(r), r.alive())]),
                       "PW-MCC": syn_pairs[name]["pw_mcc"].mean(),
                       "PW-MCC per pair": ", ".join(f"{v:.3f}" for v in syn_pairs[name]["pw_mcc"])}
                      for name, r in syn.items()])
final.round(3)

# %% [markdown]
# The figure shows both scores during training. If PW-MCC is a good proxy, the two lines of one SAE
# move together, and the ordering of the SAEs is the same under both.

# %%
fig, ax = plt.subplots(figsize=(8, 4.5))
pal = colors(2)
for (name, c), col in zip(curves.items(), pal):
    ax.plot(c["step"], c["gt_mcc"], "-", color=col, lw=2, label=f"{name}: GT-MCC")
    ax.plot(c["step"], c["pw_mcc"], "--", color=col, lw=2, label=f"{name}: PW-MCC")
for y, name, col in [(0.95, "paper TopK PW-MCC", pal[0]), (0.61, "paper ReLU PW-MCC", pal[1])]:
    ax.axhline(y, color=col, ls=":", lw=1)
    ax.text(ax.get_xlim()[1], y, f" {name} {y}", va="center", fontsize=9, color=col)
ax.set(xlabel="training step (minibatches of 1,024)", ylabel="MCC (mean matched cosine)", ylim=(0, 1.02),
       title=f"Synthetic organism: agreement with the truth ({len(seeds)} seeds) and between seeds "
             f"({len(PAIRS)} disjoint pairs)")
ax.legend(fontsize=9, loc="lower right")
save_figure(fig, NB, "synthetic_training")
plt.show()

# %% [markdown]
# ## 4 · Where does PW-MCC stop tracking the truth? (our extension)
#
# The paper's organism is kind: the SAE has exactly $m$ latents and exactly $k$ active, no noise,
# and all features are equally frequent. We break one assumption at a time (TopK, 30 epochs each;
# two seeds, i.e. one pair, in the quick preset: this extension is descriptive and carries no claim)
# and compare PW-MCC with GT-MCC:
#
# * **width mismatch**: 16 latents (under-complete: GT-MCC averages the 16 matched pairs) or 64
#   (over-complete: GT-MCC averages the 32 true features, PW-MCC all 64 latents);
# * **k mismatch**: the SAE keeps 1 or 6 latents while the data have 3;
# * **noise**: isotropic Gaussian noise of std 0.1 or 0.3 per dimension (the clean signal has std ≈ 0.43 per dimension);
# * **Zipf frequencies**: feature $i$ is chosen with probability $\propto (i+1)^{-\alpha}$, $\alpha = 1, 2$.

# %%
EXTENSIONS = {  # name: (data kwargs, SAE width, SAE k)
    "paper setting": ({}, 32, 3), "width 16": ({}, 16, 3), "width 64": ({}, 64, 3),
    "SAE k=1": ({}, 32, 1), "SAE k=6": ({}, 32, 6), "noise 0.1": ({"noise": 0.1}, 32, 3),
    "noise 0.3": ({"noise": 0.3}, 32, 3), "Zipf α=1": ({"zipf_exponent": 1.0}, 32, 3),
    "Zipf α=2": ({"zipf_exponent": 2.0}, 32, 3)}
rows = []
with torch_threads(1), timer("extensions"):
    for name, (dkw, width, k) in EXTENSIONS.items():
        d_ext = make_synthetic(m=32, n=16, k=3, n_samples=50_000, seed=42, **dkw)
        r = train_seeds(d_ext.X, width, "topk", list(range(S.ext_seeds)), synth_cfg(S.ext_epochs, sparse="off"), k=k)
        rows.append({"setting": name, "GT-MCC": np.mean([gt_mcc(d_ext.A, w, a) for w, a in zip(dictionaries(r), r.alive())]),
                     "PW-MCC": pw_mcc(dictionaries(r), r.alive()), "FVU": r.metrics["fvu"].mean()})
ext = pd.DataFrame(rows).assign(gap=lambda t: t["PW-MCC"] - t["GT-MCC"])
ext.round(3)

# %% [markdown]
# Each point below is one setting or one training snapshot of the paper setting (the mean over the
# disjoint pairs). On the diagonal, PW-MCC equals GT-MCC; above it the seeds agree with each other more than
# with the truth (consistently wrong), below it they recover the truth better than they agree.

# %%
def snapshot_r(i):
    """Pearson r between PW-MCC and GT-MCC over the snapshots of disjoint pair i, both SAEs pooled."""
    pts = pd.concat([cs[i] for cs in curves_by_pair.values()])
    return stats.pearsonr(pts["gt_mcc"], pts["pw_mcc"])[0]


r_pairs = [snapshot_r(i) for i in range(len(PAIRS))]
iv_track = fisher_t_interval(r_pairs, unit="disjoint seed pairs")
r_snap = iv_track.estimate


def pearson_r(a, b, axis=-1):
    """Pearson r along ``axis`` (vectorised, for the bootstrap over settings)."""
    a, b = a - a.mean(axis, keepdims=True), b - b.mean(axis, keepdims=True)
    return (a * b).sum(axis) / np.sqrt((a * a).sum(axis) * (b * b).sum(axis))


iv_ext = paired_bootstrap(pearson_r, ext["GT-MCC"].to_numpy(), ext["PW-MCC"].to_numpy(), seed=SEED, unit="settings")
r_ext = iv_ext.estimate
fig, ax = plt.subplots(figsize=(7.5, 6))
for (name, c), col in zip(curves.items(), pal):
    ax.plot(c["gt_mcc"], c["pw_mcc"], "o-", ms=4, alpha=0.6, color=col, label=f"{name} snapshots (paper setting)")
ax.scatter(ext["GT-MCC"], ext["PW-MCC"], s=70, marker="D", color=colors(4)[3], zorder=3, label="extension settings (TopK)")
for i, (_, r) in enumerate(ext.sort_values("PW-MCC").iterrows()):  # alternate sides so close labels don't collide
    ax.annotate(r["setting"], (r["GT-MCC"], r["PW-MCC"]), textcoords="offset points", fontsize=9,
                xytext=(9, -4) if i % 2 else (-9, -4), ha="left" if i % 2 else "right",
                bbox=dict(fc="white", ec="none", alpha=0.7, pad=0.4), zorder=2)  # over the curves, under the markers
ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="PW-MCC = GT-MCC")
ax.set(xlabel="GT-MCC (agreement with the true dictionary)", ylabel="PW-MCC (agreement between seeds)",
       title=f"PW-MCC vs GT-MCC (Pearson r: snapshots {r_snap:.2f} over {len(PAIRS)} pairs, settings {r_ext:.2f})",
       xlim=(0.3, 1.0),
       ylim=(0.3, 1.0))
ax.legend(fontsize=9, loc="upper left")
save_figure(fig, NB, "pw_vs_gt_mcc")
plt.show()

# %% [markdown]
# ## 5 · The language model
#
# Now the default LM's residual stream (SmolLM2-135M, layer 15, the shared cached harvest: training
# chunks drawn across all training documents of both sources, the whole held-out split for L0, FVU and
# firing densities), where no ground truth exists and PW-MCC is all we have. One data order, and per
# configuration the init seeds of the preset:
#
# * **by L0**: TopK with $k$ in the preset's `S.llm_ks` (in the settings printed at the top);
# * **by architecture**: ReLU + L1 (one coefficient; its L0 is whatever it reaches).
#
# *Scale (quick preset):* 512 latents, 2 epochs over the training harvest (the cell prints tokens and
# steps), two seeds (one pair); the paper used 16k latents and 500M tokens on Pythia-160M. Expect lower
# absolute PW-MCC. One pair gives no interval over independent pairs, so the LLM claims below are
# *inconclusive: budget* in the quick preset (the `full` preset trains six seeds, three pairs).
# Dead latents (no firing on the held-out tokens) count as zero vectors.

# %%
with timer("harvest (cached)"):
    train_acts, eval_acts = shared_activations(S, progress=False)
X, X_eval = train_acts.acts, eval_acts.acts
steps_per_epoch = -(-len(X) // S.batch_size)
every = max(1, steps_per_epoch // S.snapshots_per_epoch)
llm_cfg = lambda **kw: TrainConfig(epochs=S.llm_epochs, lr=S.lr, batch_size=S.batch_size, seed=SEED,  # noqa: E731
                                   progress=False, **kw)
llm_seeds = list(range(S.llm_seeds))
LLM_PAIRS = [(a, a + 1) for a in range(0, S.llm_seeds - 1, 2)]
print(f"{len(X):,} training tokens, {len(X_eval):,} held-out tokens ({len(eval_acts.sequence_documents.unique())} "
      f"documents); {round(steps_per_epoch * S.llm_epochs):,} steps per SAE; seeds {llm_seeds}, disjoint pairs {LLM_PAIRS}")
llm = {}
with torch_threads(S.threads), timer("LLM SAEs"):
    for k in S.llm_ks:
        llm[f"TopK k={k}"] = train_seeds(X, S.llm_width, "topk", llm_seeds, llm_cfg(), X_eval,
                                         snapshot_every=every if k == 32 else None, k=k)
    llm["ReLU-L1"] = train_seeds(X, S.llm_width, "relu", llm_seeds, llm_cfg(sparsity_coeff=S.l1_coeff, auxk_coeff=0.0),
                                 X_eval)

# %%
lm_table = pd.DataFrame([{"SAE": name, "L0": r.metrics["l0"].mean(), "FVU": r.metrics["fvu"].mean(),
                          "dead %": 100 * r.metrics["dead_frac"].mean(),
                          "PW-MCC": pw_mcc(dictionaries(r), r.alive())}
                         for name, r in llm.items()])
lm_table.round(3)

# %% [markdown]
# Three views of the LLM runs: PW-MCC against L0 (TopK sweep, with the other architectures at the
# L0 they reached); PW-MCC of the TopK $k = 32$ seeds over training; and, per latent of seed 0, its
# matched decoder cosine averaged over the other seeds against how often it fires (held-out tokens).

# %%
tk = lm_table[lm_table["SAE"].str.startswith("TopK")].sort_values("L0")
ref = llm["TopK k=32"]
lm_curve = snapshot_scores(ref)
consistency = per_latent_mcc(dictionaries(ref), ref.alive())
dens = ref.densities[0].numpy()
fig, axes = plt.subplots(1, 3, figsize=(17, 4.6))
pal4 = colors(4)
axes[0].plot(tk["L0"], tk["PW-MCC"], "o-", color=pal4[0], label=f"TopK (k = {', '.join(map(str, S.llm_ks))})")
for (_, r), col, mk in zip(lm_table[~lm_table["SAE"].str.startswith("TopK")].iterrows(), pal4[1:], "s^"):
    axes[0].plot(r["L0"], r["PW-MCC"], mk, ms=10, color=col, label=r["SAE"])
log_axis(axes[0], "x", ticks=(10, 20, 50, 100, 200, 500))
axes[0].set(xlabel="L0 (active latents per token, held-out)", ylabel=f"PW-MCC ({len(llm_seeds)} seeds)",
            title="Consistency vs sparsity")
axes[1].plot(lm_curve["tokens"] / 1e3, lm_curve["pw_mcc"], "o-", color=pal4[0])
axes[1].set(xlabel="training tokens seen (thousands)", ylabel=f"PW-MCC ({len(llm_seeds)} seeds)",
            title="TopK k=32 during training")
live = dens > 0
axes[2].scatter(np.log10(dens[live]), consistency[live], s=6, alpha=0.4, color=pal4[0], label="latent (seed 0)")
bins = pd.qcut(np.log10(dens[live]), 8)
binned = pd.Series(consistency[live]).groupby(bins, observed=True).mean()
axes[2].plot([b.mid for b in binned.index], binned.values, "o-", color=pal4[3], lw=2, label="mean per density octile")
axes[2].set(xlabel="log10 firing density (fraction of held-out tokens)", ylabel="matched cosine, mean over other seeds",
            title="Per-latent consistency vs frequency")
for ax in axes[[0, 2]]:  # below the axes, clear of the data
    ax.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=2, frameon=False)
save_figure(fig, NB, "llm_consistency")
plt.show()

# %% [markdown]
# ## 6 · Our numbers beside the paper's
#
# The paper's synthetic numbers are from its Section 4 figure; its LLM numbers from Pythia-160M
# (residual stream layer 8, 16k latents, 500M tokens). Ours: the quick preset (see above for scale).

# %%
syn_f = final.set_index("SAE")
compare = pd.DataFrame([
    ("synthetic TopK k=3", "GT-MCC", "0.95-0.99", syn_f.loc["TopK k=3", "GT-MCC"]),
    ("synthetic TopK k=3", "PW-MCC", "≈0.95", syn_f.loc["TopK k=3", "PW-MCC"]),
    ("synthetic ReLU-L1", "GT-MCC", "≈0.63", syn_f.loc["ReLU-L1", "GT-MCC"]),
    ("synthetic ReLU-L1", "PW-MCC", "≈0.61", syn_f.loc["ReLU-L1", "PW-MCC"]),
    ("synthetic ReLU-L1", "L0", "≈16 (vs k=3)", syn_f.loc["ReLU-L1", "L0"]),
    ("LLM TopK (best k)", "PW-MCC", "≈0.80 (16k latents)", tk["PW-MCC"].max())],
    columns=["setting", "metric", "paper", "ours"])
compare.round(3)

# %% [markdown]
# ## 7 · Claims check
#
# How an interval and a margin become a verdict, and why one seed is not enough, are explained once in
# [`docs/uncertainty.md`](../docs/uncertainty.md); the terms are in [`docs/glossary.md`](../docs/glossary.md).
#
# Each claim is one statistic, fixed before the run that scores it, measured on each disjoint pair of
# seeds and summarised by a 95% t-interval over the pairs (seeds are the uncertainty: these are claims
# about training methods). With [lo, hi] the interval in the claimed direction and margin m: an
# *effect* is reproduced if lo ≥ m, partly if 0 < lo < m, not reproduced if lo ≤ 0 and hi < m,
# inconclusive otherwise; an *equivalence* ("≈ the paper's value") is reproduced if the interval lies
# inside [−m, m], not reproduced if wholly outside, inconclusive otherwise.
#
# * *tracks* (effect, m = 0.8): Pearson r between PW-MCC and GT-MCC **across the settings of Section 4** (one
#   architecture, TopK; the paper setting and its eight variations), with a 95% percentile bootstrap over the
#   settings (2,000 resamples). A proxy that merely rises while training goes on would pass the old form of this
#   test (r over the training snapshots, where both curves rise together: reported beside it, not scored); across
#   settings it has to rank SAEs the way the truth does. Changed in issue 15, before this run; in the quick preset
#   each setting's PW-MCC comes from one seed pair.
# * *the paper's numbers* (equivalence): PW-MCC − 0.95 for TopK with m = 0.05, PW-MCC − 0.61 for
#   ReLU-L1 with m = 0.1 (wider, since its value depends on its uncontrolled L0).
# * *TopK more consistent than ReLU-L1, synthetic* (effect): PW-MCC(TopK) − PW-MCC(ReLU-L1), paired on
#   the same seed pairs; m = 0.05, the tolerance within which claim 2 calls two PW-MCCs equal.
# * *TopK more consistent than ReLU-L1, LLM, at matched L0* (effect): per pair, TopK's PW-MCC at
#   ReLU-L1's L0 (`saelib.sweep.at_matched_l0`: linear in log L0 between bracketing k; it refuses to
#   extrapolate, which makes the claim inconclusive, rather than fall back on the nearest k)
#   minus ReLU-L1's. m = 0.02, two points of PW-MCC: small against the range between the PW-MCC of two
#   random dictionaries of the same shape (the floor) and the LLM values (both measured and printed
#   below), the smallest gap we would call a ranking.
# * *consistency depends on frequency* (effect on |ρ|, m = 0.3): Spearman ρ between a
#   latent's matched cosine to the other seed of its pair and its log firing density (alive latents of
#   the pair's first seed, TopK k = 32), one ρ per disjoint pair, interval over the pairs' Fisher z; the
#   claimed direction is the sign of the estimate (the paper claims a dependence, not its sign).
#
# Both LLM claims need three disjoint pairs (six seeds per configuration). The quick preset has two
# seeds (one pair): the full set, 24 SAEs of 512 latents on two cores, does not fit the 4.5-minute row
# beside the synthetic part, so these two claims are *inconclusive* with the reason "budget" (their
# point estimates, from the one pair, are shown); `--preset full` trains six.
#
# Checks (never counted as reproductions): the initial decoders are far from the truth (the
# separate-streams trap of Section 1) and MCC is 1 for a row-permuted copy of a dictionary.

# %%
gen = torch.Generator().manual_seed(SEED)  # the floor: two random Gaussian dictionaries of the LLM SAEs' shape
floor = pw_mcc([torch.randn(S.llm_width, X.shape[1], generator=gen) for _ in range(2)])
display(Markdown(f"LLM PW-MCC here: {lm_table['PW-MCC'].min():.2f} to {lm_table['PW-MCC'].max():.2f} "
                 f"({len(lm_table)} configurations); random-dictionary floor: {floor:.2f}; the margin 0.02 is "
                 f"{0.02 / (lm_table['PW-MCC'].mean() - floor):.0%} of the gap between the floor and their mean."))

# %%
claims = ClaimsTable(NB, PRESET, SEED)
n_pairs = len(PAIRS)
pw_pair = {name: t["pw_mcc"].to_numpy() for name, t in syn_pairs.items()}
claims.add_claim("PW-MCC tracks GT-MCC across synthetic settings",
                 f"Pearson r(PW-MCC, GT-MCC) across the {len(ext)} settings of Section 4 (TopK, {S.ext_seeds} seeds each), "
                 f"95% percentile bootstrap over the settings", iv_ext, 0.8, "greater", "bootstrap", S.ext_seeds,
                 measured=f"r = {iv_ext.rounded(3)} across settings; over the training snapshots of the paper setting "
                          f"(not scored: both rise with training) r = {iv_track.rounded(3)}, per pair "
                          f"{', '.join(f'{r:.3f}' for r in r_pairs)}",
                 paper="PW-MCC follows GT-MCC during training (Sec. 4)")
iv = paired_t_interval(pw_pair["TopK k=3"], np.full(n_pairs, 0.95))
claims.add_claim("TopK reaches PW-MCC ≈ 0.95 on the organism",
                 f"PW-MCC(TopK k=3) - 0.95, per disjoint seed pair, t-interval over the {n_pairs} pairs; "
                 f"equivalence within ±0.05", iv, 0.05, "greater", "seeds", len(seeds), kind="equivalence",
                 measured=f"PW-MCC {pw_pair['TopK k=3'].mean():.3f} (difference {iv.rounded(3)}), "
                          f"GT-MCC {syn_f.loc['TopK k=3', 'GT-MCC']:.3f}", paper="PW-MCC ≈ 0.95")
iv = paired_t_interval(pw_pair["ReLU-L1"], np.full(n_pairs, 0.61))
claims.add_claim("ReLU-L1 reaches only PW-MCC ≈ 0.61 on the organism",
                 f"PW-MCC(ReLU-L1, λ={S.synth_l1:g}) - 0.61, per disjoint seed pair, t-interval over the {n_pairs} pairs; "
                 f"equivalence within ±0.1", iv, 0.1, "greater", "seeds", len(seeds), kind="equivalence",
                 measured=f"PW-MCC {pw_pair['ReLU-L1'].mean():.3f} (difference {iv.rounded(3)}) "
                          f"at L0 {syn_f.loc['ReLU-L1', 'L0']:.1f}", paper="PW-MCC ≈ 0.61")
iv = paired_t_interval(pw_pair["TopK k=3"], pw_pair["ReLU-L1"])
claims.add_claim("TopK more consistent than ReLU-L1 (synthetic)",
                 f"PW-MCC(TopK k=3) - PW-MCC(ReLU-L1), per disjoint seed pair (same seeds both arms), "
                 f"t-interval over the {n_pairs} pairs", iv, 0.05, "greater", "seeds", len(seeds),
                 measured=f"PW-MCC {pw_pair['TopK k=3'].mean():.3f} vs {pw_pair['ReLU-L1'].mean():.3f}; "
                          f"difference {iv.rounded(3)}", paper="0.95 vs 0.61")

# LLM, TopK vs ReLU-L1 at ReLU-L1's L0
LLM_BUDGET = (f"budget: {len(llm_seeds)} seed(s) per configuration give {len(LLM_PAIRS)} disjoint pair(s); an interval "
              f"needs 3 pairs (6 seeds) of TopK k={S.llm_ks} and ReLU-L1, {6 * (len(S.llm_ks) + 1)} SAEs, beyond the "
              f"4.5-min row on 2 cores; the full preset (llm_seeds=6) runs them")
llm_powered = len(LLM_PAIRS) >= 3
relu_row = lm_table.set_index("SAE").loc["ReLU-L1"]
tk_at = at_matched_l0(tk.rename(columns={"L0": "l0"}), float(relu_row["L0"]), ["PW-MCC"])
est = tk_at["PW-MCC"] - relu_row["PW-MCC"]  # NaN when ReLU-L1's L0 lies outside the TopK sweep
bracketed = tk_at["bracketed"]
if llm_powered:
    diffs = []
    for a, b in LLM_PAIRS:
        tk_p = pd.DataFrame([pair_scores(llm[f"TopK k={k}"], [(a, b)]).iloc[0] for k in S.llm_ks])
        relu_p = pair_scores(llm["ReLU-L1"], [(a, b)]).iloc[0]
        m = at_matched_l0(tk_p, float(relu_p["l0"]), ["pw_mcc"])
        bracketed = bracketed and m["bracketed"]
        diffs.append(m["pw_mcc"] - relu_p["pw_mcc"])
    iv = (paired_t_interval(diffs, np.zeros(len(diffs))) if bracketed
          else Interval(est, math.nan, math.nan, 0, "not bracketed"))
else:
    iv = Interval(est, math.nan, math.nan, 0, "not powered")
reason = LLM_BUDGET if not llm_powered else "ReLU-L1's L0 lies outside the TopK sweep (at_matched_l0 does not extrapolate)"
if not llm_powered and not bracketed:
    reason += "; also ReLU-L1's L0 lies outside the TopK sweep"
claims.add_claim("TopK more consistent than ReLU-L1 (LLM, matched L0)",
                 f"PW-MCC(TopK at ReLU-L1's L0, at_matched_l0 over k={S.llm_ks}) - PW-MCC(ReLU-L1), {S.llm_width} latents, "
                 f"per disjoint seed pair, t-interval over the pairs (needs 3)", iv, 0.02, "greater", "seeds", len(llm_seeds),
                 measured=(f"PW-MCC {tk_at['PW-MCC']:.3f} (TopK at L0 {relu_row['L0']:.0f}) vs {relu_row['PW-MCC']:.3f} (ReLU-L1), "
                           f"all pairs of {len(llm_seeds)} seeds" if bracketed else
                           f"ReLU-L1 L0 {relu_row['L0']:.1f} outside the TopK L0 range "
                           f"{tk['L0'].min():.1f}-{tk['L0'].max():.1f}; ReLU-L1 PW-MCC {relu_row['PW-MCC']:.3f}"),
                 paper="TopK-family most consistent, PW-MCC ≈ 0.80",
                 precondition=(llm_powered and bracketed, reason))


# LLM, per-latent consistency vs firing frequency (TopK k=32)
def freq_rho(r, a, b):
    """Spearman ρ between seed a's per-latent matched cosine to seed b and its log10 held-out density (alive latents)."""
    dec, alive = dictionaries(r), r.alive()
    cons = per_latent_mcc([dec[a], dec[b]], [alive[a], alive[b]])
    d = r.densities[a].numpy()
    return stats.spearmanr(np.log10(d[d > 0]), cons[d > 0])[0]


rho = stats.spearmanr(np.log10(dens[live]), consistency[live])[0]  # shown when unpowered: seed 0 vs the other seeds
iv = (fisher_t_interval([freq_rho(ref, a, b) for a, b in LLM_PAIRS], unit="disjoint seed pairs") if llm_powered
      else Interval(rho, math.nan, math.nan, 0, "not powered"))
claims.add_claim("Consistency depends on latent frequency (LLM)",
                 "Spearman ρ(per-latent matched cosine to the pair's other seed, log10 held-out density), TopK k=32, "
                 "alive latents of the pair's first seed, per disjoint seed pair, t-interval over the pairs (needs 3) "
                 "on Fisher z; direction: the sign of the estimate, margin on |ρ|", iv, 0.3,
                 "greater" if not iv.estimate < 0 else "less", "seeds", len(llm_seeds),
                 measured=f"Spearman ρ = {rho:+.2f} over {live.sum()} alive latents (seed 0 vs seed(s) "
                          f"{', '.join(map(str, llm_seeds[1:]))})", paper="PW-MCC varies with firing frequency",
                 precondition=(llm_powered, LLM_BUDGET))

perm = torch.randperm(data.A.shape[0], generator=torch.Generator().manual_seed(0))
claims.add_check("Initial decoders are far from the true dictionary (separate random streams)", max(init_gt) < 0.6,
                 f"GT-MCC at initialisation: mean {np.mean(init_gt):.3f}, max {max(init_gt):.3f} over {len(seeds)} seeds (< 0.6)")
mcc_perm = mcc(data.A, data.A[perm])
claims.add_check("MCC of a dictionary with a row-permuted copy of itself is 1", abs(mcc_perm - 1) < 1e-5,
                 f"MCC = {mcc_perm:.6f}")
claims.save()
print(f"notebook compute: {time.perf_counter() - t_start:.0f} s wall")
claims.show()

# %%
claims.checks_frame()

# %%
# NBVAL_CHECK_OUTPUT
print(claims.verdicts())

# %% [markdown]
# ## What to take away

# %%
tk_row, relu_syn = syn_f.loc["TopK k=3"], syn_f.loc["ReLU-L1"]
ext_i = ext.set_index("setting")
below = int((ext["gap"] < 0).sum())
tk_k = tk.set_index("SAE")["PW-MCC"]
display(Markdown(f"""
* **The model organism.** PW-MCC rises with GT-MCC during training (Pearson r {iv_track.rounded(2)} over the
  {n_pairs} disjoint seed pairs; not a test, both rise) and ranks TopK above ReLU + L1 as the ground truth does: TopK PW-MCC
  {tk_row['PW-MCC']:.3f} (GT-MCC {tk_row['GT-MCC']:.3f}) against the paper's ≈ 0.95 (0.95-0.99), with our minibatch
  schedule; ReLU + L1 PW-MCC {relu_syn['PW-MCC']:.3f} (GT-MCC {relu_syn['GT-MCC']:.3f}) against the paper's ≈ 0.61, at an
  L0 of {relu_syn['L0']:.1f} rather than 3.
* **Where the proxy loosens (extension, one seed pair per setting).** PW-MCC sat below GT-MCC in {below} of
  {len(ext)} settings; for the over-complete SAE (64 latents for 32 true features) GT-MCC is
  {ext_i.loc['width 64', 'GT-MCC']:.3f} but PW-MCC {ext_i.loc['width 64', 'PW-MCC']:.3f} (the spare latents differ between
  seeds), and for the under-complete one (16 latents) {ext_i.loc['width 16', 'GT-MCC']:.3f} vs
  {ext_i.loc['width 16', 'PW-MCC']:.3f}. A low PW-MCC does not by itself mean the true features were missed; width
  relative to the (unknown) number of features matters. Across settings r = {iv_ext.rounded(2)} (bootstrap over the
  {len(ext)} settings), the scored form of "tracks": {claims.claims[0].verdict}.
* **The language model at this tiny scale** ({S.llm_width} latents, {len(X):,} training tokens × {S.llm_epochs:g}
  epochs) gives PW-MCC far below the paper's 0.80: TopK {", ".join(f"{n.split()[-1]}: {v:.3f}" for n, v in tk_k.items())},
  ReLU + L1 {relu_row['PW-MCC']:.3f} at L0 {relu_row['L0']:.1f}; per-latent consistency against log firing density has
  Spearman ρ = {rho:+.2f}. {"With " + str(len(llm_seeds)) + " seeds (one disjoint pair) these are point estimates "
  "only: both LLM claims are inconclusive for budget in this preset." if not llm_powered else
  "The two LLM claims are scored on " + str(len(LLM_PAIRS)) + " disjoint seed pairs (claims table)."}
"""))
