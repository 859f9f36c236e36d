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
# # 02 · BatchTopK: let easy tokens use fewer latents and hard tokens more
#
# **Paper.** Bart Bussmann, Patrick Leask, Neel Nanda, *BatchTopK Sparse Autoencoders*
# (December 2024, arXiv:2412.06410). Baselines: TopK (Gao et al. 2024, arXiv:2406.04093) and
# JumpReLU (Rajamanoharan et al. 2024, arXiv:2407.14435; notebook 03 studies it in depth).
#
# **What they claim.** A TopK SAE gives *every* token exactly $k$ latents. BatchTopK relaxes the
# constraint to the batch: keep the $B \cdot k$ largest activations of a batch of $B$ tokens, so
# the *average* is still $k$ but a token can use more or fewer latents. At inference a single
# learned threshold replaces the batch rule, so a token's code no longer depends on its
# neighbours in the batch. The paper reports that BatchTopK reconstructs better than TopK (lower
# normalised MSE) and degrades the language model less, at every $k$ and every dictionary size
# tried, and that it is comparable to JumpReLU.
#
# Here we train the paper's grid (scaled down) on a real 135M-parameter LM on CPU with three seeds, draw
# its panels, look at how many latents each token gets, check the inference threshold, and score the claims
# with intervals over seeds (or over held-out documents, for claims about one trained SAE).

# %% tags=["parameters"]
PRESET = "quick"  # "quick": 2 CPU cores, offline; "full": paper-like scale on a GPU, online
SEED = 0

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import HTML, Markdown, display
from scipy.stats import rankdata

from saelib import SAE, TrainConfig
from saelib.companion import ClaimsTable, colors, log_axis, save_figure, setup, shared_activations, timer
from saelib.companion.claims import weakest_setting
from saelib.companion.examples import examples_html, top_examples
from saelib.data.lm import load_lm
from saelib.metrics.reconstruction import evaluate
from saelib.metrics.splice import Splice
from saelib.metrics.uncertainty import Interval, grouped_bootstrap, paired_t_interval
from saelib.sweep import at_matched_l0, grid, preact_quantile, run_sweep

NB = "02_batchtopk"
S = setup(NB, PRESET, seed=SEED)
print({k: v for k, v in vars(S).items() if k != "notebook"})

# %% [markdown]
# ## 1 · The method
#
# All three SAEs share the encoder and decoder of notebook 00,
# $z = (x - b_\text{dec}) W_\text{enc} + b_\text{enc}$ and $\hat x = f W_\text{dec} + b_\text{dec}$,
# with unit-norm decoder rows. They differ in how $f$ is made sparse:
#
# * **TopK**: $f = \mathrm{ReLU}(\mathrm{TopK}_k(z))$ row by row, exactly $k$ latents per token.
# * **BatchTopK** (training): stack the batch's pre-activations into a $B \times m$ matrix
#   $A = \mathrm{ReLU}(Z)$, keep its $B k$ largest entries *over the whole matrix*, zero the rest.
#   A token now gets $\ell_b \ge 0$ latents with $\frac1B \sum_b \ell_b = k$.
# * **BatchTopK** (inference): $f_i = a_i \,[a_i > \theta]$ with one global threshold $\theta$,
#   estimated during training as a moving average of the smallest activation the batch rule kept:
#   $$\theta \leftarrow \beta\,\theta + (1 - \beta)\,\min_{(b,i)\ \text{kept}} a_{bi}.$$
# * **JumpReLU**: $f_i = z_i\,H(z_i - \theta_i)$ with a learned threshold per latent and an L0 penalty
#   $\lambda \sum_i H(z_i - \theta_i)$, trained with straight-through estimators (notebook 03).
#
# TopK and BatchTopK minimise $\lVert x - \hat x \rVert^2 + \tfrac{1}{32}\mathcal L_\text{AuxK}$ (dead
# latents reconstruct the residual; $k_\text{aux} = d/2$, scaled with $d$ as the paper's traps note).
# Both train on the sparse fast path (only the active entries carry gradient).
#
# **Choices where the paper leaves room, or where we scale down:**
# * $b_\text{enc}$ is used (the authors' code leaves it unused; both are allowed).
# * Inputs are scaled dataset-wise so that $\mathbb E\lVert x \rVert = \sqrt d$ (the authors
#   standardise each token; the spec allows either).
# * The paper averages $\theta$ with $\beta = 0.999$ over ~244k steps. The quick preset trains a few hundred steps
#   (half an epoch of the shared training harvest, to fit the CPU budget; the count is printed below), and $\theta$ drifts while the SAE trains, so a 1000-step average would lag far behind: we use
#   the preset's $\beta$ and start the average after the preset's warm-up (printed above).
# * Widths are $d \times$ `S.expansions` instead of $768 \times$ {4 … 32}; the $k$ sweep runs at one width.
#   Every SAE is trained with each of the preset's seeds (`S.seeds`: initialisation and data order),
#   the same seeds for every architecture, so method-vs-method claims are paired over seeds.
# * JumpReLU uses notebook 03's CPU-scale recipe: raw $\theta$ initialised at a quantile of the
#   pre-activations, a wide bandwidth, Adam $\beta_1 = 0$, no AuxK. Every SAE here shares one learning
#   rate and batch size (preset), chosen large enough for a few hundred steps: a raw threshold moves at most
#   about one learning-rate step per Adam step.

