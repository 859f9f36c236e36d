"""Gradient SAEs (g-SAE): TopK selection that also weighs each latent's downstream influence.

Olmo, Wilson, Forsey, Hepner, Howe & Wingate, *Features that Make a Difference: Leveraging
Gradients for Improved Dictionary Learning* (Nov 2024, arXiv:2411.10397).

* ``harvest_gradients``: g = d CE / d x at the hook, one backward pass through the frozen LM
  tail per sequence (CE summed over the sequence), cached next to the activations and aligned
  row for row with :attr:`Activations.acts`.
* ``GradientTopK`` (registered as ``"gradient_topk"``): latent i is scored
  s_i = ReLU(z_i) (1 + beta |d_i . g|) with d_i the unit decoder direction; idx = TopK(s, k);
  the kept *values* are ReLU(z_i). Without g it is plain TopK.
* ``feed_gradients`` (a ``TrainConfig.callbacks`` entry) and ``with_gradients`` (a context
  manager for evaluation) hand g to the sparsifier.
* ``logit_lens_tokens`` / ``steering_effect``: the steering measurement of the paper's Sec. 5.
"""
from __future__ import annotations

import json
import math
from contextlib import contextmanager
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor
from tqdm import tqdm

from .activations import Activations, _key
from .lm import LMTail, load_lm
from .sae import SAE
from .sparsity import Sparsifier, register
from .train import TrainState
from .utils import atomic_path, cache_dir, check_range

_META_KEYS = ("model", "layer", "corpus", "split", "n_tokens", "ctx_len", "outlier_factor")


def sequence_gradients(tail: LMTail, resid: Tensor, tokens: Tensor) -> Tensor:
    """g = d/d resid of the next-token CE summed over each sequence, for (B, T, d) ``resid``.

    The loss is the one :class:`saelib.metrics.Splice` averages: predictions made at positions
    1 .. T-2 (the prediction at position 0, the attention sink, is excluded), summed per sequence.
    """
    x = resid.detach().clone().requires_grad_(True)
    logits = tail.logits(x)[:, 1:-1]
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 2:].reshape(-1), reduction="sum")
    (g,) = torch.autograd.grad(loss, x)
    return g


def harvest_gradients(acts: Activations, max_seqs: int | None = None, batch_size: int = 8,
                      device: str = "cpu", progress: bool = True) -> Tensor:
    """LM-loss gradients at the hook for the kept tokens of the first ``max_seqs`` sequences.

    Returns (N', d) with row i aligned to ``acts.acts[i]`` (N' = kept tokens of those sequences).
    The backward pass starts from the cached clean residual ``acts.resid`` (the blocks before the
    hook never run again). Cached in ``cache_dir()/activations`` under a key made of the
    harvest's key fields plus ``max_seqs``; written atomically.
    """
    missing = [k for k in _META_KEYS if k not in acts.meta]
    if missing:
        raise ValueError(f"acts.meta must hold {list(_META_KEYS)} (from activations.harvest); missing {missing}")
    n_seq = len(acts.tokens) if max_seqs is None else int(max_seqs)
    check_range("max_seqs", n_seq, 1, len(acts.tokens))
    check_range("batch_size", batch_size, 1)
    meta = {k: acts.meta[k] for k in _META_KEYS}
    path = cache_dir() / "activations" / f"grad-{_key(**meta, kind='lm_grad', max_seqs=n_seq)}.safetensors"
    if path.exists():
        return load_file(str(path))["grad"]
    lm, _ = load_lm(acts.meta["model"])
    home = next(lm.parameters()).device
    tail = LMTail(lm.to(device), int(acts.meta["layer"]))
    keep = acts.keep[:n_seq]
    rows = []
    try:
        for i in tqdm(range(0, n_seq, batch_size), desc=f"gradients L{acts.meta['layer']} {acts.meta['split']}",
                      disable=not progress, mininterval=5.0):
            j = min(i + batch_size, n_seq)
            g = sequence_gradients(tail, acts.resid[i:j].to(device), acts.tokens[i:j].to(device)).cpu()
            rows.append(g[keep[i:j]])
    finally:
        lm.to(home)  # the LM is shared (cached by load_lm): leave it where it was
    grad = torch.cat(rows).contiguous()
    with atomic_path(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps({**meta, "max_seqs": n_seq, "n_rows": len(grad)}))
    with atomic_path(path) as tmp:
        save_file({"grad": grad}, str(tmp))
    return grad


