# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext,-all
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Adaptive Temporal Masking: fighting feature absorption during training
#
# **Paper.** Li & Ren, *Time-Aware Feature Selection: Adaptive Temporal Masking for Stable Sparse
# Autoencoder Training* (October 2025, arXiv:2510.08855; two authors, full names not in our sources). Only the abstract and a secondary summary were reachable: no code, no full text.
# The method below is **ATM (reconstructed)**: our reading of the abstract, with every constant named.
# The absorption metric is Chanin et al., *A is for Absorption* (2024, arXiv:2409.14507), in the form
# of the SAEBench `absorption` eval (Karvonen et al. 2025).
#
# **What they claim.** SAEs trained with an L1 penalty suffer from *feature absorption*: a general
# feature (say "starts with S") stops firing on tokens where a more specific feature ("the token
# *short*") fires, because folding the general direction into the specific latent saves L1. ATM tracks,
# for every latent and over training, its activation magnitude, firing frequency and reconstruction
# contribution, turns them into an importance score and, during training, masks latents whose score
# falls below a statistical threshold, with a probability that depends on how far below they are. The
# abstract reports much lower absorption than TopK and JumpReLU SAEs on Gemma-2-2b (absorption
# 0.0068 vs 0.0114 vs 0.1402) while keeping reconstruction high (cosine 0.973).
#
# Here we reconstruct ATM in `saelib.sparsifiers.atm`, build the first-letter absorption metric in
# `saelib.metrics.absorption`, check that the metric finds absorption where we plant it, and compare TopK,
# JumpReLU, ReLU-L1 and ATM at matched L0 on SmolLM2-135M.

# %% tags=["parameters"]
PRESET = "quick"  # "quick": 2 CPU cores, offline; "full": paper-like scale on a GPU, online
SEED = 0

# %%
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from saelib import SAE, TrainConfig, train_sae
from saelib.companion import ClaimsTable, colors, log_axis, save_figure, setup, shared_activations, timer
from saelib.companion.claims import weakest_setting
from saelib.data.synthetic import parent_child_toy
from saelib.data.words import LETTERS, first_letter_activations
from saelib.metrics.absorption import measure_absorption, train_probe
from saelib.metrics.uncertainty import paired_bootstrap, paired_t_interval
from saelib.sweep import at_matched_l0, grid, preact_quantile, run_sweep

NB = "06_atm"
S = setup(NB, PRESET, seed=SEED)
print({k: v for k, v in vars(S).items() if k != "notebook"})

# %% [markdown]
# ## 1 · Absorption, and ATM as we reconstruct it
#
# **Absorption.** Suppose feature $A$ ("starts with S") is present on every token where feature $B$
# ("the token *short*") is. A ReLU SAE trained on $\lVert x - \hat x\rVert^2 + \lambda\sum_i f_i\lVert d_i\rVert$
# can encode a token with both as $f_A d_A + f_B d_B$ (two latents, L1 cost $f_A + f_B$), or with a single
# latent whose decoder is $\propto d_A + d_B$ (cost $\approx \lVert f_A d_A + f_B d_B\rVert < f_A + f_B$). The second is
# cheaper, so the $A$ latent goes silent on *short*: the "starts with S" latent has a hole, and an
# interpretability study that trusts it misses the token.
#
# **ATM (reconstructed).** A ReLU-L1 SAE (same encoder/decoder, init and input scaling as every notebook)
# plus, for every latent $i$, exponential moving averages with decay $\beta$ over training steps, computed
# from the batch's *unmasked* codes $f = \mathrm{ReLU}(z)$:
# $$m_i = \mathbb E[f_i \mid f_i > 0],\qquad p_i = \Pr[f_i > 0],\qquad r_i = \mathbb E\big[|f_i|\big]\,\lVert d_i\rVert .$$
# Importance is a weighted sum of z-scores (over latents) of their logs,
# $$I_i = w_m\, \mathrm z(\log m_i) + w_p\, \mathrm z(\log p_i) + w_r\, \mathrm z(\log r_i),$$
# the threshold is $\tau = \overline{I} - c\,\mathrm{std}(I)$, and after a warm-up of $t_0$ steps each latent
# with $I_i < \tau$ is masked (its code set to exactly 0 for the next step) with probability
# $$\Pr[\text{mask } i] = \sigma\!\left(\frac{\tau - I_i}{T(t)}\right),\qquad T(t) = T_0\,(T_1/T_0)^{\min(1,\,(t - t_0)/t_a)},$$
# only the least important $\rho$ fraction of latents being eligible. Masks are resampled after every
# optimiser step from a generator seeded by the run's seed; a masked latent gets no gradient that step and
# is left to recover (no auxiliary loss); evaluation never masks.
#
# **Constants (all our choices; the abstract gives none):**

# %%
A = S.atm
print(f"EMA decay β = {A['decay']}, weights (w_m, w_p, w_r) = {tuple(round(w, 3) for w in A['weights'])}, c = {A['c']}, "
      f"warm-up t0 = {A['warmup_steps']} steps, anneal t_a = {A['anneal_steps']} steps, "
      f"T0 = {A['temp_start']} → T1 = {A['temp_end']}, cap ρ = {A['max_mask_frac']:.0%} of latents")

