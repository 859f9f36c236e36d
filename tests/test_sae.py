import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from saelib.sae import SAE, CheckpointError

from .helpers import random_sae


def _trained_like(sparsifier="topk", **kw):
    sae = SAE(12, 48, sparsifier, seed=3, **kw)
    with torch.no_grad():
        for p in sae.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return sae


@pytest.mark.parametrize("sparsifier,kw", [("topk", {"k": 4, "rank_by_decoder_norm": True}), ("relu", {})])
def test_save_load_round_trip_is_bit_exact(tmp_path, sparsifier, kw):
    sae = _trained_like(sparsifier, **kw)
    sae.metadata["hook"] = "layer 15"
    sae.save(tmp_path / "sae")
    back = SAE.load(tmp_path / "sae")
    for (n, a), (_, b) in zip(sae.state_dict().items(), back.state_dict().items()):
        assert torch.equal(a, b), n
    assert back.sparsifier.config() == sae.sparsifier.config() and back.metadata["hook"] == "layer 15"
    x = torch.randn(5, 12)
    assert torch.equal(sae(x), back(x))


def test_saelens_layout(tmp_path):
    _trained_like(k=3).save(tmp_path / "s")
    t = load_file(str(tmp_path / "s" / "sae_weights.safetensors"))
    assert t["W_enc"].shape == (12, 48) and t["W_dec"].shape == (48, 12)
    assert set(t) == {"W_enc", "b_enc", "W_dec", "b_dec"}
    cfg = json.loads((tmp_path / "s" / "cfg.json").read_text())
    assert cfg["d_in"] == 12 and cfg["d_sae"] == 48 and cfg["architecture"] == "topk"


def test_save_overwrites_atomically(tmp_path):
    _trained_like(k=3).save(tmp_path / "s")
    sae2 = _trained_like(k=2)
    sae2.save(tmp_path / "s")
    assert SAE.load(tmp_path / "s").sparsifier.k == 2
    assert [p.name for p in tmp_path.iterdir()] == ["s"]  # no temp folders left behind


def test_missing_and_corrupt_checkpoints_raise_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        SAE.load(tmp_path / "nothing")
    _trained_like(k=3).save(tmp_path / "s")
    w = tmp_path / "s" / "sae_weights.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt"):
        SAE.load(tmp_path / "s")
    (tmp_path / "s" / "cfg.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not a valid SAE config"):
        SAE.load(tmp_path / "s")
    w.unlink()
    with pytest.raises(CheckpointError, match="missing sae_weights"):
        SAE.load(tmp_path / "s")


def test_shape_disagreeing_with_cfg_raises(tmp_path):
    sae = _trained_like(k=3)
    sae.save(tmp_path / "s")
    t = load_file(str(tmp_path / "s" / "sae_weights.safetensors"))
    t["W_enc"] = torch.zeros(12, 40)
    save_file(t, str(tmp_path / "s" / "sae_weights.safetensors"))
    with pytest.raises(CheckpointError, match="W_enc has shape"):
        SAE.load(tmp_path / "s")


def test_fold_input_scale_matches_scaled_input():
    sae = _trained_like(k=4)
    x, s = torch.randn(20, 12), 3.7
    expected = sae(x * s) / s
    codes = sae.encode(x * s)
    sae.fold_input_scale_(s)
    assert torch.allclose(sae(x), expected, atol=1e-5)
    assert torch.allclose(sae.encode(x), codes, atol=1e-5)


@pytest.mark.parametrize("b_dec_in", [True, False])
def test_folded_sae_on_raw_x_equals_unfolded_on_normalised_x(b_dec_in):
    sae = random_sae(k=5, rank_by_decoder_norm=True, b_dec_in=b_dec_in)
    x = torch.randn(64, 16) * 37.0
    s = 0.21
    expected_codes, expected_out = sae.encode(s * x), sae(s * x) / s
    sae.fold_input_scale_(s)
    assert torch.allclose(sae.encode(x), expected_codes, atol=1e-4)
    assert torch.allclose(sae(x), expected_out, atol=1e-4)


def test_two_factor_fold_and_bad_scales():
    sae = random_sae("relu")
    x = torch.randn(8, 16)
    expected = sae(2.0 * x) / 0.5
    sae.fold_input_scale_(2.0, 0.5)
    assert torch.allclose(sae(x), expected, atol=1e-4)
    with pytest.raises(ValueError, match="scale_out must equal scale"):
        random_sae("relu", b_dec_in=True).fold_input_scale_(2.0, 0.5)
    with pytest.raises(ValueError, match="scale must be > 0"):
        random_sae("relu").fold_input_scale_(0.0)


def test_decoder_grad_projection_removes_parallel_component():
    sae = _trained_like(k=4)
    sae.normalize_decoder_()
    sae.W_dec.grad = torch.randn_like(sae.W_dec)
    sae.project_decoder_grad_()
    assert (sae.W_dec.grad * sae.W_dec).sum(1).abs().max() < 1e-5


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="d_in and d_sae"):
        SAE(0, 4)
    with pytest.raises(ValueError, match="last dimension must be d_in=12"):
        _trained_like(k=2).encode(torch.randn(3, 5))


def test_init_depends_on_the_seed_alone_not_the_global_rng():
    import numpy as np
    torch.manual_seed(1)
    a = SAE(8, 16, "relu")
    torch.manual_seed(2)
    b = SAE(8, 16, "relu")
    assert torch.equal(a.W_dec, b.W_dec)  # default seed 0, whatever the global RNG says
    state = torch.get_rng_state()
    c = SAE(8, 16, "relu", seed=np.int64(3))
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is not consumed
    assert not torch.equal(a.W_dec, c.W_dec)
    with pytest.raises(TypeError, match="seed must be an int"):
        SAE(8, 16, "relu", seed=None)
