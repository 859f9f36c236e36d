import pytest
import torch

from saelib.metrics.reconstruction import evaluate, fvu, l0
from saelib.sae import SAE


def test_fvu_known_answers():
    x = torch.randn(100, 8) * 3 + 1
    assert fvu(x, x) == 0.0
    assert fvu(x, x.mean(0).expand_as(x)) == pytest.approx(1.0)


def test_l0_counts_nonzeros():
    assert l0(torch.tensor([[0.0, 1.0, 2.0], [0.0, 0.0, 5.0]])) == 1.5


def test_evaluate_topk_l0_and_dead():
    sae = SAE(8, 32, "topk", k=4, seed=0)
    with torch.no_grad():
        sae.b_enc.fill_(10.0)
        sae.b_enc[:8] = -1e4  # never fire
    m = evaluate(sae, torch.randn(500, 8), batch_size=64)
    assert m["l0"] == 4.0
    assert m["dead_frac"] >= 8 / 32 and m["window_tokens"] == 500
    assert m["densities"].shape == (32,) and m["densities"].sum().item() == pytest.approx(4.0)
