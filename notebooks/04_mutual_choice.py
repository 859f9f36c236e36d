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
import copy

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from saelib import TrainConfig
from saelib.companion import ClaimsTable, colors, log_axis, save_figure, setup, shared_activations, timer
from saelib.losses import AuxZipfLoss
from saelib.companion.claims import NO_SETTING, decide, weakest_setting
from saelib.metrics.reconstruction import evaluate
from saelib.metrics.splice import Splice
from saelib.metrics.uncertainty import Interval, grouped_bootstrap, paired_t_interval
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
# **Scaled down for 2 CPU cores (chosen on cost):** width $F = 2d$ (a first run at $4d$ cost more
# than twice the CPU budget and was stopped before any result), half an epoch of the shared training
# harvest in batches of 576 tokens (576 makes $kN/F$ an integer), learning rate 3e-3, threshold averages
# with $\beta = 0.9$ started after 50 batches, a dead window of `S.dead_window_tokens` training tokens for
# AuxK (instead of Gao's 10M), $k_\text{aux} = d/2$. The paper trains far longer and wider (up to 34M
# latents). The numbers this gives are printed below the next cell.
#
# **A setting where latents die.** At the learning rate above no rule leaves a single latent dead, and
# "fewer dead latents than TopK" cannot be told from 0% against 0%. The dead-latent claims therefore get a
# second setting, **our choice, made on TopK alone before any MC or FC SAE was trained there**: the first
# learning rate of (1e-2, 3e-2) at which TopK without AuxK (same width, half an epoch, seed 0) leaves at
# least 5% of its latents dead on 20,000 training tokens. 1e-2 left 13.7% dead in that pilot (3e-2: 58%),
# so the *dead setting* is the same grid at learning rate `S.dead_lr`; a preset with both a dead setting and
# SAEs with auxiliary losses trains the latter there, where AuxK and aux_zipf have latents to revive (quick
# trains none, for its budget). (`full` trains wide enough for TopK to leave latents dead at its own learning
# rate, `S.dead_lr = None`, and scores everything, auxiliary losses included, on one setting.)
#
# **Seeds.** A claim that one training rule beats another needs seed-to-seed variation
# ([`docs/glossary.md`](../docs/glossary.md)): the SAEs are trained with the same seeds `S.seeds` and the same
# data order per seed. The 4-minute budget of this notebook holds three seeds at $k$ = `S.k` (`S.ks`, the
# other $k$ of the reconstruction–sparsity curve are in `full`) in both settings, without auxiliary losses;
# the SAEs with auxiliary losses get the seeds `S.aux_seeds`: none in quick (with them the notebook ran over
# its row), three in `full`, which seeds everything (run times are in the README's table, from `run.json`). A claim whose
# settings lack three seeds says so: inconclusive, "budget". Δ LM loss needs the splice over at least 32
# held-out sequences for every SAE, which the quick preset cannot afford and no claim here rests on: the
# quick preset skips it.

# %%
with timer("activations (cached)"):
    train_acts, eval_acts = shared_activations(S)
X, X_eval = train_acts.acts, eval_acts.acts
d = X.shape[1]
F = S.expansion * d
splice = None
if S.splice_seqs:  # full preset only (see above)
    with timer("splice (clean CE cached once)"):
        splice = Splice(eval_acts, max_seqs=S.splice_seqs)
docs = eval_acts.sequence_documents.numpy()
n_steps = int(S.epochs * len(X)) // S.batch_size
display(Markdown(f"Training: {len(X):,} tokens, of which {S.epochs} epoch = {n_steps} steps of {S.batch_size} tokens. "
                 f"Held-out: the whole held-out split, {len(X_eval):,} tokens in {len(docs)} sequences from "
                 f"{len(np.unique(docs))} documents. $d$ = {d}, $F$ = {F}, {S.threads} intra-op threads. "
                 + (f"Δ LM loss over {splice.n_tokens:,} held-out predictions." if splice else "No Δ LM loss (quick preset).")))

# %% [markdown]
# ## 2 · The grid
#
# *Main setting* (learning rate `S.lr`): the four rules without auxiliary loss at every $k$ of `S.ks`
# (seeds `S.seeds` at `S.seed_ks`, else the first), and at $k$ = `S.k` one extension, **FC-zipf-cap**:
# Feature Choice with the Zipf allocation capped at `S.cap_density` of the batch's tokens per latent (ours,
# fixed before it ran; section 6 shows why). *Dead setting* (learning rate `S.dead_lr`, $k$ = `S.k`): the
# four rules without auxiliary loss (seeds `S.seeds`) and each with its auxiliary loss(es) (seeds
# `S.aux_seeds`). Within a setting every SAE has the same width and optimiser settings, and per seed the same
# init seed and data order. The sweep helper measures each on the held-out tokens with its inference rule
# (thresholds for MC and FC): `saelib.metrics.reconstruction.evaluate`, the one evaluation path.

# %%
thr = dict(threshold_beta=S.threshold_beta, threshold_start=S.threshold_start)
rules = {"TopK": ("topk", {}),
         "MC": ("mutual_choice", thr),
         "FC-uniform": ("feature_choice", dict(allocation="uniform", **thr)),
         "FC-zipf": ("feature_choice", dict(allocation="zipf", zipf_alpha=S.zipf_alpha, freq_beta=S.freq_beta, **thr))}
ext_rules = {"FC-zipf-cap": ("feature_choice", dict(rules["FC-zipf"][1], max_density=S.cap_density))}
aux_for = {"TopK": ["AuxK"], "MC": ["AuxK", "aux_zipf"], "FC-uniform": ["aux_zipf"], "FC-zipf": ["aux_zipf"]}
SEEDS = list(S.seeds)
DEAD = "dead" if S.dead_lr is not None else "main"   # the setting the dead-latent claims are scored on


def make_run(rule: str, k: int, aux: str = "none", lr: float | None = None) -> Run:
    arch, kw = (rules | ext_rules)[rule]
    tk = {"auxk_coeff": S.aux_coeff if aux == "AuxK" else 0.0} | ({"lr": lr} if lr is not None else {})
    if aux == "aux_zipf":  # a fresh, stateful loss object per run (run_sweep copies the config per seed)
        tk["loss_terms"] = {"aux_zipf": AuxZipfLoss(F, coeff=S.aux_coeff, beta=S.aux_beta, below=S.aux_below)}
    return Run(arch, F, k=k, sparsifier_kwargs=dict(kw), train_kwargs=tk,
               label=f"{rule} k={k} aux={aux}" + (f" lr={lr:g}" if lr is not None else ""))


def grid_at(k: int, seed: int) -> list[Run]:
    """The main setting; the auxiliary losses join it only where there is no separate dead setting."""
    with_aux = k == S.k and seed in S.aux_seeds and DEAD == "main"
    return ([make_run(r, k) for r in rules] + ([make_run(r, k) for r in ext_rules] if k == S.k else [])
            + ([make_run(r, k, a) for r in rules for a in aux_for[r]] if with_aux else []))


