"""The exercises (exercises/): with the reference answers filled in every check passes; with nothing
filled in the first check says so; every check rejects a plausible wrong answer."""
import math
from pathlib import Path

import jupytext
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = sorted((ROOT / "exercises").glob("[0-9][0-9]_*.py"))


def test_every_notebook_has_an_exercises_notebook_listed_in_the_exercises_readme():
    notebooks = {p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert notebooks == {p.stem for p in EXERCISES}
    readme = (ROOT / "exercises" / "README.md").read_text()
    assert all(f"]({stem}.ipynb)" in readme for stem in notebooks)


@pytest.fixture
def checks(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "exercises"))
    import checks

    return checks


def _run(py: Path, solutions: bool, monkeypatch) -> dict:
    """Execute the exercise notebook's code cells in order, ``SOLUTIONS`` set after its parameters cell."""
    monkeypatch.chdir(py.parent)
    monkeypatch.syspath_prepend(str(py.parent))
    ns: dict = {"__name__": "__main__"}
    for cell in jupytext.read(py).cells:
        if cell.cell_type == "code":
            exec(compile(cell.source, f"{py.name}", "exec"), ns)
            if "parameters" in cell.metadata.get("tags", []):
                ns["SOLUTIONS"] = solutions
    return ns


@pytest.mark.parametrize("py", EXERCISES, ids=[p.stem for p in EXERCISES])
def test_every_check_passes_with_the_solutions_filled_in(py, monkeypatch, capsys):
    _run(py, True, monkeypatch)
    out = capsys.readouterr().out
    n_checks = sum("checks.check_" in c.source for c in jupytext.read(py).cells)
    assert n_checks >= 1 and out.count("correct: ") == n_checks


@pytest.mark.parametrize("py", EXERCISES, ids=[p.stem for p in EXERCISES])
def test_an_unattempted_exercise_is_reported_as_such(py, monkeypatch, checks):
    with pytest.raises(AssertionError, match="not attempted yet"):
        _run(py, False, monkeypatch)


