"""The splice's tail precision (Splice(tail_dtype=...)), its CE path and LMTail's bf16 copy, on a tiny local Llama."""
import pytest
import torch
import torch.nn.functional as F

from saelib.data.harvest import Activations, keep_mask
from saelib.data.lm import LMTail, load_lm, residual_at
from saelib.metrics.splice import Splice, next_token_ce, per_token_ce
from saelib.sae import SAE


def _acts(tiny_lm, layer=1, n_seq=4, T=16):
    model, _ = load_lm(tiny_lm)
    tokens = torch.randint(0, 64, (n_seq, T))
    resid = residual_at(model, tokens, layer).float()
    meta = dict(model=tiny_lm, layer=layer, corpus="test", split="eval", n_tokens=n_seq * T, ctx_len=T,
                outlier_factor=10.0, order="permuted")
    return Activations(resid, tokens, keep_mask(resid, 10.0), meta)


@pytest.mark.parametrize("bad", ["float16", "bf16", torch.bfloat16, None])
def test_tail_dtype_is_checked_before_the_lm_loads(bad, tiny_lm, monkeypatch):
    import saelib.metrics.splice as sp

    acts = _acts(tiny_lm)

    def no_lm(*a, **k):
        raise AssertionError("the LM was loaded before tail_dtype was checked")
    monkeypatch.setattr(sp, "load_lm", no_lm)
    with pytest.raises(ValueError, match=r"tail_dtype must be one of \['float32', 'bfloat16'\], got"):
        Splice(acts, tail_dtype=bad)
    with pytest.raises(ValueError, match=r"dtype must be one of \['float32', 'bfloat16'\]"):
        LMTail(load_lm(tiny_lm)[0], 1, dtype=bad)


def test_fp32_ce_is_exactly_the_full_tails_on_contiguous_logits(tiny_lm, monkeypatch):
    import saelib.metrics.splice as sp

    monkeypatch.setattr(sp, "CE_ROWS", 5)  # 56 rows: 12 log-softmax calls, the last one short
    acts = _acts(tiny_lm)
    tail = LMTail(load_lm(tiny_lm)[0], 1)
    full = tail(acts.resid)
    assert torch.equal(tail(acts.resid, positions=slice(1, -1)), full[:, 1:-1])  # head on fewer rows: same bits
    ce = next_token_ce(tail, acts.resid, acts.tokens)
    lg, tgt = full[:, 1:-1], acts.tokens[:, 2:]
    assert torch.equal(ce, F.cross_entropy(lg.reshape(-1, 64), tgt.reshape(-1), reduction="none").view(tgt.shape))
    ref = F.cross_entropy(lg.double().reshape(-1, 64), tgt.reshape(-1), reduction="none").view(tgt.shape)
    assert (ce.double() - ref).abs().max() < 1e-5
    assert torch.equal(per_token_ce(acts, batch_size=3), ce)  # batching does not change a sequence's CE


def test_bf16_tail_is_autocast_with_precast_weights_and_leaves_the_shared_lm_alone(tiny_lm):
    model, _ = load_lm(tiny_lm)
    before = {n: p.clone() for n, p in model.named_parameters()}
    tail16 = LMTail(model, 1, dtype="bfloat16")
    assert {p.dtype for p in tail16.head.parameters()} == {torch.bfloat16}
    assert all(p.dtype == torch.float32 and torch.equal(p, before[n]) for n, p in model.named_parameters())
    percall = LMTail(model, 1)
    percall.dtype = "bfloat16"  # autocast over the fp32 weights: each call casts them
    r = _acts(tiny_lm).resid
    out = tail16(r)
    assert out.dtype == torch.bfloat16 and torch.equal(out, percall(r))
    assert not torch.equal(out.float(), LMTail(model, 1)(r))


def test_bf16_splice_stays_close_to_fp32(tiny_lm):
    acts = _acts(tiny_lm, n_seq=6, T=24)
    s32 = Splice(acts, max_seqs=None, batch_size=4)
    s16 = Splice(acts, max_seqs=None, batch_size=4, tail_dtype="bfloat16")
    sae = SAE(32, 64, "topk", k=4, seed=0)
    e32, e16 = s32.evaluate(sae), s16.evaluate(sae)
    for key in ("ce_clean", "ce_zero", "ce_spliced"):
        assert e16[key] == pytest.approx(e32[key], abs=2e-3), key  # ~1e-4 here; a bf16 log-softmax: ~1e-2
    assert e16["delta_lm_loss"] == pytest.approx(e32["delta_lm_loss"], abs=2e-3)
    assert s16.cross_entropy(lambda x: x) == s16.ce_clean  # identity splice: Delta LM exactly 0 in bf16 too
    assert s16.cache_name != s32.cache_name and '"tail_dtype": "bfloat16"' in s16.cache_name
