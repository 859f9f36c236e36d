"""Shared helpers: argument checks that name the parameter, and building a folder once across processes."""
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np
import pytest

from saelib.utils import building, check_flag, check_int, check_range


def test_checks_name_the_parameter_and_refuse_wrong_types():
    check_range("lr", np.float64(1e-3), 0)             # numpy numbers are numbers
    check_int("k", np.int64(3), 1)
    with pytest.raises(TypeError, match="lr must be a number, got str '1e-3'"):
        check_range("lr", "1e-3", 0)
    with pytest.raises(TypeError, match="lr must be a number, got bool"):
        check_range("lr", True, 0)
    with pytest.raises(TypeError, match="k must be an int, got float 2.5"):
        check_int("k", 2.5, 1)
    with pytest.raises(ValueError, match=r"k must be in \[1, 8\], got 9"):
        check_int("k", 9, 1, 8)
    with pytest.raises(TypeError, match="progress must be True or False, got str 'False'"):
        check_flag("progress", "False")


def _build(target: str, log: str) -> None:
    with building(Path(target), done="done.txt") as out:
        if out is not None:
            with open(log, "a") as f:
                f.write("built\n")
            time.sleep(0.5)                              # the second process arrives meanwhile
            (out / "data.txt").write_text("x")
            (out / "done.txt").write_text("ok")


def test_two_processes_build_a_folder_once(tmp_path):
    target, log = tmp_path / "model", tmp_path / "log.txt"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_build, args=(str(target), str(log))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert log.read_text() == "built\n" and (target / "data.txt").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["log.txt", "model"]


def test_a_failed_build_leaves_nothing_half_written(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(RuntimeError, match="wrote no done.txt"):
        with building(target, done="done.txt") as out:
            (out / "partial.bin").write_text("half")
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == [".model.lock"]
