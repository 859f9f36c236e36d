"""The CPU a run used, and whether two runs' claims agree bit for bit.

CPUs take different kernels in PyTorch (ATen) and MKL depending on their vector units (AVX2, AVX-512, AMX)
and vendor, and each rounds differently; SAE training amplifies the difference. On one CPU a re-run gives
byte-identical claims, but three hosts gave three sets of numbers (2026-12-01/02: outputs made on one host; an
AVX-512 Xeon moved the estimates of 10 of the 11 claims cells in the second or third digit; an AVX2 AMD EPYC moved
00's, e.g. 8.785 -> 8.805; no verdict changed in any cell seen). So ``run_all.sh test`` compares claims cells in
full only on the CPU that made the stored outputs (:func:`key` equal to the one in every notebook's run.json);
elsewhere it compares verdicts and checks, and :func:`compare` reports how far the estimates moved.

    python -m saelib.companion.host key               (this CPU's key)
    python -m saelib.companion.host reference         (exit 0 when every stored output was made on this CPU)
    python -m saelib.companion.host compare FOLDER    (a run's claims.json files in FOLDER against the stored ones in figures/)
"""
from __future__ import annotations

import json
import math
import os
import platform
import sys
from pathlib import Path

KERNEL_VARIABLES = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "OPENBLAS_CORETYPE")
"""Environment variables that change which kernels PyTorch, MKL, oneDNN and OpenBLAS take (recorded when set)."""
ISA = ("avx2", "avx512f", "avx512_bf16", "amx_tile")
"""The vector extensions that change which kernels PyTorch and MKL can take."""


def _cpuinfo() -> tuple[str, list[str]]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), []
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    return fields.get("model name", platform.machine()), fields.get("flags", "").split()


def describe() -> dict:
    """CPU model, its vector extensions, the kernels PyTorch picked, and any kernel-selecting variable set."""
    import torch

    model, flags = _cpuinfo()
    return {"model": model, "isa": [f for f in ISA if f in flags], "torch_capability": torch.backends.cpu.get_cpu_capability(),
            "kernel_variables": {k: os.environ[k] for k in KERNEL_VARIABLES if k in os.environ}}


def key(cpu: dict | None = None) -> str:
    """What must match for two runs to be expected bit-identical: CPU model, vector extensions, kernel variables."""
    cpu = describe() if cpu is None else cpu
    env = "".join(f" {k}={v}" for k, v in sorted(cpu.get("kernel_variables", {}).items()))
    return f"{cpu['model']} [{' '.join(cpu['isa'])}]{env}"


def reference_keys(figures: Path) -> set[str]:
    """The CPU keys recorded in every ``figures/*/run.json`` (a run.json without one counts as ``"unknown"``)."""
    keys = set()
    for run in sorted(figures.glob("[0-9][0-9]_*/run.json")):
        cpu = json.loads(run.read_text()).get("provenance", {}).get("cpu")
        keys.add(key(cpu) if isinstance(cpu, dict) else "unknown")
    return keys


def compare(before: Path, after: Path) -> list[str]:
    """One line per notebook whose claims.json differs between two figures folders: verdicts changed, and
    the estimates and interval ends that moved (their largest absolute change)."""
    lines = []
    for new in sorted(after.glob("[0-9][0-9]_*/claims.json")):
        old = before / new.parent.name / "claims.json"
        if not old.exists() or old.read_bytes() == new.read_bytes():
            continue
        a, b = json.loads(old.read_text())["claims"], json.loads(new.read_text())["claims"]
        verdicts = sum(x["verdict"] != y["verdict"] for x, y in zip(a, b))
        moved, largest = 0, 0.0
        for x, y in zip(a, b):
            for u, v in zip([x["estimate"], *(x["interval"] or [])], [y["estimate"], *(y["interval"] or [])]):
                if u != v and u is not None and v is not None and math.isfinite(u) and math.isfinite(v):
                    moved, largest = moved + 1, max(largest, abs(u - v))
        lines.append(f"{new.parent.name}: {verdicts} verdict(s) changed; {moved} number(s) moved, largest by {largest:.3g}"
                     + ("" if len(a) == len(b) else f"; {len(a)} claims before, {len(b)} after"))
    return lines


if __name__ == "__main__":
    from ..utils import repo_root

    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "key":
        print(key())
    elif cmd == "reference":
        raise SystemExit(0 if reference_keys(repo_root() / "figures") == {key()} else 1)
    elif cmd == "compare":
        written = len(list(Path(sys.argv[2]).glob("[0-9][0-9]_*/claims.json")))
        diff = compare(repo_root() / "figures", Path(sys.argv[2]))
        print("\n".join(diff) or f"all {written} claims.json this run wrote are byte-identical to the stored ones")
    else:
        raise SystemExit(f"command must be one of key, reference, compare; got {cmd!r}")
