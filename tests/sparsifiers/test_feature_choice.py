"""Feature Choice and Mutual Choice sparsifiers (saelib.sparsifiers.feature_choice)."""
import pytest
import torch

from saelib import SAE
from saelib.sparsifiers.base import SPARSIFIERS, make_sparsifier
from saelib.sparsifiers.batchtopk import BatchTopK
from saelib.sparsifiers.feature_choice import FeatureChoice, MutualChoice, uniform_allocation
from saelib.train import TrainConfig, train_sae
from saelib.zipf import ranks_from


def test_uniform_keeps_exactly_m_per_column_and_kn_in_total():
    n, f, k = 64, 32, 4                      # kN / F = 8
    pre = torch.rand(n, f) + 0.5             # all positive: every kept entry is non-zero
    s = FeatureChoice(k=k, n_latents=f).train()
    codes = s(pre, torch.ones(f))
    per_col = (codes != 0).sum(0)
    assert torch.equal(per_col, torch.full((f,), 8)) and int(per_col.sum()) == k * n
    # the kept entries of each column are its 8 largest, values unchanged
    assert torch.equal(codes.sort(0, descending=True).values[:8], pre.sort(0, descending=True).values[:8])
    rows, cols = s.select(pre, torch.ones(f))
    assert len(rows) == k * n and bool((rows[1:] >= rows[:-1]).all())
    assert torch.equal(uniform_allocation(10, 100, 2), torch.ones(100, dtype=torch.long))  # m >= 1


def test_negative_affinities_are_never_kept():
    pre = -torch.rand(16, 8)
    pre[0, 3] = 1.0
    codes = FeatureChoice(k=2, n_latents=8).train()(pre, torch.ones(8))
    assert int((codes != 0).sum()) == 1 and codes[0, 3] == 1.0


def test_zipf_feature_choice_uses_demand_ranks():
    torch.manual_seed(0)
    n, f, k = 128, 40, 4
    s = FeatureChoice(k=k, n_latents=f, allocation="zipf", freq_beta=0.0).train()
    pre = torch.rand(n, f) + torch.linspace(2, 0, f)       # latent 0 most in demand
    s(pre, torch.ones(f))
    m = s.budget(n)
    assert int(m.sum()) == k * n and m[0] >= m[-1] and ranks_from(s.demand)[0] == 1


@pytest.mark.parametrize("mode", ["per_latent", "global"])
def test_config_round_trips_and_threshold_matches_training_l0(tmp_path, mode):
    torch.manual_seed(0)
    x = torch.randn(2048, 16)
    sae = SAE(16, 64, "feature_choice", k=4, allocation="zipf", threshold_mode=mode, threshold_beta=0.9,
              threshold_start=5, seed=0)
    res = train_sae(sae, x, TrainConfig(epochs=3, batch_size=256, lr=3e-3, progress=False))
    sp = res.sae.sparsifier
    assert sp.has_threshold
    with torch.no_grad():
        l0_thr = (res.sae.encode(x) != 0).sum(-1).float().mean().item()
        with sp.batch_rule():
            l0_batch = torch.cat([(res.sae.encode(b) != 0).sum(-1) for b in x.split(256)]).float().mean().item()
    assert 3 <= l0_batch <= 4   # k N pairs at most (fewer where a column has too few positive entries)
    assert l0_thr == pytest.approx(l0_batch, rel=0.25)      # the estimator tracks the batch rule
    loaded = SAE.load(res.sae.save(tmp_path / "fc"))
    assert loaded.sparsifier.config() == sp.config() and isinstance(loaded.sparsifier, FeatureChoice)
    assert torch.equal(loaded.sparsifier.threshold, sp.threshold) and torch.equal(loaded.sparsifier.demand, sp.demand)
    assert torch.equal(loaded.eval().encode(x[:50]), res.sae.encode(x[:50]))


def test_capped_zipf_allocation_keeps_every_latent_below_the_cap():
    n, f, k = 400, 64, 4
    capped = FeatureChoice(k=k, n_latents=f, allocation="zipf", max_density=0.25)
    free = FeatureChoice(k=k, n_latents=f, allocation="zipf")
    for s in (capped, free):
        s.demand.copy_(torch.linspace(1, 0, f))              # latent 0 most in demand
    m, m_free = capped.budget(n), free.budget(n)
    assert int(m.sum()) == int(m_free.sum()) == k * n        # the same budget, redistributed
    assert int(m.max()) == 100 and int(m_free.max()) > 300   # floor(0.25 x 400); uncapped the head takes 337
    assert bool((m[1:] <= m[:-1]).all()) and int(m[-1]) >= int(m_free[-1])
    with pytest.raises(ValueError, match="max_density"):
        FeatureChoice(k=k, n_latents=f, max_density=0.0)


@pytest.mark.parametrize("make", [lambda: FeatureChoice(k=4, n_latents=64),
                                  lambda: FeatureChoice(k=4, n_latents=64, allocation="zipf"),
                                  lambda: MutualChoice(k=4)])
def test_calibrated_threshold_reproduces_the_batch_rule_on_its_calibration_batch(make):
    torch.manual_seed(0)
    pre = torch.randn(4000, 64)
    s = make()
    s.demand.copy_(torch.linspace(1, 0, 64)) if hasattr(s, "demand") else None
    s.eval()
    with s.batch_rule():
        kept_batch = s(pre, torch.ones(64)) > 0
    theta = s.calibrate_threshold_(pre)
    assert not s.training and s.has_threshold and bool((theta >= 0).all())
    assert torch.equal(s(pre, torch.ones(64)) > 0, kept_batch)    # the inference rule keeps the same entries
    # the moving-average estimator (smallest kept, strict >) drops that entry: one per latent for Feature Choice
    if isinstance(s, FeatureChoice):
        s.threshold.copy_(pre.masked_fill(~kept_batch, float("inf")).amin(0))
        assert int(kept_batch.sum()) - int((s(pre, torch.ones(64)) > 0).sum()) == 64


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="allocation"):
        FeatureChoice(k=4, n_latents=8, allocation="pareto")
    with pytest.raises(ValueError, match="threshold_mode"):
        FeatureChoice(k=4, n_latents=8, threshold_mode="none")
    with pytest.raises(ValueError, match="k must"):
        FeatureChoice(k=0, n_latents=8)


def test_column_top_mask_matches_a_per_column_loop():
    from saelib.sparsifiers.feature_choice import column_top_mask
    g = torch.Generator().manual_seed(1)
    pre = torch.randn(50, 30, generator=g)
    m = torch.randint(1, 50, (30,), generator=g)
    m[:3] = 50
    mask = column_top_mask(pre, m)
    for i in range(30):
        col = pre[:, i]
        ref = torch.zeros(50, dtype=torch.bool)
        idx = col.topk(int(m[i])).indices
        ref[idx[col[idx] > 0]] = True
        assert torch.equal(mask[:, i], ref)


def test_mutual_choice_is_the_same_rule_and_both_names_registered():
    assert {"batchtopk", "mutual_choice"} <= set(SPARSIFIERS)
    assert isinstance(make_sparsifier("mutual_choice", k=2), MutualChoice)
    pre = torch.randn(10, 12)
    assert torch.equal(BatchTopK(k=2)(pre, torch.ones(12)), MutualChoice(k=2)(pre, torch.ones(12)))
