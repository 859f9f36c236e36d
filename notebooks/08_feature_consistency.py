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

# %% tags=["parameters"]
PRESET = "quick"  # "quick": 2 CPU cores, offline; "full": paper-scale training on a GPU
SEED = 0          # data-order seed; SAE init seeds are 0 .. n_seeds-1

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from saelib import TrainConfig
from saelib.companion import ClaimsTable, colors, log_axis, save_figure, setup, shared_activations, timer
from saelib.data.synthetic import make_synthetic
from saelib.metrics.matching import gt_mcc, per_latent_mcc, pw_mcc
from saelib.multiseed import dictionaries, snapshot_scores, train_seeds
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
# with unit-norm decoder rows, so the same number as a plain L1). As in the paper the inputs are not
# rescaled. Five init seeds, one data order. We snapshot the decoders during training.
#
# *Choices where we differ (quick preset):* the paper trains full-batch with Adam at lr $10^{-4}$ for
# 30,000 steps; here minibatches of 1,024 at lr $10^{-3}$ for 60 epochs (≈2,900 steps; the `full`
# preset uses the paper's schedule). Our trainer adds its usual linear warm-up/decay, unit-norm
# decoder, $b_\text{dec}$ initialised to the data mean and, for TopK, the AuxK loss.

# %%
def synth_cfg(epochs, **kw):
    return TrainConfig(epochs=epochs, batch_size=S.synth_batch_size, lr=S.synth_lr, normalize_input=False,
                       seed=SEED, progress=False, log_every=50, **kw)


seeds = list(range(S.synth_seeds))
with torch_threads(1), timer("synthetic: TopK and ReLU-L1, 5 seeds each"):
    syn = {"TopK k=3": train_seeds(data.X, 32, "topk", seeds, synth_cfg(S.synth_epochs, sparse="off"),
                                   snapshot_every=S.synth_snapshot_every, k=3),
           "ReLU-L1": train_seeds(data.X, 32, "relu", seeds, synth_cfg(S.synth_epochs, sparsity_coeff=S.synth_l1,
                                  auxk_coeff=0.0), snapshot_every=S.synth_snapshot_every)}
from saelib import SAE  # noqa: E402  (only for the initialisation check)
init_gt = [gt_mcc(data.A, SAE(16, 32, "topk", k=3, seed=s).W_dec.detach()) for s in seeds]
print(f"GT-MCC of the initial decoders: {np.mean(init_gt):.3f} (max {max(init_gt):.3f})")

# %%
curves = {name: snapshot_scores(r, truth=data.A) for name, r in syn.items()}
final = pd.DataFrame([{"SAE": name, "L0": r.metrics["l0"].mean(), "FVU": r.metrics["fvu"].mean(),
                       "dead %": 100 * r.metrics["dead_frac"].mean(),
                       "GT-MCC": np.mean([gt_mcc(data.A, w, a) for w, a in zip(dictionaries(r), r.alive())]),
                       "PW-MCC": pw_mcc(dictionaries(r), r.alive())} for name, r in syn.items()])
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
       title="Synthetic organism: agreement with the truth and across 5 seeds")
ax.legend(fontsize=9, loc="lower right")
save_figure(fig, NB, "synthetic_training")
plt.show()

# %% [markdown]
# ## 4 · Where does PW-MCC stop tracking the truth? (our extension)
#
# The paper's organism is kind: the SAE has exactly $m$ latents and exactly $k$ active, no noise,
# and all features are equally frequent. We break one assumption at a time (TopK, 3 seeds,
# 30 epochs each) and compare PW-MCC with GT-MCC:
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
# Each point below is one setting (averaged over seeds) or one training snapshot of the paper
# setting. On the diagonal, PW-MCC equals GT-MCC; above it the seeds agree with each other more than
# with the truth (consistently wrong), below it they recover the truth better than they agree.

# %%
snap_pts = pd.concat([c.assign(SAE=name) for name, c in curves.items()])
r_snap = stats.pearsonr(snap_pts["gt_mcc"], snap_pts["pw_mcc"])[0]
r_ext = stats.pearsonr(ext["GT-MCC"], ext["PW-MCC"])[0]
fig, ax = plt.subplots(figsize=(7.5, 6))
for (name, c), col in zip(curves.items(), pal):
    ax.plot(c["gt_mcc"], c["pw_mcc"], "o-", ms=4, alpha=0.6, color=col, label=f"{name} snapshots (paper setting)")
ax.scatter(ext["GT-MCC"], ext["PW-MCC"], s=70, marker="D", color=colors(4)[3], zorder=3, label="extension settings (TopK)")
for i, (_, r) in enumerate(ext.sort_values("PW-MCC").iterrows()):  # alternate sides so close labels don't collide
    ax.annotate(r["setting"], (r["GT-MCC"], r["PW-MCC"]), textcoords="offset points", fontsize=9,
                xytext=(8, -4) if i % 2 else (-8, -4), ha="left" if i % 2 else "right")
ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="PW-MCC = GT-MCC")
ax.set(xlabel="GT-MCC (agreement with the true dictionary)", ylabel="PW-MCC (agreement between seeds)",
       title=f"PW-MCC vs GT-MCC (Pearson r: snapshots {r_snap:.2f}, settings {r_ext:.2f})", xlim=(0.3, 1.0),
       ylim=(0.3, 1.0))
