"""The data caches verify what they load and rebuild what fails (saelib.data.cache)."""
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from saelib.data import cache
from saelib.data.harvest import harvest


def _builder(calls):
    def build():
        calls.append(1)
        return {"x": torch.arange(12.0).reshape(3, 4)}, {"note": "built"}
    return build


def test_a_good_file_loads_without_rebuilding(tmp_path):
    calls = []
    t, info = cache.load_or_build(tmp_path / "c.safetensors", _builder(calls))
    t2, info2 = cache.load_or_build(tmp_path / "c.safetensors", _builder(calls))
    assert calls == [1] and torch.equal(t["x"], t2["x"]) and info2 == {"note": "built"}


@pytest.mark.parametrize("damage", ["truncate", "empty", "bitflip", "old_format"])
def test_a_damaged_file_is_rebuilt_with_a_warning_naming_it(tmp_path, damage):
    path, calls = tmp_path / "c.safetensors", []
    cache.load_or_build(path, _builder(calls))
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(bytes(raw[: len(raw) // 2]))
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "bitflip":
        raw[-3] ^= 0x10
        path.write_bytes(bytes(raw))
    else:                                   # a well-formed file from before the format: no hash
        save_file(load_file(str(path)), str(path))
    with pytest.warns(UserWarning, match=f"cache file {path}.*rebuilding"):
        t, _ = cache.load_or_build(path, _builder(calls))
    assert calls == [1, 1] and torch.equal(t["x"], torch.arange(12.0).reshape(3, 4))
    cache.read(path)                        # the rebuilt file verifies


def test_a_local_model_folder_is_keyed_by_content(tiny_lm, tmp_path, monkeypatch):
    """New weights in the same folder give a new harvest, not the stale one."""
    monkeypatch.setenv("SAELIB_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "model"
    shutil.copytree(tiny_lm, folder)
    kw = dict(layer=1, corpus="local:gensim-lee", split="eval", n_tokens=128, ctx_len=32, progress=False)
    before = harvest(model=str(folder), **kw)
    weights = next(folder.glob("*.safetensors"))
    t = load_file(str(weights))
    name = next(k for k in t if k.endswith("layers.0.mlp.down_proj.weight"))
    t[name] = t[name] * 3
    save_file(t, str(weights), metadata={"format": "pt"})
    after = harvest(model=str(folder), **kw)
    assert not torch.equal(before.resid, after.resid)
    assert len(list((tmp_path / "cache" / "activations").glob("*.safetensors"))) == 2