def dead_grid(seed: int) -> list[Run]:
    """The dead setting: the four rules at S.dead_lr, with their auxiliary losses at the aux seeds."""
    with_aux = seed in S.aux_seeds
    return ([make_run(r, S.k, lr=S.dead_lr) for r in rules]
            + ([make_run(r, S.k, a, lr=S.dead_lr) for r in rules for a in aux_for[r]] if with_aux else []))


base = TrainConfig(epochs=S.epochs, lr=S.lr, batch_size=S.batch_size, dead_window_tokens=S.dead_window_tokens,
                   seed=SEED)
store, evals, parts = {}, {}, []
with torch_threads(S.threads), timer("sweep"):
    for k in S.ks:
        for s in (SEEDS if k in S.seed_ks else SEEDS[:1]):  # fresh runs per seed: the aux_zipf loss is stateful
            parts.append(run_sweep(grid_at(k, s), X, eval_acts, base, splice=splice, seeds=[s], store=store,
                                   evaluations=evals, progress=False))
    if DEAD == "dead":
        for s in SEEDS:
            parts.append(run_sweep(dead_grid(s), X, eval_acts, base, splice=splice, seeds=[s], store=store,
                                   evaluations=evals, progress=False))
table = pd.concat(parts, ignore_index=True)
table["rule"] = table["label"].str.split(" ").str[0]
table["aux"] = table["label"].str.split("aux=").str[1].str.split(" ").str[0]
table["setting"] = np.where(table["label"].str.contains(" lr="), "dead", "main")
print(f"{len(table)} SAEs trained: {table['label'].nunique()} settings; main (lr {S.lr:g}): seeds {SEEDS} at k in "
      f"{list(S.seed_ks)}, seed {SEEDS[0]} elsewhere; dead-latent setting (lr {S.dead_lr if S.dead_lr else S.lr:g}): seeds "
      f"{SEEDS} without auxiliary loss, {list(S.aux_seeds)} with")

# %% [markdown]
# **The same SAEs under the training-time batch rule.** Held-out tokens in shuffled batches of the
# training batch size (consecutive held-out tokens come from one document, and a per-feature top-$m$
# inside one document is not what the SAE was trained on). TopK is the same under both rules. Only the
# SAEs a claim or a figure uses are evaluated twice: those of the main setting, every seed without
# auxiliary loss and the first seed with (the dead-latent claims use the inference rule only).

# %%
batch_evals = {}
with torch_threads(S.threads), timer("batch-rule evaluations"):
    for r in table.itertuples():
        if r.setting == "main" and r.rule != "TopK" and (r.aux == "none" or r.seed == SEEDS[0]):
            batch_evals[(r.label, r.seed)] = evaluate(store[(r.label, r.seed)].sae, eval_acts, batch_rule=True,
                                                      batch_size=S.batch_size, seed=r.seed)


def ev_of(label: str, seed: int, rule: str):
    """The Evaluation of one SAE under ``rule``; TopK has one rule; None where the batch rule was not run."""
    return evals[(label, seed)] if rule == "threshold" or label.startswith("TopK") else batch_evals.get((label, seed))


for rule in ("batch", "threshold"):
    for col in ("l0", "fvu", "dead_frac"):
        table[f"{col}_{rule}"] = [np.nan if (e := ev_of(r.label, r.seed, rule)) is None else e[col]
                                  for r in table.itertuples()]
table["near_dead"] = [float((evals[(r.label, r.seed)].densities * len(X_eval) < 10).float().mean())
                      for r in table.itertuples()]
shown = ["l0_batch", "fvu_batch", "l0_threshold", "fvu_threshold", "dead_frac_threshold", "near_dead"]
table.groupby(["setting", "k", "rule", "aux"], sort=False)[shown].mean().round(3)

# %% [markdown]
# ## 3 · Dead latents
#
# A latent is **dead** if it never fires on the held-out split under the inference rule (the evaluation
# window: every held-out token); "near-dead" if it fires on fewer than 10 of them (our choice). Both are
# shown for every rule at $k$ = `S.k`, in both settings, without and with its auxiliary loss, as the mean over
# the seeds trained.

# %%
main = table[(table["k"] == S.k) & (table["setting"] == "main")].copy()
dead = table[(table["k"] == S.k) & (table["setting"] == DEAD)].copy()
lr_of = {"main": S.lr, "dead": S.dead_lr}
both = table[(table["k"] == S.k) & table["rule"].isin(list(rules))].assign(
    setting_lr=lambda t: [f"{st} (lr {lr_of[st]:g})" for st in t["setting"]])
pivot = {name: both.pivot_table(index="rule", columns=["setting_lr", "aux"], values=col, sort=False).reindex(list(rules)) * 100
         for name, col in [("dead", "dead_frac_threshold"), ("near-dead", "near_dead")]}
dead_tab = dead.pivot_table(index="rule", columns="aux", values="dead_frac_threshold").reindex(list(rules)) * 100
near_tab = dead.pivot_table(index="rule", columns="aux", values="near_dead").reindex(list(rules)) * 100
print(f"% dead latents (held-out window: {len(X_eval):,} tokens; mean over seeds {SEEDS} without aux, "
      f"{list(S.aux_seeds)} with)")
display(pivot["dead"].round(2))
print("% near-dead latents (< 10 firings on the held-out tokens)")
display(pivot["near-dead"].round(2))

# %%
pal = colors(4)
auxes = [a for a in ["none", "AuxK", "aux_zipf"] if a in dead_tab and dead_tab[a].notna().any()]  # the ones trained
width = 0.8 / len(auxes)
fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), sharey=False)
for ax, tab, name in zip(axes, [dead_tab, near_tab], ["Dead latents (0 firings)", "Near-dead latents (< 10 firings)"]):
    xs = np.arange(len(rules))
    for j, aux in enumerate(auxes):
        vals = tab[aux].values
        off = xs + (j - (len(auxes) - 1) / 2) * width
        ax.bar(off, np.nan_to_num(vals), width=width, color=pal[j], label=f"aux: {aux}")
        for x_, v in zip(off, vals):
            if not np.isnan(v):
                ax.text(x_, v, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(xs, list(rules))
    ax.set(ylabel="% of latents (mean over the seeds trained)", title=name)
    ax.set_ylim(0, max(1.0, np.nanmax(tab.values) * 1.25))
handles, labels = axes[0].get_legend_handles_labels()
fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(auxes), fontsize=10)
fig.suptitle(f"{DEAD.capitalize()} setting (lr {lr_of[DEAD]:g}); held-out window: {len(X_eval):,} tokens, inference "
             f"rule, k = {S.k}, F = {F}", fontweight="bold")
save_figure(fig, NB, "dead_latents")
plt.show()

