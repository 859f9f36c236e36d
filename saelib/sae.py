"""The sparse autoencoder: one small module, a pluggable sparsifier, SAELens-style checkpoints.

    z     = (x - b_dec) W_enc + b_enc          (pre-activations; b_dec subtraction optional)
    f     = sigma(z)                           (the sparsifier: ReLU, TopK, ...)
    x_hat = f W_dec + b_dec

Shapes follow SAELens: W_enc (d_in, d_sae), W_dec (d_sae, d_in), so a checkpoint written by
``save`` (``cfg.json`` + ``sae_weights.safetensors``) loads in SAELens-compatible tools; ``load`` and
``from_pretrained`` also read SAELens's, sparsify's and Llama Scope's checkpoints (:mod:`saelib.formats`).
"""
from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from . import checkpoint, formats
from .checkpoint import CFG_FILE, CheckpointError
from .fastpath import ColumnBags, encoder_bias, gather_pre, sparse_decode
from .sparsifiers.base import Sparsifier, make_sparsifier

_ARCHITECTURE = {"relu": "standard", "topk": "topk", "jumprelu": "jumprelu"}


class TrainStep(NamedTuple):
    """What one training forward returns (dense codes, or the active entries on the sparse path)."""

    x_hat: Tensor
    pre: Tensor          # dense pre-activations (no grad on the sparse path)
    codes: Tensor | None  # dense codes (dense path)
    rows: Tensor | None   # active entries (sparse path)
    cols: Tensor | None
    vals: Tensor | None


