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
# # 03 · JumpReLU: a learned threshold, trained through a discontinuity
#
# **Paper.** Senthooran Rajamanoharan, Tom Lieberum, Nicolas Sonnerat, Arthur Conmy, Vikrant Varma,
# János Kramár, Neel Nanda, *Jumping Ahead: Improving Reconstruction Fidelity with JumpReLU Sparse
# Autoencoders* (July 2024, arXiv:2407.14435).
#
# **What they claim.** Replace the SAE's ReLU by $\mathrm{JumpReLU}_\theta(z) = z\,H(z - \theta)$, a
# ReLU whose output jumps from 0 to $\theta$ at a learned, per-latent threshold, and penalise the
# number of active latents (L0) directly. Both the loss and the activation are discontinuous in
# $\theta$, so the paper trains $\theta$ with *straight-through estimators* (STEs) whose batch average
# is a kernel density estimate of the gradient of the expected loss. They report that JumpReLU SAEs
# reconstruct better than ReLU-L1 (and Gated) SAEs at the same L0 and at least match TopK, that
# they do not shrink activations as L1 does, and that like TopK they have more very-high-frequency
# latents than Gated SAEs.
#
# Here: the toy picture of why a threshold helps, the STE and a numerical check of it, then a
# $\lambda$ sweep on a real LM against ReLU-L1 and TopK, with the claims scored from the numbers.

# %% tags=["parameters"]
PRESET = "quick"  # "quick": 2 CPU cores, offline; "full": paper-like scale on a GPU, online
SEED = 0

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from saelib import SAE, TrainConfig
from saelib.callbacks import Snapshots
from saelib.companion import ClaimsTable, colors, log_axis, save_figure, setup, shared_activations, timer
from saelib.metrics.splice import Splice
from saelib.papers.jumprelu_toy import closed_form_grad, fd_theta_grad, ste_theta_grad
from saelib.sweep import grid, preact_quantile, run_sweep

NB = "03_jumprelu"
S = setup(NB, PRESET, seed=SEED)
print({k: v for k, v in vars(S).items() if k != "notebook"})

# %% [markdown]
# ## 1 · Why a threshold beats a shifted ReLU (the paper's Fig. 1)
#
# Take one latent whose pre-activation $z$ is small noise when its feature is absent and the feature's
# magnitude (plus noise) when present. A ReLU passes the positive half of the noise. Lowering its bias
# by $b$ ($\mathrm{ReLU}(z - b)$) removes the noise but subtracts $b$ from every true activation:
# *shrinkage*. A JumpReLU with threshold $\theta$ removes the same noise and returns $z$ untouched
# above the threshold. (Above $\theta$ the ReLU and JumpReLU points coincide, so the ReLU's are hidden.)

# %%
rng = np.random.default_rng(SEED)
present = rng.random(4000) < 0.2
mag = np.where(present, rng.uniform(1.0, 3.0, 4000), 0.0)
z = mag + rng.normal(0, 0.35, 4000)
theta = b = 1.0
acts = {"ReLU(z)": np.maximum(z, 0), f"ReLU(z − {b:g})": np.maximum(z - b, 0), f"JumpReLU θ={theta:g}": z * (z > theta)}
grid_z = np.linspace(-1, 3.5, 500)
curves = {"ReLU(z)": np.maximum(grid_z, 0), f"ReLU(z − {b:g})": np.maximum(grid_z - b, 0),
          f"JumpReLU θ={theta:g}": grid_z * (grid_z > theta)}
pal = colors(4)
fig, axes = plt.subplots(1, 2, figsize=(13, 4.3))
axes[0].hist([z[~present], z[present]], bins=60, color=["0.6", pal[3]], alpha=0.6, density=True,
             label=["feature absent (noise)", "feature present"], histtype="stepfilled")
ax2 = axes[0].twinx()
for (name, c), col in zip(curves.items(), pal):
    ax2.plot(grid_z, c, color=col, lw=2.5, label=name)
ax2.set_ylabel("activation f(z)")
axes[0].set(xlabel="pre-activation z", ylabel="density", title="Activation functions over the data")
axes[0].legend(loc="upper left", fontsize=9)
ax2.legend(loc="center right", fontsize=9)
for (name, f), col in zip(acts.items(), pal):
    err = np.mean((f - mag) ** 2)
    axes[1].scatter(mag[present], f[present], s=4, color=col, alpha=0.4, label=f"{name}: MSE {err:.3f}")