# %% [markdown]
# **Did the auxiliary losses act at all?** AuxK only acts on latents silent for the whole dead window
# (`S.dead_window_tokens` training tokens) and aux_zipf only on latents below half their Zipf target; the
# share of logged training steps on which each loss was non-zero (mean over seeds; empty where the preset
# trains no SAE with an auxiliary loss):

# %%
aux_use = pd.DataFrame(columns=["SAE", "seed", "steps with loss > 0", "latents dead in training (end)"]) if not S.aux_seeds else pd.DataFrame([{"SAE": r.label, "seed": r.seed,
                         "steps with loss > 0": float((store[(r.label, r.seed)].history["auxk" if r.aux == "AuxK" else "aux_zipf"] > 0).mean()),
                         "latents dead in training (end)": float(store[(r.label, r.seed)].history["dead_frac"].iloc[-1])}
                        for r in dead.itertuples() if r.aux != "none"])
aux_use.groupby("SAE", sort=False)[["steps with loss > 0", "latents dead in training (end)"]].mean().round(3)

# %% [markdown]
# ## 4 · Reconstruction vs sparsity
#
# FVU (fraction of variance unexplained, held-out) against L0 for the main setting's SAEs without auxiliary
# loss at every $k$ of `S.ks` (first seed; the claims use every seed where there are several; with one $k$ in
# the quick preset the "curves" are single points, `full` draws them over 16, 32 and 64). Solid lines and filled markers: the
# training-time batch rule (L0 = $k$ for TopK and MC, at most $k$ for FC, which cannot keep non-positive
# affinities). Dashed lines and open markers: the inference thresholds, whose L0 is *measured*. With a
# splice (full preset), Δ LM loss (next-token cross-entropy with the reconstruction spliced into the hook
# layer, minus the clean one) is shown for the inference rule: the splice runs whole sequences, so a batch
# rule there would choose within a few documents.

# %%
curves = table[(table["aux"] == "none") & (table["seed"] == SEEDS[0]) & (table["setting"] == "main")
               & table["rule"].isin(list(rules))]
n_pan = 2 if splice else 1
fig, axes = plt.subplots(1, n_pan, figsize=(6.8 * n_pan, 4.8), squeeze=False)
axes = axes[0]
for (rule, _), col in zip(rules.items(), pal):
    sel = curves[curves["rule"] == rule].sort_values("k")
    axes[0].plot(sel["l0_batch"], sel["fvu_batch"], "o-", color=col, ms=7, label=f"{rule} (batch rule)")
    if rule != "TopK":
        axes[0].plot(sel["l0_threshold"], sel["fvu_threshold"], "o--", color=col, ms=7, mfc="white",
                     label=f"{rule} (inference threshold)")
    if splice:
        axes[1].plot(sel["l0_threshold"], sel["delta_lm_loss"], "o--" if rule != "TopK" else "o-", color=col, ms=7,
                     mfc="white" if rule != "TopK" else col, label=f"{rule} (inference rule)")
axes[0].set(xlabel="L0 (active latents per token, held-out)", ylabel="FVU (held-out)",
            title=f"Reconstruction vs sparsity, F = {F}, seed {SEEDS[0]}")
if splice:
    axes[1].set(xlabel="L0 (active latents per token, held-out)", ylabel="Δ LM loss (nats, spliced − clean)",
                title="LM degradation vs sparsity (inference rule)")
    axes[1].legend(fontsize=8, loc="upper right")
for ax in axes:
    log_axis(ax, "x", ticks=(8, 16, 32, 64, 128))
handles, labels = axes[0].get_legend_handles_labels()
fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4 if splice else 2, fontsize=9)
save_figure(fig, NB, "fvu_vs_l0")
plt.show()

# %% [markdown]
# ## 5 · Feature density vs rank: a Zipf law?
#
# Held-out firing densities (inference rule) of the $k$ = `S.k` SAEs without auxiliary loss (first seed),
# sorted, on log–log axes, with least-squares fits $\log d = \log c - \alpha \log \mathrm{rank}$. $R^2$ is
# a fit's coefficient of determination in log–log space. The paper says the densities follow a Zipf law
# "except at the low end" without saying where the low end starts; our reading, fixed before this fit was
# computed (after a fit over all live latents had been seen), leaves out the sparser half of the live
# latents: the scored fit runs over the densest half (`fit_zipf(..., top_frac=ZIPF_TOP_FRAC)`, dashed), and
# the fit over every live latent is shown beside it (dotted). FC's densities are set by its allocation (flat
# for uniform, Zipf-shaped by construction for FC-zipf); TopK's and MC's are the ones that say whether
# features "naturally" follow Zipf.
#
# For the bootstrap of section 8 the densities are rebuilt from per-document firing counts
# (`firing_counts`, below): $R^2$ depends only on the counts (dividing by the number of tokens only shifts
# $\log d$), so a resample of held-out documents is a resample of count rows.

# %%
@torch.no_grad()
def firing_counts(sae, acts, batch_size: int = 8192) -> np.ndarray:
    """(n_seq, F) firings of each latent in each held-out sequence, under the inference rule."""
    was = sae.training
    sae.eval()
    seq = acts.index[:, 0]
    out = torch.zeros(acts.tokens.shape[0], sae.d_sae, dtype=torch.float64)
    for idx in torch.arange(len(acts)).split(batch_size):
        out.index_add_(0, seq[idx], (sae.encode(acts.acts[idx]) != 0).double())
    sae.train(was)
    return out.numpy()


ZIPF_TOP_FRAC = 0.5   # the scored fit: the densest half of the live latents ("except at the low end")


def zipf_r2(counts: np.ndarray, axis: int = 0, top_frac: float = 1.0) -> np.ndarray:
    """R² of the log-log fit of sorted densities over the densest ``top_frac`` of the live latents, from (rows, F)
    counts summed along ``axis`` (vectorised for the bootstrap: latents end up on axis 0, resamples on axis 1);
    = fit_zipf's r2 with the same top_frac."""
    c = np.sort(counts.sum(axis), axis=0)[::-1]
    rank0 = np.arange(c.shape[0]).reshape((-1,) + (1,) * (c.ndim - 1))
    live = (c > 0) & (rank0 < np.ceil(top_frac * (c > 0).sum(0)))
    lx = np.log(np.arange(1, c.shape[0] + 1, dtype=float)).reshape((-1,) + (1,) * (c.ndim - 1))
    ly = np.log(np.where(live, c, 1.0))
    n = live.sum(0)
    xm, ym = (lx * live).sum(0) / n, (ly * live).sum(0) / n
    sxy, sxx = (live * (lx - xm) * (ly - ym)).sum(0), (live * (lx - xm) ** 2).sum(0)
    syy = (live * (ly - ym) ** 2).sum(0)
    return 1 - (syy - sxy ** 2 / sxx) / syy


