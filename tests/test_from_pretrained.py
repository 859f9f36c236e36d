"""SAE.from_pretrained (saelib/formats/hub.py) offline: the hub download is replaced by a local folder per repo."""
import fnmatch
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import huggingface_hub
from saelib.checkpoint import CheckpointError
from saelib.papers.llama_scope_release import load_llama_scope
from saelib.sae import SAE

INTEROP = Path(__file__).parent / "fixtures" / "interop"
X = load_file(str(INTEROP / "input.safetensors"))["x"]


def _llama_scope_folder(folder: Path) -> dict:
    d, m = 12, 24
    g = torch.Generator().manual_seed(1)
    t = {"encoder.weight": torch.randn(m, d, generator=g) / 3, "encoder.bias": torch.randn(m, generator=g) * 0.1,
         "decoder.weight": torch.randn(d, m, generator=g) / 3, "decoder.bias": torch.randn(d, generator=g)}
    hp = {"d_model": d, "d_sae": m, "act_fn": "jumprelu", "jump_relu_threshold": 0.05, "top_k": 8,
          "norm_activation": "dataset-wise", "dataset_average_activation_norm": {"in": 7.0, "out": 5.0},
          "sparsity_include_decoder_norm": True, "use_decoder_bias": True, "apply_decoder_bias_to_pre_encoder": False,
          "hook_point_in": "blocks.3.hook_resid_post", "hook_point_out": "blocks.3.hook_resid_post"}
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "hyperparams.json").write_text(json.dumps(hp))
    save_file(t, str(folder / "checkpoints" / "final.safetensors"))
    (folder / "checkpoints" / "step_100.pt").write_bytes(b"\x80\x04pickle")  # never fetched
    return {"hp": hp, "t": t}


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A fake hub: repos are folders under tmp/hub; snapshot_download copies the files matching allow_patterns."""
    root, cache, calls = tmp_path / "hub", tmp_path / "cache", []

    def repo(repo_id: str, path: str, source: Path | None = None) -> Path:
        dest = root / repo_id / path if path else root / repo_id
        if source is not None:
            shutil.copytree(source, dest, dirs_exist_ok=True)
        dest.mkdir(parents=True, exist_ok=True)
        return dest

    def snapshot_download(repo_id, allow_patterns=None, revision=None, cache_dir=None, token=None):
        calls.append({"repo_id": repo_id, "allow_patterns": list(allow_patterns or []), "revision": revision})
        src = root / repo_id
        if not src.is_dir():
            raise huggingface_hub.errors.RepositoryNotFoundError(f"no repo {repo_id}")
        out = cache / repo_id / (revision or "main")
        for f in src.rglob("*"):
            rel = f.relative_to(src).as_posix()
            if f.is_file() and (allow_patterns is None or any(fnmatch.fnmatch(rel, p) for p in allow_patterns)):
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(f, out / rel)
        out.mkdir(parents=True, exist_ok=True)
        return str(out)

    def list_repo_files(repo_id, revision=None, token=None):
        return sorted(f.relative_to(root / repo_id).as_posix() for f in (root / repo_id).rglob("*") if f.is_file())

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(huggingface_hub, "list_repo_files", list_repo_files)
    return {"repo": repo, "calls": calls, "cache": cache}


def _codes_and_x_hat(side, case):
    e = load_file(str(INTEROP / side / "expected.safetensors"))
    return e[f"{case}.codes"], e[f"{case}.x_hat"]


def test_saelens_layout_by_name(hub):
    hub["repo"]("someone/gpt2-saes", "blocks.3.hook_resid_post", INTEROP / "saelens6" / "jumprelu")
    hub["repo"]("someone/gpt2-saes", "blocks.4.hook_resid_post", INTEROP / "saelens6" / "topk")
    sae = SAE.from_pretrained("someone/gpt2-saes", "blocks.3.hook_resid_post", revision="v1")
    codes, x_hat = _codes_and_x_hat("saelens6", "jumprelu")
    with torch.no_grad():
        torch.testing.assert_close(sae(X), x_hat, rtol=0, atol=1e-5)
    call = hub["calls"][-1]
    assert call["revision"] == "v1" and all(p.startswith("blocks.3.hook_resid_post/") for p in call["allow_patterns"])
    assert not list((hub["cache"] / "someone/gpt2-saes").rglob("blocks.4*"))     # only the folder asked for


def test_saelib_checkpoint_at_the_repo_root(hub):
    hub["repo"]("someone/one-sae", "", INTEROP / "saelib" / "topk_rank")
    sae = SAE.from_pretrained("someone/one-sae")
    ref = SAE.load(INTEROP / "saelib" / "topk_rank")
    assert sae.sparsifier.config() == ref.sparsifier.config() and torch.equal(sae.W_enc, ref.W_enc)


def test_sparsify_layout_by_name(hub):
    hub["repo"]("EleutherAI/sae-tiny", "layers.3", INTEROP / "sparsify" / "topk")
    sae = SAE.from_pretrained("EleutherAI/sae-tiny", "layers.3")
    codes, x_hat = _codes_and_x_hat("sparsify", "topk")
    with torch.no_grad():
        torch.testing.assert_close(sae.encode(X), codes, rtol=0, atol=1e-5)
        torch.testing.assert_close(sae(X), x_hat, rtol=0, atol=1e-5)
    assert sae.metadata["source"] == "sparsify"


def test_llama_scope_layout_by_name_and_by_layer(hub):
    folder = hub["repo"]("fnlp/Llama3_1-8B-Base-LXR-8x", "Llama3_1-8B-Base-L3R-8x")
    ref = _llama_scope_folder(folder)
    sae = SAE.from_pretrained("fnlp/Llama3_1-8B-Base-LXR-8x", "Llama3_1-8B-Base-L3R-8x")
    hp, t = ref["hp"], ref["t"]                      # the released forward pass, re-stated (raw-unit threshold)
    s_in = math.sqrt(hp["d_model"]) / hp["dataset_average_activation_norm"]["in"]
    s_out = math.sqrt(hp["d_model"]) / hp["dataset_average_activation_norm"]["out"]
    x = X * 3
    z = (x * s_in) @ t["encoder.weight"].T + t["encoder.bias"]
    f = z * (z * t["decoder.weight"].norm(dim=0) > hp["jump_relu_threshold"] * s_in)
    assert 0 < (f != 0).float().sum(1).mean() < hp["d_sae"]
    with torch.no_grad():
        torch.testing.assert_close(sae.encode(x), f, rtol=0, atol=1e-5)
        torch.testing.assert_close(sae(x), (f @ t["decoder.weight"].T + t["decoder.bias"]) / s_out, rtol=0, atol=1e-4)
    assert not any(p.endswith(".pt") for p in hub["calls"][-1]["allow_patterns"])
    assert not list(hub["cache"].rglob("*.pt"))                                 # the pickle was never fetched
    by_layer = load_llama_scope(3)                                              # the paper module goes through here
    assert torch.equal(by_layer.W_enc, sae.W_enc) and hub["calls"][-1]["repo_id"] == "fnlp/Llama3_1-8B-Base-LXR-8x"


def test_pickled_and_missing_folders_are_refused_clearly(hub):
    folder = hub["repo"]("someone/old-saes", "layer_3")
    (folder / "cfg.json").write_text(json.dumps({"d_in": 12, "d_sae": 24}))
    (folder / "sae_weights.pt").write_bytes(b"\x80\x04pickle")
    with pytest.raises(CheckpointError, match=r"someone/old-saes/layer_3 holds no SAE checkpoint saelib reads.*"
                                              r"pickled weights \['layer_3/sae_weights.pt'\] are refused"):
        SAE.from_pretrained("someone/old-saes", "layer_3")
    with pytest.raises(CheckpointError, match=r"someone/old-saes/nowhere holds no SAE checkpoint.*it has: nothing"):
        SAE.from_pretrained("someone/old-saes", "nowhere")
    with pytest.raises(ValueError, match="repo_id must be 'owner/name'"):
        SAE.from_pretrained("not-a-repo-id")