# %%
with timer("activations (cached)"):
    train_acts, eval_acts = shared_activations(S)
X, X_eval = train_acts.acts, eval_acts.acts
d = X.shape[1]
splice = None
if S.splice_seqs:  # the quick preset cannot afford Delta LM over seeds (section 6); the full preset runs it
    with timer("splice (clean CE cached once)"):
        splice = Splice(eval_acts, max_seqs=S.splice_seqs)
n_steps = int(S.epochs * len(X)) // S.batch_size
docs = eval_acts.sequence_documents.numpy()
print(f"train {len(X):,} tokens ({n_steps} steps of {S.batch_size}); held-out {len(X_eval):,} tokens in "
      f"{len(docs)} sequences from {len(np.unique(docs))} documents; "
      + (f"Δ LM loss over {splice.n_tokens:,} held-out predictions" if splice else "no Δ LM loss (quick preset)"))

# %% [markdown]
# ## 2 · The grid
#
# TopK and BatchTopK at $k = $ `S.k` for every width, plus a $k$ sweep at one width; JumpReLU with a
# $\lambda$ sweep at that width. One call to the sweep helper trains each SAE once per seed (the same
# seeds and data order for every architecture; trained SAEs are cached and reused) and measures it on the
# whole held-out split. BatchTopK is measured with its inference threshold (eval mode); the next cell
# measures it again with the training-time batch rule.

# %%
SEEDS = list(S.seeds)
widths = [e * d for e in S.expansions]
w_k = S.k_expansion * d
btk = {"batchtopk": dict(threshold_beta=S.threshold_beta, threshold_start=S.threshold_start)}
theta0 = preact_quantile(SAE(d, w_k, "relu", seed=SEED), X, S.jr_init_quantile)
jr = {"jumprelu": dict(init_threshold=theta0, bandwidth=S.jr_bandwidth)}
jr_train = {"jumprelu": dict(beta1=0.0, auxk_coeff=0.0, sparsity_warmup_frac=0.2)}
runs = (grid(["topk", "batchtopk"], widths, ks=[S.k], sparsifier_kwargs=btk)
        + grid(["topk", "batchtopk"], [w_k], ks=[k for k in S.ks if k != S.k], sparsifier_kwargs=btk)
        + grid(["jumprelu"], [w_k], lams=S.jr_lams, sparsifier_kwargs=jr, train_kwargs=jr_train))
base = TrainConfig(epochs=S.epochs, lr=S.lr, batch_size=S.batch_size, beta2=S.beta2, seed=SEED)
store, evals = {}, {}
with timer(f"sweep: {len(runs)} SAEs x {len(SEEDS)} seeds"):
    table = run_sweep(runs, X, eval_acts, base, splice=splice, seeds=SEEDS, store=store, evaluations=evals,
                      cache=True, progress=False)
table["rule"] = np.where(table["arch"] == "batchtopk", "threshold", "")

# %% [markdown]
# **The same BatchTopK SAEs under the training-time batch rule**, on held-out tokens in shuffled batches of
# the training batch size (as in training), so L0 is exactly $k$ on average. The table shows the mean over
# seeds.