fits, head_fits, counts = {}, {}, {}
fig, ax = plt.subplots(figsize=(8, 5.2))
lo_d = 1.0
for (rule, _), col in zip(rules.items(), pal):
    lab = f"{rule} k={S.k} aux=none"
    dens = evals[(lab, SEEDS[0])].densities
    if rule in ("TopK", "MC"):  # the two the Zipf claim is about
        counts[rule] = firing_counts(store[(lab, SEEDS[0])].sae, eval_acts)
    fit = fits[rule] = fit_zipf(dens, 0.0)
    head = head_fits[rule] = fit_zipf(dens, 0.0, top_frac=ZIPF_TOP_FRAC)
    srt = dens.sort(descending=True).values.numpy()
    r = np.arange(1, len(srt) + 1)
    ax.plot(r[srt > 0], srt[srt > 0], color=col, lw=2,
            label=f"{rule}: all live α = {fit['alpha']:.2f}, R² = {fit['r2']:.2f}; "
                  f"densest half α = {head['alpha']:.2f}, R² = {head['r2']:.2f}")
    ax.plot(r, fit["c"] * r ** -fit["alpha"], color=col, lw=1, ls=":")
    ax.plot(r[: head["n"]], head["c"] * r[: head["n"]] ** -head["alpha"], color=col, lw=1.5, ls="--")
    lo_d = min(lo_d, srt[srt > 0].min())
ax.set(xscale="log", yscale="log")  # the log scale first, then limits from the data
ax.set_ylim(lo_d / 2, min(1.5, max(evals[(f"{r} k={S.k} aux=none", SEEDS[0])].densities.max().item() for r in rules) * 2))
ax.set(xlabel="latent rank (1 = densest)", ylabel="firing density (fraction of held-out tokens)",
       title=f"Density vs rank, k = {S.k}, F = {F}, seed {SEEDS[0]} (dotted: fit over all live latents; "
             "dashed: over the densest half)")
ax.legend(fontsize=9, loc="lower left")
save_figure(fig, NB, "density_rank")
plt.show()
pd.concat({"all live": pd.DataFrame(fits).T, "densest half (scored)": pd.DataFrame(head_fits).T}, axis=1).round(3)

# %% [markdown]
# ## 6 · Adaptive computation
#
# Left: how many latents each held-out token gets (features per token). Right: on how many tokens each
# latent fires (tokens per feature, as a fraction of held-out tokens, log scale). Both under the
# training-time batch rule on shuffled held-out batches, $k$ = `S.k`, no auxiliary loss, first seed. TopK is
# a spike at $k$ on the left; FC-uniform is a spike on the right; MC lets both vary.

# %%
hist_ev = {r: ev_of(f"{r} k={S.k} aux=none", SEEDS[0], "batch") for r in rules}
fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
l0_max = max(int(e.l0_per_token.max()) for e in hist_ev.values())
bins_t = np.arange(0, l0_max + 3) - 0.5
bins_f = np.logspace(-5, 0, 41)
for (rule, _), col in zip(rules.items(), pal):
    st = hist_ev[rule]
    axes[0].hist(st.l0_per_token.numpy(), bins=bins_t, histtype="step", lw=2, color=col, label=rule)
    axes[1].hist(st.densities.clamp_min(1e-5).numpy(), bins=bins_f, histtype="step", lw=2, color=col, label=rule)
axes[0].set(xlabel="active latents on the token", ylabel="held-out tokens", yscale="log",
            title="Features per token (batch rule)")
axes[1].set(xscale="log", yscale="log", xlabel="fraction of held-out tokens the latent fires on (dead at 1e-5)",
            ylabel="latents", title="Tokens per feature (batch rule)")
for ax in axes:
    ax.legend(fontsize=9)
save_figure(fig, NB, "adaptive_computation")
plt.show()

# %% [markdown]
# **Always-on latents.** With $\alpha = 1$ the Zipf allocation gives the head latents more tokens than a
# batch has ($m_1 \approx kN / H_F$, with $H_F = \sum_{r \le F} 1/r$), so they are capped at $N$: allowed to fire
# on *every* token of the batch, which they do wherever their affinity is positive, spending budget on what is
# then close to a bias term. Counted below under the batch rule on the held-out batches: the latents that fire
# on at least 99% of the tokens, the share of the L0 budget they take and the densest latent's rate, for
# FC-zipf and for the capped extension (**ours**: at most `S.cap_density` of a batch's tokens per
# latent, the excess water-filled to the others; a constant fixed before the run, from the allocation's
# arithmetic, not from any result).

# %%
on_rows = []
for rule in ["FC-zipf", *ext_rules]:
    for s_ in SEEDS:
        e = batch_evals[(f"{rule} k={S.k} aux=none", s_)]
        on = e.densities >= 0.99
        on_rows.append({"rule": rule, "seed": s_, "latents on >= 99% of tokens": int(on.sum()),
                        "their share of L0 (%)": 100 * float(e.densities[on].sum()) / e.l0,
                        "densest latent (fraction of tokens)": float(e.densities.max()), "L0": e.l0, "FVU": e.fvu})
always_on = pd.DataFrame(on_rows)
always_on.groupby("rule", sort=False).mean(numeric_only=True).drop(columns="seed").round(3)

# %% [markdown]
# ## 7 · Does the inference threshold reproduce training-time sparsity?
#
# For every MC and FC SAE of the main setting (first seed): L0 under the batch rule and under the inference
# threshold, on the held-out split and on the first `S.seen_tokens` training tokens (seen in training; the
# permuted order makes them a sample of every training document), with the FVU of both rules on those
# training tokens. Tolerance, fixed before running (the same as notebook 02): **5%** relative L0 error.
#
# **Is the estimator biased?** The training-time threshold is a moving average of each batch's *smallest
# kept* activation, and inference keeps $z > \theta$, strictly. At $\theta$ = the smallest kept value that
# entry itself is lost: one entry per threshold per batch. With per-latent thresholds that is $F$ of the
# batch's $L_0 N$ kept entries, a relative L0 loss of about $F / (L_0 N)$ (1/16 at $k$ = 32 here); with
# MC's one global threshold, $1/(L_0 N)$, nothing. What remains is the average's lag behind a changing SAE.
# **A calibrated estimator (ours, an extension):** after training, take `S.calib_tokens` training tokens (after
# the first `S.seen_tokens`, so disjoint from them) as *one* batch and set each threshold to the largest
# pre-activation the batch rule leaves out there (`calibrate_threshold_`): a quantile estimate, with no lag
# and no lost entry. It reads the calibration tokens only, never the held-out split.

# %%
L0_TOL = 5.0  # percent
X_seen = X[: S.seen_tokens]
X_cal = X[S.seen_tokens: S.seen_tokens + S.calib_tokens]


def calibrated(sae):
    """A copy of ``sae`` whose inference threshold is calibrated on X_cal as one batch."""
    cal = copy.deepcopy(sae)
    with torch.no_grad():
        cal.sparsifier.calibrate_threshold_(cal.pre_acts(X_cal))
    return cal


