"""Sparse fast path for TopK-family SAEs, and the encoder bias that carries b_dec's gradient.

Only the active entries (rows, cols) of the code matrix carry gradient, so the expensive
dense backward GEMMs (2 B d m FLOPs each) can be replaced by work proportional to the
number of active entries, nnz = B k, all done by ``F.embedding_bag``:

* decode:            x_hat[b]   = sum_{(b,j) active} f_bj W_dec[j]     (bags = rows)
* decoder gradient:  dL/dW_dec[j] = sum_{(b,j) active} f_bj dL/dx_hat[b] (bags = columns)
* encoder gradient:  dL/dW_enc[:, j] = sum_{(b,j) active} g_bj x_b       (bags = columns)

Only the forward encoder GEMM stays dense: every pre-activation is needed to choose the
top k. The result equals dense autograd (tests/test_fastpath.py), up to the order of the sums.

:func:`encoder_bias` serves both paths: with the centring x - b_dec detached, autograd never
forms the (B, d_in) input gradient (one more dense GEMM) only to sum it over the batch.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor


def row_offsets(rows: Tensor, n_rows: int) -> Tensor:
    """Start of each row's bag in a row-sorted COO list (the ``offsets`` of embedding_bag)."""
    return torch.searchsorted(rows, torch.arange(n_rows, device=rows.device))


class ColumnBags(NamedTuple):
    """The active entries regrouped by latent: ``order`` sorts them by column, ``rows`` are their rows in
    that order, ``offsets`` starts each latent's bag."""

    order: Tensor
    rows: Tensor
    offsets: Tensor

    @classmethod
    def of(cls, rows: Tensor, cols: Tensor, n_cols: int) -> "ColumnBags":
        order = torch.argsort(cols, stable=True)
        counts = torch.bincount(cols, minlength=n_cols)
        return cls(order, rows.index_select(0, order), torch.cumsum(counts, 0) - counts)

    def sum_rows(self, table: Tensor, weights: Tensor) -> Tensor:
        """(n_cols, width): for each latent j, sum over its active entries (b, j) of weights_bj * table[b]."""
        return F.embedding_bag(self.rows, table, self.offsets, mode="sum",
                               per_sample_weights=weights.index_select(0, self.order))


class _EncoderBias(torch.autograd.Function):
    """b_enc, plus b_dec's gradient through the centring: dL/db_dec = -W_enc (sum_b dL/dz_b)."""

    @staticmethod
    def forward(ctx, b_enc: Tensor, b_dec: Tensor, W_enc: Tensor) -> Tensor:
        ctx.save_for_backward(W_enc)
        return b_enc.clone()

    @staticmethod
    def backward(ctx, g: Tensor):  # type: ignore[override]
        (W_enc,) = ctx.saved_tensors
        grad_b_dec = -(W_enc @ g) if ctx.needs_input_grad[1] else None
        return g, grad_b_dec, None


def encoder_bias(b_enc: Tensor, b_dec: Tensor, W_enc: Tensor) -> Tensor:
    """The bias of z = (x - b_dec) W_enc + b_enc computed as addmm(bias, (x - b_dec).detach(), W_enc).

    Its value is b_enc; its backward also gives b_dec the gradient the detached centring no longer
    carries (the W_enc gradient is complete already, since addmm sees x - b_dec)."""
    return _EncoderBias.apply(b_enc, b_dec, W_enc)


class _GatherPre(torch.autograd.Function):
    """Pre-activations at the active entries, z_bj = x_b . W_enc[:, j] + b_enc[j], with a sparse backward."""

    @staticmethod
    def forward(ctx, x_in: Tensor, W_enc: Tensor, b_enc: Tensor, rows: Tensor, cols: Tensor,
                pre_vals: Tensor, bags: ColumnBags) -> Tensor:
        ctx.save_for_backward(x_in, W_enc, rows, cols, *bags)
        return pre_vals

    @staticmethod
    def backward(ctx, g: Tensor):  # type: ignore[override]
        x_in, W_enc, rows, cols, *bags = ctx.saved_tensors
        grad_x = grad_W = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = F.embedding_bag(cols, W_enc.t().contiguous(), row_offsets(rows, x_in.shape[0]),
                                     mode="sum", per_sample_weights=g)
        if ctx.needs_input_grad[1]:
            grad_W = ColumnBags(*bags).sum_rows(x_in, g).t()
        if ctx.needs_input_grad[2]:
            grad_b = torch.zeros(W_enc.shape[1], dtype=g.dtype, device=g.device).index_add_(0, cols, g)
        return grad_x, grad_W, grad_b, None, None, None, None


def gather_pre(x_in: Tensor, W_enc: Tensor, b_enc: Tensor, rows: Tensor, cols: Tensor, pre: Tensor,
               bags: ColumnBags | None = None) -> Tensor:
    """Differentiable z[rows, cols] given the dense pre-activations ``pre`` computed without grad."""
    bags = bags if bags is not None else ColumnBags.of(rows, cols, W_enc.shape[1])
    return _GatherPre.apply(x_in, W_enc, b_enc, rows, cols, pre[rows, cols], bags)


class _DecoderGrad(torch.autograd.Function):
    """Identity on x_hat; gives W_dec its gradient from the active entries, dL/dW_dec[j] = sum_b f_bj dL/dx_hat[b]."""

    @staticmethod
    def forward(ctx, x_hat: Tensor, W_dec: Tensor, vals: Tensor, bags: ColumnBags) -> Tensor:
        ctx.save_for_backward(vals, *bags)
        return x_hat.view_as(x_hat)

    @staticmethod
    def backward(ctx, g: Tensor):  # type: ignore[override]
        vals, *bags = ctx.saved_tensors
        grad_W = ColumnBags(*bags).sum_rows(g, vals) if ctx.needs_input_grad[1] else None
        return g, grad_W, None, None


def sparse_decode(rows: Tensor, cols: Tensor, vals: Tensor, W_dec: Tensor, n_rows: int,
                  bags: ColumnBags | None = None) -> Tensor:
    """sum_j vals_bj W_dec[j] per row b, without materialising the dense code matrix.

    ``vals`` get their gradient from embedding_bag (run on a detached W_dec); W_dec gets its own
    from the column bags, which is cheaper than embedding_bag's dense weight backward."""
    x_hat = F.embedding_bag(cols, W_dec.detach(), row_offsets(rows, n_rows), mode="sum", per_sample_weights=vals)
    if not W_dec.requires_grad or not torch.is_grad_enabled():
        return x_hat
    bags = bags if bags is not None else ColumnBags.of(rows, cols, W_dec.shape[0])
    return _DecoderGrad.apply(x_hat, W_dec, vals.detach(), bags)
