import pytest
import torch

from saelib.sparsifiers.relu import ReLU


def test_relu_l1_penalty_weighted_by_decoder_norm():
    pre = torch.tensor([[1.0, -1.0, 2.0], [0.0, 3.0, 0.0]])
    s = ReLU()
    codes = s(pre, torch.ones(3))
    pen = s.penalty(pre, codes, torch.tensor([1.0, 2.0, 0.5]))
    assert pen.item() == pytest.approx(((1 + 2 * 0.5) + 3 * 2) / 2)