@register
class GradientTopK(Sparsifier):
    """g-SAE selection (Olmo et al. 2024, Sec. 3): TopK over s_i = ReLU(z_i)(1 + beta |d_i . g|).

    d_i = W_dec[i] / ||W_dec[i]|| (unit direction, so the score does not change when the input
    scale is folded into the weights after training); g = d CE / d x for the token. Only the
    *choice* of latents uses g: the kept values are ReLU(z_i) and no gradient flows into g or
    through the score. Non-positive z_i keep their raw value as score (they rank below every
    positive one, exactly as in TopK), so ``beta = 0`` or no g gives TopK's indices.

    g is handed in with :meth:`set_gradients` (rows consumed in order by successive forwards:
    one batch per training step via :class:`feed_gradients`, a whole evaluation set via
    :func:`with_gradients`). With no g pending, selection is plain TopK.
    """

    name = "gradient_topk"
    supports_sparse = True

    def __init__(self, k: int, beta: float = 1.0) -> None:
        super().__init__()
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        check_range("beta", beta, 0)
        self.k, self.beta = k, float(beta)
        self._pending: dict[str, Any] = {}  # plain dict: the decoder must not register as a parameter here

    # ---- handing g in ------------------------------------------------------------------
    def set_gradients(self, g: Tensor, W_dec: Tensor) -> None:
        """Queue per-token gradients (N, d); the next forwards consume them row by row."""
        if g.dim() != 2 or g.shape[1] != W_dec.shape[1]:
            raise ValueError(f"g must have shape (N, d={W_dec.shape[1]}), got {tuple(g.shape)}")
        self._pending = {"g": g.detach(), "W_dec": W_dec, "pos": 0}

    def clear_gradients(self) -> int:
        """Drop pending gradients; return how many rows were left unused."""
        left = len(self._pending["g"]) - self._pending["pos"] if self._pending else 0
        self._pending = {}
        return left

    @property
    def has_gradients(self) -> bool:
        return bool(self._pending)

    def _take(self, n: int) -> tuple[Tensor, Tensor] | None:
        if not self._pending:
            return None
        p = self._pending
        if p["pos"] + n > len(p["g"]):
            left = len(p["g"]) - p["pos"]
            self._pending = {}
            raise ValueError(f"{self.name}: a forward of {n} tokens but only {left} gradient rows are pending "
                             f"(g must be aligned row for row with the encoded tokens)")
        g = p["g"][p["pos"]: p["pos"] + n]
        p["pos"] += n
        W_dec = p["W_dec"]
        if p["pos"] == len(p["g"]):
            self._pending = {}
        return g, W_dec

    # ---- selection -------------------------------------------------------------------
    @torch.no_grad()
    def influence(self, g: Tensor, W_dec: Tensor) -> Tensor:
        """|d_i . g| for every token and latent, (N, m), with unit decoder directions d_i."""
        unit = W_dec / W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return (g.to(unit.dtype) @ unit.t()).abs()

    @torch.no_grad()
    def scores(self, pre: Tensor) -> Tensor:
        """Selection scores for (N, m) ``pre``; consumes N pending gradient rows (TopK scores if none)."""
        taken = self._take(pre.shape[0])
        if taken is None or self.beta == 0:
            return pre
        g, W_dec = taken
        return torch.where(pre > 0, pre * (1 + self.beta * self.influence(g, W_dec)), pre)

    def _indices(self, pre: Tensor) -> Tensor:
        if self.k > pre.shape[-1]:
            raise ValueError(f"k={self.k} exceeds the number of latents {pre.shape[-1]}")
        flat = pre.detach().reshape(-1, pre.shape[-1])
        return self.scores(flat).topk(self.k, dim=-1, sorted=False).indices

    def forward(self, pre: Tensor, dec_norm: Tensor) -> Tensor:
        flat = pre.reshape(-1, pre.shape[-1])
        idx = self._indices(flat)
        vals = torch.relu(flat.gather(-1, idx))
        return torch.zeros_like(flat).scatter(-1, idx, vals).reshape(pre.shape)

    def select(self, pre: Tensor, dec_norm: Tensor) -> tuple[Tensor, Tensor]:
        idx = self._indices(pre)
        rows = torch.arange(pre.shape[0], device=pre.device).repeat_interleave(self.k)
        return rows, idx.reshape(-1)

    def config(self) -> dict[str, Any]:
        return {"k": self.k, "beta": self.beta}


class feed_gradients:
    """Training callback: before each step, queue ``grads[state.batch_index]`` for the g-SAE.

    ``grads`` is aligned row for row with the training data passed to ``train_sae``.
    """

    def __init__(self, grads: Tensor) -> None:
        if grads.dim() != 2:
            raise ValueError(f"grads must be (N, d), got shape {tuple(grads.shape)}")
        self.grads = grads

    def __call__(self, state: TrainState) -> None:
        sp = state.sae.sparsifier
        if not isinstance(sp, GradientTopK):
            raise ValueError(f"feed_gradients needs a 'gradient_topk' SAE, got {sp.name!r}")
        sp.set_gradients(self.grads[state.batch_index], state.sae.W_dec)


