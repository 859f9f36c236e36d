"""Known-answer tests for the Llama Scope helpers (saelib/papers/llama_scope.py)."""
import math

import pytest
import torch

from saelib.papers.llama_scope import (Recipe, fold_decoder_norms_, global_threshold, init_norm_grid_search,
                                       llama_scope_init_, topk_to_jumprelu, train_llama_scope)
from saelib.sae import SAE

from ..helpers import random_sae


@pytest.mark.parametrize("sparsifier,kw", [("topk", {"k": 6, "rank_by_decoder_norm": True}), ("relu", {}),
                                           ("jumprelu", {"init_threshold": 0.3})])
def test_folding_decoder_norms_keeps_outputs(sparsifier, kw):
    sae = random_sae(sparsifier, **kw)
    x = torch.randn(50, 16) * 3
    before = sae(x)
    active_before = sae.encode(x) != 0
    fold_decoder_norms_(sae)
    assert torch.allclose(sae.dec_norm(), torch.ones(40), atol=1e-5)
    assert torch.allclose(sae(x), before, atol=1e-4)
    assert torch.equal(sae.encode(x) != 0, active_before)


def test_folding_plain_topk_is_refused():
    with pytest.raises(ValueError, match="rank_by_decoder_norm=True"):
        fold_decoder_norms_(random_sae(k=4))


def test_init_grid_search_finds_the_analytic_optimum():
    x = torch.randn(512, 16) * 4 + 1
    sae = SAE(16, 40, "topk", apply_b_dec_to_input=False, k=4, rank_by_decoder_norm=True)
    c = llama_scope_init_(sae, x, seed=1)
    # x_hat(c) = c^2 g + b_dec: the best c solves a 1-D least squares
    probe = SAE(16, 40, "topk", apply_b_dec_to_input=False, k=4, rank_by_decoder_norm=True)
    probe.load_state_dict(sae.state_dict())
    with torch.no_grad():
        probe.W_dec.div_(c)
        probe.W_enc.div_(c)
    g = probe(x) - sae.b_dec
    r = x - sae.b_dec
    c_star = math.sqrt(max((r * g).sum().item() / g.pow(2).sum().item(), 0.0))
    assert abs(c - c_star) < 0.011  # fine-grid spacing is 0.01
    assert torch.allclose(sae.dec_norm(), torch.full((40,), c), atol=1e-5)
    assert torch.allclose(sae.W_enc, sae.W_dec.t()) and torch.all(sae.b_enc == 0)
    assert torch.allclose(sae.b_dec, x.mean(0))
    _, table = init_norm_grid_search(sae, x)
    assert len(table) == 30 and set(table["stage"]) == {"coarse", "fine"}


def test_global_threshold_gives_average_l0_k_on_calibration_tokens():
    sae = random_sae(k=5, rank_by_decoder_norm=True)
    x = torch.randn(300, 16) * 2
    for fold in (True, False):
        jr = topk_to_jumprelu(sae, x, fold_norms=fold)
        codes = jr.encode(x)
        assert (codes != 0).sum().item() == 300 * 5  # no ties with continuous data
    folded, unfolded = topk_to_jumprelu(sae, x, fold_norms=True), topk_to_jumprelu(sae, x, fold_norms=False)
    assert torch.allclose(folded(x), unfolded(x), atol=1e-4)
    reused = topk_to_jumprelu(sae, x, fold_norms=False, theta=folded.metadata["global_threshold"])
    assert torch.equal(reused.sparsifier.threshold, unfolded.sparsifier.threshold)  # a given theta is not recomputed
    assert torch.allclose(topk_to_jumprelu(sae, x[:3], theta=2.5).sparsifier.threshold, torch.full((40,), 2.5))
    assert torch.allclose(folded.sparsifier.threshold, torch.full((40,), folded.metadata["global_threshold"]))
    assert torch.allclose(unfolded.sparsifier.threshold * sae.dec_norm(), torch.full((40,), folded.metadata["global_threshold"]), rtol=1e-5)
    # the chunked estimate equals the direct one
    s = (torch.relu(sae.pre_acts(x)) * sae.dec_norm()).flatten()
    top = s.topk(1501).values
    assert global_threshold(sae, x, 5, batch_size=37) == pytest.approx((top[-1] + top[-2]).item() / 2)
    with pytest.raises(ValueError, match="sparsifier must be 'topk'"):
        topk_to_jumprelu(random_sae("relu"), x)


def test_train_llama_scope_small_run_reads_raw_activations():
    g = torch.Generator().manual_seed(0)
    D = torch.nn.functional.normalize(torch.randn(48, 24, generator=g), dim=1)
    idx = torch.rand(2000, 48, generator=g).argsort(1)[:, :3]
    x = torch.zeros(2000, 48).scatter(1, idx, torch.rand(2000, 3, generator=g) + 0.5) @ D * 50 + 7
    res = train_llama_scope(x, 48, k=3, epochs=3, lr=3e-3, batch_size=256, progress=False)
    sae = res.sae
    assert res.input_scale == pytest.approx(math.sqrt(24) / x.norm(dim=1).mean().item(), rel=0.05)
    assert sae.sparsifier.k == 3 and not sae.apply_b_dec_to_input and sae.sparsifier.rank_by_decoder_norm
    fvu = ((x - sae(x)).pow(2).sum() / (x - x.mean(0)).pow(2).sum()).item()
    # on raw x the folded SAE does as well as it did on the normalised training batches
    assert fvu < 0.8 and abs(fvu - res.history["fvu"].iloc[-5:].mean()) < 0.1
    assert res.history["l0"].iloc[0] > 3  # K annealing started above k
    assert Recipe(k_annealing=False).label() == "TopK + dec-norm rank + dataset norm"