# %% [markdown]
# Notes on the choices: $r_i$ is the abstract's "reconstruction contribution" in its cheapest form
# ($\mathbb E|f_i|\,\lVert d_i\rVert$; with unit-norm decoder rows it equals $m_i p_i$, so $I$ effectively
# weights magnitude and frequency $1/2$ each); the statistics come from unmasked codes so a masked latent's
# importance keeps tracking what it would do; the cap keeps masking from eating the dictionary.
#
# **Why this mask can reinforce itself.** Once $T$ has annealed, a latent far below $\tau$ is masked with
# probability close to 1 at every step. A masked latent gets no gradient (neither from the reconstruction nor
# from L1), so its encoder and decoder rows stop learning, its unmasked codes stay what they were, its importance
# stays below $\tau$, and it stays masked; at evaluation it switches back on as it was. Nothing in this reading
# lets a masked latent *recover*, although the abstract's "temporal" tracking suggests a mask that follows the
# latent over time. (Whether it does reinforce itself at this scale is printed under the figure of §3.)
#
# **Extension, ours: a recovering mask.** The same ATM with every masking probability capped,
# $\Pr[\text{mask } i] = \min\big(\sigma((\tau - I_i)/T(t)),\ p_\text{max}\big)$, $p_\text{max}$ =
# `S.atm_recover_prob` (fixed before any run, not tuned): a latent below $\tau$ still trains on at least a
# $1 - p_\text{max}$ share of the steps in expectation, so its importance can rise back above $\tau$. It is
# trained with the same λ sweep and seeds, reported as an extension row, and credited only against its own
# ReLU-L1 base.

# %% [markdown]
# ## 2 · Four SAEs at matched L0 (and the extension's fifth)
#
# TopK at $k$ = `S.k` (with AuxK, as in notebooks 02-03) sets the target L0. JumpReLU uses notebook 03's
# CPU recipe ($\theta$ initialised at a pre-activation quantile, a wide bandwidth, Adam $\beta_1 = 0$, no
# AuxK); ReLU-L1 and ATM share one L1 coefficient sweep (no AuxK), so ATM differs from ReLU-L1 *only*
# by the masking; the recovering-mask ATM (§1, ours) uses the same λ sweep. Every SAE: same width, data order,
# learning rate and batch size (preset); the whole
# grid is trained once per seed in `S.seeds` (the seed sets the initialisation, the data order and ATM's
# mask generator, the same for every family), because the claims compare *training methods* and must
# include seed-to-seed variation. For each swept family and seed we read the metrics at that seed's
# TopK L0 with `saelib.sweep.at_matched_l0`: linear interpolation in log L0 between the two runs that
# bracket the target, and **no extrapolation** (a target outside a family's L0 range gives no value, and
# the claims built on it are inconclusive). The L1 sweep was chosen from notebook 03's measured L0s so it
# brackets L0 = 32, before any absorption number existed. To fit three seeds in this notebook's budget (3 minutes;
# 3.75 since the recovering-mask extension's sweep was added), the quick preset trains `S.epochs` epoch(s)
# (ATM's warm-up and anneal, in steps, scaled with the step count) and keeps only the two end points of each
# λ sweep, whose L0s (measured at one seed and one epoch, before any absorption number on this data) bracket
# the target with a wide margin; the price is a coarser interpolation. ATM keeps state outside its
# `state_dict`, so it is trained directly; the other families go through the SAE store (`cache=True`) and are reused by any notebook that asks for the same SAE.
#
# **Data.** Training activations: the shared harvest, chunks drawn in one fixed permuted order over all
# training documents of both sources; held-out: the whole held-out split (printed below).

# %%
with timer("activations (cached)"):
    train_acts, eval_acts = shared_activations(S)
X, X_eval = train_acts.acts, eval_acts.acts
d = X.shape[1]
m = S.expansion * d
SEEDS = list(S.seeds)
n_docs = len(np.unique(eval_acts.sequence_documents.numpy()))
print(f"train {len(X):,} tokens; held-out {len(X_eval):,} tokens in {eval_acts.tokens.shape[0]} sequences "
      f"from {n_docs} documents; seeds {SEEDS}")


def recovering(runs: list) -> list:
    """The extension's runs, labelled apart from the reconstructed ATM's (family "atm_rec")."""
    for r in runs:
        r.label = "atm-recovering" + r.label[len("atm"):]
    return runs


def runs_for(seed: int) -> list:
    """The grid for one seed (JumpReLU's initial threshold and ATM's mask generator follow the seed)."""
    theta0 = preact_quantile(SAE(d, m, "relu", seed=seed), X, S.jr_init_quantile)
    return (grid(["topk"], [m], ks=[S.k])
            + grid(["jumprelu"], [m], lams=S.jr_lams,
                   sparsifier_kwargs={"jumprelu": dict(init_threshold=theta0, bandwidth=S.jr_bandwidth)},
                   train_kwargs={"jumprelu": dict(beta1=0.0, auxk_coeff=0.0, sparsity_warmup_frac=0.2)})
            + grid(["relu", "atm"], [m], lams=S.l1_coeffs, sparsifier_kwargs={"atm": dict(S.atm, mask_seed=seed)},
                   train_kwargs={"relu": dict(auxk_coeff=0.0), "atm": dict(auxk_coeff=0.0)})
            + recovering(grid(["atm"], [m], lams=S.l1_coeffs,
                              sparsifier_kwargs={"atm": dict(S.atm, mask_seed=seed, max_mask_prob=S.atm_recover_prob)},
                              train_kwargs={"atm": dict(auxk_coeff=0.0)})))



base = TrainConfig(epochs=S.epochs, lr=S.lr, batch_size=S.batch_size, seed=SEED)
store = {}
with timer(f"sweep: {len(runs_for(SEED))} SAEs x {len(SEEDS)} seeds, m = {m}"):
    table = pd.concat([run_sweep(runs_for(s), X, eval_acts, base, seeds=[s], store=store, cache=True, progress=False)
                       for s in SEEDS], ignore_index=True)
table.loc[table["label"].str.startswith("atm-recovering"), "arch"] = "atm_rec"  # the extension's family
table.groupby("label", sort=False)[["l0", "fvu", "cosine", "dead_frac", "train_s"]].mean().round(3)

# %% [markdown]
# ## 3 · What ATM masks, and when
#
# The ATM run closest to the target L0, seed `SEED`. Left: fraction of latents masked at each step, with
# the annealed temperature (and, dashed, the recovering mask's run at the same λ); middle: every latent that was
# ever masked (rows, ordered by first masking) over training steps; right: the final importance against the
# latent's firing frequency on held-out tokens.

