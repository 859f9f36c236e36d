"""Known-answer tests for saelib.papers.pam (SplInterp's PAM-SGD)."""
import pytest
import torch

from saelib.papers.pam import (PAMConfig, choose_l1, decoder_objective, decoder_step, epochs_to_reach, evaluate_mse,
                               fit, l1_pilot, make_sae, paper_epochs)


def _codes(n=300, m=12, d=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    Z = torch.randn(n, m, generator=g, dtype=torch.float64) * (torch.rand(n, m, generator=g) < 0.4)
    X = Z @ torch.randn(m, d, generator=g, dtype=torch.float64) + torch.randn(d, generator=g, dtype=torch.float64) \
        + 0.1 * torch.randn(n, d, generator=g, dtype=torch.float64)
    return Z, X, g


def test_decoder_step_equals_lstsq_and_decreases_objective():
    Z, X, g = _codes()
    W0, b0 = torch.randn(12, 7, generator=g, dtype=torch.float64), torch.randn(7, generator=g, dtype=torch.float64)
    step = decoder_step(Z, X, alpha=1e-10)
    sol = torch.linalg.lstsq(torch.cat([Z, torch.ones(len(Z), 1, dtype=Z.dtype)], 1), X).solution
    assert torch.allclose(step.W_dec, sol[:-1], atol=1e-7) and torch.allclose(step.b_dec, sol[-1], atol=1e-7)
    before = decoder_objective(Z, X, W0, b0)
    after = decoder_objective(Z, X, step.W_dec, step.b_dec)
    assert after < before
    # a minimiser: small perturbations never decrease the objective
    for _ in range(5):
        dW = 1e-3 * torch.randn(12, 7, generator=g, dtype=torch.float64)
        assert decoder_objective(Z, X, step.W_dec + dW, step.b_dec) >= after


def test_general_formula_matches_direct_normal_equations():
    Z, X, g = _codes(seed=1)
    alpha, beta, mu, nu = 0.3, 0.7, 2.0, 5.0
    Wp, bp = torch.randn(12, 7, generator=g, dtype=torch.float64), torch.randn(7, generator=g, dtype=torch.float64)
    step = decoder_step(Z, X, alpha, beta, mu, nu, Wp, bp)
    # unknowns [W_dec; b] per output column: (Zt^T Zt + D) theta = Zt^T X + [mu Wp; nu bp]
    Zt = torch.cat([Z, torch.ones(len(Z), 1, dtype=Z.dtype)], 1)
    D = torch.diag(torch.tensor([alpha + mu] * 12 + [beta + nu], dtype=Z.dtype))
    theta = torch.linalg.solve(Zt.t() @ Zt + D, Zt.t() @ X + torch.cat([mu * Wp, nu * bp[None]]))
    assert torch.allclose(step.W_dec, theta[:-1], atol=1e-9) and torch.allclose(step.b_dec, theta[-1], atol=1e-9)
    kw = dict(alpha=alpha, beta=beta, mu=mu, nu=nu, W_prev=Wp, b_prev=bp)
    assert decoder_objective(Z, X, step.W_dec, step.b_dec, **kw) <= decoder_objective(Z, X, Wp, bp, **kw)


def test_decoder_step_is_float64_inside_for_fewer_samples_than_latents():
    # N < m: A is singular up to the ridge; float32 inputs must give the float64 answer (no rounding blow-up)
    g = torch.Generator().manual_seed(4)
    Z = torch.randn(40, 256, generator=g) * (torch.rand(40, 256, generator=g) < 0.06)
    X = torch.randn(40, 784, generator=g)
    s32, s64 = decoder_step(Z, X, alpha=1e-6), decoder_step(Z.double(), X.double(), alpha=1e-6)
    assert s32.W_dec.dtype == torch.float32
    assert torch.allclose(s32.W_dec.double(), s64.W_dec, rtol=1e-4, atol=1e-4)


def test_decoder_step_bad_input():
    Z, X, _ = _codes()
    with pytest.raises(ValueError, match="alpha"):
        decoder_step(Z, X, alpha=-1.0)
    with pytest.raises(ValueError, match="W_prev"):
        decoder_step(Z, X, mu=1.0)
    with pytest.raises(ValueError, match="same N"):
        decoder_step(Z, X[:-1])


@pytest.mark.parametrize("activation,l1", [("topk_abs", 0.0), ("relu", 1e-3)])
def test_fit_all_methods_improve_and_pam_decoder_is_optimal(activation, l1):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 2, generator=g) @ torch.randn(2, 16, generator=g) + 0.05 * torch.randn(256, 16, generator=g)
    cfg = PAMConfig(epochs=3, batch_size=64, lr=1e-2, l1_coeff=l1, mu_enc=1e-3, nu_enc=1e-3, eval_train=True)
    for method in ("pam", "adam_tied", "adam_untied"):
        sae = make_sae(16, 8, activation, k=2, init_std=0.3, seed=0)
        res = fit(sae, x[:200], x[200:], method, cfg)
        h = res.history
        assert list(h["epoch"]) == [0, 1, 2, 3]
        assert h["train_mse"].iloc[-1] < h["train_mse"].iloc[0]
        if method == "adam_tied":
            assert torch.equal(sae.W_dec, sae.W_enc.t())
        if method == "pam":  # the decoder is the least-squares decoder of the final codes
            codes = sae.encode(x[:200]).detach()
            ls = decoder_step(codes, x[:200])
            assert torch.allclose(sae.W_dec, ls.W_dec, atol=1e-4)
    if activation == "topk_abs":
        assert (sae.encode(x) != 0).sum(-1).max() <= 2


