import pytest
import torch

from saelib.sparsifiers.base import make_sparsifier
from saelib.sparsifiers.topk import TopK, TopKAbs


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


def test_bad_names_and_k_raise_clear_errors():
    with pytest.raises(ValueError, match="sparsifier must be one of"):
        make_sparsifier("nope")
    with pytest.raises(ValueError, match="k must be a positive int"):
        TopK(k=0)
    with pytest.raises(ValueError, match="exceeds the number of latents"):
        TopK(k=5)(torch.randn(2, 3), torch.ones(3))


def test_topk_abs_keeps_signed_largest_magnitudes():
    z = torch.tensor([[3.0, -5.0, 1.0, -0.5], [0.1, 0.2, -0.3, 4.0]])
    out = TopKAbs(2)(z, torch.ones(4))
    assert torch.equal(out, torch.tensor([[3.0, -5.0, 0.0, 0.0], [0.0, 0.0, -0.3, 4.0]]))