# %%
pal = colors(5)
atm_rows = table[(table["arch"] == "atm") & (table["seed"] == SEED)]
atm_label = atm_rows.iloc[(np.log(atm_rows["l0"]) - np.log(S.k)).abs().argmin()]["label"]
sp = store[(atm_label, SEED)].sae.sparsifier
hist = torch.stack(sp.mask_history)                        # (steps, latents)
ever = hist.any(0)
first = torch.where(ever, hist.float().argmax(0), torch.full_like(ever, len(hist), dtype=torch.long))
order = first.argsort()[: int(ever.sum())]
steps = np.arange(len(hist))
dens = (store[(atm_label, SEED)].sae.encode(X_eval) > 0).float().mean(0).detach()

fig, axes = plt.subplots(1, 3, figsize=(17, 4.6))
sp_rec = store[("atm-recovering" + atm_label[len("atm"):], SEED)].sae.sparsifier
hist_rec = torch.stack(sp_rec.mask_history)
axes[0].plot(steps, sp.masked_fraction().numpy(), color=pal[0], label="masked fraction")
axes[0].plot(steps, sp_rec.masked_fraction().numpy(), color=pal[4], ls="--",
             label=f"recovering mask (p ≤ {S.atm_recover_prob:g})")
axes[0].axvline(A["warmup_steps"], color="0.4", ls=":", label=f"end of warm-up (t0 = {A['warmup_steps']})")
axes[0].axhline(A["max_mask_frac"], color=pal[3], ls="--", label=f"cap ρ = {A['max_mask_frac']:.0%}")
tw = axes[0].twinx()
tw.plot(steps, [sp.temperature(int(t)) for t in steps], color=pal[1], label="temperature T(t)")
tw.set(ylabel="temperature T", yscale="log")
axes[0].set(xlabel="training step", ylabel="fraction of latents masked", title=f"Masking over training ({atm_label}, seed {SEED})")
h1, l1 = axes[0].get_legend_handles_labels()
h2, l2 = tw.get_legend_handles_labels()
axes[0].legend(h1 + h2, l1 + l2, fontsize=9, loc="center right")
axes[1].imshow(hist[:, order].T.numpy(), aspect="auto", cmap="Greys", interpolation="nearest")
axes[1].set(xlabel="training step", ylabel="latent (ordered by first masking)",
            title=f"Which latents are masked when ({int(ever.sum())} of {m} ever)")
n_masked = hist.sum(0).numpy()
sc = axes[2].scatter(dens.clamp_min(1e-5).numpy(), sp.importance().numpy(), c=n_masked, cmap="viridis", s=12)
axes[2].set(xscale="log", xlabel="firing frequency on held-out tokens (floored at 1e-5)",
            ylabel="final importance I", title="Importance vs frequency")
fig.colorbar(sc, ax=axes[2], label="steps masked")
save_figure(fig, NB, "mask_dynamics")
plt.show()
post = slice(A["warmup_steps"], None)  # steps after the warm-up
share = {name: h[post][:, h[post].any(0)].float().mean(0) for name, h in [("reconstructed", hist), ("recovering", hist_rec)]}
print(f"ever masked: {int(ever.sum())} latents; masked at the last step: {int(hist[-1].sum())}; "
      f"final τ = {sp.tau_history[-1]:.2f}. Recovering mask: ever masked {int(hist_rec.any(0).sum())}, at the last "
      f"step {int(hist_rec[-1].sum())}. Share of the post-warm-up steps a latent is masked, over the latents masked "
      "at least once: " + "; ".join(f"{n} median {v.median():.2f}, max {v.max():.2f}" if len(v) else f"{n}: none"
                                    for n, v in share.items()))

# %% [markdown]
# ## 4 · Absorption on a real LM: the first-letter task
#
# **Data.** Every token of the SmolLM2 vocabulary that decodes to a leading space plus $\ge 2$ ASCII
# letters is a *word*; a fixed random sample of `S.words` of them is run through the LM as
# `S.word_prefix` + word (one forward of a few tokens each: our cheap prompt form; the prefix only keeps
# the word off the attention-sink position 0), and the layer-15 residual is read **at the word token**
# (cached). Label: the first letter.
#
# **Probe and gate.** A 26-way logistic-regression probe (scikit-learn, standardised inputs, $C = 1$,
# 70/30 word split). A letter counts only if its test F1 $\ge$ `S.f1_gate` and it has at least 5 test
# words the probe gets right (our thresholds, fixed before running).
#
# **Main latents and absorption** (SAEBench's rules): per letter, rank latents by their mean code on the
# letter's train words minus on the others, fit a class-balanced probe on the top $k$, and grow $k$
# (up to `S.max_k`) while test F1 rises by more than `S.f1_jump`. Then for each test word the probe
# classifies correctly, with $p$ the unit probe direction, $a_i = f_i\,(d_i\cdot p)$ and $A = (x - b_\text{dec})\cdot p$,
# the absorption fraction is the share of $A$ carried by up to 3 non-main latents with
# $\cos(d_i, p) \ge 0.1$ (zero unless they carry $\ge 40\%$ of $A$); *full absorption* = all main latents
# silent and the top-projecting latent ($\cos \ge 0.025$) carries $\ge 40\%$ of $A$. Averaged per letter,
# then over letters that pass the gate. (SAEBench uses $x\cdot p$; we remove $b_\text{dec}$, which the
# latents do not have to reconstruct: our choice.)

# %%
with timer("first-letter activations (cached after the first run)"):
    words = first_letter_activations(S.model, S.layer, max_words=S.words, prefix=S.word_prefix, seed=SEED)
with timer("26-way probe"):
    probe = train_probe(words, test_frac=S.probe_test_frac, seed=SEED)
passing = [LETTERS[i] for i in range(26) if probe.f1[i] >= S.f1_gate]
print(f"{len(words.words)} words; probe macro-F1 {probe.f1.mean():.3f}; "
      f"{len(passing)}/26 letters reach F1 >= {S.f1_gate}; failing: {sorted(set(LETTERS) - set(passing))}")

