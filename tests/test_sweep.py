"""The sweep helper: grid construction, validation, one tidy row per run."""
import math

import numpy as np

import pandas as pd
import pytest
import torch

from saelib.sae import SAE
from saelib.metrics.reconstruction import evaluate
from saelib.sweep import COLUMNS, Run, at_matched_l0, grid, run_sweep, takes_k
from saelib.train import TrainConfig

from .helpers import data


def test_grid_is_the_product_with_k_or_lam_by_arch():
    runs = grid(["topk", "batchtopk", "jumprelu"], widths=[24, 48], ks=[2, 4], lams=[0.1, 1.0, 3.0],
                sparsifier_kwargs={"jumprelu": {"bandwidth": 0.2}}, train_kwargs={"jumprelu": {"beta1": 0.0}})
    assert len(runs) == 2 * 2 * 2 + 2 * 3
    jr = [r for r in runs if r.arch == "jumprelu"]
    assert all(r.k is None and r.sparsifier_kwargs == {"bandwidth": 0.2} and r.train_kwargs == {"beta1": 0.0} for r in jr)
    assert all(r.lam is None and r.sparsifier_kwargs == {} for r in runs if r.arch == "topk")
    assert runs[0].label == "topk k=2 m=24" and jr[0].label == "jumprelu λ=0.1 m=24"
    assert takes_k("mutual_choice") and not takes_k("relu")


@pytest.mark.parametrize("kwargs,msg", [
    (dict(arch="nope", width=8), "arch must be one of"),
    (dict(arch="topk", width=0, k=2), "width must be a positive int"),
    (dict(arch="topk", width=8), "needs k"),
    (dict(arch="relu", width=8, k=2), "takes lam, not k"),
    (dict(arch="relu", width=8, lam=-1.0), "lam must be in"),
])
def test_bad_runs_raise_naming_the_parameter(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        Run(**kwargs)


def test_grid_without_knobs_raises():
    with pytest.raises(ValueError, match="needs ks"):
        grid(["topk"], widths=[8])


def test_run_sweep_returns_one_tidy_row_per_run_and_stores_results():
    x = data()
    runs = grid(["topk", "batchtopk"], widths=[24], ks=[2],
                sparsifier_kwargs={"batchtopk": dict(threshold_start=2, threshold_beta=0.5)}) + [Run("relu", 24, lam=0.5)]
    store = {}
    df = run_sweep(runs, x[:1200], x[1200:], TrainConfig(epochs=2, batch_size=200, lr=1e-2), progress=False,
                   store=store)
    assert list(df.columns) == COLUMNS and len(df) == 3
    assert df["arch"].tolist() == ["topk", "batchtopk", "relu"] and set(store) == set(df["label"])
    assert (df["fvu"] == df["nmse"]).all() and df["delta_lm_loss"].isna().all()
    assert df.loc[0, "l0"] == pytest.approx(2.0) and (df["fvu"] < 1).all()
    assert math.isnan(df.loc[0, "lam"]) and df.loc[2, "lam"] == 0.5
    with pytest.raises(ValueError, match="labels must be unique"):
        run_sweep(runs + runs[:1], x, x, progress=False)


def test_measure_high_frequency_fractions_known_answer():
    sae = SAE(4, 4, "relu", apply_b_dec_to_input=False, seed=0)
    with torch.no_grad():
        sae.W_enc.copy_(torch.eye(4))
        sae.W_dec.copy_(torch.eye(4))
    x = torch.zeros(100, 4)
    x[:50, 0] = 1.0   # latent 0 fires on 50% of tokens
    x[:5, 1] = 1.0    # latent 1 on 5%
    x[:1, 2] = 1.0    # latent 2 on 1% (not > 1%)
    m = evaluate(sae, x).row()
    assert m["hf_10"] == 0.25 and m["hf_1"] == 0.5 and m["dead_frac"] == 0.25 and m["fvu"] == pytest.approx(0)


def test_at_matched_l0_interpolates_in_log_l0_and_refuses_to_extrapolate():
    table = pd.DataFrame({"l0": [40.0, 10.0, 20.0], "fvu": [0.2, 0.6, 0.4], "dlm": [1.0, 3.0, 2.0]})
    # log-linear between L0 20 (0.4) and 40 (0.2): at sqrt(20*40) the midpoint
    m = at_matched_l0(table, math.sqrt(800), ["fvu", "dlm"])
    assert m["bracketed"] and m["fvu"] == pytest.approx(0.3) and m["dlm"] == pytest.approx(1.5)
    assert at_matched_l0(table, 10.0, ["fvu"])["fvu"] == pytest.approx(0.6)   # an end point is bracketed
    out = at_matched_l0(table, 45.0, ["fvu"])
    assert not out["bracketed"] and math.isnan(out["fvu"]) and out["l0"] == 45.0
    with pytest.raises(ValueError, match="columns"):
        at_matched_l0(table, 20.0, ["nmse"])
    with pytest.raises(ValueError, match="target_l0"):
        at_matched_l0(table, 0.0, ["fvu"])


def test_run_sweep_over_seeds_and_the_paired_matched_difference(tmp_path, monkeypatch):
    from saelib.sweep import paired_matched_difference
    monkeypatch.setenv("SAELIB_CACHE", str(tmp_path))
    torch.manual_seed(0)
    x = torch.randn(1024, 8)
    runs = grid(["topk"], [16], ks=[2, 4])
    base = TrainConfig(epochs=1.0, batch_size=256, progress=False)
    store, evs = {}, {}
    t = run_sweep(runs, x, x[:256], base, seeds=[0, 1, 2], store=store, evaluations=evs, progress=False, cache=True)
    assert len(t) == 6 and sorted(set(t["seed"])) == [0, 1, 2] and ("topk k=2 m=16", 1) in store
    again = run_sweep(runs, x, x[:256], base, seeds=[0, 1, 2], progress=False, cache=True)   # loaded from the store
    assert np.allclose(again["fvu"], t["fvu"]) and (again["train_s"] < t["train_s"]).all()
    # the same family against itself: a zero difference at every seed
    iv, ok = paired_matched_difference(t, t, target_l0=3.0, col="fvu")
    assert ok and iv.estimate == 0 and iv.n == 3
    # a target outside every seed's range: not bracketed, no interval
    iv, ok = paired_matched_difference(t, t, target_l0=50.0, col="fvu")
    assert not ok and np.isnan(iv.estimate)
    shifted = t.assign(fvu=t["fvu"] + 0.1 + 0.01 * t["seed"])
    iv, ok = paired_matched_difference(shifted, t, target_l0=3.0, col="fvu")
    assert ok and iv.estimate == pytest.approx(0.11) and iv.lo < 0.11 < iv.hi
    with pytest.raises(ValueError, match="seeds must be"):
        run_sweep(runs, x, x, base, seeds=[1, 1])