axes[1].plot([1, 3], [1, 3], "k:", label="f = true magnitude")
axes[1].set(xlabel="true feature magnitude", ylabel="activation f(z) when present",
            title="Recovering the magnitude (all tokens in the MSE)")
axes[1].legend(fontsize=9, markerscale=4)
save_figure(fig, NB, "toy_threshold_vs_bias")
plt.show()

# %% [markdown]
# ## 2 · Training through the jump: straight-through estimators
#
# With $\pi(x) = (x - b_\text{dec}) W_\text{enc} + b_\text{enc}$, $f = \mathrm{JumpReLU}_\theta(\pi)$,
# $\hat x = f W_\text{dec} + b_\text{dec}$, the loss is
# $$\mathcal L = \lVert x - \hat x \rVert_2^2 + \lambda \sum_i H(\pi_i - \theta_i).$$
# For a single token $\mathcal L$ is piecewise constant in $\theta$: its true gradient is 0 almost
# everywhere. The paper defines pseudo-derivatives with a rectangle kernel
# $K(u) = \mathbb 1[|u| < \tfrac12]$ of bandwidth $\varepsilon$ (Eqs. 11–12):
# $$\frac{\partial}{\partial\theta}\mathrm{JumpReLU}_\theta(z) := -\frac{\theta}{\varepsilon}K\!\left(\frac{z-\theta}{\varepsilon}\right),\qquad
#   \frac{\partial}{\partial\theta}H(z-\theta) := -\frac{1}{\varepsilon}K\!\left(\frac{z-\theta}{\varepsilon}\right),$$
# the exact $\partial/\partial z = H(z - \theta)$ for the activation, and *no* gradient from the L0 term
# to $z$: the penalty trains only the thresholds. Averaged over a batch, only tokens with $z$ within
# $\varepsilon/2$ of $\theta$ contribute: a kernel density estimate of $\partial\,\mathbb E[\mathcal L]/\partial\theta$.
#
# **Check.** A toy where $\mathbb E[\mathcal L]$ is computable: $z_i \sim \mathcal N(0,1)$, target $a z_i$,
# $\mathcal L = \sum_i (a z_i - f_i)^2 + \lambda\,\mathrm{L0}$ (here $a = 0.2$, $\lambda = 0.5$). We compare
# the batch-averaged STE gradient (autograd through `saelib`'s JumpReLU on a million samples) with finite
# differences of the expected loss (Gauss–Legendre quadrature), across thresholds and bandwidths. The
# unit test `tests/test_jumprelu.py` asserts agreement within 5%.

# %%
thetas = torch.linspace(0.2, 2.4, 23)
fd = fd_theta_grad(thetas)
bandwidths = [0.02, 0.1, 0.5]
ste = {eps: ste_theta_grad(thetas, eps, n_samples=S.ste_samples, seed=SEED) for eps in bandwidths}

fig, axes = plt.subplots(1, 2, figsize=(13, 4.3))
u = np.linspace(-1.5, 1.5, 601)
axes[0].plot(u, (u > 0).astype(float), color=pal[0], lw=2.5, label="H(z − θ) vs z − θ")
eps0 = 0.5
axes[0].plot(u, -(1 / eps0) * (np.abs(u / eps0) < 0.5), color=pal[1], lw=2.5,
             label=f"pseudo-derivative ∂/∂θ, ε = {eps0:g}: −(1/ε) K((z−θ)/ε)")
axes[0].set(xlabel="z − θ", ylabel="value", title="Heaviside and its rectangle-kernel STE")
axes[0].legend(fontsize=9, loc="lower right")
axes[1].plot(thetas, fd, "k-", lw=3, label="finite differences of E[L] (quadrature)")
for (eps, g), col in zip(ste.items(), pal):
    axes[1].plot(thetas, g, "o", ms=5, color=col, label=f"batch-averaged STE, ε = {eps:g}")
