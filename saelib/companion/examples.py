"""What a latent means: its top-activating tokens, shown in context with the token highlighted."""
from __future__ import annotations

import html
from dataclasses import dataclass

import torch

from ..data.harvest import Activations
from ..sae import SAE


@dataclass
class Example:
    activation: float
    seq: int
    pos: int
    left: list[str]
    token: str
    right: list[str]


@torch.no_grad()
def latent_activations(sae: SAE, acts: Activations, latents: list[int], batch_size: int = 8192) -> torch.Tensor:
    """(N, len(latents)) activations of the chosen latents on every kept token."""
    sae.eval()
    out = [sae.encode(acts.acts[i: i + batch_size])[:, latents] for i in range(0, len(acts), batch_size)]
    return torch.cat(out)


def top_examples(values: torch.Tensor, acts: Activations, tokenizer, n: int = 5,
                 window: tuple[int, int] = (12, 4)) -> list[Example]:
    """The ``n`` tokens with the largest ``values`` (one per sequence) with ``window`` tokens of context."""
    order = values.argsort(descending=True)
    seen: set[int] = set()
    examples: list[Example] = []
    for i in order.tolist():
        if values[i] <= 0 or len(examples) == n:
            break
        seq, pos = acts.index[i].tolist()
        if seq in seen:
            continue
        seen.add(seq)
        toks = acts.tokens[seq]
        dec = lambda ids: [tokenizer.decode([t]) for t in ids]  # noqa: E731
        examples.append(Example(float(values[i]), seq, pos, dec(toks[max(0, pos - window[0]): pos].tolist()),
                                tokenizer.decode([int(toks[pos])]), dec(toks[pos + 1: pos + 1 + window[1]].tolist())))
    return examples


def examples_html(title: str, examples: list[Example]) -> str:
    """An HTML block: one line per example, the activating token highlighted, its activation at the left."""
    def esc(s: str) -> str:
        return html.escape(s).replace("\n", "&#8629;")
    rows = []
    for ex in examples:
        rows.append(f"<div style='font-family:monospace;white-space:pre'>"
                    f"<span style='color:#666'>{ex.activation:7.2f}</span>  {esc(''.join(ex.left))}"
                    f"<b style='background:#fdb863;padding:0 2px'>{esc(ex.token)}</b>{esc(''.join(ex.right))}</div>")
    return f"<div style='margin:6px 0'><b>{html.escape(title)}</b>{''.join(rows)}</div>"


def examples_text(title: str, examples: list[Example]) -> str:
    """Plain-text version of :func:`examples_html` (the activating token in [[brackets]])."""
    lines = [title] + [f"  {ex.activation:7.2f}  {''.join(ex.left)}[[{ex.token}]]{''.join(ex.right)}".replace("\n", "\\n")
                       for ex in examples]
    return "\n".join(lines)