def test_fit_is_deterministic_and_validates():
    x = torch.randn(64, 5)
    cfg = PAMConfig(epochs=2, batch_size=16)
    a = fit(make_sae(5, 4, k=2, seed=1), x, x, "pam", cfg).history["test_mse"]
    b = fit(make_sae(5, 4, k=2, seed=1), x, x, "pam", cfg).history["test_mse"]
    assert a.equals(b)
    with pytest.raises(ValueError, match="method"):
        fit(make_sae(5, 4, k=2), x, x, "sgd", cfg)
    with pytest.raises(ValueError, match="activation"):
        make_sae(5, 4, "topk")
    with pytest.raises(ValueError, match="steps_per_batch"):
        PAMConfig(steps_per_batch=0)


def test_helpers():
    assert [paper_epochs(f) for f in (0.01, 0.25, 0.5, 1.0)] == [10, 10, 10, 20]
    import pandas as pd
    h = pd.DataFrame({"epoch": [0, 1, 2], "test_mse": [3.0, 1.0, 0.5]})
    assert epochs_to_reach(h, 1.0) == 1 and epochs_to_reach(h, 0.1) == float("inf")


def test_choose_l1_takes_the_smallest_lambda_where_every_method_is_within_a_factor_2_of_k():
    import pandas as pd
    rows = [(1e-5, "pam", 300.0), (1e-5, "adam_tied", 40.0),   # pam too dense
            (1e-4, "pam", 60.0), (1e-4, "adam_tied", 10.0),    # pam still too dense (60 > 32)
            (1e-3, "pam", 20.0), (1e-3, "adam_tied", 8.0),     # both within [8, 32] (8 is k / 2: inclusive)
            (1e-2, "pam", 9.0), (1e-2, "adam_tied", 12.0)]
    pilot = pd.DataFrame(rows, columns=["l1_coeff", "method", "train_l0"])
    assert choose_l1(pilot, k=16) == 1e-3
    assert choose_l1(pilot[pilot["l1_coeff"] < 1e-3], k=16) is None  # no candidate: the ReLU claims are dropped
    with pytest.raises(ValueError, match="train_l0"):
        choose_l1(pilot.drop(columns="train_l0"), k=16)


@pytest.mark.parametrize("method", ["pam", "adam_tied", "adam_untied"])
def test_eval_every_epoch_false_trains_the_same_model(method):
    """Skipping the per-epoch test evaluation changes only the history (one row), not the training."""
    x = torch.randn(96, 8, generator=torch.Generator().manual_seed(3))
    cfg = dict(epochs=3, batch_size=32, lr=1e-2, seed=1)
    full = fit(make_sae(8, 16, "topk_abs", k=3, seed=2), x[:64], x[64:], method, PAMConfig(**cfg))
    last = fit(make_sae(8, 16, "topk_abs", k=3, seed=2), x[:64], x[64:], method,
               PAMConfig(**cfg, eval_every_epoch=False))
    assert list(last.history["epoch"]) == [3]
    for name, p in full.sae.state_dict().items():
        assert torch.equal(p, last.sae.state_dict()[name]), name
    cols = ["test_mse", "test_fvu", "test_l0", "test_nonzero_frac"]
    assert full.history.iloc[-1][cols].equals(last.history.iloc[-1][cols])


def test_l1_pilot_reports_the_training_l0_of_every_candidate_and_method():
    x = torch.randn(256, 8)
    cfg = PAMConfig(epochs=9, batch_size=64, seed=3)
    pilot = l1_pilot(lambda s: make_sae(8, 16, "relu", seed=s), x, x[:32], cfg, [0.0, 0.5], epochs=2)
    assert list(pilot.columns) == ["l1_coeff", "method", "train_l0"] and len(pilot) == 2 * 3
    direct = fit(make_sae(8, 16, "relu", seed=3), x, x[:32], "adam_untied",
                 PAMConfig(epochs=2, batch_size=64, seed=3, l1_coeff=0.5, eval_every_epoch=False)).sae
    row = pilot[(pilot.l1_coeff == 0.5) & (pilot.method == "adam_untied")]["train_l0"].item()
    assert row == pytest.approx(evaluate_mse(direct, x)["l0"])