cal_saes, cal_evals = {}, {}
with torch_threads(S.threads), timer("calibrated thresholds"):
    for r in main[main["rule"].isin([r for r in rules if r != "TopK"]) & (main["aux"] == "none")].itertuples():
        cal_saes[(r.label, r.seed)] = calibrated(store[(r.label, r.seed)].sae)
        cal_evals[(r.label, r.seed)] = evaluate(cal_saes[(r.label, r.seed)], eval_acts)
chk = []
with torch_threads(S.threads):
    for r in main[(main["rule"].isin([r for r in rules if r != "TopK"])) & (main["seed"] == SEEDS[0])].itertuples():
        sae = store[(r.label, r.seed)].sae
        ev_b = evaluate(sae, X_seen, batch_rule=True, batch_size=S.batch_size, seed=r.seed)
        ev_t = evaluate(sae, X_seen)
        row = {"SAE": r.label, "L0 batch (held-out)": r.l0_batch, "L0 thr. (held-out)": r.l0_threshold,
               "L0 batch (train)": ev_b.l0, "L0 thr. (train)": ev_t.l0,
               "err held-out %": 100 * (r.l0_threshold / r.l0_batch - 1), "err train %": 100 * (ev_t.l0 / ev_b.l0 - 1),
               "FVU batch (train)": ev_b.fvu, "FVU thr. (train)": ev_t.fvu}
        if (r.label, r.seed) in cal_saes:
            ev_c = evaluate(cal_saes[(r.label, r.seed)], X_seen)
            n_thr = sae.sparsifier.threshold.numel()
            th, th_c = sae.sparsifier.threshold, cal_saes[(r.label, r.seed)].sparsifier.threshold
            both_pos = (th > 0) & (th_c > 0)
            row |= {"predicted err %": -100 * n_thr / (ev_b.l0 * S.batch_size),
                    "median θ / θ calibrated": float((th[both_pos] / th_c[both_pos]).median()),
                    "err cal. held-out %": 100 * (cal_evals[(r.label, r.seed)].l0 / r.l0_batch - 1),
                    "err cal. train %": 100 * (ev_c.l0 / ev_b.l0 - 1), "FVU cal. (train)": ev_c.fvu}
        chk.append(row)
chk = pd.DataFrame(chk)
chk.set_index("SAE").T.round(3)

# %% [markdown]
# ## 8 · Claims check
#
# How an interval and a margin become a verdict, and why one seed is not enough, are explained once in
# [`docs/uncertainty.md`](../docs/uncertainty.md); the terms are in [`docs/glossary.md`](../docs/glossary.md).
#
# Each claim's statistic, direction, margin and uncertainty, fixed before running (the verdict model of
# `saelib.companion.claims`):
# * **FC near zero dead**: per FC SAE without auxiliary loss (uniform and Zipf) at $k$ = `S.k`, in both
#   settings, the ceiling of 1% (the claim's "near zero") minus the % of latents dead on the held-out split,
#   paired t-interval over the seeds; margin 0 (at most 1% dead counts). Aggregate: the weakest setting
#   (`weakest_setting`). Here and below, a setting trained with fewer than 3 seeds has no interval: the claim
#   is then inconclusive (budget) unless a seeded setting is already *not reproduced*, which refutes "at every
#   setting". (Changed in issue 14, before the run: the FC + aux_zipf SAEs, one seed in quick, are shown in
#   the table, not scored.)
# * **MC/FC fewer dead than TopK** (dead setting, no auxiliary loss): 3 comparisons (MC, FC-uniform,
#   FC-zipf vs TopK), each the per-seed difference dead % (TopK) − dead % (rule), paired t over the seeds;
#   margin one latent ($100/F$ percentage points, the smallest difference there can be). Aggregate: the
#   weakest comparison. **Precondition: TopK has dead latents (mean over seeds > 0)**; with none there is
#   nothing to have fewer of.
# * **... and with auxiliary losses** (dead setting): MC+AuxK, MC+aux_zipf, FC-uniform+aux_zipf,
#   FC-zipf+aux_zipf vs TopK+AuxK, the same statistic, margin and precondition (TopK+AuxK has dead latents).
# * **Reconstruction at equal L0, batch rule**: FVU under the batch rule at the same $k$ (L0 = $k$ for TopK
#   and MC, $\le k$ for FC, so the comparison is conservative for FC), every $k$ of `S.ks`, main setting, no
#   auxiliary loss: per (rule, $k$) the relative gain 100 (FVU TopK − FVU rule) / FVU TopK in %, paired t over
#   the seeds; margin 1% (the margin notebook 02 uses for the same comparison, MC being BatchTopK).
#   Aggregate: the weakest setting.
# * **Reconstruction at matched L0, inference thresholds**: the same statistic at $k$ = `S.k` with each MC/FC
#   SAE under its *calibrated* thresholds (section 7: the L0 of the batch rule on training tokens, so matched
#   to TopK's $k$ there), held-out FVU. **Precondition: every calibrated SAE's held-out L0 within 2% of $k$**:
#   with FVU $\propto L_0^{-0.25}$ (the slope between $k$ = 16 and 32 in the previous execution of this
#   notebook), a 2% L0 mismatch moves FVU by about 0.5%, half the margin. The paper does not say which rule
#   its reconstruction numbers use; the batch rule is what the SAEs were trained under, the thresholds what
#   a user runs, so both are scored.
# * **Zipf law except at the low end**: per SAE (TopK and MC at $k$ = `S.k`, first seed: a claim about fixed
#   trained SAEs), $R^2$ of the log–log fit over the densest half of the live latents (section 5) minus 0.8,
#   bootstrap over held-out documents (`grouped_bootstrap`, the half recomputed in every resample,
#   `S.n_boot` resamples); margin 0.1, so that $R^2 \ge 0.9$ is reproduced and $0.8 < R^2 < 0.9$ partly.
#   Aggregate: the weakest SAE.
# * **Threshold**: per MC and FC SAE (first seed), 100 (L0 threshold / L0 batch rule − 1) on the held-out
#   split, an equivalence within 5%, bootstrap over held-out documents; aggregate: the weakest SAE. The same
#   comparison on training tokens is a check, not a claim (as in notebook 02).
#
# Extension rows (ours, not the paper's; fixed before the run, reported whatever they give):
# * **Calibrated thresholds reproduce training L0 (within 5%)**: the threshold claim's statistic, margin and
#   bootstrap for the same SAEs under the calibrated thresholds of section 7.
# * **Capped FC-zipf reconstructs better than TopK**: the batch-rule reconstruction statistic and margin for
#   FC-zipf-cap at $k$ = `S.k`.

# %%
def seed_values(label: str, col: str) -> np.ndarray:
    """``col`` of one setting over SEEDS (NaN where a seed was not trained)."""
    sel = table[table["label"] == label].set_index("seed")[col]
    return np.array([sel.get(s, np.nan) for s in SEEDS], dtype=float)