# %%
rows = []
for r in table[table["arch"] == "batchtopk"].itertuples():
    sae = store[(r.label, r.seed)].sae
    with sae.sparsifier.batch_rule():  # also for the splice (full preset)
        ev = evaluate(sae, eval_acts, splice, batch_rule=True, batch_size=S.batch_size, seed=r.seed)
    rows.append({**table.loc[r.Index].to_dict(), **ev.row(), "rule": "batch"})
table = pd.concat([table, pd.DataFrame(rows)], ignore_index=True)
metrics = ["l0", "fvu", "delta_lm_loss", "dead_frac", "gamma"]
summary = table.groupby(["arch", "rule", "width", "k", "lam"], dropna=False)[metrics].mean()
summary.round(3)

# %% [markdown]
# ## 3 · The paper's panels
#
# NMSE (= FVU, the fraction of variance unexplained on held-out tokens) and, when the preset runs the
# splice, Δ LM loss (the increase in next-token cross-entropy when the reconstruction replaces layer 15's
# output; positive = worse). Markers: mean over seeds; bars: the range over seeds. Solid lines:
# training-time batch rule (L0 = $k$ exactly); dashed: the batch-independent inference threshold, whose L0
# is *measured* (so its points move along the L0 axis, and in the width panel they sit at a higher L0
# than the solid ones: see section 5).

# %%
pal = colors(4)
style = {("topk", ""): dict(color=pal[0], marker="o", ls="-", label="TopK"),
         ("batchtopk", "batch"): dict(color=pal[1], marker="s", ls="-", label="BatchTopK (batch rule)"),
         ("batchtopk", "threshold"): dict(color=pal[1], marker="s", ls="--", mfc="white",
                                          label="BatchTopK (inference threshold)"),
         ("jumprelu", ""): dict(color=pal[2], marker="^", ls="-", label="JumpReLU (λ sweep)")}
panel_metrics = [("fvu", "NMSE (held-out)")] + ([("delta_lm_loss", "Δ LM loss (nats, spliced − clean)")] if splice else [])
fig, axes = plt.subplots(len(panel_metrics), 2, figsize=(13, 4.5 * len(panel_metrics)), squeeze=False)
for (arch, rule), st in style.items():
    sel = table[(table["arch"] == arch) & (table["rule"] == rule)]
    agg = sel.groupby(["width", "k", "lam"], dropna=False)[["l0", "fvu", "delta_lm_loss"]].agg(["mean", "min", "max"])
    agg.columns = [f"{a}_{b}" for a, b in agg.columns]
    agg = agg.reset_index()
    panels = [("width", agg[agg["k"] == S.k] if arch != "jumprelu" else agg.iloc[:0]), ("l0_mean", agg[agg["width"] == w_k])]
    for row, (metric, _) in enumerate(panel_metrics):
        for col, (xcol, sub) in enumerate(panels):
            sub = sub.sort_values(xcol)
            y = sub[f"{metric}_mean"]
            axes[row, col].errorbar(sub[xcol], y, yerr=[y - sub[f"{metric}_min"], sub[f"{metric}_max"] - y],
                                    ms=8, capsize=3, **st)
for row, (_, name) in enumerate(panel_metrics):
    axes[row, 0].set(xlabel="dictionary size m (latents)", ylabel=name, title=f"{name.split(' (')[0]} vs width, k = {S.k}")
    axes[row, 1].set(xlabel="L0 (active latents per token, held-out)", ylabel=name,
                     title=f"{name.split(' (')[0]} vs L0, m = {w_k}")
    log_axis(axes[row, 0], "x", ticks=tuple(widths))
    log_axis(axes[row, 1], "x", ticks=(8, 16, 32, 64, 128))
axes[0, 1].legend(fontsize=9)
fig.suptitle(f"BatchTopK vs TopK vs JumpReLU (SmolLM2-135M, layer 15; {len(SEEDS)} seeds, bars = range)",
             fontweight="bold")
save_figure(fig, NB, "grid_2x2")
plt.show()

