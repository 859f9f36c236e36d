"""Known answers for the generalisation helpers (saelib/papers/generalisation.py): fine-tune, per-position metrics."""
import json

import pytest
import torch

from saelib.sae import SAE


def test_finetune_is_cached_changes_weights_and_loads(tiny_lm, tmp_path, monkeypatch):
    from saelib.data.harvest import harvest
    from saelib.data.lm import load_lm
    from saelib.papers.generalisation import finetune_lm

    monkeypatch.setenv("SAELIB_CACHE", str(tmp_path))
    kw = dict(base=tiny_lm, corpus="local:gensim-lee", n_steps=2, batch_size=2, ctx_len=16, lr=1e-2, bf16=False,
              progress=False)
    path = finetune_lm(**kw)
    info = json.loads((tmp_path / "lm" / path.split("/")[-1] / "finetune.json").read_text())
    assert len(info["losses"]) == 2 and info["corpus"] == "local:gensim-lee"
    stamp = (tmp_path / "lm" / path.split("/")[-1] / "finetune.json").stat().st_mtime
    assert finetune_lm(**kw) == path  # cached: not retrained
    assert (tmp_path / "lm" / path.split("/")[-1] / "finetune.json").stat().st_mtime == stamp
    base, _ = load_lm(tiny_lm)
    tuned, _ = load_lm(path)
    assert not torch.equal(base.model.layers[0].mlp.up_proj.weight, tuned.model.layers[0].mlp.up_proj.weight)
    assert not base.model.layers[0].mlp.up_proj.weight.requires_grad  # the shared base model was not touched
    acts = harvest(model=path, layer=1, corpus="local:gensim-lee", split="eval", n_tokens=64, ctx_len=16, progress=False)
    assert acts.resid.shape == (4, 16, 32)
    with pytest.raises(ValueError, match="n_steps must be in"):
        finetune_lm(**{**kw, "n_steps": 0})


def test_finetune_steps_in_backward_give_the_plain_adamw_update(tiny_lm, tmp_path, monkeypatch):
    """finetune_lm steps one AdamW per parameter inside the backward (memory); the weights equal those of one
    AdamW stepped after each backward, bit for bit (the tied embedding included)."""
    import copy

    from safetensors.torch import load_file

    from saelib.data.lm import load_lm
    from saelib.data.text import load_corpus, tokenize_and_chunk
    from saelib.papers.generalisation import finetune_lm
    from saelib.utils import seed_everything

    monkeypatch.setenv("SAELIB_CACHE", str(tmp_path))
    path = finetune_lm(base=tiny_lm, corpus="local:gensim-lee", n_steps=3, batch_size=2, ctx_len=16, lr=1e-2,
                       bf16=False, progress=False)
    base, tok = load_lm(tiny_lm)
    model = copy.deepcopy(base).train().requires_grad_(True)
    tokens = tokenize_and_chunk(load_corpus("local:gensim-lee")["train"], tok, 16, max_tokens=3 * 2 * 16)
    order = torch.randperm(len(tokens), generator=seed_everything(0))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    for step in range(3):
        batch = tokens[order[(torch.arange(2) + step * 2) % len(tokens)]]
        opt.zero_grad(set_to_none=True)
        model(input_ids=batch, labels=batch, use_cache=False).loss.backward()
        opt.step()
    saved = load_file(f"{path}/model.safetensors")
    ref = model.state_dict()
    assert saved and all(torch.equal(saved[k], ref[k]) for k in saved)


def test_per_position_helpers_agree_with_splice(tiny_lm, tmp_path, monkeypatch):
    from saelib.data.harvest import harvest
    from saelib.metrics.splice import Splice, per_token_ce
    from saelib.papers.generalisation import bucket_mean, fvu_by_position

    monkeypatch.setenv("SAELIB_CACHE", str(tmp_path))
    acts = harvest(model=tiny_lm, layer=1, corpus="local:gensim-lee", split="eval", n_tokens=256, ctx_len=32,
                   progress=False)
    clean = per_token_ce(acts)
    assert clean.shape == (8, 30)
    splice = Splice(acts, max_seqs=None, batch_size=4)
    assert clean.mean().item() == pytest.approx(splice.ce_clean, rel=1e-5)
    zero = per_token_ce(acts, torch.zeros_like)
    assert zero.mean().item() == pytest.approx(splice.ce_zero, rel=1e-5)
    b = bucket_mean(clean, [1, 8, 31])
    assert list(b["bucket"]) == ["1-7", "8-30"] and b.loc[0, "mean"] == pytest.approx(clean[:, :7].mean().item())
    sae = SAE(32, 64, "topk", k=4)
    f = fvu_by_position(sae, acts, [1, 16, 32])
    assert f["tokens"].sum() == len(acts) and (f["fvu"] > 0).all()


def test_perturbed_lm_moves_only_the_chosen_blocks_and_is_cached(tiny_lm, tmp_path, monkeypatch):
    from saelib.data.lm import load_lm
    from saelib.papers.generalisation import perturb_lm

    monkeypatch.setenv("SAELIB_CACHE", str(tmp_path))
    path = perturb_lm(base=tiny_lm, rel_noise=0.5, up_to_layer=0, seed=1)
    info = json.loads((tmp_path / "lm" / path.split("/")[-1] / "perturb.json").read_text())
    assert info["blocks"] == 1 and info["rel_noise"] == 0.5
    assert perturb_lm(base=tiny_lm, rel_noise=0.5, up_to_layer=0, seed=1) == path  # cached
    base, _ = load_lm(tiny_lm)
    moved, _ = load_lm(path)
    w0, w0m = base.model.layers[0].mlp.up_proj.weight, moved.model.layers[0].mlp.up_proj.weight
    rel = ((w0m - w0).pow(2).mean().sqrt() / w0.pow(2).mean().sqrt()).item()
    assert 0.4 < rel < 0.6  # noise of rms 0.5 x rms(W)
    assert torch.equal(base.model.layers[1].mlp.up_proj.weight, moved.model.layers[1].mlp.up_proj.weight)
    assert torch.equal(base.model.embed_tokens.weight, moved.model.embed_tokens.weight)
    assert torch.equal(base.model.layers[0].input_layernorm.weight, moved.model.layers[0].input_layernorm.weight)
    with pytest.raises(ValueError, match="rel_noise must be in"):
        perturb_lm(base=tiny_lm, rel_noise=0.0)
