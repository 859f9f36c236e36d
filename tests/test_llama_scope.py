"""Known-answer tests for the Llama Scope helpers (saelib/llama_scope.py)."""
import json
import math
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file

from saelib.llama_scope import (KAnnealing, Recipe, fold_decoder_norms_, global_threshold, init_norm_grid_search,
                                llama_scope_init_, llama_scope_location, load_llama_scope_dir, topk_to_jumprelu,
                                train_llama_scope)
from saelib.sae import SAE


def _random_sae(sparsifier="topk", d=16, m=40, b_dec_in=False, seed=0, **kw):
    sae = SAE(d, m, sparsifier, apply_b_dec_to_input=b_dec_in, seed=seed, **kw)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sae.W_dec.mul_(torch.rand(m, 1, generator=g) * 2 + 0.2)  # unequal decoder norms
        sae.b_enc.copy_(torch.randn(m, generator=g) * 0.1)
        sae.b_dec.copy_(torch.randn(d, generator=g))
    return sae


@pytest.mark.parametrize("b_dec_in", [True, False])
def test_folded_sae_on_raw_x_equals_unfolded_on_normalised_x(b_dec_in):
    sae = _random_sae(k=5, rank_by_decoder_norm=True, b_dec_in=b_dec_in)
    x = torch.randn(64, 16) * 37.0
    s = 0.21
    expected_codes, expected_out = sae.encode(s * x), sae(s * x) / s
    sae.fold_input_scale_(s)
    assert torch.allclose(sae.encode(x), expected_codes, atol=1e-4)
    assert torch.allclose(sae(x), expected_out, atol=1e-4)


def test_two_factor_fold_and_bad_scales():
    sae = _random_sae("relu")
    x = torch.randn(8, 16)
    expected = sae(2.0 * x) / 0.5
    sae.fold_input_scale_(2.0, 0.5)
    assert torch.allclose(sae(x), expected, atol=1e-4)
    with pytest.raises(ValueError, match="scale_out must equal scale"):
        _random_sae("relu", b_dec_in=True).fold_input_scale_(2.0, 0.5)
    with pytest.raises(ValueError, match="scale must be > 0"):
        _random_sae("relu").fold_input_scale_(0.0)


@pytest.mark.parametrize("sparsifier,kw", [("topk", {"k": 6, "rank_by_decoder_norm": True}), ("relu", {}),
                                           ("jumprelu", {"init_threshold": 0.3})])
def test_folding_decoder_norms_keeps_outputs(sparsifier, kw):
    sae = _random_sae(sparsifier, **kw)
    x = torch.randn(50, 16) * 3
    before = sae(x)
    active_before = sae.encode(x) != 0
    fold_decoder_norms_(sae)
    assert torch.allclose(sae.dec_norm(), torch.ones(40), atol=1e-5)
    assert torch.allclose(sae(x), before, atol=1e-4)
    assert torch.equal(sae.encode(x) != 0, active_before)


def test_folding_plain_topk_is_refused():
    with pytest.raises(ValueError, match="rank_by_decoder_norm=True"):
        fold_decoder_norms_(_random_sae(k=4))


def test_k_annealing_schedule_and_callback():
    sched = KAnnealing(288, 32, frac=0.1)
    assert sched.k_at(0.0) == 288 and sched.k_at(0.05) == 160 and sched.k_at(0.1) == 32 and sched.k_at(0.7) == 32
    state = SimpleNamespace(sae=SimpleNamespace(sparsifier=SimpleNamespace(k=0)), frac=0.025)
    sched(state)
    assert state.sae.sparsifier.k == 224
    with pytest.raises(ValueError, match="k_start must be in"):
        KAnnealing(10, 32)
    with pytest.raises(ValueError, match="frac must be in"):
        KAnnealing(64, 32, frac=0.0)


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
    sae = _random_sae(k=5, rank_by_decoder_norm=True)
    x = torch.randn(300, 16) * 2
    for fold in (True, False):
        jr = topk_to_jumprelu(sae, x, fold_norms=fold)
        codes = jr.encode(x)
        assert (codes != 0).sum().item() == 300 * 5  # no ties with continuous data
    folded, unfolded = topk_to_jumprelu(sae, x, fold_norms=True), topk_to_jumprelu(sae, x, fold_norms=False)
    assert torch.allclose(folded(x), unfolded(x), atol=1e-4)
    assert torch.allclose(folded.sparsifier.threshold, torch.full((40,), folded.metadata["global_threshold"]))
    assert torch.allclose(unfolded.sparsifier.threshold * sae.dec_norm(), torch.full((40,), folded.metadata["global_threshold"]), rtol=1e-5)
    # the chunked estimate equals the direct one
    s = (torch.relu(sae.pre_acts(x)) * sae.dec_norm()).flatten()
    top = s.topk(1501).values
    assert global_threshold(sae, x, 5, batch_size=37) == pytest.approx((top[-1] + top[-2]).item() / 2)
    with pytest.raises(ValueError, match="sparsifier must be 'topk'"):
        topk_to_jumprelu(_random_sae("relu"), x)