def seeded_interval(a: np.ndarray, b: np.ndarray) -> Interval | None:
    """Paired t over the seeds of a - b; None with fewer than 3 seeds (no interval in the verdict model)."""
    ok = ~(np.isnan(a) | np.isnan(b))
    return paired_t_interval(a[ok], b[ok]) if ok.sum() >= 3 else None


def every_setting(intervals: dict, margin: float, kind: str = "effect", direction: str = "greater"):
    """weakest_setting over the settings that have an interval; precondition: all have one, unless the
    weakest is already not reproduced (one failed setting refutes 'at every setting')."""
    powered = {s: iv for s, iv in intervals.items() if iv is not None}
    setting, iv = weakest_setting(powered, margin, kind, direction)
    refuted = setting is not None and decide(iv.lo, iv.hi, margin, kind) == "not reproduced"
    missing = [s for s, v in intervals.items() if v is None]
    return setting, iv, (not missing or refuted), missing


claims = ClaimsTable(NB, PRESET, SEED)
dead_pct = {lab: 100 * seed_values(lab, "dead_frac_threshold") for lab in pd.concat([main, dead])["label"].unique()}
NO_AUX = np.full(len(SEEDS), np.nan)   # a setting not trained in this preset (quick: the auxiliary losses)
fc_labels = [lab for lab in dead_pct if lab.split(" ")[0] in ("FC-uniform", "FC-zipf") and "aux=none" in lab]
fc_iv = {lab: seeded_interval(1.0 - dead_pct[lab], np.zeros(len(SEEDS))) for lab in fc_labels}
setting, iv, ok, missing = every_setting(fc_iv, 0.0)
claims.add_claim("Feature Choice has (near) zero dead latents (<= 1%)",
                 f"1% - % latents dead on the held-out split (inference rule), percentage points, per FC SAE at "
                 f"k={S.k}, no aux, both settings; paired t over seeds; aggregate: the weakest setting", iv, 0.0,
                 "greater", "seeds",
                 len(SEEDS), measured=f"weakest {setting}: {iv.rounded(2)}; dead % (mean over seeds): "
                 + ", ".join(f"{lab.replace(f' k={S.k}', '')} {np.nanmean(v):.2f}" for lab, v in dead_pct.items()
                             if lab in fc_labels),
                 paper="FC: no dead latents (Table of dead %, abstract)",
                 precondition=(ok, f"budget: fewer than 3 seeds for {missing}"))

SUF = f" lr={S.dead_lr:g}" if DEAD == "dead" else ""   # the dead setting's labels
base_dead = {}
for aux_name, aux_pairs, claim in [
        ("none", [(r, "none") for r in ("MC", "FC-uniform", "FC-zipf")], "MC and FC have fewer dead latents than TopK"),
        ("AuxK", [(r, a) for r in ("MC", "FC-uniform", "FC-zipf") for a in aux_for[r]],
         "MC and FC have fewer dead latents than TopK, with auxiliary losses")]:
    b = f"TopK k={S.k} aux={aux_name}{SUF}"
    trained = b in dead_pct
    dead_iv = {f"{r}+{a}": seeded_interval(dead_pct.get(b, NO_AUX), dead_pct.get(f"{r} k={S.k} aux={a}{SUF}", NO_AUX))
               for r, a in aux_pairs}
    base_dead[aux_name] = float(np.nanmean(dead_pct[b])) if trained else np.nan
    setting, iv, ok, missing = every_setting(dead_iv, 100 / F)
    has_dead = trained and base_dead[aux_name] > 0
    claims.add_claim(claim, f"dead % (TopK{'' if aux_name == 'none' else '+AuxK'}) - dead % (rule) on the held-out split, "
                     f"percentage points, {len(aux_pairs)} comparisons at k={S.k}, {DEAD} setting (lr "
                     f"{lr_of[DEAD]:g}); paired t over seeds; aggregate: the weakest setting", iv, 100 / F, "greater",
                     "seeds", len(SEEDS),
                     measured=f"weakest {setting}: {iv.rounded(2)}; dead % (mean over seeds): TopK "
                     f"{base_dead[aux_name]:.2f}, " + ", ".join(
                         f"{r}{'' if a == 'none' else '+' + a} {np.nanmean(dead_pct.get(f'{r} k={S.k} aux={a}{SUF}', NO_AUX)):.2f}"
                         for r, a in aux_pairs),
                     paper="fewer dead latents than TopK",
                     precondition=(has_dead and ok, "budget: no SAE with auxiliary losses in this preset (full trains "
                                   "them with 3 seeds)" if not trained else
                                   f"TopK ({aux_name}) has dead latents (mean over seeds > 0): {base_dead[aux_name]:.2f}%"
                                   if not has_dead else f"budget: fewer than 3 seeds for {missing}"))

gain = {}
for r in ("MC", "FC-uniform", "FC-zipf"):
    for k in S.ks:
        a, b = seed_values(f"TopK k={k} aux=none", "fvu_batch"), seed_values(f"{r} k={k} aux=none", "fvu_batch")
        gain[(r, k)] = seeded_interval(100 * (a - b) / a, np.zeros(len(SEEDS)))
setting, iv, ok, missing = every_setting(gain, 1.0)
one_seed = {s: 100 * (1 - seed_values(f"{s[0]} k={s[1]} aux=none", "fvu_batch")[0]
                      / seed_values(f"TopK k={s[1]} aux=none", "fvu_batch")[0]) for s in gain}
claims.add_claim("MC and FC reconstruct better than TopK at equal sparsity (batch rule)",
                 "100 (FVU TopK - FVU rule) / FVU TopK, %, batch rule, held-out, per (rule, k), no aux; paired t over "
                 "seeds; aggregate: the weakest setting (a k without 3 seeds: inconclusive unless a seeded setting "
                 "refutes)", iv, 1.0, "greater", "seeds", len(SEEDS),
                 measured=f"weakest {setting}: {iv.rounded(2)}%; seed {SEEDS[0]}: "
                 + ", ".join(f"{r}@{k} {g:+.1f}%" for (r, k), g in one_seed.items()),
                 paper="MC, FC better reconstruction than TopK at equal sparsity",
                 precondition=(ok, f"budget: {missing} trained with 1 seed; the full preset seeds every k"))

cal_fvu = {lab: np.array([cal_evals[(lab, s_)].fvu if (lab, s_) in cal_evals else np.nan for s_ in SEEDS])
           for lab in {lab for lab, _ in cal_evals}}
cal_l0 = {lab: np.array([cal_evals[(lab, s_)].l0 for s_ in SEEDS if (lab, s_) in cal_evals]) for lab in cal_fvu}
gain_cal = {}
for r in ("MC", "FC-uniform", "FC-zipf"):
    a = seed_values(f"TopK k={S.k} aux=none", "fvu_threshold")
    gain_cal[r] = seeded_interval(100 * (a - cal_fvu[f"{r} k={S.k} aux=none"]) / a, np.zeros(len(SEEDS)))
