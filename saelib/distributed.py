"""Data-parallel training across processes (``torch.distributed``): what :func:`saelib.train.train_sae`
asks of the other ranks when it is given a :class:`DataParallel`.

Every rank (process) holds the whole training set and the same SAE. Each step all ranks draw the
same global batch (the same seeded order) and each encodes its own equal slice of it
(:meth:`DataParallel.shard`); the loss of each slice is its mean over its rows, so the average of
the ranks' gradients is the gradient of the whole batch's mean. What the ranks exchange per step:

* the gradients, averaged (one ``all_reduce`` of the flattened gradients after ``backward``), before
  the decoder-gradient projection, clipping and Adam, which then do the same on every rank;
* which latents fired anywhere in the batch, and the batch's L0 (the dead-latent counters, hence
  AuxK's dead set, stay identical);
* the loss (so every rank takes the same divergence decision), and the logged statistics;
* whatever a batch-level sparsifier needs (BatchTopK's global top B*k, Feature Choice's per-latent
  top m_i: :mod:`saelib.sparsifiers.batchtopk`, :mod:`saelib.sparsifiers.feature_choice`).

Why explicit ``all_reduce`` rather than ``DistributedDataParallel``: DDP synchronises gradients through
hooks armed by the wrapped module's ``forward()``, while a training step here is ``forward_train`` plus
AuxK and the sparsifier's penalty computed outside it; an SAE has four parameter tensors, so DDP's
bucketing and its overlap of communication with the backward pass buy nothing. One reduction of a flat
buffer after ``backward()`` is the whole mechanism, and it leaves the single-process step untouched.

Backends: ``gloo`` on CPU, ``nccl`` on GPUs (one GPU per rank, ``LOCAL_RANK``). :func:`init` joins the
group that ``torchrun`` describes in the environment; ``python -m saelib.train_ddp`` is the entry point.
"""
from __future__ import annotations

import contextlib
import math
import os
from datetime import timedelta
from typing import Iterable, Literal

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .utils import check_choice, check_range

Backend = Literal["auto", "gloo", "nccl"]
BACKENDS = ("auto", "gloo", "nccl")