# %% [markdown]
# ## 4 · How many latents does each token get?
#
# TopK's histogram is a spike at $k$ by construction. BatchTopK spreads the same budget: left, the
# batch rule; middle, the inference threshold (first seed, $k$ = `S.k`, $m$ = `w_k`).
#
# Does BatchTopK give more latents to *harder* tokens? Plotting L0 against the token's norm cannot say:
# under one global threshold, pre-activations grow with the input's scale, so L0 rising with
# $\lVert x - \bar x\rVert$ is largely built in. A scale-free measure of difficulty is how badly a *fixed*
# budget reconstructs the token: the relative error of the TopK SAE (same width, same $k$, same seed),
# $e(x) = \lVert x - \hat x_\text{TopK}\rVert^2 / \lVert x - \bar x\rVert^2$. Right: BatchTopK's mean L0 per
# decile of $e$. Printed below it: the rank correlations of L0 with the norm and with $e$, and the partial
# rank correlation with $e$ once the norm is held fixed (what is left of "harder tokens get more latents"
# beyond scale). A figure for reading, not a claim.

# %%
label_t, label_b = f"topk k={S.k} m={w_k}", f"batchtopk k={S.k} m={w_k}"
sae_t, sae_b = store[(label_t, SEEDS[0])].sae, store[(label_b, SEEDS[0])].sae
l0_thr = evals[(label_b, SEEDS[0])].l0_per_token
l0_batch = evaluate(sae_b, X_eval, batch_rule=True, batch_size=S.batch_size, seed=SEEDS[0]).l0_per_token
l0_topk = evals[(label_t, SEEDS[0])].l0_per_token
dev = (X_eval - X_eval.mean(0)).norm(dim=-1)

fig, axes = plt.subplots(1, 3, figsize=(16, 4.3))
bins = np.arange(0, int(max(l0_thr.max(), l0_batch.max())) + 3) - 0.5
for ax, (name, l0s, col) in zip(axes[:2], [("batch rule", l0_batch, pal[1]), ("inference threshold", l0_thr, pal[3])]):
    ax.hist(l0_topk.numpy(), bins=bins, color=pal[0], alpha=0.6, label=f"TopK (all = {S.k})")
    ax.hist(l0s.numpy(), bins=bins, color=col, alpha=0.7, label=f"BatchTopK, {name}")
    ax.set(xlabel="active latents on the token", ylabel="held-out tokens", yscale="log",
           title=f"Latents per token: {name}")
    ax.legend(fontsize=9)
with torch.no_grad():
    rel_err = (X_eval - sae_t(X_eval)).pow(2).sum(-1) / dev.pow(2)  # TopK's relative error per token
edges = torch.quantile(rel_err, torch.linspace(0, 1, 11))
idx = torch.bucketize(rel_err, edges[1:-1])
axes[2].plot([rel_err[idx == i].mean() for i in range(10)], [l0_thr[idx == i].float().mean() for i in range(10)],
             "s-", color=pal[3], label="BatchTopK (threshold)")
axes[2].axhline(S.k, color=pal[0], ls=":", label=f"TopK (= {S.k})")
axes[2].set(xlabel="TopK's relative error ‖x − x̂‖² / ‖x − mean‖² (decile mean)", ylabel="mean active latents",
            title="Latents vs difficulty for a fixed budget")
log_axis(axes[2], "x", ticks=(0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5))
axes[2].legend(fontsize=9)
save_figure(fig, NB, "latents_per_token")
plt.show()
rho = np.corrcoef(np.stack([rankdata(v.numpy()) for v in (l0_thr.float(), dev, rel_err)]))
partial = (rho[0, 2] - rho[0, 1] * rho[1, 2]) / np.sqrt((1 - rho[0, 1] ** 2) * (1 - rho[1, 2] ** 2))
print(f"rank correlation of BatchTopK's L0 with ‖x − mean‖: {rho[0, 1]:+.2f}; with TopK's relative error: "
      f"{rho[0, 2]:+.2f}; with the relative error at fixed norm (partial): {partial:+.2f} ({len(dev):,} held-out tokens)")

# %% [markdown]
# **Which tokens get many latents, and which get few?** The held-out tokens with the most and the
# fewest active latents under the inference threshold (one per sequence), the token highlighted and
# its latent count at the left.

# %%
_, tok = load_lm(S.model)
many = top_examples(l0_thr.float(), eval_acts, tok, n=6)
few = top_examples((l0_thr.max() + 1 - l0_thr).float(), eval_acts, tok, n=6)
for ex in few:
    ex.activation = float(l0_thr.max() + 1 - ex.activation)
display(HTML(examples_html("most latents", many) + examples_html("fewest latents", few)))