# %%
results = {}
keys = list(zip(table["label"], table["seed"]))
with timer(f"absorption of {len(table)} SAEs"):
    for key in keys:
        results[key] = measure_absorption(store[key].sae, words, probe, f1_gate=S.f1_gate, max_k=S.max_k,
                                          f1_jump=S.f1_jump)
table["absorption"] = [results[key].mean_fraction for key in keys]
table["full_absorption"] = [results[key].full_rate for key in keys]
table["letters_passing"] = [results[key].n_pass for key in keys]
table["mean_k"] = [results[key].per_class["k"][results[key].per_class["passes_gate"]].mean() for key in keys]
(table.groupby("label", sort=False)[["l0", "fvu", "cosine", "absorption", "full_absorption", "letters_passing",
                                     "mean_k"]].agg(["mean", "std"]).round(4))

# %% [markdown]
# **The paper's table, at matched L0.** For each seed, each family's metrics at that seed's TopK L0
# (`at_matched_l0`: interpolated in log L0 between the bracketing runs, no value when not bracketed);
# below, the mean over seeds and the number of seeds in which the family brackets the target.

# %%
NAMES = {"topk": "TopK", "jumprelu": "JumpReLU", "relu": "ReLU-L1", "atm": "ATM (reconstructed)",
         "atm_rec": "ATM, recovering mask (ours)"}
METRICS = ["fvu", "cosine", "absorption", "full_absorption"]
per_seed = []
for s in SEEDS:
    ts = table[table["seed"] == s]
    target = float(ts.loc[ts["arch"] == "topk", "l0"].iloc[0])
    for arch, name in NAMES.items():
        fam = ts[ts["arch"] == arch]
        vals = (fam.iloc[0][METRICS].astype(float).to_dict() | {"bracketed": True} if arch == "topk"
                else at_matched_l0(fam, target, METRICS))
        per_seed.append({"seed": s, "family": name, "target_l0": target, **{c: vals[c] for c in METRICS},
                         "bracketed": bool(vals["bracketed"])})
per_seed = pd.DataFrame(per_seed)
target_l0 = float(per_seed["target_l0"].mean())
matched = per_seed.groupby("family", sort=False)[METRICS].mean()
matched["seeds bracketed"] = per_seed.groupby("family", sort=False)["bracketed"].sum().astype(int)
matched["paper absorption (Gemma-2-2b)"] = pd.Series({"TopK": 0.1402, "JumpReLU": 0.0114, "ATM (reconstructed)": 0.0068})
matched.round(4)

# %%
fig, axes = plt.subplots(1, 3, figsize=(17, 4.6))
marks = {"topk": "s", "jumprelu": "^", "relu": "o", "atm": "D", "atm_rec": "v"}
for (arch, name), col in zip(NAMES.items(), pal):
    for s in SEEDS:
        sel = table[(table["arch"] == arch) & (table["seed"] == s)].sort_values("l0")
        for ax, metric in zip(axes[:2], ["absorption", "fvu"]):
            ax.plot(sel["l0"], sel[metric], marker=marks[arch], ms=7, color=col, alpha=0.8,
                    label=name if s == SEEDS[0] else None)
for ax, (metric, lab) in zip(axes[:2], [("absorption", "mean absorption fraction"), ("fvu", "FVU (held-out)")]):
    ax.axvline(target_l0, color="0.5", ls=":", label=f"matched L0 ≈ {target_l0:.3g} (TopK k = {S.k})")
    ax.set(xlabel="L0 (active latents per token, held-out)", ylabel=lab,
           title=f"{lab[0].upper() + lab[1:]} vs L0 (one line per seed, {len(SEEDS)} seeds)")
    log_axis(ax, "x", ticks=(8, 16, 32, 64, 128))
axes[0].legend(fontsize=9)
x = np.arange(26)
axes[2].bar(x, probe.f1, color=[pal[2] if f >= S.f1_gate else "0.7" for f in probe.f1])
axes[2].axhline(S.f1_gate, color=pal[3], ls="--", label=f"gate F1 = {S.f1_gate}")
axes[2].set_xticks(x, list(LETTERS))
axes[2].set(xlabel="first letter", ylabel="probe F1 (test words)", ylim=(0, 1.05),
            title=f"Probe gate: {len(passing)}/26 letters pass")
axes[2].legend(fontsize=9, loc="lower left")
save_figure(fig, NB, "absorption_vs_l0")
plt.show()

# %% [markdown]
# **Per letter, with its uncertainty.** For each family, the run nearest the matched L0 in each seed. Bars: seed
# `SEED`, with the 95% percentile-bootstrap interval over the letter's scored test words (2,000 resamples; the
# words are the unit, so the interval says how much the letter's mean could move with other words); dots: the
# other seeds (the seed-to-seed spread). The number of scored words is under each letter. A letter that
# passes the gate for one SAE but not for another (too few correctly probed words, or the probe) is left blank there.

# %%
def nearest_run(arch: str, seed: int) -> str:
    fam = table[(table["arch"] == arch) & (table["seed"] == seed)]
    return fam.iloc[(np.log(fam["l0"]) - np.log(target_l0)).abs().argmin()]["label"]


def gate_table(arch: str, seed: int) -> pd.DataFrame:
    return results[(nearest_run(arch, seed), seed)].per_class.set_index("class")


letters = [c for c in passing if all(gate_table(a, SEED).loc[c, "passes_gate"] for a in NAMES)]
letter_rows = []
for a, name in NAMES.items():
    for s in SEEDS:
        pc = gate_table(a, s)
        for c in letters:
            w = pc.loc[c, "word_fractions"]
            row = {"family": name, "seed": s, "letter": c, "n_words": len(w),
                   "absorption": float(np.mean(w)) if len(w) else np.nan}
            if s == SEED and len(w) >= 2:
                iv = paired_bootstrap(np.mean, w, seed=SEED, unit="words") if np.ptp(w) > 0 else None
                row.update(lo=iv.lo if iv else w[0], hi=iv.hi if iv else w[0])  # all words equal: no spread
            letter_rows.append(row)