def init(backend: Backend = "auto", timeout_s: float = 300.0) -> "DataParallel":
    """Join the process group that ``torchrun`` set up (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ...).

    ``backend="auto"``: ``nccl`` when CUDA is available (each rank then uses GPU ``LOCAL_RANK``), else
    ``gloo``. ``timeout_s`` bounds how long a collective waits for a missing rank before failing.
    """
    check_choice("backend", backend, BACKENDS)
    check_range("timeout_s", timeout_s, 0, lo_open=True)
    missing = [v for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise RuntimeError(f"no process group described in the environment (missing {missing}): "
                           f"launch with torchrun, e.g. `torchrun --nproc_per_node 2 -m saelib.train_ddp ...`")
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise RuntimeError("backend='nccl' needs CUDA GPUs; use backend='gloo' on CPU")
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return DataParallel()


def close() -> None:
    """Leave the process group (idempotent), after a barrier: a rank that tears gloo down while another
    is still finishing (e.g. rank 0 writing results) was seen to abort ("terminate called without an
    active exception")."""
    if dist.is_available() and dist.is_initialized():
        with contextlib.suppress(RuntimeError):  # a rank already gone: nothing left to wait for
            dist.barrier()
        dist.destroy_process_group()


class DataParallel:
    """The ranks of an initialised process group as :func:`~saelib.train.train_sae` uses them.

    ``device`` is where collective buffers live: the current CUDA device for ``nccl``, CPU otherwise.
    """

    def __init__(self, group: dist.ProcessGroup | None = None) -> None:
        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError("DataParallel needs an initialised torch.distributed process group: "
                               "call saelib.distributed.init() (under torchrun) first")
        self.group = group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)
        backend = dist.get_backend(group)
        self.device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")

    def __repr__(self) -> str:
        return f"DataParallel(rank={self.rank}, world_size={self.world_size}, device={self.device})"

    def __deepcopy__(self, memo: dict) -> "DataParallel":
        return self  # a process group is not copied (checkpoints deep-copy the SAE that holds it)

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes checkpoints and shows progress."""
        return self.rank == 0

    # ---- the batch ------------------------------------------------------------------------
    def shard(self, rows: Tensor) -> Tensor:
        """This rank's equal, contiguous slice of the global batch ``rows``."""
        n = rows.shape[0]
        if n % self.world_size:
            raise ValueError(f"a batch of {n} rows does not split evenly over {self.world_size} processes")
        m = n // self.world_size
        return rows[self.rank * m: (self.rank + 1) * m]

    # ---- collectives (every rank must call each, in the same order) ------------------------
    def _on(self, t: Tensor) -> tuple[Tensor, torch.device]:
        return t.to(self.device), t.device

    def sum(self, t: Tensor) -> Tensor:
        """Element-wise sum over the ranks (a new tensor on ``t``'s device)."""
        buf, home = self._on(t.detach().clone())
        dist.all_reduce(buf, dist.ReduceOp.SUM, group=self.group)
        return buf.to(home)

    def mean(self, t: Tensor) -> Tensor:
        """Element-wise mean over the ranks (gloo has no AVG: a sum divided by the world size)."""
        return self.sum(t) / self.world_size

    def min(self, t: Tensor) -> Tensor:
        """Element-wise minimum over the ranks."""
        buf, home = self._on(t.detach().clone())
        dist.all_reduce(buf, dist.ReduceOp.MIN, group=self.group)
        return buf.to(home)

    def gather(self, t: Tensor) -> Tensor:
        """(world_size, *t.shape): every rank's ``t`` (same shape on every rank), in rank order."""
        buf, home = self._on(t.detach().contiguous())
        parts = [torch.empty_like(buf) for _ in range(self.world_size)]
        dist.all_gather(parts, buf, group=self.group)
        return torch.stack(parts).to(home)

    @torch.no_grad()
    def broadcast_(self, tensors: Iterable[Tensor], src: int = 0) -> None:
        """Overwrite ``tensors`` in place with rank ``src``'s."""
        for t in tensors:
            buf, _ = self._on(t.detach())
            dist.broadcast(buf, src, group=self.group)
            if buf.data_ptr() != t.data_ptr():
                t.copy_(buf)

    def broadcast_value(self, value: float, src: int = 0) -> float:
        """Rank ``src``'s float (in float64, exactly)."""
        t = torch.tensor([value], dtype=torch.float64)
        self.broadcast_([t], src)
        return float(t.item())

    @torch.no_grad()
    def average_gradients_(self, params: Iterable[nn.Parameter]) -> None:
        """Replace every ``.grad`` with its mean over the ranks: one all_reduce of a flat buffer.

        Parameters without a gradient are skipped; the ranks agree on which those are because they run
        the same graph (same sparsifier, same dead set)."""
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = self.sum(torch.cat([g.reshape(-1) for g in grads])).div_(self.world_size)
        offset = 0
        for g in grads:
            g.copy_(flat[offset: offset + g.numel()].view_as(g))
            offset += g.numel()

    @torch.no_grad()
    def batch_variance(self, x: Tensor) -> Tensor:
        """E||x - E x||^2 over the rows of the whole batch (every rank's ``x``), in float64 sums."""
        x64 = x.double()
        s = self.sum(torch.cat([x64.sum(0), x64.pow(2).sum().reshape(1), x64.new_tensor([x.shape[0]])]))
        n = s[-1]
        mean = s[:-2] / n
        return (s[-2] / n - mean.pow(2).sum()).to(x.dtype)

    @torch.no_grad()
    def check_same_data(self, data: Tensor) -> None:
        """Refuse training when the ranks hold different data (shape, or a checksum over ~1,000 rows)."""
        n = data.shape[0]
        rows = data[:: max(1, n // 1000)].double()
        mine = torch.tensor([float(n), float(data.shape[1]), rows.sum().item(), rows.abs().sum().item()],
                            dtype=torch.float64)
        every = self.gather(mine)
        same = torch.isclose(every, every[0:1], rtol=1e-12, atol=0).all(dim=1)
        if not bool(same.all()):
            bad = [int(r) for r in (~same).nonzero().flatten()]
            raise ValueError(f"the training data differs between processes (rank 0 vs ranks {bad}: rows, columns "
                             f"and checksums {every.tolist()}): every rank must load the same activations")

    def check_same_model(self, model: nn.Module) -> None:
        """Refuse training when the ranks built different SAEs (number and sizes of the parameters)."""
        sizes = [p.numel() for p in model.parameters()]
        mine = torch.tensor([len(sizes), sum(sizes), sum((i + 1) * s for i, s in enumerate(sizes))], dtype=torch.float64)
        every = self.gather(mine)
        if not bool((every == every[0:1]).all()):
            raise ValueError("the SAE differs between processes (its parameter shapes): build it with the same "
                             "arguments on every rank")


def finite_min(t: Tensor) -> Tensor:
    """``t.min()``, or +inf for an empty tensor (a neutral element for a MIN reduction)."""
    return t.min() if t.numel() else t.new_tensor(math.inf)
