import pytest
import torch

from saelib.sparsity import ReLU, TopK, make_sparsifier


def test_topk_keeps_exactly_k_per_token():
    pre = torch.randn(50, 40) + 3.0  # all positive: exactly k non-zeros
    codes = TopK(k=7)(pre, torch.ones(40))
    assert ((codes != 0).sum(-1) == 7).all()
    # kept values are the largest ones, unchanged
    assert torch.allclose(codes.sort(-1).values[:, -7:], pre.sort(-1).values[:, -7:])


def test_topk_ranking_by_decoder_norm_keeps_unweighted_values():
    pre = torch.tensor([[1.0, 2.0, 3.0]])
    norms = torch.tensor([10.0, 1.0, 1.0])
    codes = TopK(k=1, rank_by_decoder_norm=True)(pre, norms)
    assert codes.tolist() == [[1.0, 0.0, 0.0]]  # 1*10 beats 3*1, but the kept value is 1
    assert TopK(k=1)(pre, norms).tolist() == [[0.0, 0.0, 3.0]]


def test_topk_negative_preacts_give_zero():
    codes = TopK(k=2)(torch.tensor([[-1.0, -2.0, 0.5]]), torch.ones(3))
    assert codes.tolist() == [[0.0, 0.0, 0.5]]


def test_topk_select_rows_sorted_and_count():
    rows, cols = TopK(k=3).select(torch.randn(5, 10), torch.ones(10))
    assert rows.tolist() == sorted(rows.tolist()) and len(cols) == 15


def test_relu_l1_penalty_weighted_by_decoder_norm():
    pre = torch.tensor([[1.0, -1.0, 2.0], [0.0, 3.0, 0.0]])
    s = ReLU()
    codes = s(pre, torch.ones(3))
    pen = s.penalty(pre, codes, torch.tensor([1.0, 2.0, 0.5]))
    assert pen.item() == pytest.approx(((1 + 2 * 0.5) + 3 * 2) / 2)


def test_bad_names_and_k_raise_clear_errors():
    with pytest.raises(ValueError, match="sparsifier must be one of"):
        make_sparsifier("nope")
    with pytest.raises(ValueError, match="k must be a positive int"):
        TopK(k=0)
    with pytest.raises(ValueError, match="exceeds the number of latents"):
        TopK(k=5)(torch.randn(2, 3), torch.ones(3))


def test_jumprelu_forward_and_ste_gradients():
    from saelib.sparsity import JumpReLU

    s = JumpReLU(n_latents=3, init_threshold=1.0, bandwidth=0.2)
    z = torch.tensor([[0.5, 1.05, 2.0]], requires_grad=True)
    f = s(z, torch.ones(3))
    assert f[0].tolist() == pytest.approx([0.0, 1.05, 2.0])
    f.sum().backward()
    assert z.grad.tolist() == [[0.0, 1.0, 1.0]]  # exact gradient H(z - theta)
    # only latent 1 lies within eps/2 of theta: d/dtheta = -(theta/eps) K(.) = -5
    assert s.threshold.grad.tolist() == pytest.approx([0.0, -5.0, 0.0])
    s.threshold.grad = None
    z2 = z.detach().requires_grad_(True)
    s.penalty(z2, None, torch.ones(3)).backward()
    assert z2.grad is None and s.threshold.grad.tolist() == pytest.approx([0.0, -5.0, 0.0])


def test_jumprelu_round_trips_through_checkpoint(tmp_path):
    from saelib.sae import SAE

    sae = SAE(4, 6, "jumprelu", init_threshold=0.3)
    with torch.no_grad():
        sae.sparsifier.threshold.copy_(torch.arange(6.0))
    sae.save(tmp_path / "j")
    back = SAE.load(tmp_path / "j")
    assert torch.equal(back.sparsifier.threshold, torch.arange(6.0))
    from safetensors.torch import load_file
    assert "threshold" in load_file(str(tmp_path / "j" / "sae_weights.safetensors"))