# %% [markdown]
# ## 5 · Does the inference threshold reproduce training-time sparsity?
#
# For each BatchTopK SAE (every setting and seed): L0 with the threshold, on the whole held-out split
# and on (seen) training tokens (the first `S.seen_tokens` of the permuted training harvest), against
# the training L0 $k$. The held-out text is a different set of documents, so its activations may be
# distributed a little differently; the training tokens isolate the estimator itself. Tolerance, fixed
# before running: **5%** relative L0 error.

# %%
L0_TOL = 5.0  # percent
X_seen = X[: S.seen_tokens]
chk = []
for r in table[(table["arch"] == "batchtopk") & (table["rule"] == "threshold")].itertuples():
    sae = store[(r.label, r.seed)].sae
    chk.append({"SAE": r.label, "seed": r.seed, "θ": sae.sparsifier.threshold.item(), "k": r.k,
                "L0 thr. (held-out)": r.l0, "L0 thr. (train tokens)": evaluate(sae, X_seen).l0})
chk = pd.DataFrame(chk)
chk["err held-out %"] = 100 * (chk["L0 thr. (held-out)"] / chk["k"] - 1)
chk["err train %"] = 100 * (chk["L0 thr. (train tokens)"] / chk["k"] - 1)
chk.round(2)

# %% [markdown]
# ## 6 · Claims check
#
# How an interval and a margin become a verdict, and why one seed is not enough, are explained once in
# [`docs/uncertainty.md`](../docs/uncertainty.md); the terms are in [`docs/glossary.md`](../docs/glossary.md).
#
# Each claim's statistic, direction, margin and uncertainty are fixed here, before the run that scores
# them (verdict model: `saelib.companion.claims`).
#
# * **BatchTopK vs TopK on NMSE, at every $k$ and width.** Statistic, per (width, $k$) setting: the
#   relative NMSE improvement $100\,(\text{NMSE}_\text{TopK} - \text{NMSE}_\text{BatchTopK})/\text{NMSE}_\text{TopK}$
#   in percent, BatchTopK under its batch rule so both have L0 = $k$; a paired t-interval (95%) over the
#   seeds. Margin **1%**: the smallest improvement we would call "better", a tenth of the 10% tolerance
#   used for "comparable" below (without a margin any single-seed win would count). Aggregate,
#   declared beforehand: *every* setting must pass, so the claim is scored on the setting whose interval
#   gives the weakest verdict (not reproduced < inconclusive < partly < reproduced; ties: the lowest
#   lower bound).
# * **BatchTopK vs TopK on Δ LM loss, at every $k$ and width**: the same design on Δ LM loss over
#   `S.splice_seqs` held-out sequences. In the quick preset it is **inconclusive for budget**: three
#   seeds × every (width, $k$) × two arms is 24 splices, each ~5.6 s over the 32 sequences (4,000
#   predictions) the verdict model asks for, i.e. most of the notebook's 3-minute row on its own. The
#   full preset (GPU) runs it.
# * **BatchTopK comparable to JumpReLU.** Statistic, per seed: the relative NMSE gap
#   $100\,(\text{NMSE}_\text{BatchTopK}/\text{NMSE}_\text{JumpReLU} - 1)$ with BatchTopK under its inference
#   threshold ($k$ = `S.k`, $m$ = `w_k`) and JumpReLU's NMSE interpolated at that L0, linearly in log L0,
#   by `saelib.sweep.at_matched_l0`; a paired t-interval over the seeds. An equivalence claim with
#   tolerance **10%**. The matching rule refuses to extrapolate: if the $\lambda$ sweep does not
#   bracket BatchTopK's L0 in every seed the claim is inconclusive.
# * **Inference threshold reproduces training L0 (within 5%).** Statistic, per BatchTopK SAE: the
#   relative L0 error $100\,(L0_\text{threshold}/k - 1)$ on the whole held-out split; a bootstrap (2,000
#   resamples) over held-out *documents* (a document contributes several sequences), L0 recomputed from
#   resampled sums. An equivalence claim with tolerance **5%**, on every SAE (every setting and seed):
#   scored on the SAE with the weakest verdict. The estimator on the tokens it was estimated from is a
#   check below, not a claim.