ax.legend(fontsize=9, loc="upper left")
save_figure(fig, NB, "pw_vs_gt_mcc")
plt.show()

# %% [markdown]
# ## 5 · The language model
#
# Now the default LM's residual stream (SmolLM2-135M, layer 15, the shared cached harvest), where no
# ground truth exists and PW-MCC is all we have. Three init seeds per configuration, one data order:
#
# * **by L0**: TopK with $k \in \{16, 32, 64\}$;
# * **by architecture**: ReLU + L1 (one coefficient; its L0 is whatever it reaches) and BatchTopK
#   ($k = 32$ on average per token, batch-level selection; inference with its learned global threshold).
#
# *Scale (quick preset):* 512 latents, 2 epochs over ≈159k tokens; the paper used 16k latents and
# 500M tokens on Pythia-160M. Expect lower absolute PW-MCC; the ordering is what this run tests.
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
llm = {}
with torch_threads(S.threads), timer("LLM SAEs"):
    for k in S.llm_ks:
        llm[f"TopK k={k}"] = train_seeds(X, S.llm_width, "topk", llm_seeds, llm_cfg(), X_eval,
                                         snapshot_every=every if k == 32 else None, k=k)
    llm["BatchTopK k=32"] = train_seeds(X, S.llm_width, "batchtopk", llm_seeds, llm_cfg(), X_eval, k=32,
                                        threshold_start=min(50, steps_per_epoch // 2))
    llm["ReLU-L1"] = train_seeds(X, S.llm_width, "relu", llm_seeds, llm_cfg(sparsity_coeff=S.l1_coeff, auxk_coeff=0.0),
                                 X_eval)

# %%
lm_table = pd.DataFrame([{"SAE": name, "L0": r.metrics["l0"].mean(), "FVU": r.metrics["fvu"].mean(),
                          "dead %": 100 * r.metrics["dead_frac"].mean(), "PW-MCC": pw_mcc(dictionaries(r), r.alive())}
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
axes[0].plot(tk["L0"], tk["PW-MCC"], "o-", color=pal4[0], label="TopK (k = 16, 32, 64)")
for (_, r), col, mk in zip(lm_table[~lm_table["SAE"].str.startswith("TopK")].iterrows(), pal4[1:], "s^"):
    axes[0].plot(r["L0"], r["PW-MCC"], mk, ms=10, color=col, label=r["SAE"])
log_axis(axes[0], "x", ticks=(10, 20, 50, 100, 200, 500))
axes[0].set(xlabel="L0 (active latents per token, held-out)", ylabel="PW-MCC (3 seeds)", title="Consistency vs sparsity")
axes[1].plot(lm_curve["tokens"] / 1e3, lm_curve["pw_mcc"], "o-", color=pal4[0])
axes[1].set(xlabel="training tokens seen (thousands)", ylabel="PW-MCC (3 seeds)", title="TopK k=32 during training")
live = dens > 0
axes[2].scatter(np.log10(dens[live]), consistency[live], s=6, alpha=0.4, color=pal4[0], label="latent (seed 0)")
bins = pd.qcut(np.log10(dens[live]), 8)
binned = pd.Series(consistency[live]).groupby(bins, observed=True).mean()
axes[2].plot([b.mid for b in binned.index], binned.values, "o-", color=pal4[3], lw=2, label="mean per density octile")
axes[2].set(xlabel="log10 firing density (fraction of held-out tokens)", ylabel="matched cosine, mean over other seeds",
            title="Per-latent consistency vs frequency")
axes[0].legend(fontsize=9)
axes[2].legend(fontsize=9)
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
    ("LLM TopK (best)", "PW-MCC", "≈0.80 (16k latents)", tk["PW-MCC"].max())],
    columns=["setting", "metric", "paper", "ours"])
compare.round(3)

# %% [markdown]
# ## 7 · Claims check
#
# Criteria, fixed before looking at the results:
# * *tracks*: Pearson $r$ between PW-MCC and GT-MCC over the training snapshots of the paper setting
#   (both SAEs): reproduced if $r \ge 0.8$, partly if $r \ge 0.5$.
# * paper's numbers: reproduced if within 0.05 (TopK) or 0.1 (ReLU-L1, whose value depends on its
#   uncontrolled L0) of the paper; partly if the gap is at most twice that.
# * *TopK more consistent than ReLU-L1 on the LLM*: TopK's PW-MCC interpolated (in log L0) at
#   ReLU-L1's L0 must exceed ReLU-L1's; if ReLU-L1's L0 falls outside the TopK sweep, the verdict is
#   at most *partly*, judged against the nearest TopK point.
# * *depends on frequency*: Spearman $|\rho| \ge 0.3$ between a latent's consistency and its log
#   firing density (alive latents of seed 0); partly if $|\rho| \ge 0.1$.

# %%
claims = ClaimsTable(NB, PRESET, SEED)
pw_t, pw_r = syn_f.loc["TopK k=3", "PW-MCC"], syn_f.loc["ReLU-L1", "PW-MCC"]
claims.check("PW-MCC tracks GT-MCC on synthetic data", f"Pearson r = {r_snap:.2f} over training snapshots "
             f"(r = {r_ext:.2f} across our extension settings)", reproduced=r_snap >= 0.8, partly=r_snap >= 0.5,
             paper="PW-MCC follows GT-MCC during training (Sec. 4)")
claims.check("TopK reaches PW-MCC ≈ 0.95 on the organism", f"PW-MCC {pw_t:.3f}, GT-MCC {syn_f.loc['TopK k=3', 'GT-MCC']:.3f}",
             reproduced=abs(pw_t - 0.95) <= 0.05, partly=abs(pw_t - 0.95) <= 0.10, paper="PW-MCC ≈ 0.95")
claims.check("ReLU-L1 reaches only PW-MCC ≈ 0.61 on the organism",
             f"PW-MCC {pw_r:.3f} at L0 {syn_f.loc['ReLU-L1', 'L0']:.1f}",
             reproduced=abs(pw_r - 0.61) <= 0.10, partly=abs(pw_r - 0.61) <= 0.20, paper="PW-MCC ≈ 0.61")
claims.check("TopK more consistent than ReLU-L1 (synthetic)", f"PW-MCC {pw_t:.3f} vs {pw_r:.3f}",
             reproduced=pw_t > pw_r, paper="0.95 vs 0.61")
relu_row = lm_table.set_index("SAE").loc["ReLU-L1"]
bracketed = tk["L0"].min() <= relu_row["L0"] <= tk["L0"].max()
tk_at = (float(np.interp(np.log(relu_row["L0"]), np.log(tk["L0"]), tk["PW-MCC"])) if bracketed
         else float(tk.iloc[(np.log(tk["L0"]) - np.log(relu_row["L0"])).abs().argmin()]["PW-MCC"]))
claims.check("TopK more consistent than ReLU-L1 (LLM, matched L0)",
             f"PW-MCC {tk_at:.3f} (TopK at L0 {relu_row['L0']:.0f}) vs {relu_row['PW-MCC']:.3f} (ReLU-L1)"
             + ("" if bracketed else "; ReLU L0 outside the TopK sweep: nearest point"),
             reproduced=bracketed and tk_at > relu_row["PW-MCC"], partly=tk_at > relu_row["PW-MCC"],
             paper="TopK-family most consistent, PW-MCC ≈ 0.80")
rho = stats.spearmanr(np.log10(dens[live]), consistency[live])[0]
claims.check("Consistency depends on latent frequency (LLM)", f"Spearman ρ = {rho:+.2f} over {live.sum()} alive latents",
             reproduced=abs(rho) >= 0.3, partly=abs(rho) >= 0.1, paper="PW-MCC varies with firing frequency")
claims.save()
print(f"notebook compute: {time.perf_counter() - t_start:.0f} s wall")
claims.show()

# %%
# NBVAL_CHECK_OUTPUT
print(claims.verdicts())

# %% [markdown]
# ## What to take away
#
# * On the model organism PW-MCC is a faithful proxy *during training*: it rises with GT-MCC, and it
#   ranks TopK above ReLU + L1 exactly as the ground truth does. In the quick run both TopK scores
#   stop a few points short of the paper's (0.91 GT-MCC, 0.86 PW-MCC vs 0.95-0.99 and 0.95) with our
#   minibatch schedule; ReLU + L1 lands near the paper's 0.6, at an L0 of about 20 rather than 3.
# * The extensions show where the proxy loosens: in every setting we tried PW-MCC sat *below*
#   GT-MCC, most of all for the over-complete SAE (64 latents for 32 true features: every true
#   feature found, GT-MCC ≈ 0.99, but the spare latents differ between seeds, PW-MCC ≈ 0.76) and
#   for the under-complete one. A low PW-MCC therefore does not by itself mean the true features
#   were missed; width relative to the (unknown) number of features matters.
# * On the language model at this tiny scale PW-MCC is far below the paper's 0.80 (512 latents,
#   0.3M tokens; it was still rising when training stopped). Here TopK's consistency fell as k grew,
#   and ReLU + L1 was *more* consistent than TopK at its L0, the opposite of the paper's LLM ranking
#   (in line with Paulo & Belrose's report that ReLU SAEs are more seed-stable; see notebook 07). Per-latent consistency showed no
#   clear dependence on firing frequency at this scale. The claims table reports both as measured.
