"""g-SAE (Olmo et al. 2024) helpers (saelib.papers.gradient_sae): training on fed gradients, default beta, steering."""
import pytest
import torch

from saelib import SAE, TrainConfig, train_sae
from saelib.data.lm import LMTail, load_lm, residual_at
from saelib.papers.gradient_sae import default_beta, feed_gradients, pick_beta, steering_effect
from saelib.sparsifiers.gradient_topk import GradientTopK, with_gradients


def test_training_with_fed_gradients_and_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    x, g = torch.randn(256, 8), torch.randn(256, 8)
    sae = SAE(8, 16, "gradient_topk", k=3, beta=default_beta(g), seed=0)
    res = train_sae(sae, x, TrainConfig(epochs=1, batch_size=64, progress=False, callbacks=[feed_gradients(g)]))
    assert not res.sae.sparsifier.has_gradients and res.history["l0"].iloc[-1] == pytest.approx(3.0)
    back = SAE.load(res.sae.save(tmp_path / "g"))
    assert back.sparsifier.config() == {"k": 3, "beta": pytest.approx(default_beta(g))}
    with with_gradients(back, g[:32]), with_gradients(res.sae, g[:32]) as s:
        assert torch.equal(back.encode(x[:32]), s.encode(x[:32]))
    with pytest.raises(ValueError, match="beta"):
        GradientTopK(3, beta=-1.0)
    assert default_beta(torch.full((4, 8), 0.5)) == pytest.approx((3.141592653589793 * 8 / 2) ** 0.5 / (0.5 * 8 ** 0.5))


def test_steering_effect_is_zero_at_alpha_zero_and_positive_along_lens(tiny_lm):
    model, _ = load_lm(tiny_lm)
    tail = LMTail(model, 1)
    resid = residual_at(model, torch.randint(0, 64, (2, 8)), 1)
    dirs = torch.randn(3, 32)
    assert torch.allclose(steering_effect(tail, resid, dirs, 0.0), torch.zeros(3), atol=1e-6)
    assert steering_effect(tail, resid, dirs, 50.0).shape == (3,)


def test_pick_beta_takes_the_largest_beta_within_the_cost_bound():
    beta, cost = pick_beta({0.0: 0.50, 1.0: 0.51, 3.0: 0.52, 10.0: 0.60}, max_cost=5.0)
    assert beta == 3.0
    assert cost == pytest.approx({1.0: 2.0, 3.0: 4.0, 10.0: 20.0})
    assert pick_beta({0.0: 0.5, 1.0: 0.6}, max_cost=5.0) == (None, pytest.approx({1.0: 20.0}))
    assert pick_beta({0.0: 0.5, 2.0: 0.49}, max_cost=0.0)[0] == 2.0  # a pilot better than TopK costs nothing
    with pytest.raises(ValueError, match="beta = 0"):
        pick_beta({1.0: 0.5, 3.0: 0.6}, max_cost=5.0)
    with pytest.raises(ValueError, match="max_cost"):
        pick_beta({0.0: 0.5, 1.0: 0.6}, max_cost=-1.0)