class SAE(nn.Module):
    """Sparse autoencoder with a pluggable sparsifier (see :mod:`saelib.sparsifiers`)."""

    def __init__(self, d_in: int, d_sae: int, sparsifier: Sparsifier | str = "topk",
                 apply_b_dec_to_input: bool = True, metadata: dict[str, Any] | None = None,
                 seed: int = 0, **sparsifier_kwargs: Any) -> None:
        super().__init__()
        if not (isinstance(d_in, int) and d_in > 0 and isinstance(d_sae, int) and d_sae > 0):
            raise ValueError(f"d_in and d_sae must be positive ints, got d_in={d_in!r}, d_sae={d_sae!r}")
        self.d_in, self.d_sae = d_in, d_sae
        self.sparsifier = (sparsifier if isinstance(sparsifier, Sparsifier)
                           else make_sparsifier(sparsifier, n_latents=d_sae, **sparsifier_kwargs))
        self.apply_b_dec_to_input = apply_b_dec_to_input
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.W_enc = nn.Parameter(torch.empty(d_in, d_sae))
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.W_dec = nn.Parameter(torch.empty(d_sae, d_in))
        self.b_dec = nn.Parameter(torch.zeros(d_in))
        self.reset_parameters(seed)

    @torch.no_grad()
    def reset_parameters(self, seed: int = 0, dec_norm: float = 1.0) -> None:
        """Tied init (Gao et al. 2024, Sec. 2.4): decoder rows random with norm ``dec_norm``, W_enc = W_dec^T, zero biases.

        The init is a function of ``seed`` alone (its own generator, never the global RNG), so the same
        seed gives the same SAE in any process; pass different seeds for different inits."""
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"seed must be an int, got {seed!r}")
        gen = torch.Generator().manual_seed(int(seed))
        w = torch.empty(self.d_sae, self.d_in).uniform_(-1, 1, generator=gen)
        w = w / w.norm(dim=1, keepdim=True) * dec_norm
        self.W_dec.copy_(w)
        self.W_enc.copy_(w.t())
        self.b_enc.zero_()
        self.b_dec.zero_()

    # ---- forward -----------------------------------------------------------------
    def dec_norm(self) -> Tensor:
        """||W_dec[i]||_2 for every latent i."""
        return self.W_dec.norm(dim=1)

    def _input(self, x: Tensor) -> Tensor:
        return x - self.b_dec if self.apply_b_dec_to_input else x

    def _encoder_operands(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(x_in, bias) with z = x_in W_enc + bias. When x needs no gradient, the centring x - b_dec is
        detached and b_dec's gradient travels through the bias instead (:func:`saelib.fastpath.encoder_bias`),
        which saves the (B, d_in) input-gradient GEMM; the values are the same."""
        if not self.apply_b_dec_to_input:
            return x, self.b_enc
        if x.requires_grad or not torch.is_grad_enabled():
            return x - self.b_dec, self.b_enc
        return (x - self.b_dec).detach(), encoder_bias(self.b_enc, self.b_dec, self.W_enc)

    def pre_acts(self, x: Tensor) -> Tensor:
        """z = (x - b_dec) W_enc + b_enc."""
        x_in, bias = self._encoder_operands(x)
        if x_in.dim() == 2:
            return torch.addmm(bias, x_in, self.W_enc)
        return x_in @ self.W_enc + bias

    def encode(self, x: Tensor) -> Tensor:
        """Dense codes f(x), shape (..., d_sae)."""
        self._check_input(x)
        return self.sparsifier(self.pre_acts(x), self.dec_norm())

    def decode(self, f: Tensor) -> Tensor:
        """x_hat = f W_dec + b_dec."""
        return f @ self.W_dec + self.b_dec

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))

    def forward_train(self, x: Tensor, sparse: bool = False) -> TrainStep:
        """Training forward on a (B, d_in) batch; ``sparse=True`` uses the TopK fast path."""
        if not sparse:
            pre = self.pre_acts(x)
            codes = self.sparsifier(pre, self.dec_norm())
            return TrainStep(self.decode(codes), pre, codes, None, None, None)
        if not self.sparsifier.supports_sparse:
            raise ValueError(f"sparse=True needs a TopK-family sparsifier, got {self.sparsifier.name!r}")
        with torch.no_grad():
            pre = torch.addmm(self.b_enc, self._input(x), self.W_enc)
            rows, cols = self.sparsifier.select(pre, self.dec_norm())
            bags = ColumnBags.of(rows, cols, self.d_sae)  # shared by the encoder and decoder gradients
        vals = self.active_values(x, pre, rows, cols, sparse=True, bags=bags)
        x_hat = sparse_decode(rows, cols, vals, self.W_dec, x.shape[0], bags) + self.b_dec
        return TrainStep(x_hat, pre, None, rows, cols, vals)

    def active_values(self, x: Tensor, pre: Tensor, rows: Tensor, cols: Tensor, sparse: bool,
                      bags: ColumnBags | None = None) -> Tensor:
        """ReLU(z[rows, cols]) with gradient; on the sparse path through the sparse-backward gather."""
        if sparse:
            x_in, bias = self._encoder_operands(x)
            return torch.relu(gather_pre(x_in, self.W_enc, bias, rows, cols, pre, bags))
        return torch.relu(pre[rows, cols])

    def _check_input(self, x: Tensor) -> None:
        if x.shape[-1] != self.d_in:
            raise ValueError(f"input's last dimension must be d_in={self.d_in}, got shape {tuple(x.shape)}")

    # ---- constraints and folding ----------------------------------------------------
    @torch.no_grad()
    def normalize_decoder_(self) -> None:
        """Rescale decoder rows to unit norm."""
        self.W_dec.div_(self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8))

    @torch.no_grad()
    def project_decoder_grad_(self) -> None:
        """Remove the gradient component parallel to each (unit) decoder row (Bricken et al. 2023)."""
        if self.W_dec.grad is None:
            return
        unit = self.W_dec / self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8)
        self.W_dec.grad.sub_((self.W_dec.grad * unit).sum(1, keepdim=True) * unit)

    @torch.no_grad()
    def fold_input_scale_(self, scale: float, scale_out: float | None = None) -> None:
        """Make an SAE trained on (s_in x -> s_out x) read and write raw x (same codes), in place.

        z = (s_in x - b_dec) W_enc + b_enc = (x - b_dec / s_in)(s_in W_enc) + b_enc and
        x_hat / s_out = f (W_dec / s_out) + b_dec / s_out. With b_dec subtracted from the input, b_dec
        appears on both sides, so ``scale_out`` must equal ``scale`` (the default); without it
        (Llama Scope's encoder) the two scales may differ.
        """
        scale_out = scale if scale_out is None else scale_out
        for name, v in (("scale", scale), ("scale_out", scale_out)):
            if not v > 0:
                raise ValueError(f"{name} must be > 0, got {v!r}")
        if self.apply_b_dec_to_input and not math.isclose(scale, scale_out):
            raise ValueError(f"scale_out must equal scale when apply_b_dec_to_input=True (got {scale} and {scale_out})")
        self.W_enc.mul_(scale)
        self.W_dec.div_(scale_out)
        self.b_dec.div_(scale_out)

    # ---- checkpoints ---------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """cfg.json contents: SAELens-style keys plus the sparsifier's name and kwargs.

        A TopK ranked by decoder norm is written with SAELens's ``rescale_acts_by_decoder_norm``, so SAELens
        picks the same latents and reconstructs the same x_hat (its codes are then ReLU(z_i) ||d_i||).
        """
        cfg = {
            "d_in": self.d_in, "d_sae": self.d_sae, "dtype": "float32",
            "architecture": _ARCHITECTURE.get(self.sparsifier.name, self.sparsifier.name),
            "activation_fn_kwargs": self.sparsifier.config(),
            "apply_b_dec_to_input": self.apply_b_dec_to_input,
            "sparsifier": self.sparsifier.name, "sparsifier_kwargs": self.sparsifier.config(),
            "metadata": self.metadata,
        }
        if self.sparsifier.name == "topk":
            cfg["k"] = self.sparsifier.config()["k"]
            cfg["rescale_acts_by_decoder_norm"] = self.sparsifier.config()["rank_by_decoder_norm"]
        return cfg

    def save(self, directory: str | Path) -> Path:
        """Write cfg.json and sae_weights.safetensors into ``directory`` (safely: :mod:`saelib.checkpoint`).

        A folder that holds anything but a checkpoint is refused (``CheckpointError``), never emptied.
        ``cfg.json`` carries the sparsifier twice on purpose: ``architecture`` / ``activation_fn_kwargs``
        for SAELens-style tools, ``sparsifier`` / ``sparsifier_kwargs`` for saelib.
        """
        tensors = {k.removeprefix("sparsifier."): v for k, v in self.state_dict().items()}
        return checkpoint.write(directory, tensors, self.config())

    @classmethod
    def load(cls, directory: str | Path, layout: formats.Layout = "auto",
             threshold_units: formats.ThresholdUnits = "raw") -> "SAE":
        """Load a checkpoint folder: saelib's own (hash-verified), SAELens v6/v5, sparsify or Llama Scope
        (:mod:`saelib.formats`; ``layout="auto"`` tells them apart by their weights file). Foreign checkpoints
        compute what their library computes; what saelib cannot represent raises CheckpointError naming the
        key. ``threshold_units`` applies to Llama Scope only."""
        directory = Path(directory)
        return cls._build(formats.read(directory, layout, threshold_units), directory)

    @classmethod
    def from_pretrained(cls, repo_id: str, path: str = "", *, revision: str | None = None,
                        layout: formats.Layout = "auto", threshold_units: formats.ThresholdUnits = "raw",
                        cache_dir: str | Path | None = None, token: str | bool | None = None) -> "SAE":
        """Download one SAE folder from the Hugging Face hub (online) and :meth:`load` it.

        ``path`` is the folder inside the repo (e.g. Llama Scope's ``Llama3_1-8B-Base-L15R-8x``, sparsify's
        ``layers.10``). Only the files of the known layouts are fetched, never pickled weights.
        """
        from .formats.hub import fetch

        folder = fetch(repo_id, path, revision=revision, cache_dir=cache_dir, token=token)
        return cls.load(folder, layout, threshold_units)

    @classmethod
    def _build(cls, conv: formats.Converted, directory: Path) -> "SAE":
        """An SAE from converted config and tensors, shape-checked against the config."""
        cfg, tensors = conv.cfg, conv.tensors
        try:
            d_in, d_sae = int(cfg["d_in"]), int(cfg["d_sae"])
            kwargs = {k: v for k, v in cfg.get("sparsifier_kwargs", {}).items() if k != "n_latents"}
            sae = cls(d_in, d_sae, cfg.get("sparsifier", "topk"), cfg.get("apply_b_dec_to_input", True),
                      cfg.get("metadata"), **kwargs)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise CheckpointError(f"{directory / CFG_FILE} is not a valid SAE config ({err!r})") from err
        expected = {k.removeprefix("sparsifier."): v.shape for k, v in sae.state_dict().items()}
        missing = sorted(set(expected) - set(tensors))
        if missing:
            raise CheckpointError(f"the weights in {directory} lack tensors {missing}")
        for name, shape in expected.items():
            if tuple(tensors[name].shape) != tuple(shape):
                raise CheckpointError(f"the weights in {directory}: {name} has shape {tuple(tensors[name].shape)}, "
                                      f"but the config (d_in={d_in}, d_sae={d_sae}) implies {tuple(shape)}")
        state = {("sparsifier." + k if "sparsifier." + k in sae.state_dict() else k): v for k, v in tensors.items()
                 if k in expected}
        sae.load_state_dict(state)
        if conv.input_scale is not None:
            sae.fold_input_scale_(*conv.input_scale)
        return sae

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, d_sae={self.d_sae}, expansion={self.d_sae / self.d_in:.1f}x"


def n_params(sae: SAE) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in sae.parameters())