setting, iv, ok, missing = every_setting(gain_cal, 1.0)
l0_dev = max(float(np.abs(v / S.k - 1).max()) for v in cal_l0.values())
claims.add_claim("MC and FC reconstruct better than TopK at matched L0 (calibrated inference thresholds)",
                 f"100 (FVU TopK - FVU rule) / FVU TopK, %, held-out, MC/FC under calibrated thresholds, k={S.k}, main "
                 "setting, no aux; paired t over seeds; aggregate: the weakest rule", iv, 1.0, "greater", "seeds",
                 len(SEEDS),
                 measured=f"weakest {setting}: {iv.rounded(2)}%; " + ", ".join(
                     f"{r} {gain_cal[r].estimate:+.2f}%" for r in gain_cal if gain_cal[r] is not None)
                 + f"; held-out L0 under the calibrated thresholds {min(v.min() for v in cal_l0.values()):.2f} to "
                 f"{max(v.max() for v in cal_l0.values()):.2f} (k = {S.k})",
                 paper="MC, FC better reconstruction than TopK at equal sparsity",
                 precondition=(ok and l0_dev <= 0.02, f"budget: fewer than 3 seeds for {missing}" if not ok else
                               f"every calibrated SAE's held-out L0 within 2% of k: up to {100 * l0_dev:.1f}% off"))

r2_iv = {}
for rule in ("TopK", "MC"):
    r2_iv[rule] = grouped_bootstrap(lambda c, axis: zipf_r2(c, axis, ZIPF_TOP_FRAC) - 0.8, docs, counts[rule],
                                    n_resamples=S.n_boot, seed=SEED)
setting, iv = weakest_setting(r2_iv, 0.1)
claims.add_claim("Feature densities follow a Zipf law except at the low end (log-log R² >= 0.9)",
                 f"R² of the log-log Zipf fit over the densest {ZIPF_TOP_FRAC:.0%} of the live latents - 0.8, held-out "
                 f"densities (inference rule), TopK and MC at k={S.k}, seed {SEEDS[0]}; bootstrap over held-out "
                 "documents; aggregate: the weakest setting",
                 iv, 0.1, "greater", "bootstrap", 1,
                 measured=f"weakest {setting}: {iv.rounded(3)}; " + "; ".join(
                     f"{r} α = {head_fits[r]['alpha']:.2f}, R² = {head_fits[r]['r2']:.3f} (all live: α = "
                     f"{fits[r]['alpha']:.2f}, R² = {fits[r]['r2']:.3f})" for r in r2_iv),
                 paper="densities Zipf-distributed except at the low end")

thr_iv, cal_iv = {}, {}
for r in main[main["rule"].isin([r for r in rules if r != "TopK"]) & (main["seed"] == SEEDS[0])].itertuples():
    ps_t, ps_b = evals[(r.label, r.seed)].per_sequence, batch_evals[(r.label, r.seed)].per_sequence
    thr_iv[r.label] = grouped_bootstrap(lambda t, b, axis: 100 * (t.sum(axis) / b.sum(axis) - 1), docs,
                                        ps_t.active, ps_b.active, n_resamples=S.n_boot, seed=SEED)
    if (r.label, r.seed) in cal_evals:
        cal_iv[r.label] = grouped_bootstrap(lambda t, b, axis: 100 * (t.sum(axis) / b.sum(axis) - 1), docs,
                                            cal_evals[(r.label, r.seed)].per_sequence.active, ps_b.active,
                                            n_resamples=S.n_boot, seed=SEED)
setting, iv = weakest_setting(thr_iv, L0_TOL, kind="equivalence")
claims.add_claim("Inference threshold reproduces training L0 (within 5%)",
                 "100 (L0 inference threshold / L0 batch rule - 1), %, held-out split, per MC and FC SAE (seed "
                 f"{SEEDS[0]}); bootstrap over held-out documents; aggregate: the weakest setting",
                 iv, L0_TOL, "greater", "bootstrap", 1, kind="equivalence",
                 measured=f"weakest {setting}: {iv.rounded(2)}%; held-out errors {chk['err held-out %'].min():+.1f}% "
                 f"to {chk['err held-out %'].max():+.1f}% over {len(chk)} SAEs",
                 paper="batch-independent threshold at inference")
setting, iv = weakest_setting(cal_iv, L0_TOL, kind="equivalence")
claims.add_claim("Extension, ours: calibrated thresholds reproduce training L0 (within 5%)",
                 "100 (L0 calibrated threshold / L0 batch rule - 1), %, held-out split, per MC and FC SAE without aux "
                 f"(seed {SEEDS[0]}), thresholds calibrated on {len(X_cal):,} training tokens; bootstrap over held-out "
                 "documents; aggregate: the weakest setting",
                 iv, L0_TOL, "greater", "bootstrap", 1, kind="equivalence",
                 measured=f"weakest {setting}: {iv.rounded(2)}%; held-out errors {chk['err cal. held-out %'].min():+.1f}% "
                 f"to {chk['err cal. held-out %'].max():+.1f}%, training tokens {chk['err cal. train %'].min():+.1f}% to "
                 f"{chk['err cal. train %'].max():+.1f}% (moving average: {chk['err train %'].min():+.1f}% to "
                 f"{chk['err train %'].max():+.1f}%, predicted {chk['predicted err %'].min():+.1f}% to "
                 f"{chk['predicted err %'].max():+.1f}%)",
                 paper="(not in the paper: our estimator)")
cap_lab = f"FC-zipf-cap k={S.k} aux=none"
a, b = seed_values(f"TopK k={S.k} aux=none", "fvu_batch"), seed_values(cap_lab, "fvu_batch")
iv = seeded_interval(100 * (a - b) / a, np.zeros(len(SEEDS))) or NO_SETTING
on_mean = always_on.groupby("rule")[["latents on >= 99% of tokens", "their share of L0 (%)"]].mean()
claims.add_claim("Extension, ours: capped FC-zipf reconstructs better than TopK at equal sparsity",
                 f"100 (FVU TopK - FVU FC-zipf-cap) / FVU TopK, %, batch rule, held-out, k={S.k}, cap "
                 f"{S.cap_density:g} of a batch per latent; paired t over seeds", iv, 1.0, "greater", "seeds", len(SEEDS),
                 measured=f"{iv.rounded(2)}%; FVU (batch rule) TopK {np.nanmean(a):.3f}, FC-zipf-cap {np.nanmean(b):.3f}, "
                 f"FC-zipf {np.nanmean(seed_values(f'FC-zipf k={S.k} aux=none', 'fvu_batch')):.3f}; always-on latents "
                 + ", ".join(f"{r} {on_mean.loc[r].iloc[0]:.1f} ({on_mean.loc[r].iloc[1]:.1f}% of L0)" for r in on_mean.index),
                 paper="(not in the paper: our allocation)",
                 precondition=(iv is not NO_SETTING, "budget: fewer than 3 seeds"))