def _reference_llama_scope_forward(hp, t, x):
    """Independent re-statement of the assumed released forward pass (raw-unit threshold)."""
    d = hp["d_model"]
    s_in = math.sqrt(d) / hp["dataset_average_activation_norm"]["in"]
    s_out = math.sqrt(d) / hp["dataset_average_activation_norm"]["out"]
    z = (x * s_in) @ t["encoder.weight"].T + t["encoder.bias"]
    score = z * t["decoder.weight"].norm(dim=0)
    f = z * (score > hp["jump_relu_threshold"] * s_in)
    return f, (f @ t["decoder.weight"].T + t["decoder.bias"]) / s_out


def test_llama_scope_checkpoint_converter(tmp_path):
    d, m = 16, 48
    g = torch.Generator().manual_seed(0)
    t = {"encoder.weight": torch.randn(m, d, generator=g) / 4, "encoder.bias": torch.randn(m, generator=g) * 0.1,
         "decoder.weight": torch.randn(d, m, generator=g) / 4, "decoder.bias": torch.randn(d, generator=g)}
    hp = {"d_model": d, "d_sae": m, "expansion_factor": 3, "act_fn": "jumprelu", "jump_relu_threshold": 0.05,
          "top_k": 8, "norm_activation": "dataset-wise", "dataset_average_activation_norm": {"in": 9.0, "out": 5.0},
          "sparsity_include_decoder_norm": True, "use_decoder_bias": True,
          "apply_decoder_bias_to_pre_encoder": False, "hook_point_in": "blocks.3.hook_resid_post",
          "hook_point_out": "blocks.3.hook_resid_post"}
    folder = tmp_path / "Llama3_1-8B-Base-L3R-8x"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "hyperparams.json").write_text(json.dumps(hp))
    save_file(t, str(folder / "checkpoints" / "final.safetensors"))
    x = torch.randn(200, d) * 9.0 / math.sqrt(d) * 1.3
    f_ref, out_ref = _reference_llama_scope_forward(hp, t, x)
    sae = load_llama_scope_dir(folder)
    assert sae.sparsifier.name == "jumprelu" and not sae.apply_b_dec_to_input
    assert 0 < (f_ref != 0).float().sum(1).mean() < m  # the test is not vacuous
    assert torch.allclose(sae.encode(x), f_ref, atol=1e-5)
    assert torch.allclose(sae(x), out_ref, atol=1e-4)
    # round trip through saelib's own checkpoint format
    sae.save(tmp_path / "converted")
    assert torch.allclose(SAE.load(tmp_path / "converted")(x), out_ref, atol=1e-4)
    # the other unit convention multiplies the effective threshold by 1/s_in
    other = load_llama_scope_dir(folder, threshold_units="normalized")
    s_in = math.sqrt(d) / 9.0
    assert torch.allclose(other.sparsifier.threshold * s_in, sae.sparsifier.threshold, rtol=1e-5)
    with pytest.raises(ValueError, match="threshold_units must be one of"):
        load_llama_scope_dir(folder, threshold_units="bogus")
    with pytest.raises(FileNotFoundError, match="hyperparams.json"):
        load_llama_scope_dir(tmp_path / "converted")


def test_llama_scope_location_names_and_errors():
    assert llama_scope_location(15) == ("fnlp/Llama3_1-8B-Base-LXR-8x", "Llama3_1-8B-Base-L15R-8x")
    assert llama_scope_location(3, "M", 32)[1] == "Llama3_1-8B-Base-L3M-32x"
    with pytest.raises(ValueError, match="sublayer must be one of"):
        llama_scope_location(3, "X")
    with pytest.raises(ValueError, match="layer must be an int"):
        llama_scope_location(32)


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