per_letter = pd.DataFrame(letter_rows)
if letters:
    fig, ax = plt.subplots(figsize=(16, 4.6))
    width = 0.8 / len(NAMES)
    xs = np.arange(len(letters))
    for j, ((a, name), col) in enumerate(zip(NAMES.items(), pal)):
        sel = per_letter[per_letter["family"] == name]
        main_s = sel[sel["seed"] == SEED].set_index("letter").loc[letters]
        off = xs + (j - (len(NAMES) - 1) / 2) * width
        ax.bar(off, 100 * main_s["absorption"], width, color=col, label=name,
               yerr=100 * np.vstack([main_s["absorption"] - main_s["lo"], main_s["hi"] - main_s["absorption"]]),
               error_kw=dict(lw=0.8, capsize=1.5, ecolor="0.25"))
        others = sel[sel["seed"] != SEED]
        ax.plot(off[[letters.index(c) for c in others["letter"]]], 100 * others["absorption"], ".", color="0.1", ms=3,
                label="other seeds" if j == 0 else None)
    n_words = per_letter[(per_letter["seed"] == SEED)].groupby("letter")["n_words"].first().loc[letters]
    ax.set_xticks(xs, [f"{c}\n{n}" for c, n in n_words.items()])
    ax.set(xlabel="first letter (passing the gate for every family) and its number of scored test words",
           ylabel="absorption (% of the letter direction)", ylim=(0, None),
           title=f"Absorption per letter, run nearest L0 ≈ {target_l0:.3g} per family: seed {SEED} with 95% word "
                 f"bootstrap, dots: seeds {[s for s in SEEDS if s != SEED]}")
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1))
    save_figure(fig, NB, "absorption_per_letter")
    plt.show()
else:
    print("no letter passes the gate for every family: no per-letter absorption to show")

# %% [markdown]
# ## 5 · Does the metric see absorption where we plant it? A parent/child toy
#
# Orthonormal features in $\mathbb R^{32}$: a parent $A$ (present on 25% of samples), 10 children that fire
# only with $A$ (on an $A$ sample, exactly one child with probability 0.6, else none) and 10 independent
# features (10% each); magnitudes uniform in $[0.5, 1.5]$. The "letter" is $A$; the probe is trained on
# $A$'s presence. We score four dictionaries with *the same* code as above:
# * the **ground-truth dictionary** (codes = true coefficients): no absorption by construction;
# * a ReLU-L1 SAE trained on a **control** toy with no children: nothing to absorb;
# * a **ReLU-L1 SAE**, an **ATM** SAE and the **recovering-mask** ATM trained on the toy (21 latents = the number
#   of features).
#
# Independent check for the trained SAEs: the fraction of $A$ samples (probe-correct test samples) on
# which the latent best aligned with $A$ is silent, computed from the ground truth, not from the metric.
# Settings (`S.toy_*`) were fixed while writing the unit test `tests/test_absorption.py`.

# %%
def toy_run(p_child: float, arch: str | None, max_mask_prob: float = 1.0):
    toy, feats, coef = parent_child_toy(n=S.toy_n, p_child=p_child, seed=SEED)
    pr = train_probe(toy, test_frac=S.probe_test_frac, seed=SEED)
    n_feat = feats.shape[0]
    if arch is None:  # ground truth: encoder = decoder = the true features (orthonormal, so codes = coef)
        sae = SAE(toy.acts.shape[1], n_feat, "relu", seed=SEED)
        with torch.no_grad():
            sae.W_dec.copy_(feats)
            sae.W_enc.copy_(feats.T)
    else:
        kw = dict(S.atm, mask_seed=SEED, max_mask_prob=max_mask_prob) if arch == "atm" else {}
        sae = train_sae(SAE(toy.acts.shape[1], n_feat, arch, seed=SEED, **kw), toy.acts,
                        TrainConfig(epochs=S.toy_epochs, lr=S.toy_lr, batch_size=512, sparsity_coeff=S.toy_l1,
                                    auxk_coeff=0.0, normalize_input=False, seed=SEED, progress=False)).sae
    res = measure_absorption(sae, toy, pr, classes=[1], names=None, f1_gate=S.f1_gate, max_k=S.max_k, f1_jump=S.f1_jump)
    te = torch.as_tensor(pr.test_idx)
    tp = te[(toy.labels[te] == 1) & (torch.as_tensor(pr.pred)[te] == 1)]
    parent_latent = int((torch.nn.functional.normalize(sae.W_dec, dim=1) @ feats[0]).argmax())
    with torch.no_grad():
        silent = float((sae.encode(toy.acts[tp])[:, parent_latent] <= 0).float().mean())
    with_child = float((coef[tp, 1:11] > 0).any(1).float().mean())
    return {"absorption": res.mean_fraction, "full_absorption": res.full_rate, "parent latent silent": silent,
            "A samples with a child": with_child, "probe F1": float(pr.f1[1]), "main latents k": int(res.per_class["k"][0]),
            "FVU": float(((toy.acts - sae(toy.acts).detach()) ** 2).sum() / ((toy.acts - toy.acts.mean(0)) ** 2).sum())}


with timer("toy: 1 ideal + 4 trained dictionaries"):
    toy_tab = pd.DataFrame({"ground-truth dictionary": toy_run(0.6, None),
                            "ReLU-L1, control (no children)": toy_run(0.0, "relu"),
                            "ReLU-L1": toy_run(0.6, "relu"),
                            "ATM (reconstructed)": toy_run(0.6, "atm"),
                            "ATM, recovering mask (ours)": toy_run(0.6, "atm", S.atm_recover_prob)}).T
toy_tab.round(3)

# %%
fig, ax = plt.subplots(figsize=(12, 4.4))
cols3 = ["absorption", "full_absorption", "parent latent silent"]
toy_tab[cols3].plot.bar(ax=ax, color=[pal[0], pal[1], "0.55"], width=0.75)
ax.set(ylabel="fraction of parent samples", xlabel="dictionary",
       title="Planted absorption: metric (colours) vs ground truth (grey)")