mc_b = table[(table["rule"] == "MC") & table["l0_batch"].notna()]
fc_b = table[table["rule"].str.startswith("FC") & table["l0_batch"].notna()]
claims.add_check("batch rule: L0 = k for MC (within 1%), L0 <= k for FC, every SAE evaluated under it",
                 bool((abs(mc_b["l0_batch"] / mc_b["k"] - 1) <= 0.01).all() and (fc_b["l0_batch"] <= fc_b["k"] + 1e-9).all()),
                 f"MC L0/k {(mc_b['l0_batch'] / mc_b['k']).min():.3f} to {(mc_b['l0_batch'] / mc_b['k']).max():.3f}; "
                 f"FC L0/k up to {(fc_b['l0_batch'] / fc_b['k']).max():.3f}")
claims.add_check("threshold reproduces batch-rule L0 on training tokens (within 5%), every MC/FC SAE",
                 bool((chk["err train %"].abs() <= L0_TOL).all()),
                 f"errors {chk['err train %'].min():+.1f}% to {chk['err train %'].max():+.1f}% on {len(X_seen):,} training tokens")
r2_direct = {r: float(zipf_r2(counts[r], top_frac=ZIPF_TOP_FRAC)) for r in ("TopK", "MC")}
claims.add_check("bootstrap statistic: R² from per-sequence counts equals fit_zipf on evaluate's densities",
                 all(abs(r2_direct[r] - head_fits[r]["r2"]) < 1e-6 for r in r2_direct),
                 ", ".join(f"{r} {r2_direct[r]:.6f} vs {head_fits[r]['r2']:.6f}" for r in r2_direct))
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
cl = {c.claim.split(" (")[0]: c for c in claims.claims}
mc_g = [one_seed[("MC", k)] for k in S.ks]
fc_g = [one_seed[(r, k)] for r in ("FC-uniform", "FC-zipf") for k in S.ks]
c_dead, c_dead_aux = cl["MC and FC have fewer dead latents than TopK"], cl["MC and FC have fewer dead latents than TopK, with auxiliary losses"]
c_rec, c_cal = cl["MC and FC reconstruct better than TopK at equal sparsity"], cl["MC and FC reconstruct better than TopK at matched L0"]
c_thr, c_ext = cl["Inference threshold reproduces training L0"], cl["Extension, ours: calibrated thresholds reproduce training L0"]
c_cap = cl["Extension, ours: capped FC-zipf reconstructs better than TopK at equal sparsity"]
display(Markdown(f"""
* TopK, Feature Choice and Mutual Choice are three ways of spending the same budget of $kN$
  (token, feature) pairs: by rows, by columns, or globally. Mutual Choice is BatchTopK under another name.
* **Dead latents.** At learning rate {S.lr:g} nothing dies under any rule, so the dead-latent claims are scored
  in the {DEAD} setting (learning rate {lr_of[DEAD]:g}, chosen on TopK alone), where TopK leaves
  {base_dead['none']:.2f}% of its latents dead on the held-out split without AuxK{'' if np.isnan(base_dead['AuxK']) else
  f" and {base_dead['AuxK']:.2f}% with it"} (mean over the seeds trained). "Fewer dead than TopK" is **{c_dead.verdict}** ({c_dead.precondition or
  c_dead.measured}); with auxiliary losses **{c_dead_aux.verdict}** ({c_dead_aux.precondition or c_dead_aux.measured}).
  Feature Choice guarantees every latent its share of tokens during training; on held-out tokens under its
  per-latent thresholds the FC claim is **{cl['Feature Choice has'].verdict}** ({cl['Feature Choice has'].measured}).
* **Reconstruction.** Under the batch rule at equal $k$ (seed {SEEDS[0]}), MC changes FVU by
  {min(mc_g):+.1f}% to {max(mc_g):+.1f}% relative to TopK (positive = better) and FC by {min(fc_g):+.1f}% to
  {max(fc_g):+.1f}%. With {len(SEEDS)} seeds at $k$ = {', '.join(map(str, S.seed_ks))} the claim is
  **{c_rec.verdict}** ({c_rec.measured.split(';')[0]}). Under calibrated inference thresholds at matched L0 it is
  **{c_cal.verdict}** ({c_cal.precondition or c_cal.measured}). The price of FC under the batch rule is on the token
  side: a token gets whatever the features chose to give it, possibly nothing (left histogram).
* **Always-on latents.** Under the batch rule on held-out batches FC-zipf has {on_mean.loc['FC-zipf'].iloc[0]:.1f}
  latents firing on at least 99% of the tokens (mean over seeds; {on_mean.loc['FC-zipf'].iloc[1]:.1f}% of L0), its
  densest latent on {always_on[always_on['rule'] == 'FC-zipf']['densest latent (fraction of tokens)'].mean():.0%} of them:
  the allowance of every token is not used in full, since a latent fires only where its affinity is positive.
  Capping the allocation at {S.cap_density:g} of a batch (our extension), FVU against TopK: **{c_cap.verdict}**
  ({c_cap.measured.split(';')[0]}; FVU {c_cap.measured.split('; ')[1].split(', always')[0].replace('FVU (batch rule) ', '')}).
* **Zipf.** Whether densities are Zipf depends on how much of the rank range one asks about: the log–log plot
  shows where the straight line fails. Over the densest half of the live latents (the paper's "except at the
  low end", our reading) the verdict is **{cl['Feature densities follow a Zipf law except at the low end'].verdict}**
  ({cl['Feature densities follow a Zipf law except at the low end'].measured}).
* **Threshold.** The moving-average threshold against the batch rule on the held-out split:
  {chk['err held-out %'].min():+.1f}% to {chk['err held-out %'].max():+.1f}% over {len(chk)} SAEs, on training
  tokens {chk['err train %'].min():+.1f}% to {chk['err train %'].max():+.1f}%: verdict **{c_thr.verdict}**. The
  estimator is biased: keeping $z > \\theta$ at $\\theta$ = the smallest kept value loses one entry per threshold per
  batch, predicted {chk['predicted err %'].min():+.1f}% to {chk['predicted err %'].max():+.1f}%. Thresholds calibrated
  on {len(X_cal):,} training tokens as one batch (our extension): **{c_ext.verdict}** ({c_ext.measured.split(';')[1].strip()}).
* The aux_zipf loss here is a reconstruction of a loss whose formula we did not find; read its effect as
  that of *our* loss.
* Scale caveat: {len(X):,} training tokens seen for {S.epochs} epoch ({n_steps} steps), {F:,} latents; the paper
  trained far longer, up to 34M latents. `PRESET = "full"` runs a paper-like configuration on a GPU, with
  every $k$ seeded and Δ LM loss.
"""))
