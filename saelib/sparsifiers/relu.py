"""ReLU with the decoder-norm-weighted L1 penalty (the "vanilla" SAE of Anthropic's April 2024 update).

Used by: notebooks 00, 01, 03, 06, 07, 08 (ReLU-L1 baselines) and, as ATM's base, 06.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .base import Sparsifier, register


@register
class ReLU(Sparsifier):
    """f = ReLU(z), trained with an L1 penalty on f_i * ||d_i|| (Anthropic, April 2024 update).

    penalty = E_x[ sum_i f_i(x) ||W_dec[i]||_2 ]; weighting by the decoder norm stops the
    optimiser from shrinking codes while growing decoder rows.
    """

    name = "relu"

    def forward(self, pre: Tensor, dec_norm: Tensor) -> Tensor:
        return torch.relu(pre)

    def penalty(self, pre: Tensor, codes: Tensor, dec_norm: Tensor) -> Tensor:
        return (codes * dec_norm).sum(-1).mean()