ax.set_xticks(range(len(toy_tab)), [textwrap.fill(n, 18) for n in toy_tab.index], rotation=0)
ax.legend(["mean absorption fraction (metric)", "full-absorption rate (metric)",
           "parent latent silent (ground truth)"], fontsize=9, loc="upper left")
save_figure(fig, NB, "toy_absorption")
plt.show()

# %% [markdown]
# ## 6 · Claims check
#
# How an interval and a margin become a verdict, and why one seed is not enough, are explained once in
# [`docs/uncertainty.md`](../docs/uncertainty.md); the terms are in [`docs/glossary.md`](../docs/glossary.md).
#
# The verdict model (`saelib.companion.claims`): each claim states its statistic, direction, margin $m$ and
# uncertainty before the run; with $[lo, hi]$ the 95% interval of the effect in the claimed direction it is
# *reproduced* if $lo \ge m$, *partly* if $0 < lo < m$, *not reproduced* if $lo \le 0$ and $hi < m$, and
# *inconclusive* if the interval straddles the margin or a precondition fails (here: a family's sweep does
# not bracket the TopK L0 in some seed, `at_matched_l0` never extrapolates; and, for the two absorption
# claims, no letter passing the probe gate, which leaves nothing to average absorption over). All the claims compare
# training methods, so the unit is the **seed**: per-seed paired differences (same seed, data order and
# held-out words for every family), t-interval over the `len(SEEDS)` seeds.
#
# * **Lower absorption than TopK and JumpReLU at matched L0.** Statistic: per seed,
#   absorption(X) − absorption(ATM) at that seed's TopK L0, in percentage points (absorption fraction
#   × 100), for X = TopK and X = JumpReLU. Aggregate fixed beforehand: ATM must beat *both*, so the claim
#   is scored on the weaker comparison (`saelib.companion.claims.weakest_setting`). Margin 0.1 points: with ~`S.words` × `S.probe_test_frac`
#   / 26 test words per letter, one fully absorbed word moves the mean over ~20 letters by about 0.1
#   points, so 0.1 points is about the smallest difference that is one word rather than rounding.
# * **The masking itself lowers absorption**: ATM vs its own ReLU-L1 base at matched L0, the only
#   comparison that isolates the mask. Statistic: per seed, the relative drop
#   100 × (1 − absorption(ATM) / absorption(ReLU-L1)), in percent; margin 20%.
#   Precondition: ReLU-L1 has some absorption in every seed (else there is nothing to lower). This row is
#   ours, not the paper's, and was posed after a first single-seed run had shown ATM and ReLU-L1 almost
#   equal; its statistic and margin have not changed since.
# * **Reconstruction comparable** (an equivalence claim): per seed, 100 × (FVU(ATM) / FVU(ReLU-L1) − 1) at
#   matched L0, in percent; reproduced if the whole interval lies inside ±10%, not
#   reproduced if wholly outside. Cosines printed with the paper's 0.973.
# * **Extension, ours: the recovering mask lowers absorption** below the same ReLU-L1 base: the statistic, margin
#   and precondition of the "masking itself" row, with the recovering-mask ATM in place of the reconstructed one.
#   Posed before its first run, and reported whatever it gives; its FVU against the base is printed beside it.
#
# Checks (shown, never counted as reproductions):
# * **The metric detects planted absorption** (toy, seed `SEED`): the ground-truth dictionary scores 0 and
#   the control < 0.05; the trained ReLU-L1 SAE's full-absorption rate is within 0.05 of the ground-truth
#   silent-parent rate and its absorption fraction > 0.1.
# * **Letters pass the probe gate**: at least 20 of 26 (enough for a per-letter average to mean something
#   at 135M parameters).

# %%
claims = ClaimsTable(NB, PRESET, SEED)
ps = {name: per_seed[per_seed["family"] == name].set_index("seed") for name in NAMES.values()}
A_, T_, J_, R_ = (ps[n] for n in ["ATM (reconstructed)", "TopK", "JumpReLU", "ReLU-L1"])


def seeds_interval(a: pd.Series, *families: pd.DataFrame, b: pd.Series | None = None):
    """Paired t-interval of a - b (b = 0 if not given) over the seeds where every family brackets the target
    and both are finite; (interval, all seeds used)."""
    b = pd.Series(0.0, index=a.index) if b is None else b
    ok = np.logical_and.reduce([f.loc[SEEDS, "bracketed"].to_numpy() for f in families])
    ok &= np.isfinite(a.loc[SEEDS].to_numpy()) & np.isfinite(b.loc[SEEDS].to_numpy())  # e.g. a ratio over a zero base
    if ok.sum() < 2:
        return paired_t_interval([0.0, 0.0], [0.0, 0.0])._replace(estimate=np.nan, lo=np.nan, hi=np.nan), False
    return paired_t_interval(a.loc[SEEDS][ok].to_numpy(), b.loc[SEEDS][ok].to_numpy()), bool(ok.all())


def fmt(iv, unit: str = "") -> str:
    """Estimate [95% interval] with its unit; "n/a" where fewer than 2 seeds could be compared."""
    if not np.isfinite(iv.estimate):
        return "n/a (fewer than 2 seeds to compare)"
    return f"{iv.estimate:+.2f} [{iv.lo:+.2f}, {iv.hi:+.2f}]{unit}"