axes[1].set(xlabel="threshold θ", ylabel="dE[L]/dθ", title=f"STE vs finite differences ({S.ste_samples:,} samples)")
axes[1].legend(fontsize=9)
save_figure(fig, NB, "ste_gradient_check")
plt.show()
err = {eps: float(((g - fd).abs() / fd.abs()).max()) for eps, g in ste.items()}
print("max relative error per bandwidth:", {k: f"{v:.1%}" for k, v in err.items()},
      "| closed form vs FD:", f"{float(((closed_form_grad(thetas) - fd).abs() / fd.abs()).max()):.1e}")

# %% [markdown]
# A small bandwidth gives an unbiased but noisy estimate (few tokens fall in the window); a large one is
# smooth but biased. On a real SAE the bandwidth is also in the units of the pre-activations, which is
# the first trap below.

# %% [markdown]
# ## 3 · A λ sweep on a real LM, against ReLU-L1 and TopK
#
# Same activations (SmolLM2-135M, layer 15), same width, same training tokens for every SAE.
#
# **CPU-scale choices** (the paper trains ~8B tokens, $\varepsilon = \theta_0 = 0.001$ in units where
# $\mathbb E\lVert x\rVert^2 = 1$, Adam $\beta = (0, 0.999)$, lr $7\times10^{-5}$, $\lambda$ warmed up over 10k steps):
# * our training scales inputs to $\mathbb E\lVert x\rVert = \sqrt d$, so pre-activations are ~$\sqrt d = 24$
#   times larger than in the paper's units; the bandwidth is the preset's `jr_bandwidth` *in our units*
#   (the spec suggests 0.01–0.1 normalised, i.e. ~0.24–2.4 here);
# * raw $\theta$ (kept positive by projection, see `saelib.sparsifiers.jumprelu.JumpReLU`), initialised at the preset's
#   quantile of the step-0 pre-activations instead of 0.001: in ~300 Adam steps a raw threshold can
#   move by at most about lr × steps;
# * Adam $\beta_1 = 0$ for JumpReLU, $\lambda$ warmed up over the first 20% of steps, no AuxK for JumpReLU
#   or ReLU-L1; one learning rate and batch size for every SAE (preset), large enough for ~300 steps;
# * ReLU-L1 is the decoder-norm-weighted L1 SAE of notebook 00; TopK uses AuxK.

# %%
with timer("activations (cached)"):
    train_acts, eval_acts = shared_activations(S)
X, X_eval = train_acts.acts, eval_acts.acts
d = X.shape[1]
m = S.expansion * d
with timer("splice (clean CE cached once)"):
    splice = Splice(eval_acts, max_seqs=S.splice_seqs)
theta0 = preact_quantile(SAE(d, m, "relu", seed=SEED), X, S.jr_init_quantile)
print(f"m = {m} latents; JumpReLU θ0 = {theta0:.3f} (the {S.jr_init_quantile:.0%} quantile), ε = {S.jr_bandwidth}")

# %%
runs = (grid(["jumprelu"], [m], lams=S.jr_lams,
             sparsifier_kwargs={"jumprelu": dict(init_threshold=theta0, bandwidth=S.jr_bandwidth)},
             train_kwargs={"jumprelu": dict(beta1=0.0, auxk_coeff=0.0, sparsity_warmup_frac=0.2)})
        + grid(["relu"], [m], lams=S.l1_coeffs, train_kwargs={"relu": dict(auxk_coeff=0.0)})
        + grid(["topk"], [m], ks=S.ks))
snaps = {}
for r in runs:
    if r.arch == "jumprelu":
        snaps[r.lam] = Snapshots(lambda sae: sae.sparsifier.threshold, every=10)
        r.train_kwargs["callbacks"] = [snaps[r.lam]]
store = {}
base = TrainConfig(epochs=S.epochs, lr=S.lr, batch_size=S.batch_size, seed=SEED)
with timer(f"sweep: {len(runs)} SAEs"):
    table = run_sweep(runs, X, X_eval, base, splice=splice, seed=SEED, store=store)

# %% [markdown]
# **Shrinkage, measured two ways.** $\lVert\hat x\rVert/\lVert x\rVert$ (the ratio of mean norms) is below 1
# for *any* imperfect reconstruction, shrinkage or not. So we also fit the single scale $\gamma$ that best
# rescales the reconstruction, $\gamma = \arg\min_s \sum \lVert (x - b_\text{dec}) - s(\hat x - b_\text{dec})\rVert^2$
# (Wright & Sharkey 2024): $\gamma \approx 1$ means no systematic shrinkage, $\gamma > 1$ means the
# codes are too small.

