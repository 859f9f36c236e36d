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

    return [("check_fvu", fvu_no_mean), ("check_metric_at_l0", at_l0_extrapolates),
            ("check_metric_at_l0", at_l0_linear), ("check_verdict", verdict_no_partly),
            ("check_batchtopk_codes", per_token_topk), ("check_jumprelu_theta_grad", jr_grad_no_theta),
            ("check_step_theta_grad", step_grad_with_theta), ("check_matched_mcc", mcc_absolute),
            ("check_power_diagram", power_no_quarter), ("check_ridge_decoder", ridge_no_alpha)]


@pytest.mark.parametrize("name, wrong", _wrong_answers(), ids=[f"{n}-{w.__name__}" for n, w in _wrong_answers()])
def test_every_check_rejects_a_plausible_wrong_answer(checks, name, wrong):
    with pytest.raises(checks.NotYet, match="Hint|should"):
        getattr(checks, name)(wrong)


def test_every_check_is_used_by_an_exercise_and_tested_against_a_wrong_answer(checks):
    defined = {n for n in dir(checks) if n.startswith("check_")}
    used = {n for py in EXERCISES for n in defined if f"checks.{n}(" in py.read_text()}
    assert used == defined and {n for n, _ in _wrong_answers()} == defined
