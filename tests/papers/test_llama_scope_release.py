"""Known-answer tests for the released Llama Scope checkpoints (saelib/papers/llama_scope_release.py)."""
import json
import math

import pytest
import torch
from safetensors.torch import save_file

from saelib.papers.llama_scope_release import llama_scope_location, load_llama_scope_dir
from saelib.sae import SAE


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
