"""Render a latent dashboard (saelib.companion.dashboard) in headless Chromium and save a screenshot.

The check that the page shows in a real browser with no network: Chromium runs with every host
name unresolvable, so anything the page tried to fetch would be missing from the picture.

    python scripts/render_dashboard.py --toy --out /tmp/toy.png                    # synthetic, no LM, seconds
    python scripts/render_dashboard.py --sae <checkpoint folder> --out dash.png     # a trained SAE on the
        # shared held-out harvest of --preset (cached), the default LM's tokenizer and unembedding
    python scripts/render_dashboard.py --html figures/00_quickstart/dashboard.html --out dash.png

Chromium comes from Debian's packages (``apt-get install chromium`` or ``chromium-headless-shell``);
``$CHROMIUM`` names another binary. Exits non-zero when no browser is found or the picture is blank.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "headless_shell")


def find_browser() -> str | None:
    """``$CHROMIUM``, else the first Chromium on PATH (None: none installed)."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def screenshot(html: Path, png: Path, width: int = 1200, height: int = 3000, timeout: float = 120) -> Path:
    """Render ``html`` in headless Chromium (network off) to ``png``, cropped to the page's content."""
    browser = find_browser()
    if browser is None:
        raise FileNotFoundError(f"no Chromium found (tried $CHROMIUM and {', '.join(BROWSERS)}); "
                                "install one with `apt-get install chromium`")
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--hide-scrollbars", "--no-first-run", f"--user-data-dir={profile}",
               "--host-resolver-rules=MAP * ~NOTFOUND",        # offline: no host name resolves
               f"--window-size={width},{height}", f"--screenshot={png}", html.resolve().as_uri()]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if run.returncode != 0 or not png.exists():
        raise RuntimeError(f"{Path(browser).name} failed ({run.returncode}): {run.stderr[-2000:]}")
    img = np.asarray(Image.open(png).convert("L"))
    rows = np.flatnonzero((img < 250).any(axis=1))
    if len(rows) == 0:
        raise RuntimeError(f"the screenshot {png} is blank")
    Image.open(png).crop((0, 0, width, min(height, rows[-1] + 20))).save(png)
    return png


def toy_dashboard(path: Path) -> Path:
    """A dashboard of a planted toy (no LM): word tokens; latents 0, 1, 2 fire on 'fox', 'cat', 'the'."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from saelib.companion.dashboard import dashboard
    from saelib.data.harvest import Activations
    from saelib.sae import SAE

    words = "the quick brown fox jumps over the lazy dog while a cat sat on the mat".split()
    tk = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.train_from_iterator([" ".join(words)], trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]")
    g = torch.Generator().manual_seed(0)
    d, m, n_seq, T = 16, 12, 40, 24
    sae = SAE(d, m, "relu", apply_b_dec_to_input=False, seed=0)
    tokens = torch.randint(1, len(tok), (n_seq, T), generator=g)
    resid = torch.randn(n_seq, T, d, generator=g) * 0.3
    planted = torch.linalg.pinv(sae.W_enc.detach())   # row j: the input with pre-activations e_j
    for j, word in enumerate(("fox", "cat", "the")):      # latent j fires on `word`
        resid[tokens == tok.convert_tokens_to_ids(word)] += 3 * planted[j]
    keep = torch.ones(n_seq, T, dtype=torch.bool)
    keep[:, 0] = False
    W_U = torch.randn(len(tok), d, generator=g)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dashboard(sae, Activations(resid, tokens, keep), [0, 1, 2], tok, W_U,
                              title="toy dashboard").html(), encoding="utf-8")
    return path


def sae_dashboard(sae_dir: Path, path: Path, preset: str, latents: list[int] | None, n: int) -> Path:
    """A dashboard of a trained SAE on the preset's shared held-out harvest (cached)."""
    import torch

    from saelib.companion.dashboard import dashboard
    from saelib.companion.presets import resolve
    from saelib.data.harvest import harvest
    from saelib.data.lm import load_lm, unembedding
    from saelib.metrics.reconstruction import evaluate
    from saelib.sae import SAE

    s = resolve("00_quickstart", preset)
    acts = harvest(model=s.model, layer=s.layer, corpus=s.corpus, split="eval", n_tokens=s.n_eval_tokens,
                   ctx_len=s.ctx_len, order=s.data_order, progress=False)
    lm, tok = load_lm(s.model)
    sae = SAE.load(sae_dir).eval()
    ev = evaluate(sae, acts.acts)
    if latents is None:   # as notebook 00 picks them: at random among latents firing on 0.1-5% of tokens
        band = torch.nonzero((ev.densities > 1e-3) & (ev.densities < 5e-2)).flatten()
        latents = sorted(band[torch.randperm(len(band), generator=torch.Generator().manual_seed(0))[:n]].tolist())
    dash = dashboard(sae, acts, latents, tok, unembedding(lm), densities=ev.densities,
                     title=f"{sae_dir.resolve().parent.name}/{sae_dir.name}: FVU {ev.fvu:.3f}, L0 {ev.l0:.1f} on {len(acts):,} held-out tokens")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dash.html(), encoding="utf-8")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--toy", action="store_true", help="a planted toy dashboard (no LM)")
    src.add_argument("--sae", type=Path, help="a saelib/SAELens checkpoint folder")
    src.add_argument("--html", type=Path, help="an existing dashboard page")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--latents", type=lambda s: [int(x) for x in s.split(",")], default=None)
    ap.add_argument("--n", type=int, default=6, help="latents shown when --latents is not given")
    ap.add_argument("--out", type=Path, required=True, help="the screenshot (.png); the page is saved beside it")
    ap.add_argument("--width", type=int, default=1200)
    a = ap.parse_args()
    page = a.html or a.out.with_suffix(".html")
    if a.toy:
        toy_dashboard(page)
    elif a.sae:
        sae_dashboard(a.sae, page, a.preset, a.latents, a.n)
    print(f"page {page} ({page.stat().st_size / 1024:.0f} KiB) -> {screenshot(page, a.out, a.width)}")


if __name__ == "__main__":
    main()