# %%
def best_rescale(sae: SAE, x: torch.Tensor) -> float:
    with torch.no_grad():
        xc, xh = x - sae.b_dec, sae(x) - sae.b_dec
        return float((xc * xh).sum() / (xh * xh).sum())


table["gamma"] = [best_rescale(store[lbl].sae, X_eval) for lbl in table["label"]]
table.drop(columns=["label", "nmse", "width", "expansion"]).round(3)

# %% [markdown]
# ## 4 · The frontier: fidelity vs sparsity
#
# Lower-left is better. Δ LM loss is the increase in next-token cross-entropy on held-out text when the
# reconstruction replaces layer 15's output (spliced − clean; positive = worse).

# %%
names = {"jumprelu": "JumpReLU (λ sweep)", "relu": "ReLU-L1 (λ sweep)", "topk": "TopK (k sweep)"}
marks = {"jumprelu": "^", "relu": "o", "topk": "s"}
cols = dict(zip(names, pal))


def frontier(ax, metric, ylabel, title):
    for arch, name in names.items():
        sel = table[table["arch"] == arch].sort_values("l0")
        ax.plot(sel["l0"], sel[metric], marker=marks[arch], ms=8, color=cols[arch], label=name)
    ax.set(xlabel="L0 (active latents per token, held-out)", ylabel=ylabel, title=title)
    log_axis(ax, "x", ticks=(4, 8, 16, 32, 64, 128, 256, 512))
    ax.legend(fontsize=9)


fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
frontier(axes[0], "delta_lm_loss", "Δ LM loss (nats)", "Δ LM loss vs L0")
frontier(axes[1], "fvu", "FVU (held-out)", "FVU vs L0")
save_figure(fig, NB, "frontier")
plt.show()

# %% [markdown]
# ## 5 · High-frequency latents and shrinkage
#
# Left two: the fraction of latents that fire on more than 10% and more than 1% of held-out tokens
# (the paper's Fig. 5 counts these "very high frequency" latents). Right: $\gamma$, the best rescaling
# of the reconstruction (1 = no shrinkage), and, dotted, the ratio of mean norms.

# %%
fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
frontier(axes[0], "hf_10", "fraction of latents", "Latents firing on > 10% of tokens")
frontier(axes[1], "hf_1", "fraction of latents", "Latents firing on > 1% of tokens")
frontier(axes[2], "gamma", "γ (best rescale of x̂)", "Shrinkage: γ > 1 means codes too small")
for arch in names:
    sel = table[table["arch"] == arch].sort_values("l0")
    axes[2].plot(sel["l0"], sel["norm_ratio"], ls=":", marker=marks[arch], color=cols[arch], alpha=0.6)
axes[2].axhline(1.0, color="k", lw=1)
axes[2].text(0.02, 0.03, "dotted: ‖x̂‖ / ‖x‖", transform=axes[2].transAxes, fontsize=9)
save_figure(fig, NB, "frequency_and_shrinkage")
plt.show()

# %% [markdown]
# ## 6 · How the thresholds move during training
#
# The distribution of $\theta$ over latents (median and 5–95% band) against training step, for each
# $\lambda$; the dashed line is $\theta_0$. Right: the final distribution.

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4.3))
for (lam, snap), col in zip(snaps.items(), pal):
    v = torch.stack(snap.values)
    q = torch.quantile(v, torch.tensor([0.05, 0.5, 0.95]), dim=1).numpy()
    axes[0].plot(snap.steps, q[1], color=col, lw=2, label=f"λ = {lam:g}")
    axes[0].fill_between(snap.steps, q[0], q[2], color=col, alpha=0.2)
    axes[1].hist(v[-1].numpy(), bins=50, color=col, alpha=0.6, label=f"λ = {lam:g}")
axes[0].axhline(theta0, color="k", ls="--", lw=1, label="θ0")
axes[0].set(xlabel="training step", ylabel="θ (training units)", title="Threshold distribution over training")
axes[1].set(xlabel="final θ (training units)", ylabel="latents", title="Final thresholds")
for ax in axes:
    ax.legend(fontsize=9)
