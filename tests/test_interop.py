"""Other libraries' checkpoints in saelib, against what those libraries computed (saelib/formats/).

The fixtures under tests/fixtures/interop/ were written once by the real SAELens 6.54.12, SAELens 5.11.0
and sparsify 1.3.3, each in its own environment (tests/fixtures/make_interop_fixtures.py says how to
rerun it); ``expected.safetensors`` holds the codes and reconstructions each library computed on the
fixed input after loading its own checkpoint from disk. Neither library is needed here.
"""
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from saelib.checkpoint import CheckpointError
from saelib.sae import SAE

ROOT = Path(__file__).parent / "fixtures" / "interop"
X = load_file(str(ROOT / "input.safetensors"))["x"]

# (side, case, saelib sparsifier it loads as)
CASES = [
    ("saelens6", "standard", "relu"), ("saelens6", "standard_no_b_dec_in", "relu"), ("saelens6", "topk", "topk"),
    ("saelens6", "topk_rescale", "topk"), ("saelens6", "jumprelu", "jumprelu"),
    ("saelens6", "batchtopk_inference", "jumprelu"),
    ("saelens5", "standard", "relu"), ("saelens5", "topk", "topk"), ("saelens5", "jumprelu", "jumprelu"),
    ("saelens5", "finetuning_scaling_factor", "relu"),
    ("sparsify", "topk", "topk"), ("sparsify", "transcoder", "topk"),
]


def expected(side, case):
    e = load_file(str(ROOT / side / "expected.safetensors"))
    return e[f"{case}.codes"], e[f"{case}.x_hat"]


def outputs(sae):
    with torch.no_grad():
        return sae.encode(X), sae(X)


def state(sae):
    return {k: v.clone() for k, v in sae.state_dict().items()}


