"""BatchTopK (saelib.sparsifiers.batchtopk): the batch rule, its inference threshold, and the sparse fast path."""
import pytest
import torch

from saelib.sae import SAE
from saelib.sparsifiers.batchtopk import BatchTopK, flat_topk_indices
from saelib.train import TrainConfig, train_sae


def test_keeps_exactly_b_times_k_of_the_flattened_batch():
    pre = torch.randn(64, 40) * torch.rand(40) + 3.0  # all positive, so every kept entry is non-zero
    s = BatchTopK(k=5).train()
    codes = s(pre, torch.ones(40))
    assert int((codes != 0).sum()) == 64 * 5
    per_token = (codes != 0).sum(-1)
    assert per_token.min() < 5 < per_token.max()  # variable per token, k on average
    # the kept entries are exactly the 320 largest of the whole batch, values unchanged
    kept = codes[codes != 0].sort().values
    assert torch.equal(kept, pre.flatten().sort().values[-320:])


def test_batch_counts_every_token_of_a_3d_input():
    pre = torch.rand(4, 8, 30) + 1.0
    codes = BatchTopK(k=3).train()(pre, torch.ones(30))
    assert codes.shape == pre.shape and int((codes != 0).sum()) == 4 * 8 * 3


def test_flat_topk_indices_equals_full_topk():
    g = torch.Generator().manual_seed(0)
    for n_rows, m, n in [(3, 7, 5), (512, 300, 512 * 16), (200, 2000, 1)]:
        flat = (torch.randn(n_rows, m, generator=g) * torch.rand(m, generator=g)).flatten()
        ref = flat.topk(n).indices.sort().values
        assert torch.equal(flat_topk_indices(flat, n), ref)
    with pytest.raises(ValueError, match="n must be in"):
        flat_topk_indices(torch.randn(10), 11)


def test_select_is_row_sorted_and_matches_forward():
    pre = torch.randn(32, 50)
    s = BatchTopK(k=4).train()
    rows, cols = s.select(pre, torch.ones(50))
    assert len(rows) == 32 * 4 and torch.equal(rows, rows.sort().values)
    dense = torch.zeros_like(pre)
    dense[rows, cols] = torch.relu(pre[rows, cols])
    assert torch.equal(dense, s(pre, torch.ones(50)))


def test_threshold_is_ema_of_min_kept_activation_and_starts_after_warmup():
    s = BatchTopK(k=2, threshold_beta=0.5, threshold_start=1).train()
    a = torch.tensor([[5.0, 4.0, 0.1], [3.0, 0.2, 0.3]])   # top 4: 5, 4, 3, 0.3 -> min 0.3
    b = torch.tensor([[9.0, 8.0, 7.0], [6.0, 0.2, 0.1]])   # min kept 6
    s(a * 100, torch.ones(3))        # batch 1: warm-up, ignored
    assert not s.has_threshold
    s(a, torch.ones(3))              # first estimate taken as is
    assert s.threshold.item() == pytest.approx(0.3)
    s.select(b, torch.ones(3))       # EMA: 0.5 * 0.3 + 0.5 * 6
    assert s.threshold.item() == pytest.approx(3.15)
    s.eval()
    s(b, torch.ones(3))              # eval never updates theta
    with s.batch_rule():
        s(b, torch.ones(3))
    assert s.threshold.item() == pytest.approx(3.15) and int(s.n_batches) == 3


def test_eval_output_is_independent_of_batch_composition():
    s = BatchTopK(k=3)
    s.threshold.fill_(0.8)
    s.eval()
    x = torch.randn(20, 30)
    alone = s(x[:5], torch.ones(30))
    with_others = s(torch.cat([x[:5], 10 * torch.randn(40, 30)]), torch.ones(30))[:5]
    assert torch.equal(alone, with_others)
    assert torch.equal(alone, torch.where(x[:5] > 0.8, x[:5], torch.zeros(())))
    rows, cols = s.select(x[:5], torch.ones(30))
    assert torch.equal(rows, rows.sort().values) and torch.equal(alone[rows, cols], x[:5][rows, cols])
    # the batch rule, by contrast, depends on the other tokens
    with s.batch_rule():
        assert not torch.equal(s(x[:5], torch.ones(30)), s(torch.cat([x[:5], 10 * x[5:]]), torch.ones(30))[:5])


def test_eval_without_threshold_warns_and_uses_batch_rule():
    s = BatchTopK(k=2).eval()
    with pytest.warns(UserWarning, match="no inference threshold"):
        codes = s(torch.rand(4, 10) + 1, torch.ones(10))
    assert int((codes != 0).sum()) == 8


def test_bad_arguments_raise_naming_the_parameter():
    with pytest.raises(ValueError, match="k must be a positive int"):
        BatchTopK(k=0)
    with pytest.raises(ValueError, match="threshold_beta must be in"):
        BatchTopK(k=2, threshold_beta=1.0)
    with pytest.raises(ValueError, match="threshold_start must be"):
        BatchTopK(k=2, threshold_start=-1)
    with pytest.raises(ValueError, match="exceeds the number of latents"):
        BatchTopK(k=5)(torch.randn(2, 3), torch.ones(3))


def test_training_estimates_a_threshold_that_reproduces_training_l0(tmp_path):
    g = torch.Generator().manual_seed(0)
    D = torch.nn.functional.normalize(torch.randn(48, 24, generator=g), dim=1)
    idx = torch.rand(4000, 48, generator=g).argsort(1)[:, :3]
    x = torch.zeros(4000, 48).scatter(1, idx, torch.rand(4000, 3, generator=g) + 0.5) @ D * 10
    sae = SAE(24, 48, "batchtopk", k=3, threshold_beta=0.9, threshold_start=20, seed=0)
    res = train_sae(sae, x, TrainConfig(epochs=6, batch_size=200, lr=1e-2, progress=False))
    assert res.sae.sparsifier.has_threshold
    l0_infer = (res.sae.encode(x) != 0).sum(-1).float().mean().item()
    assert l0_infer == pytest.approx(3.0, rel=0.15)
    # the threshold survives a checkpoint round trip
    back = SAE.load(res.sae.save(tmp_path / "b"))
    assert back.sparsifier.threshold.item() == res.sae.sparsifier.threshold.item()
    back.eval()
    assert torch.equal(back.encode(x[:50]), res.sae.encode(x[:50]))
