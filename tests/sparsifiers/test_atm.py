"""ATM (reconstructed, Li & Ren 2025): masking, eval mode, importance ordering, config round-trip."""
import pytest
import torch

from saelib import SAE, TrainConfig, train_sae
from saelib.sparsifiers.atm import ATM, importance_score, mask_probabilities


def _primed(n=20, seed=0, **kw) -> ATM:
    """An ATM past its warm-up whose last 4 latents are far less important than the rest."""
    sp = ATM(n, **{**dict(warmup_steps=0, c=1.0, max_mask_frac=0.5, temp_start=0.01, temp_end=0.01, mask_seed=seed), **kw})
    mag, freq = torch.ones(n), torch.full((n,), 0.2)
    mag[-4:], freq[-4:] = 1e-3, 1e-4
    sp.atm_mag.copy_(mag)
    sp.atm_freq.copy_(freq)
    sp.atm_contrib.copy_(mag * freq)
    sp.atm_steps.fill_(10)
    sp.resample_mask_()
    return sp


def test_masked_latents_output_exactly_zero_in_training():
    sp = _primed()
    assert sp.atm_mask[-4:].all() and not sp.atm_mask[:-4].any()
    pre = torch.randn(64, 20).abs() + 0.1  # every latent would fire
    codes = sp.train()(pre, torch.ones(20))
    assert (codes[:, sp.atm_mask] == 0).all()
    assert torch.equal(codes[:, ~sp.atm_mask], pre[:, ~sp.atm_mask])


def test_eval_mode_never_masks():
    sp = _primed()
    assert sp.atm_mask.any()
    pre = torch.randn(64, 20)
    assert torch.equal(sp.eval()(pre, torch.ones(20)), torch.relu(pre))


def test_importance_ordering_on_constructed_example():
    mag = torch.tensor([0.1, 1.0, 1.0, 2.0])
    freq = torch.tensor([0.01, 0.01, 0.1, 0.1])
    imp = importance_score(mag, freq, mag * freq)
    assert imp.argsort().tolist() == [0, 1, 2, 3]
    assert abs(float(imp.mean())) < 1e-6  # a sum of z-scores is centred


def test_mask_probabilities_threshold_and_cap():
    imp = torch.tensor([-3.0, -2.5, 0.0, 0.5, 1.0, 1.0, 1.0, 2.0])
    probs, tau = mask_probabilities(imp, c=0.5, temperature=1.0, max_mask_frac=0.125)
    assert tau == pytest.approx(float(imp.mean() - 0.5 * imp.std()))
    assert probs[0] == pytest.approx(float(torch.sigmoid(torch.tensor(tau + 3.0))))
    assert (probs[1:] == 0).all()  # -2.5 is below tau too, but the cap (1 of 8) keeps only the least important


def test_max_mask_prob_caps_every_probability_so_masked_latents_are_unmasked_half_the_time():
    imp = torch.tensor([-3.0, -2.5, 0.0, 0.5, 1.0, 1.0, 1.0, 2.0])
    full, _ = mask_probabilities(imp, c=0.5, temperature=0.01, max_mask_frac=0.25)
    capped, _ = mask_probabilities(imp, c=0.5, temperature=0.01, max_mask_frac=0.25, max_mask_prob=0.5)
    assert full[:2].tolist() == pytest.approx([1.0, 1.0]) and capped[:2].tolist() == pytest.approx([0.5, 0.5])
    assert (capped[2:] == 0).all()
    a, b = _primed(), _primed(max_mask_prob=0.5)
    for _ in range(200):
        a.resample_mask_(), b.resample_mask_()
    always = torch.stack(a.mask_history).float().mean(0)
    half = torch.stack(b.mask_history).float().mean(0)
    masked = always > 0.99  # masked at every step without the cap
    assert masked.any() and (half[masked] - 0.5).abs().max() < 0.12
    assert ATM(4, max_mask_prob=0.5).config()["max_mask_prob"] == 0.5


def test_warmup_means_no_mask_and_masks_are_seeded():
    sp = ATM(8, warmup_steps=5)
    sp.atm_steps.fill_(3)
    sp.resample_mask_()
    assert not sp.atm_mask.any()
    a, b = _primed(temp_start=1.0, temp_end=1.0), _primed(temp_start=1.0, temp_end=1.0)
    for _ in range(5):
        a.resample_mask_(), b.resample_mask_()
    assert torch.equal(torch.stack(a.mask_history), torch.stack(b.mask_history))


def test_temperature_anneals_geometrically():
    sp = ATM(4, warmup_steps=10, anneal_steps=100, temp_start=1.0, temp_end=0.01)
    assert sp.temperature(0) == 1.0 and sp.temperature(60) == pytest.approx(0.1) and sp.temperature(500) == pytest.approx(0.01)


def test_config_round_trip(tmp_path):
    sae = SAE(6, 10, "atm", seed=0, c=1.2, warmup_steps=3, anneal_steps=7, max_mask_frac=0.2)
    sae.sparsifier.atm_mag.uniform_()
    sae.save(tmp_path / "atm")
    back = SAE.load(tmp_path / "atm")
    assert isinstance(back.sparsifier, ATM)
    assert back.sparsifier.config() == sae.sparsifier.config()
    assert torch.equal(back.sparsifier.atm_mag, sae.sparsifier.atm_mag)


def test_trains_and_records_mask_dynamics():
    x = torch.randn(512, 8)
    sae = SAE(8, 16, "atm", seed=0, warmup_steps=2, anneal_steps=4, max_mask_frac=0.25)
    res = train_sae(sae, x, TrainConfig(epochs=4, batch_size=128, sparsity_coeff=1.0, progress=False))
    sp = res.sae.sparsifier
    assert len(sp.mask_history) == 16 and sp.masked_fraction().max() <= 0.25
    assert int(sp.atm_steps) == 16


@pytest.mark.parametrize("kw", [dict(decay=1.5), dict(weights=(1, 1)), dict(c=-1), dict(max_mask_frac=2.0),
                                dict(temp_end=0.0), dict(max_mask_prob=1.5)])
def test_bad_arguments_raise(kw):
    with pytest.raises(ValueError):
        ATM(4, **kw)