@pytest.mark.parametrize("side,case,sparsifier", CASES, ids=[f"{s}-{c}" for s, c, _ in CASES])
def test_checkpoints_compute_what_their_library_computed(side, case, sparsifier):
    sae = SAE.load(ROOT / side / case)
    codes_ref, x_hat_ref = expected(side, case)
    assert sae.sparsifier.name == sparsifier
    assert 0 < (codes_ref != 0).float().sum(1).mean() < sae.d_sae   # sparse, not vacuous
    codes, x_hat = outputs(sae)
    assert torch.equal(codes != 0, codes_ref != 0)                    # the same latents fire
    torch.testing.assert_close(codes, codes_ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(x_hat, x_hat_ref, rtol=0, atol=1e-5)


def test_what_each_format_means():
    """The semantics behind the numbers: b_dec subtraction, TopK's k and ReLU, v5 keys, a transcoder."""
    assert not SAE.load(ROOT / "saelens6" / "standard_no_b_dec_in").apply_b_dec_to_input
    assert SAE.load(ROOT / "saelens6" / "standard").apply_b_dec_to_input
    for side in ("saelens6", "saelens5", "sparsify"):
        topk = SAE.load(ROOT / side / "topk")
        assert topk.sparsifier.k == 5 and (outputs(topk)[0] != 0).sum(1).le(5).all()
        assert (outputs(topk)[0] >= 0).all()                          # TopK's ReLU
    rescaled = SAE.load(ROOT / "saelens6" / "topk_rescale")         # decoder norms folded in, as SAELens does
    torch.testing.assert_close(rescaled.dec_norm(), torch.ones(rescaled.d_sae))
    tc = SAE.load(ROOT / "sparsify" / "transcoder")
    assert tc.metadata["transcode"] and not tc.apply_b_dec_to_input
    bt = SAE.load(ROOT / "saelens6" / "batchtopk_inference")        # one global threshold, broadcast
    assert torch.unique(bt.sparsifier.threshold).numel() == 1 and float(bt.sparsifier.threshold.detach()[0]) > 0
    assert SAE.load(ROOT / "saelens6" / "jumprelu").metadata["source"] == "SAELens"


REFUSED = [
    ("saelens6", "gated", r"architecture='gated' is not representable.*accepted: \['standard', 'topk', 'jumprelu'\]"),
    ("saelens6", "layer_norm", r"normalize_activations='layer_norm' is not representable"),
    ("saelens6", "expected_average", r"normalize_activations='expected_average_only_in'.*not stored in the checkpoint"),
    ("saelens6", "batchtopk_training", r"architecture='batchtopk'.*save_inference_model"),
    ("sparsify", "skip", r"skip_connection=True"),
]


@pytest.mark.parametrize("side,case,message", REFUSED, ids=[c for _, c, _ in REFUSED])
def test_what_saelib_cannot_represent_is_refused_naming_the_key(side, case, message):
    with pytest.raises(CheckpointError, match=message):
        SAE.load(ROOT / side / case)


def _edited_copy(tmp_path, side, case, **changes):
    folder = tmp_path / case
    shutil.copytree(ROOT / side / case, folder)
    cfg = json.loads((folder / "cfg.json").read_text())
    cfg.update(changes)
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return folder


@pytest.mark.parametrize("side,case,changes,message", [
    ("saelens6", "standard", {"normalize_activations": "constant_norm_rescale"}, "normalize_activations='constant_norm_rescale'"),
    ("saelens5", "standard", {"activation_fn_str": "tanh-relu"}, r"activation_fn='tanh-relu' is not representable.*\['relu'\]"),
    ("saelens5", "standard", {"normalize_activations": True}, "normalize_activations='expected_average_only_in'"),
    ("saelens6", "standard", {"rescale_acts_by_decoder_norm": True}, "rescale_acts_by_decoder_norm is only defined for topk"),
    ("saelens6", "topk", {"k": 2.5}, r"k=2.5 is not representable"),
    ("saelens6", "standard", {"reshape_activations": "weird"}, "reshape_activations='weird'"),
    ("sparsify", "topk", {"activation": "groupmax"}, r"activation='groupmax' is not representable.*\['topk'\]"),
])
def test_edited_configs_are_refused_naming_the_key(tmp_path, side, case, changes, message):
    with pytest.raises(CheckpointError, match=message):
        SAE.load(_edited_copy(tmp_path, side, case, **changes))


def test_unknown_tensors_are_refused_not_dropped(tmp_path):
    folder = tmp_path / "extra"
    shutil.copytree(ROOT / "saelens6" / "topk", folder)
    t = load_file(str(folder / "sae_weights.safetensors"))
    t["b_gate"] = torch.zeros(24)
    save_file(t, str(folder / "sae_weights.safetensors"))
    with pytest.raises(CheckpointError, match=r"tensors saelib cannot represent: \['b_gate'\]"):
        SAE.load(folder)


def test_hook_z_checkpoints_load_with_flattened_heads(tmp_path):
    sae = SAE.load(_edited_copy(tmp_path, "saelens6", "standard", reshape_activations="hook_z"))
    torch.testing.assert_close(outputs(sae)[1], expected("saelens6", "standard")[1], rtol=0, atol=1e-5)


SAELIB_CASES = ["relu", "topk", "topk_rank", "jumprelu"]


@pytest.mark.parametrize("case", SAELIB_CASES)
def test_saelens_loads_saelib_checkpoints_and_reconstructs_the_same(case):
    """SAELens 6 on saelib's files (the existing direction): same reconstruction; same codes except a TopK
    ranked by decoder norm, written as rescale_acts_by_decoder_norm, whose SAELens codes are ReLU(z_i) ||d_i||."""
    sae = SAE.load(ROOT / "saelib" / case)
    codes_ref, x_hat_ref = expected("saelens6", f"saelib_{case}")
    codes, x_hat = outputs(sae)
    torch.testing.assert_close(x_hat, x_hat_ref, rtol=0, atol=1e-5)
    if case == "topk_rank":
        codes = codes * sae.dec_norm()
    torch.testing.assert_close(codes, codes_ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("case", SAELIB_CASES)
def test_saelib_still_writes_what_saelens_was_checked_on(tmp_path, case):
    """The saelib fixtures are what ``save`` writes today (else the SAELens check above checks an old format)."""
    SAE.load(ROOT / "saelib" / case).save(tmp_path / case)
    written = json.loads((tmp_path / case / "cfg.json").read_text())
    assert written == json.loads((ROOT / "saelib" / case / "cfg.json").read_text())
    if case == "topk_rank":
        assert written["rescale_acts_by_decoder_norm"] is True and written["k"] == 5


@pytest.mark.parametrize("case", SAELIB_CASES)
def test_round_trip_saelib_saelens_saelib(case):
    """saelib -> SAELens (its load_from_disk, then its save_model) -> saelib: bit-exact weights where the
    sparsifier maps one to one; a decoder-norm-ranked TopK comes back folded (SAELens's own fold), same x_hat."""
    original, back = SAE.load(ROOT / "saelib" / case), SAE.load(ROOT / "saelens6_resaved" / case)
    assert back.sparsifier.name == original.sparsifier.name
    if case == "topk_rank":
        torch.testing.assert_close(outputs(back)[1], outputs(original)[1], rtol=0, atol=1e-5)
        return
    a, b = state(original), state(back)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert back.apply_b_dec_to_input == original.apply_b_dec_to_input
    assert back.sparsifier.config() == original.sparsifier.config()


@pytest.mark.parametrize("side,case", [("saelens6", "topk_rescale"), ("saelens5", "jumprelu"), ("sparsify", "topk")])
def test_a_converted_checkpoint_saves_and_reloads_exactly(tmp_path, side, case):
    sae = SAE.load(ROOT / side / case)
    sae.save(tmp_path / "again")
    back = SAE.load(tmp_path / "again")
    a, b = state(sae), state(back)
    assert all(torch.equal(a[k], b[k]) for k in a) and torch.equal(outputs(back)[1], outputs(sae)[1])


def test_pickled_weights_are_refused(tmp_path):
    (tmp_path / "cfg.json").write_text(json.dumps({"d_in": 12, "d_sae": 24}))
    (tmp_path / "sae_weights.pt").write_bytes(b"\x80\x04not really")
    with pytest.raises(CheckpointError, match=r"pickled weights \['sae_weights.pt'\].*torch.load"):
        SAE.load(tmp_path)
    (tmp_path / "sae_weights.pt").unlink()
    with pytest.raises(CheckpointError, match="missing sae_weights.safetensors"):
        SAE.load(tmp_path)
    with pytest.raises(ValueError, match="layout must be one of"):
        SAE.load(ROOT / "saelens6" / "topk", layout="pickle")
