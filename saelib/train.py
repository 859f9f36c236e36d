"""One training loop for every SAE in the companion.

Loss per batch (tokens are rows of ``x``, already multiplied by the dataset scale s):

    L = E_x ||x - x_hat||_2^2  +  lambda(t) * penalty  +  alpha * AuxK  +  sum(cfg.loss_terms)

* penalty comes from the sparsifier (L1 on f_i ||d_i|| for ReLU; none for TopK);
  lambda(t) is warmed up linearly over ``sparsity_warmup_frac`` of the steps.
* AuxK (Gao et al. 2024, App. A.2): the top ``auxk_k`` pre-activations among *dead*
  latents (silent for ``dead_window_tokens`` tokens) reconstruct the detached residual
  x - x_hat, decoded without bias; same scale as the main MSE.
* Dataset-wise normalisation (Llama Scope, Sec. 3.2): s = sqrt(d) / E||x||, folded back
  into the weights at the end so the returned SAE works on raw activations.
* ``cfg.loss_terms`` are extra named losses computed from the :class:`TrainState` (e.g. an
  auxiliary loss for under-used latents); each is added as is and logged under its name.
* Adam, linear LR warm-up, linear decay to zero over the final ``decay_frac`` of steps;
  optional unit-norm decoder with gradient projection.
* Data-parallel (``data_parallel=``, :mod:`saelib.distributed`): every rank draws the same global batch
  and trains on its slice; gradients, fired latents, the loss and batch-level selection are shared, so
  the run equals one process on the whole batch (within float rounding). Without it, nothing changes.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable, Literal, NamedTuple, get_args

import pandas as pd
import torch
from torch import Tensor

from .distributed import DataParallel
from .losses import auxk_loss
from .sae import SAE, TrainStep
from .sparsifiers.base import BatchRule
from .utils import check_choice, check_flag, check_int, check_range, progress, seed_everything

SparsePath = Literal["auto", "on", "off"]
"""``"auto"``: the sparse fast path when the sparsifier supports it; ``"on"``: require it; ``"off"``: dense autograd."""
MatmulPrecision = Literal["highest", "high", "medium"]
"""``torch.set_float32_matmul_precision`` during training: ``"medium"`` runs bf16 inside the GEMMs."""


@dataclass
class TrainConfig:
    """Training hyper-parameters; validated on construction."""

    epochs: float = 1.0
    batch_size: int = 4096
    lr: float = 4e-4
    beta1: float = 0.9
    beta2: float = 0.999
    warmup_frac: float = 0.05
    decay_frac: float = 0.2
    unit_norm_decoder: bool = True
    grad_clip: float | None = None
    sparsity_coeff: float = 0.0
    sparsity_warmup_frac: float = 0.05
    auxk_coeff: float = 1 / 32
    auxk_k: int | None = None
    dead_window_tokens: int = 100_000
    normalize_input: bool = True
    init_b_dec_to_mean: bool = True
    sparse: SparsePath = "auto"
    matmul_precision: MatmulPrecision = "highest"
    seed: int = 0
    log_every: int = 10
    progress: bool = True
    checkpoint_dir: str | None = None
    checkpoint_every: int | None = None
    callbacks: list[Callable[["TrainState"], None]] = field(default_factory=list)
    loss_terms: dict[str, Callable[["TrainState"], Tensor]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_range("epochs", self.epochs, 0, 1e9, lo_open=True)
        check_int("batch_size", self.batch_size, 1)
        check_range("lr", self.lr, 0, lo_open=True)
        if not math.isfinite(self.lr):
            raise ValueError(f"lr must be finite, got {self.lr!r}")
        for name in ("beta1", "beta2"):
            check_range(name, getattr(self, name), 0, 1)
            if getattr(self, name) >= 1:
                raise ValueError(f"{name} must be in [0, 1) (Adam divides by 1 - {name}^t), got {getattr(self, name)!r}")
        for name in ("unit_norm_decoder", "normalize_input", "init_b_dec_to_mean", "progress"):
            check_flag(name, getattr(self, name))
        check_int("seed", self.seed, 0)
        for name in ("warmup_frac", "decay_frac", "sparsity_warmup_frac"):
            check_range(name, getattr(self, name), 0, 1)
        if self.warmup_frac + self.decay_frac > 1:
            raise ValueError(f"warmup_frac + decay_frac must be <= 1, got {self.warmup_frac + self.decay_frac}")
        if self.grad_clip is not None:
            check_range("grad_clip", self.grad_clip, 0, lo_open=True)
        check_range("sparsity_coeff", self.sparsity_coeff, 0)
        check_range("auxk_coeff", self.auxk_coeff, 0)
        if self.auxk_k is not None:
            check_int("auxk_k", self.auxk_k, 1)
        check_int("dead_window_tokens", self.dead_window_tokens, 1)
        check_choice("sparse", self.sparse, get_args(SparsePath))
        check_choice("matmul_precision", self.matmul_precision, get_args(MatmulPrecision))
        check_int("log_every", self.log_every, 1)
        if self.checkpoint_every is not None:
            check_int("checkpoint_every", self.checkpoint_every, 1)
            if self.checkpoint_dir is None:
                raise ValueError("checkpoint_every needs checkpoint_dir")

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("callbacks", "loss_terms")}


@dataclass
class TrainState:
    """What callbacks and loss terms see (and may change, e.g. ``sae.sparsifier.k`` for k annealing).

    Callbacks run before the forward pass: ``batch_index`` (rows of ``data`` in this batch; in
    data-parallel training, this rank's slice of it) is already set, so a callback can hand per-token
    side data (e.g. g-SAE's LM gradients) to the sparsifier. Loss terms run after it and also see the scaled batch ``x``, the forward output
    ``out`` and the ``dead`` mask."""

    sae: SAE
    step: int
    n_steps: int
    tokens_since_fired: Tensor
    batch_index: Tensor | None = None
    x: Tensor | None = None
    out: TrainStep | None = None
    dead: Tensor | None = None

    @property
    def frac(self) -> float:
        return self.step / max(self.n_steps, 1)


class TrainResult(NamedTuple):
    sae: SAE
    history: pd.DataFrame
    input_scale: float


def lr_factor(step: int, n_steps: int, warmup_frac: float, decay_frac: float) -> float:
    """Linear warm-up from 0, constant, linear decay to 0 over the final ``decay_frac``."""
    warm, decay_start = warmup_frac * n_steps, (1 - decay_frac) * n_steps
    if warm > 0 and step < warm:
        return (step + 1) / warm
    if decay_frac > 0 and step >= decay_start:
        return max(0.0, (n_steps - step) / (n_steps - decay_start))
    return 1.0


def dataset_scale(x: Tensor) -> float:
    """s = sqrt(d) / E||x||, so that E||s x|| = sqrt(d) (Llama Scope's dataset-wise normalisation)."""
    return math.sqrt(x.shape[-1]) / x.norm(dim=-1).mean().item()


DIVERGENCE_FACTOR = 1e4
"""Training stops when the loss exceeds this multiple of its first value (a diverging learning rate)."""


def check_training_data(data: Tensor, d_in: int, normalize_input: bool = True) -> None:
    """Refuse data that cannot train an SAE, naming the problem (before any step runs)."""
    if not isinstance(data, Tensor):
        raise TypeError(f"data must be a torch.Tensor of shape (N, d_in={d_in}), got {type(data).__name__}")
    if data.dim() != 2 or data.shape[1] != d_in:
        raise ValueError(f"data must have shape (N, d_in={d_in}), got {tuple(data.shape)}")
    if not data.is_floating_point():
        raise ValueError(f"data must be floating point (e.g. torch.float32), got {data.dtype}")
    if data.shape[0] == 0:
        raise ValueError("data has no rows")
    norm = float(torch.linalg.vector_norm(data))  # one pass, no temporary: finite and > 0 settles both checks
    if math.isfinite(norm) and norm > 0:
        return
    bad = ~torch.isfinite(data).all(dim=1)
    if bool(bad.any()):
        rows = bad.nonzero().flatten()
        raise ValueError(f"data has non-finite values (NaN or inf) in {len(rows)} row(s), first at row {int(rows[0])}")
    if normalize_input and not bool((data != 0).any()):
        raise ValueError("data is all zero: the dataset scale sqrt(d) / E||x|| is undefined (normalize_input=True)")


class TrainingDiverged(FloatingPointError):
    """The loss became non-finite or exploded; the SAE was restored to its last good logged state."""


def check_data_parallel(sae: SAE, cfg: TrainConfig, n_rows: int, dp: DataParallel) -> None:
    """Refuse what a data-parallel run cannot reproduce, naming it (before any collective runs)."""
    problem = sae.sparsifier.data_parallel_problem()
    if problem:
        raise ValueError(f"data-parallel training over {dp.world_size} processes: {problem}")
    if cfg.loss_terms:
        raise ValueError(f"data-parallel training: cfg.loss_terms ({sorted(cfg.loss_terms)}) see only a rank's rows "
                         f"and may keep per-rank state; train with loss terms in one process")
    bs = min(cfg.batch_size, n_rows)
    if bs % dp.world_size:
        raise ValueError(f"batch_size must split evenly over the {dp.world_size} processes, got {bs}"
                         + (f" (the data's {n_rows} rows)" if bs < cfg.batch_size else ""))


def train_sae(sae: SAE, data: Tensor, cfg: TrainConfig | None = None, *,
              data_parallel: DataParallel | None = None) -> TrainResult:
    """Train ``sae`` on the rows of ``data`` (N, d_in); return the SAE (on raw-activation scale),
    a per-step history DataFrame and the dataset scale used.

    Guards: the data is checked before the first step (:func:`check_training_data`); a non-finite
    loss, or one above ``DIVERGENCE_FACTOR`` times the first, stops training with
    :class:`TrainingDiverged` naming the step, after restoring the weights of the last logged step
    whose loss was finite. Stopped or interrupted, the SAE is left in eval mode on the raw-activation
    scale (the dataset scale folded in) with ``metadata["stopped_at_step"]``; mid-training checkpoints
    are folded copies too, so every saved SAE reads raw activations.

    ``data_parallel``: run as one rank of a data-parallel group (module docstring; launched by torchrun,
    see :mod:`saelib.train_ddp`). Every rank passes the same ``data``, ``cfg`` and SAE; ``batch_size`` is
    the global batch and must divide by the number of ranks; the weights start as rank 0's; only rank 0
    shows progress and writes checkpoints; every rank returns the same SAE and history. Refused (clearly):
    a sparsifier whose ``data_parallel_problem()`` says why (ATM, JumpReLU with ``l0_target``, a batch rule
    that does not gather) and ``cfg.loss_terms``.
    """
    cfg = cfg or TrainConfig()
    dp = data_parallel
    check_training_data(data, sae.d_in, cfg.normalize_input)
    if dp is not None:
        check_data_parallel(sae, cfg, data.shape[0], dp)
        dp.check_same_data(data)
        dp.check_same_model(sae)
    sparse = {"auto": sae.sparsifier.supports_sparse, "on": True, "off": False}[cfg.sparse]
    if sparse and not sae.sparsifier.supports_sparse:
        raise ValueError(f"sparse='on' needs a TopK-family sparsifier, got {sae.sparsifier.name!r}")
    gen = seed_everything(cfg.seed)
    device = sae.W_enc.device
    prev_precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(cfg.matmul_precision)
    n, bs = data.shape[0], min(cfg.batch_size, data.shape[0])
    n_steps = max(1, math.ceil(cfg.epochs * n / bs))
    sample = data[torch.randperm(n, generator=gen)[: min(n, 8192)]].to(device)
    scale = dataset_scale(sample) if cfg.normalize_input else 1.0
    if cfg.init_b_dec_to_mean:
        with torch.no_grad():
            sae.b_dec.copy_(sample.mean(0) * scale)
    if cfg.unit_norm_decoder:
        sae.normalize_decoder_()
    if dp is not None:  # one start for every rank: rank 0's weights, buffers and dataset scale
        dp.broadcast_(list(sae.parameters()) + list(sae.buffers()))
        scale = dp.broadcast_value(scale)
    main = dp is None or dp.is_main
    opt = torch.optim.Adam(sae.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=True)
    k_aux = cfg.auxk_k or sae.d_in // 2
    since_fired = torch.zeros(sae.d_sae, dtype=torch.long, device=device)
    state = TrainState(sae, 0, n_steps, since_fired)
    rows_log: list[dict] = []
    order, pos = torch.randperm(n, generator=gen), 0
    first_loss, good = None, None  # good: (step, weights) of the last logged step with a finite loss
    sae.train()
    step = 0
    if dp is not None and isinstance(sae.sparsifier, BatchRule):
        sae.sparsifier._dp = dp
    try:
        for step in progress(range(n_steps), desc=f"train {sae.sparsifier.name}", disable=not (cfg.progress and main)):
            if pos + bs > n:
                order, pos = torch.randperm(n, generator=gen), 0
            state.step, state.batch_index = step, order[pos: pos + bs]
            if dp is not None:
                state.batch_index = dp.shard(state.batch_index)
            state.x = state.out = state.dead = None
            pos += bs
            for cb in cfg.callbacks:
                cb(state)
            x = data.index_select(0, state.batch_index).to(device, non_blocking=True).mul_(scale)
            lr = cfg.lr * lr_factor(step, n_steps, cfg.warmup_frac, cfg.decay_frac)
            for group in opt.param_groups:
                group["lr"] = lr
            out = sae.forward_train(x, sparse=sparse)
            mse = (out.x_hat - x).pow(2).sum(-1).mean()
            loss = mse
            penalty = torch.zeros((), device=device)
            if cfg.sparsity_coeff > 0:
                penalty = sae.sparsifier.penalty(out.pre, out.codes, sae.dec_norm())
                warm = min(1.0, (step + 1) / max(1.0, cfg.sparsity_warmup_frac * n_steps))
                loss = loss + cfg.sparsity_coeff * warm * penalty
            with torch.no_grad():
                if sparse:
                    fired = torch.zeros(sae.d_sae, dtype=torch.bool, device=device)
                    fired[out.cols[out.vals > 0]] = True
                    n_active = (out.vals > 0).sum()
                else:
                    active = out.codes > 0
                    fired = active.any(0)
                    n_active = active.sum()
                if dp is not None:  # fired anywhere in the global batch; its L0
                    shared = dp.sum(torch.cat([fired.long(), n_active.long().reshape(1)]))
                    fired, n_active = shared[:-1] > 0, shared[-1]
                l0 = n_active.item() / bs
                since_fired += bs
                since_fired[fired] = 0
                dead = since_fired > cfg.dead_window_tokens
            aux = torch.zeros((), device=device)
            if cfg.auxk_coeff > 0 and dead.any():
                aux = auxk_loss(sae, x, out.pre, (x - out.x_hat).detach(), dead, k_aux, sparse)
                loss = loss + cfg.auxk_coeff * aux
            state.x, state.out, state.dead = x, out, dead
            extra = {name: term(state) for name, term in cfg.loss_terms.items()}
            for value in extra.values():
                loss = loss + value
            loss_value = loss.item() if dp is None else dp.mean(loss.detach()).item()
            first_loss = loss_value if first_loss is None else first_loss
            if not math.isfinite(loss_value) or loss_value > DIVERGENCE_FACTOR * max(abs(first_loss), 1e-12):
                what = f"became {loss_value}" if not math.isfinite(loss_value) else \
                    f"reached {loss_value:.3g}, {loss_value / first_loss:.3g}x its first value {first_loss:.3g}"
                if good is not None:
                    sae.load_state_dict(good[1])
                raise TrainingDiverged(f"training stopped at step {step} of {n_steps}: the loss {what} (lr={lr:g}). "
                                       + (f"The SAE holds its weights from step {good[0]}, the last logged step "
                                          f"with a finite loss." if good else "No earlier logged state to restore."))
            if step % cfg.log_every == 0:
                good = (step, {k: v.detach().clone() for k, v in sae.state_dict().items()})
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if dp is not None:
                dp.average_gradients_(sae.parameters())
            if cfg.unit_norm_decoder:
                sae.project_decoder_grad_()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(sae.parameters(), cfg.grad_clip)
            opt.step()
            sae.sparsifier.after_step_()
            if cfg.unit_norm_decoder:
                sae.normalize_decoder_()
            if step % cfg.log_every == 0 or step == n_steps - 1:
                with torch.no_grad():
                    if dp is None:
                        var = (x - x.mean(0)).pow(2).sum(-1).mean()
                    else:  # the whole batch's
                        var = dp.batch_variance(x)
                        mse, penalty, aux = dp.mean(torch.stack([mse.detach(), penalty.detach(), aux.detach()]))
                rows_log.append({"step": step, "tokens": (step + 1) * bs, "lr": lr, "loss": loss_value,
                                 "mse": mse.item(), "fvu": (mse / var).item(), "l0": l0,
                                 "dead_frac": dead.float().mean().item(), "penalty": penalty.item(),
                                 "auxk": aux.item(), **{k: float(v.detach()) for k, v in extra.items()}})
            if cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0 and main:
                ckpt = copy.deepcopy(sae)
                _finish(ckpt, cfg, scale, {"checkpoint_step": step + 1})
                ckpt.save(Path(cfg.checkpoint_dir) / f"step_{step + 1:07d}")
    except BaseException:
        _finish(sae, cfg, scale, {"stopped_at_step": step})  # stopped or interrupted: still on raw scale
        raise
    finally:
        torch.set_float32_matmul_precision(prev_precision)
        if isinstance(sae.sparsifier, BatchRule):
            sae.sparsifier._dp = None
    _finish(sae, cfg, scale)
    return TrainResult(sae, pd.DataFrame(rows_log), scale)


def _finish(sae: SAE, cfg: TrainConfig, scale: float, extra: dict | None = None) -> None:
    """Eval mode, the dataset scale folded into the weights, and the training record in the metadata."""
    sae.eval()
    if cfg.normalize_input:
        sae.fold_input_scale_(scale)
    sae.metadata.update({"train_input_scale": scale, "folded_input_scale": cfg.normalize_input,
                         "train_config": cfg.as_dict(), **(extra or {})})