# %%
def relative_gain(metric: str) -> dict:
    """Per (width, k): paired t-interval over seeds of 100 (TopK - BatchTopK[batch rule]) / TopK."""
    tk = table[table["arch"] == "topk"]
    bb = table[(table["arch"] == "batchtopk") & (table["rule"] == "batch")]
    out = {}
    for (w, k), g in tk.groupby(["width", "k"]):
        a = g.set_index("seed")[metric].loc[SEEDS].to_numpy()
        b = bb[(bb["width"] == w) & (bb["k"] == k)].set_index("seed")[metric].loc[SEEDS].to_numpy()
        out[(w, k)] = paired_t_interval(100 * (a - b) / a, np.zeros(len(a)))
    return out


claims = ClaimsTable(NB, PRESET, SEED)
MARGIN_GAIN = 1.0  # percent
gain = relative_gain("fvu")
(w0, k0), iv = weakest_setting(gain, MARGIN_GAIN)
claims.add_claim("BatchTopK beats TopK on NMSE at every k and width",
                 "100 (NMSE TopK - NMSE BatchTopK batch rule) / NMSE TopK, %, per (width, k); paired t over seeds; "
                 "scored on the weakest setting", iv, MARGIN_GAIN, "greater", "seeds", len(SEEDS),
                 measured=f"weakest m={w0}, k={k0}: {iv.rounded(2)}%; all: "
                 + ", ".join(f"m={w},k={k} {v.estimate:+.1f}%" for (w, k), v in gain.items()),
                 paper="BatchTopK lower NMSE than TopK at all k and widths (Fig. 1-2)")

if splice is not None:
    gain_lm = relative_gain("delta_lm_loss")
    (w0, k0), iv_lm = weakest_setting(gain_lm, MARGIN_GAIN)
    pre_lm, lm_text = (True, ""), (f"weakest m={w0}, k={k0}: {iv_lm.rounded(2)}%; all: "
                                   + ", ".join(f"m={w},k={k} {v.estimate:+.1f}%" for (w, k), v in gain_lm.items()))
else:
    iv_lm = Interval(np.nan, np.nan, np.nan, 0, "not run")
    pre_lm = (False, f"budget: {len(SEEDS)} seeds x {len(gain)} (width, k) x 2 arms = {2 * len(SEEDS) * len(gain)} "
                     "splices of >= 32 sequences (~5.6 s each) exceed the 3-min row; the full preset runs them")
    lm_text = "not measured in this preset (budget)"
claims.add_claim("BatchTopK beats TopK on Δ LM loss at every k and width",
                 "100 (ΔLM TopK - ΔLM BatchTopK batch rule) / ΔLM TopK, %, per (width, k); paired t over seeds; "
                 "scored on the weakest setting", iv_lm, MARGIN_GAIN, "greater", "seeds", len(SEEDS),
                 measured=lm_text, paper="BatchTopK lower CE degradation than TopK (Fig. 3-4)", precondition=pre_lm)

ref = table[(table["label"] == label_b) & (table["rule"] == "threshold")].set_index("seed")
jrel = table[table["arch"] == "jumprelu"]
jr_gaps, bracketed = [], True
for s in SEEDS:
    m = at_matched_l0(jrel[jrel["seed"] == s], ref.loc[s, "l0"], ["fvu"])
    bracketed &= m["bracketed"]
    if m["bracketed"]:
        jr_gaps.append(100 * (ref.loc[s, "fvu"] / m["fvu"] - 1))
iv_jr = (paired_t_interval(jr_gaps, np.zeros(len(jr_gaps))) if len(jr_gaps) >= 2
         else Interval(np.nan, np.nan, np.nan, len(jr_gaps), "fewer than 2 bracketed seeds"))
claims.add_claim("BatchTopK is comparable to JumpReLU (NMSE within 10%)",
                 f"100 (NMSE BatchTopK threshold / NMSE JumpReLU at the same L0 - 1), %, k={S.k}, m={w_k}; "
                 "JumpReLU interpolated in log L0 (at_matched_l0); paired t over seeds",
                 iv_jr, 10.0, "greater", "seeds", len(SEEDS), kind="equivalence",
                 measured=(f"gap {iv_jr.rounded(2)}% at BatchTopK L0 {ref['l0'].mean():.1f} (mean over seeds)"
                           if bracketed else "the λ sweep does not bracket BatchTopK's L0 in every seed"),
                 paper="comparable to JumpReLU (Fig. 2, 4)",
                 precondition=(bracketed, "the JumpReLU λ sweep brackets BatchTopK's L0 in every seed"))

