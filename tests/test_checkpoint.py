"""Checkpoint safety (saelib.checkpoint): nothing lost, nothing silently wrong."""
import threading

import pytest
import torch
from safetensors.torch import load_file, save_file

from saelib import checkpoint
from saelib.checkpoint import CheckpointError
from saelib.sae import SAE


def _sae(k=3, fill=None):
    sae = SAE(12, 40, "topk", k=k, seed=k)
    if fill is not None:
        with torch.no_grad():
            sae.W_enc.fill_(fill)
    return sae


def test_save_refuses_a_folder_that_is_not_a_checkpoint_and_keeps_its_files(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("keep me")
    with pytest.raises(CheckpointError, match=r"run exists and is not an SAE checkpoint \(it holds notes.txt\)"):
        _sae().save(run)
    assert (run / "notes.txt").read_text() == "keep me" and sorted(p.name for p in run.iterdir()) == ["notes.txt"]
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(CheckpointError, match="is a file"):
        _sae().save(f)
    assert f.read_text() == "x"
    (tmp_path / "empty").mkdir()
    _sae().save(tmp_path / "empty")                     # an empty folder is fine
    assert SAE.load(tmp_path / "empty").sparsifier.k == 3


def test_a_crash_while_saving_leaves_a_whole_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt"
    _sae(k=3).save(path)
    real = checkpoint.save_file

    def boom(*a, **kw):
        raise OSError("disk full")
    monkeypatch.setattr(checkpoint, "save_file", boom)  # crash while writing the weights
    with pytest.raises(OSError):
        _sae(k=2).save(path)
    assert SAE.load(path).sparsifier.k == 3            # the old checkpoint, whole
    monkeypatch.setattr(checkpoint, "save_file", real)
    real_write = type(path).write_text

    def boom_cfg(self, *a, **kw):
        raise OSError("killed between the two files")
    monkeypatch.setattr(type(path), "write_text", boom_cfg)  # crash after the weights, before cfg.json
    with pytest.raises(OSError):
        _sae(k=2).save(path)
    monkeypatch.setattr(type(path), "write_text", real_write)
    loaded = SAE.load(path)                             # the new weights with their own cfg (from the header)
    assert loaded.sparsifier.k == 2 and torch.equal(loaded.W_enc, _sae(k=2).W_enc)
    assert sorted(p.name for p in path.iterdir()) == ["cfg.json", "sae_weights.safetensors"]


def test_a_flipped_bit_and_non_finite_weights_are_caught(tmp_path):
    path = tmp_path / "ckpt"
    _sae().save(path)
    w = path / "sae_weights.safetensors"
    raw = bytearray(w.read_bytes())
    raw[-5] ^= 0x01                                     # one bit of W_dec's last float
    w.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="do not match the hash"):
        SAE.load(path)
    # an older or SAELens-style file (no header): checked for finiteness, the tensor named
    sae = _sae()
    sae.save(path)
    t = load_file(str(w))
    t["b_enc"][3] = float("nan")
    save_file(t, str(w))
    with pytest.raises(CheckpointError, match="tensor 'b_enc' has non-finite values"):
        SAE.load(path)


def test_checkpoints_without_the_header_still_load(tmp_path):
    path = tmp_path / "ckpt"
    sae = _sae(k=5)
    sae.save(path)
    w = path / "sae_weights.safetensors"
    save_file(load_file(str(w)), str(w))                # strip the header: what SAELens or old saelib wrote
    loaded = SAE.load(path)
    assert loaded.sparsifier.k == 5 and torch.equal(loaded.W_dec, sae.W_dec)


def test_a_load_racing_a_save_never_mixes_versions(tmp_path):
    path = tmp_path / "ckpt"
    versions = {k: _sae(k=k, fill=float(k)) for k in (2, 3)}
    versions[2].save(path)
    stop, torn, errors = threading.Event(), [], []

    def writer():
        i = 0
        while not stop.is_set():
            versions[2 + i % 2].save(path)
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(300):
            try:
                s = SAE.load(path)
            except CheckpointError as err:
                errors.append(str(err))
                continue
            if float(s.W_enc.detach()[0, 0]) != s.sparsifier.k:
                torn.append((s.sparsifier.k, float(s.W_enc[0, 0])))
    finally:
        stop.set()
        t.join()
    assert torn == [] and errors == []