PP = 100  # absorption fraction -> percentage points
gate_ok = int(table["letters_passing"].min()) > 0  # absorption is averaged over the letters passing the gate
NO_LETTER = f"at least one letter passes the probe gate (F1 >= {S.f1_gate} and >= 5 test words): none does"
iv_t, ok_t = seeds_interval(PP * T_["absorption"], T_, A_, b=PP * A_["absorption"])
iv_j, ok_j = seeds_interval(PP * J_["absorption"], J_, A_, b=PP * A_["absorption"])
_, worst = weakest_setting({"TopK": iv_t, "JumpReLU": iv_j}, margin=0.1)
mean_abs = {n: PP * ps[n]["absorption"].mean() for n in NAMES.values()}
# the same comparison for plain ReLU-L1 (ATM's base, no mask): what holds for ATM here may hold without the mask
iv_rt, _ = seeds_interval(PP * T_["absorption"], T_, R_, b=PP * R_["absorption"])
iv_rj, _ = seeds_interval(PP * J_["absorption"], J_, R_, b=PP * R_["absorption"])
claims.add_claim(
    "ATM has lower absorption than TopK and JumpReLU at matched L0",
    statistic="per seed: absorption(X) - absorption(ATM) at that seed's TopK L0, percentage points, X = TopK and "
              "X = JumpReLU; paired t over seeds; aggregate: the weakest comparison",
    interval=worst, margin=0.1, direction="greater", uncertainty="seeds", n_seeds=len(SEEDS),
    precondition=(gate_ok and ok_t and ok_j,
                  "JumpReLU and ATM sweeps bracket the TopK L0 in every seed" if gate_ok else NO_LETTER),
    measured=f"absorption at L0 ≈ {target_l0:.3g} (points, mean of {len(SEEDS)} seeds): ATM {mean_abs['ATM (reconstructed)']:.3f}, "
             f"TopK {mean_abs['TopK']:.3f}, JumpReLU {mean_abs['JumpReLU']:.3f}, ReLU-L1 {mean_abs['ReLU-L1']:.3f}; "
             f"TopK - ATM {fmt(iv_t)}, JumpReLU - ATM {fmt(iv_j)}; the same for plain ReLU-L1 (no mask): TopK - ReLU-L1 "
             f"{fmt(iv_rt)}, JumpReLU - ReLU-L1 {fmt(iv_rj)}",
    paper="ATM 0.0068 vs JumpReLU 0.0114 vs TopK 0.1402 (Gemma-2-2b)")
rl_pos = bool((R_.loc[SEEDS, "absorption"] > 0).all())
drop = 100 * (1 - A_["absorption"] / R_["absorption"].where(R_["absorption"] > 0))
iv_drop, ok_r = seeds_interval(drop, A_, R_)
claims.add_claim(
    "The masking itself lowers absorption (ATM vs its ReLU-L1 base, >= 20% lower)",
    statistic="per seed: 100 x (1 - absorption(ATM) / absorption(ReLU-L1)) at that seed's TopK L0 (%); paired t over seeds",
    interval=iv_drop, margin=20.0, direction="greater", uncertainty="seeds", n_seeds=len(SEEDS),
    precondition=(gate_ok and ok_r and rl_pos, "ATM and ReLU-L1 bracket the TopK L0 and ReLU-L1 has absorption > 0 "
                  "in every seed" if gate_ok else NO_LETTER),
    measured=f"absorption at L0 ≈ {target_l0:.3g}: ATM {mean_abs['ATM (reconstructed)']:.3f} vs ReLU-L1 "
             f"{mean_abs['ReLU-L1']:.3f} points (ReLU-L1 zero in {int((R_.loc[SEEDS, 'absorption'] == 0).sum())} of "
             f"{len(SEEDS)} seeds); relative drop over the other seeds {fmt(iv_drop, ' %')}",
    paper="masking under-used latents reduces the absorption that L1 induces (abstract)")
gap = 100 * (A_["fvu"] / R_["fvu"] - 1)
iv_gap, ok_f = seeds_interval(gap, A_, R_)
iv_ft, _ = seeds_interval(100 * (A_["fvu"] / T_["fvu"] - 1), A_, T_)  # beside TopK and JumpReLU too (not the claim)
iv_fj, _ = seeds_interval(100 * (A_["fvu"] / J_["fvu"] - 1), A_, J_)
fv, cs = matched["fvu"], matched["cosine"]
claims.add_claim(
    "ATM keeps reconstruction quality (FVU within 10% of ReLU-L1)",
    statistic="per seed: 100 x (FVU(ATM) / FVU(ReLU-L1) - 1) at that seed's TopK L0 (%); paired t over seeds; "
              "equivalence within +-10%",
    interval=iv_gap, margin=10.0, direction="greater", kind="equivalence", uncertainty="seeds", n_seeds=len(SEEDS),
    precondition=(ok_f, "ATM and ReLU-L1 bracket the TopK L0 in every seed"),
    measured=f"FVU ATM {fv['ATM (reconstructed)']:.3f} vs ReLU-L1 {fv['ReLU-L1']:.3f} ({fmt(iv_gap, ' %')}), TopK "
             f"{fv['TopK']:.3f} (ATM {fmt(iv_ft, ' %')} above it), JumpReLU {fv['JumpReLU']:.3f} (ATM {fmt(iv_fj, ' %')}); "
             f"cosine ATM {cs['ATM (reconstructed)']:.3f}",
    paper="ATM cosine 0.973 (Gemma-2-2b)")
X_ = ps["ATM, recovering mask (ours)"]
drop_rec = 100 * (1 - X_["absorption"] / R_["absorption"].where(R_["absorption"] > 0))
iv_drop_rec, ok_rec = seeds_interval(drop_rec, X_, R_)
iv_gap_rec, _ = seeds_interval(100 * (X_["fvu"] / R_["fvu"] - 1), X_, R_)
cl_rec = claims.add_claim(
    "Extension, ours: a recovering mask lowers absorption below its ReLU-L1 base (>= 20% lower)",
    statistic=f"per seed: 100 x (1 - absorption(recovering ATM, p_max = {S.atm_recover_prob:g}) / absorption(ReLU-L1)) "
              "at that seed's TopK L0 (%); paired t over seeds",
    interval=iv_drop_rec, margin=20.0, direction="greater", uncertainty="seeds", n_seeds=len(SEEDS),
    precondition=(gate_ok and ok_rec and rl_pos, "the recovering ATM and ReLU-L1 bracket the TopK L0 and ReLU-L1 has "
                  "absorption > 0 in every seed" if gate_ok else NO_LETTER),
    measured=f"absorption at L0 ≈ {target_l0:.3g}: recovering ATM {mean_abs['ATM, recovering mask (ours)']:.3f} vs ReLU-L1 "
             f"{mean_abs['ReLU-L1']:.3f} points; relative drop {fmt(iv_drop_rec, ' %')}; FVU vs ReLU-L1 {fmt(iv_gap_rec, ' %')}",
    paper="(extension: the abstract's temporal tracking read as a mask latents can leave)")
