"""Data-parallel training (saelib.distributed, train_sae(data_parallel=...), python -m saelib.train_ddp).

Two CPU processes over gloo, launched by torchrun, must train the weights one process trains on the
same global batch (within float rounding); a one-rank group must change nothing at all. Every launch
runs in its own session with a timeout and the whole session is killed afterwards, so a failing or
hanging run leaves no process behind.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.distributed as dist
from safetensors.torch import save_file

from saelib import SAE, TrainConfig, distributed, train_sae
from saelib.data import cache
from saelib.train_ddp import build_config, build_sae, load_activations, main, parser
from tests import ddp_worker
from tests.ddp_worker import M

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 120


def torchrun(args: list[str], nproc: int = 2) -> str:
    """Run ``torchrun --standalone --nproc_per_node nproc ARGS``; return its output (fail on error or timeout)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), *args]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"torchrun did not finish within {TIMEOUT_S} s:\n{out[-3000:]}")
    finally:  # workers that outlived torchrun are still in its session
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, f"torchrun failed ({proc.returncode}):\n{out[-3000:]}"
    return out


def assert_same_training(single, state: dict, history: pd.DataFrame, scale: float) -> None:
    """The 2-process run equals the single-process one within float rounding (weights, buffers, history)."""
    assert scale == single.input_scale
    ref = single.sae.state_dict()
    assert ref.keys() == state.keys()
    for k in ref:
        torch.testing.assert_close(state[k], ref[k], rtol=1e-4, atol=2e-6, msg=lambda m, k=k: f"{k}: {m}")
    assert list(history.columns) == list(single.history.columns)
    pd.testing.assert_frame_equal(history, single.history, check_exact=False, rtol=1e-4, atol=1e-5)


# ---- two processes -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "result.pt"
    torchrun(["-m", "tests.ddp_worker", str(out)])
    return torch.load(out, weights_only=False)


@pytest.mark.parametrize("name", [*ddp_worker.CASES, *ddp_worker.CALLBACK_CASES])
def test_two_processes_train_what_one_process_trains(two_rank_run, name):
    assert two_rank_run["world_size"] == 2
    sae, cfg = ddp_worker.build(name)
    single = train_sae(sae, ddp_worker.make_data(), cfg)
    got = two_rank_run["trained"][name]
    assert_same_training(single, got["state"], got["history"], got["scale"])


def test_the_cases_exercise_what_must_be_shared(two_rank_run):
    """AuxK ran on dead latents, BatchTopK learned its threshold, k annealed: the comparisons are not vacuous."""
    t = two_rank_run["trained"]
    assert (t["topk_sparse_auxk"]["history"]["auxk"] > 0).sum() >= 3
    assert (t["topk_dense_auxk_clip"]["history"]["dead_frac"] > 0).any()
    assert float(t["batchtopk_sparse"]["state"]["sparsifier.threshold"]) > 0
    assert (t["feature_choice_uniform"]["state"]["sparsifier.threshold"] > 0).sum() > M // 2
    assert t["feature_choice_zipf_dense"]["state"]["sparsifier.demand"].std() > 0  # ranks (and so budgets) vary
    assert t["topk_kannealing"]["history"]["l0"].iloc[0] > t["topk_kannealing"]["history"]["l0"].iloc[-1]


@pytest.mark.parametrize("name, words", [
    ("atm", "atm updates its masking statistics"),
    ("jumprelu_l0_target", "l0_target"),
    ("loss_terms", "cfg.loss_terms (['zipf'])"),
    ("odd_batch", "batch_size must split evenly over the 2 processes, got 63"),
    ("different_data", "the training data differs between processes"),
])
def test_two_processes_refuse_what_they_cannot_reproduce(two_rank_run, name, words):
    msg = two_rank_run["refused"][name]
    assert msg is not None and words in msg, msg


def test_gathered_topk_splits_ties_to_exactly_n(two_rank_run):
    assert two_rank_run["ties"] == {"count": 17, "same_values": True, "sorted": True, "column_counts": True,
                                    "column_values": True}