l0_err = {}
for r in table[(table["arch"] == "batchtopk") & (table["rule"] == "threshold")].itertuples():
    ps = evals[(r.label, r.seed)].per_sequence
    l0_err[(r.label, r.seed)] = grouped_bootstrap(
        lambda a, n, axis, k=r.k: 100 * (a.sum(axis) / n.sum(axis) / k - 1), docs, ps.active, ps.n_tokens,
        n_resamples=2000, seed=SEED)
worst_sae, iv_thr = weakest_setting(l0_err, L0_TOL, kind="equivalence")
claims.add_claim("Inference threshold reproduces training L0 (within 5%)",
                 "100 (L0 with the threshold / k - 1) on the whole held-out split, %, per BatchTopK SAE; "
                 "bootstrap over held-out documents; scored on the weakest SAE",
                 iv_thr, L0_TOL, "greater", "bootstrap", len(SEEDS), kind="equivalence",
                 measured=f"weakest {worst_sae[0]} seed {worst_sae[1]}: {iv_thr.rounded(2)}%; held-out errors "
                 f"{chk['err held-out %'].min():+.1f}% to {chk['err held-out %'].max():+.1f}% over {len(chk)} SAEs",
                 paper="a global threshold replaces the batch rule at inference (Sec. 3)")

bat = table[(table["arch"] == "batchtopk") & (table["rule"] == "batch")]
claims.add_check("batch rule gives L0 = k on average (within 1%), every BatchTopK SAE",
                 bool((abs(bat["l0"] / bat["k"] - 1) <= 0.01).all()),
                 f"L0/k from {(bat['l0'] / bat['k']).min():.3f} to {(bat['l0'] / bat['k']).max():.3f}")
claims.add_check("threshold estimator reproduces k on training tokens (within 5%), every BatchTopK SAE",
                 bool((chk["err train %"].abs() <= L0_TOL).all()),
                 f"errors {chk['err train %'].min():+.1f}% to {chk['err train %'].max():+.1f}% on {len(X_seen):,} training tokens")
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
difficulty = ("harder tokens do get more latents" if partial >= 0.1 else "harder tokens get fewer latents"
              if partial <= -0.1 else "the budget does not follow difficulty")
g_lo = min(v.estimate for v in gain.values())
g_hi = max(v.estimate for v in gain.values())
display(Markdown(f"""
* The batch rule lets the number of active latents vary by token at the same average budget of $k$ = {S.k}:
  under the inference threshold the first seed's held-out tokens use from {int(l0_thr.min())} to {int(l0_thr.max())}
  latents (histograms above).
* Where the budget goes: BatchTopK's per-token L0 has rank correlation {rho[0, 2]:+.2f} with how badly a fixed TopK
  budget reconstructs the token, {partial:+.2f} once the token's norm is held fixed (with the norm alone:
  {rho[0, 1]:+.2f}). Reading a partial correlation below 0.1 in size as none, beyond scale {difficulty}.
* At this scale BatchTopK (batch rule) lowered held-out NMSE by {g_lo:.1f}% to {g_hi:.1f}% relative to TopK across the
  {len(gain)} (width, $k$) settings (mean over {len(SEEDS)} seeds); the weakest setting's 95% interval is
  {claims.claims[0].interval[0]:.2f}% to {claims.claims[0].interval[1]:.2f}% against a 1% margin: verdict
  **{claims.claims[0].verdict}**.
* Against JumpReLU at the same L0: verdict **{claims.claims[2].verdict}** ({claims.claims[2].measured}).
* The inference threshold is a single number. On the whole held-out split (all {len(np.unique(docs))} held-out
  documents, both sources) its L0 is {chk['err held-out %'].min():+.1f}% to {chk['err held-out %'].max():+.1f}% off $k$,
  on training tokens {chk['err train %'].min():+.1f}% to {chk['err train %'].max():+.1f}%: verdict
  **{claims.claims[3].verdict}**. Held-out text unlike the training text moves this L0 for reasons that have
  nothing to do with the estimator; the check on training tokens separates the two.
* Scale caveat: {len(X):,} training tokens seen for {S.epochs} epoch ({n_steps} steps), at most {max(widths):,} latents;
  the paper used 1B tokens and up to 24k latents. The Δ LM claim needs the splice over seeds, which the quick
  preset cannot afford. `PRESET = "full"` runs the paper-like configuration on a GPU.
"""))