save_figure(fig, NB, "threshold_dynamics")
plt.show()

# %% [markdown]
# ## 7 · Claims check
#
# "At equal L0": the comparison method's metric is interpolated (linearly in log L0) at each JumpReLU
# point's L0; JumpReLU points outside the other sweep's L0 range are not compared. A claim needs at least
# two compared points to be *reproduced*; otherwise it is at most *partly*.

# %%
claims = ClaimsTable(NB, PRESET, SEED)
jr = table[table["arch"] == "jumprelu"].sort_values("l0")


def at_jr_l0(arch: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(JumpReLU values, the other arch interpolated at the same L0) over the bracketed JumpReLU points."""
    other = table[table["arch"] == arch].sort_values("l0")
    ok = (jr["l0"] >= other["l0"].min()) & (jr["l0"] <= other["l0"].max())
    interp = np.interp(np.log(jr["l0"][ok]), np.log(other["l0"]), other[metric])
    return jr[metric][ok].to_numpy(), interp


for metric, label in [("fvu", "FVU"), ("delta_lm_loss", "Δ LM loss")]:
    mine, relu = at_jr_l0("relu", metric)
    wins = int((mine < relu).sum())
    claims.check(f"JumpReLU beats ReLU-L1 on {label} at equal L0",
                 f"lower on {wins}/{len(mine)} JumpReLU points in ReLU's L0 range"
                 + ("; " + ", ".join(f"{a:.3f} vs {b:.3f}" for a, b in zip(mine, relu)) if len(mine) else ""),
                 reproduced=len(mine) >= 2 and wins == len(mine), partly=wins > 0,
                 paper="JumpReLU above ReLU/Gated on the fidelity-sparsity frontier (Fig. 2)")
mine, topk = at_jr_l0("topk", "fvu")
wins = int((mine <= topk).sum())
claims.check("JumpReLU at least matches TopK on FVU at equal L0",
             f"as good or better on {wins}/{len(mine)} points in TopK's L0 range"
             + ("; " + ", ".join(f"{a:.4f} vs {b:.4f}" for a, b in zip(mine, topk)) if len(mine) else ""),
             reproduced=len(mine) >= 2 and wins == len(mine), partly=wins > 0,
             paper="JumpReLU matches or beats TopK (Fig. 2)")
mine, relu = at_jr_l0("relu", "hf_10")
claims.check("JumpReLU has more >10%-frequency latents than ReLU-L1 at equal L0",
             f"more on {int((mine > relu).sum())}/{len(mine)} points; "
             + ", ".join(f"{a:.3f} vs {b:.3f}" for a, b in zip(mine, relu)),
             reproduced=len(mine) >= 2 and bool((mine > relu).all()), partly=bool((mine > relu).any()),
             paper="JumpReLU (and TopK) have more very-high-frequency latents than Gated (Fig. 5)")
g = table.groupby("arch")["gamma"]
claims.check("L1 shrinks magnitudes; JumpReLU does not",
             f"γ: ReLU-L1 {g.min()['relu']:.3f}–{g.max()['relu']:.3f}, JumpReLU {g.min()['jumprelu']:.3f}–"
             f"{g.max()['jumprelu']:.3f} (1 = no shrinkage)",
             reproduced=g.min()["relu"] > g.max()["jumprelu"] and g.max()["jumprelu"] <= 1.05,
             partly=g.mean()["relu"] > g.mean()["jumprelu"],
             paper="no shrinkage with JumpReLU (Sec. 5; L1 shrinkage: Wright & Sharkey 2024)")
claims.save()
claims.show()

# %%
# NBVAL_CHECK_OUTPUT
print(claims.verdicts())

# %% [markdown]
# ## What to take away
#
# * The STE is not a hack that happens to work: averaged over a batch it estimates the gradient of the
#   expected loss, and the check above shows it, with the bias–variance trade-off set by the bandwidth.
# * On a real LM at CPU scale JumpReLU's thresholds move slowly (a raw parameter under Adam moves about
#   one learning-rate step per step), so the initial threshold and the learning rate matter far more
#   than in the paper's billions of tokens. The claims table reports what this run measured, not what
#   the paper's scale would give.
# * `PRESET = "full"` runs a paper-like configuration on a GPU.