def test_torchrun_cli_equals_one_process(tmp_path):
    """The README's command, on 2 CPU processes: the saved SAE equals one process's, within rounding."""
    x = ddp_worker.make_data(768, seed=3)
    save_file({"acts": x}, str(tmp_path / "acts.safetensors"))
    args = [str(tmp_path / "acts.safetensors"), "--out", str(tmp_path / "run"), "--d-sae", "32", "--k", "2",
            "--batch-size", "64", "--lr", "3e-3", "--dead-window-tokens", "64", "--log-every", "1",
            "--checkpoint-every", "6", "--no-progress", "--timeout-s", "60"]
    out = torchrun(["-m", "saelib.train_ddp", *args])
    assert out.count("saved ") == 1 and "on 2 process(es)" in out  # only rank 0 reports and writes
    ns = parser().parse_args(args)
    single = train_sae(build_sae(ns, x.shape[1]), x, build_config(ns))
    got = SAE.load(tmp_path / "run" / "sae")
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert_same_training(single, got.state_dict(), history.astype(single.history.dtypes.to_dict()),
                         got.metadata["train_input_scale"])
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["step_0000006", "step_0000012"]


# ---- one rank: nothing changes -----------------------------------------------------------------

@pytest.fixture
def one_rank(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        yield distributed.DataParallel()
    finally:
        distributed.close()


@pytest.mark.parametrize("name", ["topk_sparse_auxk", "batchtopk_sparse", "batchtopk_dense", "feature_choice_uniform",
                                  "feature_choice_zipf_dense", "relu_l1"])
def test_one_rank_group_trains_bit_identical_weights(one_rank, name):
    x = ddp_worker.make_data()
    plain = train_sae(*[ddp_worker.build(name)[0], x, ddp_worker.build(name)[1]])
    sae, cfg = ddp_worker.build(name)
    dp = train_sae(sae, x, cfg, data_parallel=one_rank)
    for k, v in plain.sae.state_dict().items():
        assert torch.equal(v, dp.sae.state_dict()[k]), k
    assert sae.sparsifier.__dict__.get("_dp") is None  # the group is not left on the sparsifier


def test_without_a_process_group_it_says_how_to_launch(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(RuntimeError, match="torchrun"):
        distributed.init()
    with pytest.raises(RuntimeError, match="saelib.distributed.init"):
        distributed.DataParallel()
    with pytest.raises(ValueError, match="backend must be one of"):
        distributed.init("mpi")


def test_a_batch_rule_that_does_not_gather_is_refused():
    from types import SimpleNamespace

    from saelib.sparsifiers import BatchRule, Sparsifier
    from saelib.train import check_data_parallel

    class Local(BatchRule, Sparsifier):
        name = "local_batch_rule"

        def forward(self, pre, dec_norm):
            return pre

    with pytest.raises(ValueError, match="over 2 processes: local_batch_rule selects over the whole batch"):
        check_data_parallel(SAE(4, 8, Local()), TrainConfig(), 100, SimpleNamespace(world_size=2))


# ---- the entry point in one process ------------------------------------------------------------

def test_cli_in_one_process_is_train_sae(tmp_path, capsys):
    x = ddp_worker.make_data(512)
    save_file({"acts": x}, str(tmp_path / "a.safetensors"))
    args = [str(tmp_path / "a.safetensors"), "--out", str(tmp_path / "o"), "--expansion", "4", "--k", "3",
            "--batch-size", "64", "--epochs", "2", "--no-progress", "--init-seed", "7", "--seed", "1"]
    assert main(args) == 0
    assert "on 1 process(es)" in capsys.readouterr().out
    ref = train_sae(SAE(12, 48, "topk", k=3, seed=7), x,
                    TrainConfig(epochs=2, batch_size=64, seed=1, progress=False))
    got = SAE.load(tmp_path / "o" / "sae")
    for k, v in ref.sae.state_dict().items():
        assert torch.equal(v, got.state_dict()[k]), k


def test_load_activations(tmp_path):
    x = torch.randn(10, 4)
    save_file({"acts": x, "other": torch.randn(3, 2), "v": torch.zeros(5)}, str(tmp_path / "two.safetensors"))
    with pytest.raises(ValueError, match="holds 2 2-D tensors"):
        load_activations(tmp_path / "two.safetensors")
    assert torch.equal(load_activations(tmp_path / "two.safetensors", "acts"), x)
    with pytest.raises(ValueError, match="--key must be one of"):
        load_activations(tmp_path / "two.safetensors", "nope")
    with pytest.raises(ValueError, match="2-D float tensor"):
        load_activations(tmp_path / "two.safetensors", "v")
    with pytest.raises(FileNotFoundError):
        load_activations(tmp_path / "missing.safetensors")
    resid = torch.randn(3, 5, 4)
    keep = torch.rand(3, 5) > 0.3
    cache.write(tmp_path / "harvest.safetensors", {"resid": resid, "tokens": torch.zeros(3, 5, dtype=torch.long),
                                                   "keep": keep.to(torch.uint8)}, {"n_seq": 3})
    assert torch.equal(load_activations(tmp_path / "harvest.safetensors"), resid[keep])
