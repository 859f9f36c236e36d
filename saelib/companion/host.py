"""The CPU a run used, and how far a run's claims differ from the stored ones.

CPUs take different kernels in PyTorch (ATen) and MKL depending on their vector units (AVX2, AVX-512, AMX)
and vendor, and each rounds differently; SAE training amplifies the difference. On one CPU a re-run gives
byte-identical claims, but three hosts gave three sets of numbers (2026-12-01/02: an AVX-512 Xeon moved the
estimates of 10 of the 11 claims cells in the second or third digit against the stored outputs; an AVX2 AMD
EPYC moved them too, and moved one verdict, 06's absorption claim, from not reproduced to inconclusive: an
interval end near its margin). So ``run_all.sh test`` compares a notebook's claims cell in full only on the CPU
that made its stored outputs (:func:`key` equal to the one in its run.json: :func:`made_here`). On any other CPU
nbval compares
the claims and checks that were made and whether each check passed, with estimates, verdicts and tallies
masked (``tests/nbval_verdicts_only.cfg``); :func:`compare` then reports every verdict that moved and how far
the numbers moved, and :func:`contradictions` fails the run where a verdict turned over: supported
(reproduced or partly) here and not reproduced in the stored run, or the reverse. A move to or from
inconclusive, or between reproduced and partly, is an interval end crossing a margin: reported, not failed.

    python -m saelib.companion.host key               (this CPU's key)
    python -m saelib.companion.host reference         (exit 0 when every stored output was made on this CPU)
    python -m saelib.companion.host made-here         (the notebooks whose stored outputs this CPU made, one a line)
    python -m saelib.companion.host compare FOLDER    (a run's claims.json files in FOLDER against the stored
                                                       ones in figures/; exit 1 on a contradiction)
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


def stored_keys(figures: Path) -> dict[str, str]:
    """Each notebook's CPU key, from its ``figures/<notebook>/run.json`` (``"unknown"`` in a record without one)."""
    keys = {}
    for run in sorted(figures.glob("[0-9][0-9]_*/run.json")):
        cpu = json.loads(run.read_text()).get("provenance", {}).get("cpu")
        keys[run.parent.name] = key(cpu) if isinstance(cpu, dict) else "unknown"
    return keys


def reference_keys(figures: Path) -> set[str]:
    """The CPU keys recorded in every ``figures/*/run.json`` (a run.json without one counts as ``"unknown"``)."""
    return set(stored_keys(figures).values())


def made_here(figures: Path, this: str | None = None) -> list[str]:
    """The notebooks whose stored outputs were made on this CPU (``this``, default :func:`key`): the ones whose
    claims cells ``run_all.sh test`` compares in full; the others are compared with estimates and verdicts masked."""
    this = key() if this is None else this
    return [name for name, k in stored_keys(figures).items() if k == this]


SUPPORTED, AGAINST = ("reproduced", "partly"), ("not reproduced",)


def _claims(folder: Path, name: str) -> list[dict]:
    path = folder / name / "claims.json"
    return json.loads(path.read_text())["claims"] if path.exists() else []


def compare(before: Path, after: Path) -> list[str]:
    """One line per notebook whose claims.json differs between two figures folders: which verdicts moved,
    and how many estimates and interval ends moved (the largest absolute change)."""
    lines = []
    for new in sorted(after.glob("[0-9][0-9]_*/claims.json")):
        name = new.parent.name
        old = before / name / "claims.json"
        if not old.exists() or old.read_bytes() == new.read_bytes():
            continue
        a = {c["claim"]: c for c in _claims(before, name)}
        b = {c["claim"]: c for c in _claims(after, name)}
        pairs = [(a[c], b[c]) for c in a if c in b]   # matched by claim, as in contradictions()
        moved_verdicts = [f"'{x['claim']}' {x['verdict']} -> {y['verdict']}" for x, y in pairs if x["verdict"] != y["verdict"]]
        moved, largest = 0, 0.0
        for x, y in pairs:
            for u, v in zip([x["estimate"], *(x["interval"] or [])], [y["estimate"], *(y["interval"] or [])]):
                if u != v and u is not None and v is not None and math.isfinite(u) and math.isfinite(v):
                    moved, largest = moved + 1, max(largest, abs(u - v))
        lines.append(f"{name}: {len(moved_verdicts)} verdict(s) changed{': ' if moved_verdicts else ''}"
                     f"{'; '.join(moved_verdicts)}; {moved} number(s) moved, largest by {largest:.3g}"
                     + ("" if a.keys() == b.keys() else f"; {len(a)} claims before, {len(b)} after"))
    return lines


def contradictions(before: Path, after: Path) -> list[str]:
    """Claims whose verdict turned over between the stored run (``before``) and this one (``after``):
    supported in one and not reproduced in the other; and claims made in only one of the two runs."""
    out = []
    for new in sorted(after.glob("[0-9][0-9]_*/claims.json")):
        name = new.parent.name
        if not (before / name / "claims.json").exists():
            continue
        a = {c["claim"]: c["verdict"] for c in _claims(before, name)}
        b = {c["claim"]: c["verdict"] for c in _claims(after, name)}
        out += [f"{name}: '{c}' only in {'the stored run' if c in a else 'this run'}" for c in sorted(a.keys() ^ b.keys())]
        out += [f"{name}: '{c}' {a[c]} (stored) vs {b[c]} (this run)" for c in a.keys() & b.keys()
                if (a[c] in SUPPORTED and b[c] in AGAINST) or (a[c] in AGAINST and b[c] in SUPPORTED)]
    return out


if __name__ == "__main__":
    from ..utils import repo_root

    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "key":
        print(key())
    elif cmd == "reference":
        raise SystemExit(0 if reference_keys(repo_root() / "figures") == {key()} else 1)
    elif cmd == "made-here":
        print("\n".join(made_here(repo_root() / "figures")))
    elif cmd == "compare":
        folder, stored = Path(sys.argv[2]), repo_root() / "figures"
        written = len(list(folder.glob("[0-9][0-9]_*/claims.json")))
        diff = compare(stored, folder)
        print("\n".join(diff) or f"all {written} claims.json this run wrote are byte-identical to the stored ones")
        bad = contradictions(stored, folder)
        if bad:
            print("verdicts that turned over (a failure):\n  " + "\n  ".join(bad))
            raise SystemExit(1)
    else:
        raise SystemExit(f"command must be one of key, reference, made-here, compare; got {cmd!r}")
