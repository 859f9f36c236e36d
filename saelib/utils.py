"""Paths, seeding, atomic writes, argument checks and thread limits shared by every module."""
from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import sys
import random
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import torch


def repo_root() -> Path:
    """The project checkout (the folder holding pyproject.toml), else the working directory."""
    here = Path(__file__).resolve().parents[1]
    return here if (here / "pyproject.toml").exists() else Path.cwd()


SMOKE_ENV = "SAELIB_SMOKE"
"""``SAELIB_SMOKE=1``: smoke mode, the ``full`` preset shrunk to run on CPU (:mod:`saelib.companion.smoke`)."""


def smoke_mode() -> bool:
    """Whether ``$SAELIB_SMOKE`` is ``"1"`` (``"0"`` or unset: no; anything else is refused)."""
    value = os.environ.get(SMOKE_ENV, "0")
    check_choice(SMOKE_ENV, value, ("0", "1"))
    return value == "1"


def _smoke_default(kind: str) -> Path:
    """Smoke mode's default for an unset cache or figures folder: a temporary folder, never the repo's."""
    return Path(tempfile.gettempdir()) / "saelib-smoke" / kind


def cache_dir() -> Path:
    """Where converted models and harvested activations live: ``$SAELIB_CACHE`` or ``<repo>/.cache``
    (in smoke mode a temporary folder)."""
    default = _smoke_default("cache") if smoke_mode() else repo_root() / ".cache"
    path = Path(os.environ.get("SAELIB_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch generator seeded the same way."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success.

    A failed write never leaves a half-written file behind.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def building(target: str | Path, done: str) -> Iterator[Path | None]:
    """Build the folder ``target`` once, safely across processes: yield a fresh temp folder to fill
    (renamed onto ``target`` on success), or None when ``target/done`` already exists.

    An exclusive lock (``fcntl.flock`` on ``.<name>.lock`` beside it) makes a second process wait for
    the first and then find the folder built; an incomplete ``target`` (no ``done`` file) is replaced.
    """
    import fcntl
    import shutil

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / done).exists():
            yield None
            return
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            yield tmp
            if not (tmp / done).exists():
                raise RuntimeError(f"building {target} wrote no {done}")
            shutil.rmtree(target, ignore_errors=True)  # an incomplete earlier attempt
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def progress(iterable=None, desc: str = "", disable: bool = False, **kwargs):
    """A tqdm progress bar: live in a terminal; where stderr is not a terminal (a notebook run by
    papermill or nbval, a log file) it appears only for loops longer than 30 s and redraws at most
    every 30 s, so a stored output keeps a line or two per long loop instead of a wall of them."""
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    kwargs.setdefault("mininterval", 5.0 if tty else 30.0)
    kwargs.setdefault("delay", 0.0 if tty else 30.0)
    return tqdm(iterable, desc=desc, disable=disable, **kwargs)


def release_memory() -> None:
    """Hand memory freed by Python back to the OS: ``gc.collect()``, then glibc's ``malloc_trim(0)`` where
    there is one (Linux). After a large transient (a fine-tune's optimiser state), glibc keeps the freed
    blocks in the heap, so the process stays that large although nothing uses them; no-op elsewhere."""
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # musl and other libcs have no malloc_trim
            pass


def gemm_gflops(precision: str = "highest", n: int = 4096, reps: int = 3) -> float:
    """GFLOP/s of an (n, n) @ (n, n) fp32 matmul at this float32 matmul ``precision``, with the current
    thread count: how fast this host is (benchmarks and run.json record it beside their times)."""
    prev = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        return 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9
    finally:
        torch.set_float32_matmul_precision(prev)


def check_choice(name: str, value: object, choices: tuple | list) -> None:
    """Raise a ValueError naming ``name`` and the accepted values if ``value`` is not one of them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def check_range(name: str, value: float, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False) -> None:
    """Raise naming ``name`` and the accepted range if ``value`` is not a number inside it.

    A bool or a string is refused as a number (``True`` would pass as 1, ``"1e-3"`` fail deep inside).
    """
    if isinstance(value, (bool, str, bytes)) or value is None:
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    try:
        bad = (lo is not None and (value <= lo if lo_open else value < lo)) or (hi is not None and value > hi)
    except TypeError as err:
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}") from err
    if bad or value != value:  # NaN check
        lb = "(" if lo_open else "["
        raise ValueError(f"{name} must be in {lb}{lo if lo is not None else '-inf'}, "
                         f"{hi if hi is not None else 'inf'}], got {value!r}")


def check_int(name: str, value: int, lo: int | None = None, hi: int | None = None) -> None:
    """Like :func:`check_range`, and ``value`` must be a whole number (not a bool, not 2.5)."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    check_range(name, value, lo, hi)


def check_flag(name: str, value: bool) -> None:
    """``value`` must be True or False (the string "False" is truthy and would mean True)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")


def figures_dir(notebook: str) -> Path:
    """``<repo>/figures/<notebook>`` (override the root with ``$SAELIB_FIGURES``; in smoke mode a temporary folder)."""
    default = _smoke_default("figures") if smoke_mode() else repo_root() / "figures"
    root = Path(os.environ.get("SAELIB_FIGURES", default))
    return root / notebook


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily use ``n`` intra-op threads (None: leave torch's setting). Tiny matrices (the synthetic
    organism) run fastest on one thread; on a busy machine so do the LLM-sized ones."""
    if n is not None and (not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be a positive int or None, got {n!r}")
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def as_numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """A NumPy view of a tensor (detached, on CPU) or of an array-like."""
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