def _wrong_answers():
    """(check name, a plausible wrong answer) pairs: each check must reject its wrong answer."""
    from scipy.optimize import linear_sum_assignment

    def fvu_no_mean(x, x_hat):  # divides by sum x^2
        return float(((x - x_hat) ** 2).sum() / (x ** 2).sum())

    def at_l0_extrapolates(l0s, values, target):  # np.interp clamps instead of refusing
        o = np.argsort(l0s)
        return float(np.interp(np.log(target), np.log(np.asarray(l0s)[o]), np.asarray(values)[o]))

    def at_l0_linear(l0s, values, target):  # linear in L0, not in log L0
        o = np.argsort(l0s)
        l0s, values = np.asarray(l0s)[o], np.asarray(values)[o]
        return float(np.interp(target, l0s, values)) if l0s[0] <= target <= l0s[-1] else math.nan

    def verdict_no_partly(lo, hi, margin):
        return "reproduced" if lo >= margin else "not reproduced" if hi < margin else "inconclusive"

    def per_token_topk(pre, k):  # TopK, not BatchTopK
        a = pre.relu()
        return torch.zeros_like(a).scatter(1, a.topk(k, dim=1).indices, a.topk(k, dim=1).values)

    def rect(u):
        return (u.abs() < 0.5).to(u.dtype)

    def jr_grad_no_theta(z, theta, eps, g):
        return (-(1 / eps) * rect((z - theta) / eps) * g).sum(0)

    def step_grad_with_theta(z, theta, eps, g):
        return (-(theta / eps) * rect((z - theta) / eps) * g).sum(0)

    def mcc_absolute(A, B):
        C = (A / A.norm(dim=1, keepdim=True) @ (B / B.norm(dim=1, keepdim=True)).T).abs().numpy()
        r, c = linear_sum_assignment(C, maximize=True)
        return float(C[r, c].mean())

    def power_no_quarter(W, b):
        return W.T / 2, (W ** 2).sum(0) + b

    def ridge_no_alpha(Z, X, alpha):
        return torch.linalg.lstsq(Z, X).solution

    def scale_no_sqrt_d(x):  # forgets sqrt(d): every layer's tokens get norm 1, not sqrt(d)
        return 1 / x.norm(dim=1).mean().item()

    def threshold_at_nk(scores, k):  # the (N k)-th largest itself: "> theta" keeps only N k - 1
        return scores.flatten().topk(scores.shape[0] * k).values[-1].item()

    def fold_divides_encoder(W_enc, b_enc, W_dec):
        n = W_dec.norm(dim=1)
        return W_enc / n, b_enc / n, W_dec / n[:, None]

    def fc_mask_ignores_sign(pre, m):  # keeps m_i entries per column even where ReLU(z) = 0
        mask = torch.zeros_like(pre, dtype=torch.bool)
        order = pre.argsort(dim=0, descending=True)
        for i in range(pre.shape[1]):
            mask[order[: int(m[i]), i], i] = True
        return mask

    def zipf_linear_rank(densities, min_density):  # log density against rank, not log rank
        d = densities.double()
        ranks = torch.empty_like(d)
        ranks[d.argsort(descending=True)] = torch.arange(1, len(d) + 1, dtype=d.dtype)
        live = d > min_density
        x, y = ranks[live], d[live].log()
        slope = ((x - x.mean()) * (y - y.mean())).sum() / (x - x.mean()).pow(2).sum()
        r2 = 1 - (y - y.mean() - slope * (x - x.mean())).pow(2).sum() / (y - y.mean()).pow(2).sum()
        return -slope.item(), r2.item()

    def gsae_scores_raw_decoder(pre, g, W_dec, beta):  # |W_dec[i] . g| without unit rows
        return torch.where(pre > 0, pre * (1 + beta * (g @ W_dec.T).abs()), pre)

    def gsae_codes_keep_scores(pre, g, W_dec, beta, k):  # keeps the score, not ReLU(z)
        unit = W_dec / W_dec.norm(dim=1, keepdim=True)
        s = torch.where(pre > 0, pre * (1 + beta * (g @ unit.T).abs()), pre)
        top = s.topk(k, dim=1)
        return torch.zeros_like(pre).scatter(1, top.indices, top.values.relu())

    def importance_no_log(mag, freq, contrib, weights):
        def z(v):
            return (v - v.mean()) / v.std()
        return weights[0] * z(mag) + weights[1] * z(freq) + weights[2] * z(contrib)

    def mask_probabilities_no_cap(importance, c, temperature, max_mask_frac):
        tau = importance.mean() - c * importance.std()
        return torch.sigmoid((tau - importance) / temperature) * (importance < tau)

    def pw_mcc_with_self_pairs(dicts):  # every ordered pair, a seed with itself included
        from saelib.metrics.matching import mcc
        return float(np.mean([mcc(a, b) for a in dicts for b in dicts]))

    def per_latent_argmax(dicts, ref):  # best partner per latent, not a one-to-one matching
        def unit(w):
            return w / w.norm(dim=1, keepdim=True)
        return np.mean([(unit(dicts[ref]) @ unit(o).T).max(1).values.numpy()
                        for j, o in enumerate(dicts) if j != ref], axis=0)

    def pam_decoder_uncentred(Z, X, alpha):  # ridge on the raw codes, then the bias from the means
        W = torch.linalg.solve(Z.T @ Z + alpha * torch.eye(Z.shape[1], dtype=Z.dtype), Z.T @ X)
        return W, X.mean(0) - Z.mean(0) @ W

    def gain_interval_normal(mse_pam, mse_adam):  # 1.96 in place of the t quantile for 3 seeds
        gain = 100 * (1 - np.asarray(mse_pam) / np.asarray(mse_adam))
        half = 1.96 * gain.std(ddof=1) / math.sqrt(len(gain))
        return float(gain.mean()), float(gain.mean() - half), float(gain.mean() + half)

    return [("check_fvu", fvu_no_mean), ("check_metric_at_l0", at_l0_extrapolates),
            ("check_metric_at_l0", at_l0_linear), ("check_verdict", verdict_no_partly),
            ("check_batchtopk_codes", per_token_topk), ("check_jumprelu_theta_grad", jr_grad_no_theta),
            ("check_step_theta_grad", step_grad_with_theta), ("check_matched_mcc", mcc_absolute),
            ("check_power_diagram", power_no_quarter), ("check_ridge_decoder", ridge_no_alpha),
            ("check_dataset_scale", scale_no_sqrt_d), ("check_global_threshold", threshold_at_nk),
            ("check_fold_decoder_norms", fold_divides_encoder), ("check_feature_choice_mask", fc_mask_ignores_sign),
            ("check_zipf_fit", zipf_linear_rank), ("check_gsae_scores", gsae_scores_raw_decoder),
            ("check_gsae_codes", gsae_codes_keep_scores), ("check_atm_importance", importance_no_log),
            ("check_atm_mask_probabilities", mask_probabilities_no_cap), ("check_pw_mcc", pw_mcc_with_self_pairs),
            ("check_per_latent_consistency", per_latent_argmax), ("check_pam_decoder", pam_decoder_uncentred),
            ("check_relative_gain_interval", gain_interval_normal)]


@pytest.mark.parametrize("name, wrong", _wrong_answers(), ids=[f"{n}-{w.__name__}" for n, w in _wrong_answers()])
def test_every_check_rejects_a_plausible_wrong_answer(checks, name, wrong):
    with pytest.raises(checks.NotYet, match="Hint|should"):
        getattr(checks, name)(wrong)


def test_every_check_is_used_by_an_exercise_and_tested_against_a_wrong_answer(checks):
    defined = {n for n in dir(checks) if n.startswith("check_")}
    used = {n for py in EXERCISES for n in defined if f"checks.{n}(" in py.read_text()}
    assert used == defined and {n for n, _ in _wrong_answers()} == defined
