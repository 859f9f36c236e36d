"""Sparse fast path for TopK-family SAEs.

Only the active entries (rows, cols) of the code matrix carry gradient, so the expensive
dense backward GEMMs (2 B d m FLOPs each) can be replaced by work proportional to the
number of active entries, nnz = B k:

* decode:  x_hat[b] = sum_{(b,j) active} f_bj W_dec[j]          (``F.embedding_bag``)
* encoder gradient: dL/dW_enc[:, j] = sum_b g_bj x_b            (sparse x dense matmul)

Only the forward encoder GEMM stays dense: every pre-activation is needed to choose the
top k. The result equals the dense autograd path (tests/test_fastpath.py).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def row_offsets(rows: Tensor, n_rows: int) -> Tensor:
    """Start of each row's bag in a row-sorted COO list (the ``offsets`` of embedding_bag)."""
    return torch.searchsorted(rows, torch.arange(n_rows, device=rows.device))


class _GatherPre(torch.autograd.Function):
    """Pre-activations at the active entries, z_bj = x_b . W_enc[:, j] + b_enc[j], with a sparse backward."""

    @staticmethod
    def forward(ctx, x_in: Tensor, W_enc: Tensor, b_enc: Tensor, rows: Tensor, cols: Tensor,
                pre_vals: Tensor) -> Tensor:
        ctx.save_for_backward(x_in, W_enc, rows, cols)
        return pre_vals.clone()

    @staticmethod
    def backward(ctx, g: Tensor):  # type: ignore[override]
        x_in, W_enc, rows, cols = ctx.saved_tensors
        n_lat = W_enc.shape[1]
        grad_x = grad_W = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = F.embedding_bag(cols, W_enc.t().contiguous(), row_offsets(rows, x_in.shape[0]),
                                     mode="sum", per_sample_weights=g)
        if ctx.needs_input_grad[1]:
            G = torch.sparse_coo_tensor(torch.stack([cols, rows]), g, (n_lat, x_in.shape[0]),
                                        check_invariants=False)
            grad_W = torch.sparse.mm(G, x_in).t()
        if ctx.needs_input_grad[2]:
            grad_b = torch.zeros(n_lat, dtype=g.dtype, device=g.device).index_add_(0, cols, g)
        return grad_x, grad_W, grad_b, None, None, None


def gather_pre(x_in: Tensor, W_enc: Tensor, b_enc: Tensor, rows: Tensor, cols: Tensor,
               pre: Tensor) -> Tensor:
    """Differentiable z[rows, cols] given the dense pre-activations ``pre`` computed without grad."""
    return _GatherPre.apply(x_in, W_enc, b_enc, rows, cols, pre[rows, cols])


def sparse_decode(rows: Tensor, cols: Tensor, vals: Tensor, W_dec: Tensor, n_rows: int) -> Tensor:
    """sum_j vals_bj W_dec[j] per row b, without materialising the dense code matrix."""
    return F.embedding_bag(cols, W_dec, row_offsets(rows, n_rows), mode="sum", per_sample_weights=vals)