gt, ctrl, rt = (toy_tab.loc[k] for k in ["ground-truth dictionary", "ReLU-L1, control (no children)", "ReLU-L1"])
base_ok = gt["absorption"] == 0 and gt["full_absorption"] == 0 and ctrl["absorption"] < 0.05
det_ok = abs(rt["full_absorption"] - rt["parent latent silent"]) <= 0.05 and rt["absorption"] > 0.1
claims.add_check("The absorption metric detects planted absorption (toy)", base_ok and det_ok,
                 f"ground truth {gt['absorption']:.3f}, control {ctrl['absorption']:.3f}; ReLU-L1 absorption "
                 f"{rt['absorption']:.3f}, full {rt['full_absorption']:.3f} vs parent silent {rt['parent latent silent']:.3f}")
claims.add_check("Enough letters pass the probe gate (>= 20 of 26)", len(passing) >= 20,
                 f"{len(passing)}/26 letters with probe F1 >= {S.f1_gate}; macro-F1 {probe.f1.mean():.3f}; absorption "
                 f"averages over those that also have >= 5 correctly probed test words: "
                 f"{int(table['letters_passing'].min())}-{int(table['letters_passing'].max())} letters per SAE")
claims.save()
claims.show()

# %%
claims.checks_frame()

# %%
# NBVAL_CHECK_OUTPUT
print(claims.verdicts())

# %% [markdown]
# ## What to take away

# %%
at, at_rec = toy_tab.loc["ATM (reconstructed)"], toy_tab.loc["ATM, recovering mask (ours)"]
zero_share = float((per_letter["absorption"] == 0).mean()) if len(per_letter) else float("nan")
display(Markdown(f"""
* Absorption is a measurable, not just anecdotal, failure: on the toy the metric scores a correct dictionary at
  {gt['absorption']:.3f}, and the trained ReLU-L1 SAE's full-absorption rate ({rt['full_absorption']:.3f}) tracks the
  ground-truth rate at which the parent latent goes silent ({rt['parent latent silent']:.3f}). On the same toy (one
  seed, not a claim) ATM scores {at['absorption']:.3f} (full {at['full_absorption']:.3f}) against ReLU-L1's
  {rt['absorption']:.3f}.
* ATM as reconstructed here is a light-weight change to a ReLU-L1 SAE: a few EMAs and a stochastic mask on the
  least important latents. In the run shown in section 3 it ever masked {int(ever.sum())} of {m} latents and
  {int(hist[-1].sum())} at the last step (seed {SEED}; the masked fraction is largest right after the warm-up and
  falls as the temperature anneals, left panel of section 3); the masked latents are the low-frequency,
  low-importance ones of the scatter, which carry little of any letter's direction.
* On the first-letter task at L0 ≈ {target_l0:.3g} ({len(SEEDS)} seeds), ATM minus TopK and ATM minus JumpReLU
  absorption are {-iv_t.estimate:+.3f} [{-iv_t.hi:+.3f}, {-iv_t.lo:+.3f}] and {-iv_j.estimate:+.3f}
  [{-iv_j.hi:+.3f}, {-iv_j.lo:+.3f}] percentage points, against mean absorptions of
  {", ".join(f"{n} {v:.3f}" for n, v in mean_abs.items())} points: absorption is at the floor of the metric for every
  family here, so these comparisons cannot separate the methods. ReLU-L1, ATM's own base, scores exactly 0 in
  {int((R_.loc[SEEDS, 'absorption'] == 0).sum())} of {len(SEEDS)} seeds, so the "masking itself" test has nothing to
  lower. The reconstruction claim cannot distinguish much while the mask changes so little: ATM's FVU is
  {fv['ATM (reconstructed)']:.3f} against ReLU-L1's {fv['ReLU-L1']:.3f}, and TopK and JumpReLU reach
  {fv['TopK']:.3f} and {fv['JumpReLU']:.3f}.
* Extension, ours: the recovering mask (masking probability capped at {S.atm_recover_prob:g}) ever masked
  {int(hist_rec.any(0).sum())} latents, {int(hist_rec[-1].sum())} at the last step, in the run of section 3. Whether the
  reconstructed mask locks latents in at this scale: a latent it masked at least once was masked on a median
  {share['reconstructed'].median():.0%} of the post-warm-up steps (at most {share['reconstructed'].max():.0%}; with the cap:
  {share['recovering'].median():.0%}, at most {share['recovering'].max():.0%}). Its absorption
  is {mean_abs['ATM, recovering mask (ours)']:.3f} points against ReLU-L1's {mean_abs['ReLU-L1']:.3f} (relative drop
  {fmt(iv_drop_rec, ' %')}, verdict: {cl_rec}), its FVU {fmt(iv_gap_rec, ' %')} against ReLU-L1's; on the toy it scores
  {at_rec['absorption']:.3f} (full {at_rec['full_absorption']:.3f}).
* The paper's gap (0.0068 vs 0.1402) was measured on a 2B model with 16k+ latents; absorption is small for every
  SAE at our scale ({zero_share:.0%} of the (family, seed, letter) cells of the per-letter figure are exactly 0), and
  our reconstruction may differ from the authors' method in every constant.
* Scale caveat: {m} latents, {len(X):,} training tokens over {S.epochs:g} epoch(s), {len(SEEDS)} seeds; held-out
  FVU over {len(X_eval):,} tokens of {n_docs} documents; a 135M LM whose probe passes the gate on {len(passing)} of 26
  letters. `PRESET = "full"` runs 9,216 latents on a GPU with the whole vocabulary.
"""))
