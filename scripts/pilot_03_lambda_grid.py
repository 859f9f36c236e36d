"""The pilot that fixed 03's quick JumpReLU lambda grid (run once, before the scoring run; no held-out data).

Seed 1, 03's recipe at lambda 0.3, 1, 3; L0 measured on the first 20k *training* tokens; log L0 interpolated
in log lambda for target L0 50, 32, 20 (inside TopK's k range 16-64). On 2026-12-02 it printed L0 61.4, 27.0,
13.4 and lambda 0.41, 0.78, 1.60, rounded to the preset's [0.4, 0.8, 1.6]. Needs the shared harvest (cached).

    python scripts/pilot_03_lambda_grid.py
"""
import numpy as np

from saelib import SAE, TrainConfig
from saelib.companion import setup, shared_activations
from saelib.sweep import grid, preact_quantile, run_sweep

PILOT_LAMS, TARGET_L0 = [0.3, 1.0, 3.0], (50, 32, 20)

S = setup("03_jumprelu", "quick", seed=0)
X = shared_activations(S, progress=False)[0].acts
d = X.shape[1]
m = S.expansion * d
theta0 = preact_quantile(SAE(d, m, "relu", seed=0), X, S.jr_init_quantile)   # as in the notebook
jr_kw = dict(sparsifier_kwargs={"jumprelu": dict(init_threshold=theta0, bandwidth=S.jr_bandwidth)},
             train_kwargs={"jumprelu": dict(beta1=0.0, auxk_coeff=0.0, sparsity_warmup_frac=0.2)})
base = TrainConfig(epochs=S.epochs, lr=S.lr, batch_size=S.batch_size, seed=0)
table = run_sweep(grid(["jumprelu"], [m], lams=PILOT_LAMS, **jr_kw), X, X[:20_000], base, seeds=[1], cache=True,
                  progress=False)
print(table[["lam", "l0"]].to_string(index=False))
lam, l0 = np.log(table["lam"].to_numpy()), np.log(table["l0"].to_numpy())
for target in TARGET_L0:
    print(f"training L0 {target}: lambda {np.exp(np.interp(np.log(target), l0[::-1], lam[::-1])):.2f}")