@contextmanager
def with_gradients(sae: SAE, grads: Tensor | None) -> Iterator[SAE]:
    """Evaluate a g-SAE with g: every token encoded inside consumes the next row of ``grads``.

    ``grads=None`` leaves selection as plain TopK (the "no g at inference" setting). On a clean
    exit every row must have been used (else ValueError: the rows were not aligned).
    """
    sp = sae.sparsifier
    if not isinstance(sp, GradientTopK):
        raise ValueError(f"with_gradients needs a 'gradient_topk' SAE, got {sp.name!r}")
    if grads is not None:
        sp.set_gradients(grads, sae.W_dec)
    try:
        yield sae
    except BaseException:
        sp.clear_gradients()
        raise
    left = sp.clear_gradients()
    if left:
        raise ValueError(f"with_gradients: {left} of {len(grads)} gradient rows unused; "
                         f"grads must have one row per encoded token")


def default_beta(grads: Tensor, d: int | None = None) -> float:
    """beta = 1 / median_tokens E_u |u . g| for a random unit u: sqrt(pi d / 2) / median ||g||.

    A scale-only choice (the paper gives no beta): for a typical token and a typical direction
    the influence term beta |d_i . g| is about 1, i.e. the score is about doubled.
    """
    d = d or grads.shape[1]
    med = float(grads.norm(dim=1).median())
    if not med > 0:
        raise ValueError("grads must not be all zero")
    return math.sqrt(math.pi * d / 2) / med


# ---- steering ----------------------------------------------------------------------------

@torch.no_grad()
def logit_lens_tokens(tail: LMTail, directions: Tensor, n: int = 5) -> Tensor:
    """Top-``n`` output tokens of each direction (L, d): W_U (gamma * d_hat), gamma = final-norm gain."""
    unit = directions / directions.norm(dim=1, keepdim=True).clamp_min(1e-12)
    gain = tail.model.model.norm.weight
    return tail.model.lm_head(unit * gain).topk(n, dim=-1).indices


@torch.no_grad()
def steering_effect(tail: LMTail, resid: Tensor, directions: Tensor, alpha: float, n_top: int = 5,
                    positions: slice = slice(1, None)) -> Tensor:
    """Mean change of log p(top logit-lens tokens of d_i) when alpha * d_i_hat is added at the hook.

    For each direction i (L, d): add ``alpha`` times its unit vector to the residual at every
    position in ``positions`` of the contexts ``resid`` (B, T, d), run the LM tail, and average
    log p(t) - log p_clean(t) over those positions, the contexts and the direction's ``n_top``
    tokens t. Returns (L,) in nats.
    """
    check_range("alpha", alpha, 0)
    unit = directions / directions.norm(dim=1, keepdim=True).clamp_min(1e-12)
    targets = logit_lens_tokens(tail, unit, n_top)
    clean = torch.log_softmax(tail(resid)[:, positions], dim=-1)
    out = []
    for i in range(len(unit)):
        r = resid.clone()
        r[:, positions] += alpha * unit[i]
        lp = torch.log_softmax(tail(r)[:, positions], dim=-1)
        out.append((lp[..., targets[i]] - clean[..., targets[i]]).mean())
    return torch.stack(out)


def measure_with_gradients(sae: SAE, x_eval: Tensor, grads: Tensor | None, splice=None) -> dict[str, float]:
    """:func:`saelib.sweep.measure` for a g-SAE whose selection sees g (``grads`` aligned with ``x_eval``).

    The splice replaces the kept tokens of its first sequences, which are the first rows of the
    eval activations, so it uses ``grads[:splice.keep.sum()]``. ``grads=None``: plain TopK selection.
    """
    from .sweep import measure

    n_splice = int(splice.keep.sum()) if splice is not None else 0
    if grads is not None and (len(grads) < len(x_eval) or len(grads) < n_splice):
        raise ValueError(f"grads must have >= max(len(x_eval)={len(x_eval)}, splice tokens={n_splice}) rows, "
                         f"got {len(grads)}")
    with with_gradients(sae, None if grads is None else grads[: len(x_eval)]):
        row = measure(sae, x_eval, None)
    if splice is not None:
        with with_gradients(sae, None if grads is None else grads[:n_splice]):
            lm = splice.evaluate(sae)
        row.update(delta_lm_loss=lm["delta_lm_loss"], ce_recovered=lm["ce_recovered"])
    return row
