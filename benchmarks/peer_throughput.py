"""saelib against its peers (EleutherAI sparsify, SAELens) on the same TopK SAE training step, side by side.

    python benchmarks/peer_throughput.py [--shapes large,notebook] [--rounds 3] [--steps 10] [--warmup 3]
        [--libs saelib,sparsify,saelens] [--matmul-precision {highest,medium}] [--venv-root DIR] [--out DIR]

What is measured: tokens/s of one training step of a TopK SAE (d_in 576, k 32, Adam lr 1e-3, fp32,
``--threads`` threads, default 2) in each library's own code, as its own trainer runs it
(``benchmarks/peers/worker.py`` says what one step is per library), on the same synthetic data (seeded
N(0, 1) rows, written once; the peers read its first rows as consecutive batches, saelib's loop draws the
same rows in its seeded order). Shapes are (latents, batch): ``large`` = (9,216, 4,096); ``notebook`` =
(576, 256), (1,152, 1,024), (2,304, 1,024), (4,608, 4,096); or give ``LATENTSxBATCH``.

How: every (shape, library) runs in its own process: saelib with this interpreter and the repo on
PYTHONPATH, each peer in a virtual environment of its own under ``--venv-root`` (default
``benchmarks/.venvs/<lib>``), created here with ``python3 -m venv`` and ``pip install torch==2.13.0
<pinned peer>`` only when it is missing (an existing one is used as it is; the versions it holds are
recorded). Each process runs ``--warmup`` untimed and ``--steps`` timed steps. There are ``--rounds``
rounds; in each, every (shape, library) runs once and the library order is rotated by one per round.
Per (shape, library): the median over rounds of each run's tokens/s (batch / median step time), the
min-max range over rounds, and the median ms/step over all timed steps. ``--matmul-precision`` is set in
every process (``torch.set_float32_matmul_precision``; ``medium`` = bf16 inside the fp32 GEMMs).

Also recorded: the fp32 GEMM peak (a 4096^3 matmul, GFLOP/s, at "highest" and at the chosen precision)
at the start and end; the 1-minute load average and a threaded elementwise probe (median ms of a
576x576 multiply: ~0.05 ms when every thread has a core, several ms when another process holds one, the
case in which threaded training steps slow down many-fold) at the start, before each run and at the end.
The run is marked contended if the load was above 1 at the start or above threads + 1 at the end (the
benchmark itself keeps ~threads cores busy), or any probe exceeded 1 ms.

Writes ``<out>/peer_throughput.json`` (settings, machine, versions, every run's raw step times, the
summary) and ``<out>/peer_throughput.md`` (:func:`markdown_table`: shapes as rows, libraries as
columns, tokens/s median [range], and saelib / fastest peer). Run it alone on an idle machine: with 2
threads on 2 cores, any other busy process slows every library's step several-fold. At the end it prints
how long these shapes would take at the default rounds/steps, from the times it measured.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from saelib.utils import gemm_gflops as gemm_peak  # the same probe run.json records

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORKER = HERE / "peers" / "worker.py"
RESULT_TAG = "PEER_RESULT "  # as in peers/worker.py (not imported: the worker runs in other environments)
LIBS = ("saelib", "sparsify", "saelens")
TORCH_PIN = "torch==2.13.0"  # the CPU build on this machine kind
PEER_PINS = {"sparsify": ("eai-sparsify", "1.3.3"), "saelens": ("sae-lens", "6.54.12")}
D_IN, K, LR = 576, 32, 1e-3
CONTENDED_PROBE_MS = 1.0
DEFAULT_ROUNDS, DEFAULT_STEPS, DEFAULT_WARMUP = 3, 10, 3


@dataclass(frozen=True)
class Shape:
    latents: int
    batch: int

    @property
    def label(self) -> str:
        return f"{self.latents}x{self.batch}"


SHAPE_SETS = {"large": [Shape(9216, 4096)],
              "notebook": [Shape(576, 256), Shape(1152, 1024), Shape(2304, 1024), Shape(4608, 4096)]}


def parse_shapes(spec: str) -> list[Shape]:
    """``large``, ``notebook`` or ``LATENTSxBATCH``, comma-separated; duplicates dropped, order kept."""
    shapes: list[Shape] = []
    for token in filter(None, (t.strip() for t in spec.split(","))):
        if token in SHAPE_SETS:
            new = SHAPE_SETS[token]
        else:
            try:
                m, b = (int(v) for v in token.lower().split("x"))
            except ValueError:
                raise argparse.ArgumentTypeError(f"shape {token!r}: expected large, notebook or LATENTSxBATCH")
            new = [Shape(m, b)]
        shapes += [s for s in new if s not in shapes]
    if not shapes:
        raise argparse.ArgumentTypeError("no shapes given")
    return shapes


def parse_libs(spec: str) -> list[str]:
    libs = [t.strip() for t in spec.split(",") if t.strip()]
    bad = [lib for lib in libs if lib not in LIBS]
    if bad or not libs:
        raise argparse.ArgumentTypeError(f"libraries must be among {','.join(LIBS)}, got {spec!r}")
    return list(dict.fromkeys(libs))


# ---- environments ----------------------------------------------------------------------------------
def venv_versions(python: Path, dist: str) -> dict[str, str] | None:
    """torch's and ``dist``'s installed versions in that interpreter, or None when either is missing."""
    code = ("import json; from importlib.metadata import version; "
            f"print(json.dumps({{'torch': version('torch'), 'package': {dist!r}, 'version': version({dist!r})}}))")
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def ensure_venv(lib: str, root: Path) -> tuple[Path, dict[str, str]]:
    """The interpreter for ``lib`` and the versions it holds; a peer's venv is created when missing."""
    if lib == "saelib":
        from importlib.metadata import version
        return Path(sys.executable), {"torch": torch.__version__, "package": "saelib", "version": version("saelib")}
    dist, pin = PEER_PINS[lib]
    venv = root / lib
    python = venv / "bin" / "python"
    found = venv_versions(python, dist) if python.exists() else None
    if found is None:
        print(f"creating {venv} ({TORCH_PIN} {dist}=={pin}); this downloads and takes minutes", flush=True)
        if not python.exists():
            subprocess.run([shutil.which("python3") or sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", TORCH_PIN, f"{dist}=={pin}"], check=True)
        found = venv_versions(python, dist)
        if found is None:
            raise RuntimeError(f"{venv}: torch or {dist} still missing after pip install")
    if found["version"] != pin or found["torch"].split("+")[0] != TORCH_PIN.split("==")[1]:
        print(f"warning: {venv} holds {found}, not the pins ({TORCH_PIN}, {dist}=={pin}); used as it is")
    return python, found


# ---- machine probes --------------------------------------------------------------------------------
def elementwise_probe_ms(reps: int = 20) -> float:
    """Median ms of a threaded 576x576 multiply: tiny when every thread gets a core, ms when one waits."""
    a, b = torch.randn(576, 576), torch.randn(576, 576)
    out = torch.empty_like(a)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        torch.mul(a, b, out=out)
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def probes(precisions: list[str], gemm_n: int) -> dict:
    return {"load_avg": list(os.getloadavg()), "elementwise_probe_ms": elementwise_probe_ms(),
            "gemm_peak_gflops": {p: gemm_peak(p, gemm_n) for p in precisions}}


def machine_facts() -> dict:
    cpuinfo = Path("/proc/cpuinfo")
    names = [ln.split(":", 1)[1].strip() for ln in (cpuinfo.read_text().splitlines() if cpuinfo.exists() else [])
             if ln.startswith("model name")]
    model = names[0] if names else platform.processor()
    return {"cpu": model, "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "parent_torch": torch.__version__}


# ---- runs --------------------------------------------------------------------------------------------
def run_worker(lib: str, python: Path, data: Path, shape: Shape, a: argparse.Namespace) -> dict:
    """One process of one library at one shape; its JSON result, or an ``error`` entry."""
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "MKL_NUM_THREADS": str(a.threads)}
    env.pop("PYTHONPATH", None)
    if lib == "saelib":
        env["PYTHONPATH"] = str(REPO)
    cmd = [str(python), str(WORKER), "--lib", lib, "--data", str(data), "--latents", str(shape.latents),
           "--batch", str(shape.batch), "--k", str(K), "--lr", str(LR), "--warmup", str(a.warmup),
           "--steps", str(a.steps), "--threads", str(a.threads), "--matmul-precision", a.matmul_precision]
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=a.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {a.timeout} s", "process_wall_s": time.perf_counter() - t}
    wall = time.perf_counter() - t
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if proc.returncode or not lines:
        return {"error": f"exit {proc.returncode}: {(proc.stderr or proc.stdout)[-2000:]}", "process_wall_s": wall}
    return {**json.loads(lines[-1][len(RESULT_TAG):]), "process_wall_s": wall}


def rotated(libs: list[str], r: int) -> list[str]:
    """The library order of round r: shifted left by r."""
    r %= len(libs)
    return libs[r:] + libs[:r]


def summarise(runs: list[dict], shapes: list[Shape], libs: list[str]) -> list[dict]:
    """Per shape: per library the median/min/max over runs of tokens/s (batch / the run's median step) and
    the median ms/step over all timed steps; saelib's ratio to the fastest peer at that shape."""
    rows = []
    for shape in shapes:
        row: dict = {"shape": shape.label, "latents": shape.latents, "batch": shape.batch, "libs": {}}
        for lib in libs:
            ok = [r for r in runs if r["shape"] == shape.label and r["lib"] == lib and "error" not in r["result"]]
            if not ok:
                row["libs"][lib] = None
                continue
            per_run = [shape.batch / statistics.median(r["result"]["step_s"]) for r in ok]
            steps = [t for r in ok for t in r["result"]["step_s"]]
            row["libs"][lib] = {"tokens_per_s_median": statistics.median(per_run), "tokens_per_s_min": min(per_run),
                                "tokens_per_s_max": max(per_run), "ms_per_step_median": 1e3 * statistics.median(steps),
                                "n_runs": len(ok), "n_params": ok[0]["result"]["n_params"]}
        peers = {lib: v["tokens_per_s_median"] for lib, v in row["libs"].items() if lib != "saelib" and v}
        mine = row["libs"].get("saelib")
        if peers and mine:
            best = max(peers, key=peers.get)
            row["fastest_peer"], row["saelib_vs_fastest_peer"] = best, mine["tokens_per_s_median"] / peers[best]
        rows.append(row)
    return rows


def markdown_table(result: dict) -> str:
    """The summary of a peer_throughput.json as a markdown table (shapes as rows), with a caption line."""
    s, libs = result["settings"], result["settings"]["libs"]
    head = ["latents x batch"] + [f"{lib} tokens/s" for lib in libs]
    has_ratio = "saelib" in libs and len(libs) > 1
    if has_ratio:
        head.append("saelib / fastest peer")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in result["summary"]:
        cells = [f"{row['latents']:,} x {row['batch']:,}"]
        for lib in libs:
            v = row["libs"].get(lib)
            cells.append("failed" if v is None else
                         f"{v['tokens_per_s_median']:,.0f} [{v['tokens_per_s_min']:,.0f}-{v['tokens_per_s_max']:,.0f}]")
        if has_ratio:
            ratio = row.get("saelib_vs_fastest_peer")
            cells.append("n/a" if ratio is None else f"{ratio:.2f}x ({row['fastest_peer']})")
        lines.append("| " + " | ".join(cells) + " |")
    start, end = result["probes"]["start"], result["probes"]["end"]
    probe_max = max([start["elementwise_probe_ms"], end["elementwise_probe_ms"]]
                    + [r.get("probe_ms_before", 0.0) for r in result.get("runs", [])])
    peak = s["matmul_precision"]
    caption = (f"TopK SAE training step, d_in {s['d_in']}, k {s['k']}, Adam lr {s['lr']:g}, fp32 weights, "
               f"matmul precision `{peak}`, {s['threads']} threads; median over {s['rounds']} rounds "
               f"[min-max] of each run's batch / median step time ({s['steps']} timed steps after {s['warmup']} "
               f"warm-up). fp32 GEMM peak in the same run ({peak}): {start['gemm_peak_gflops'][peak]:.0f} GFLOP/s "
               f"at the start, {end['gemm_peak_gflops'][peak]:.0f} at the end; 1-min load "
               f"{start['load_avg'][0]:.2f} -> {end['load_avg'][0]:.2f}, elementwise probe up to {probe_max:.2f} ms"
               + (" (**contended**: not an idle-machine measurement)." if result["contended"] else "."))
    versions = ", ".join(f"{v['package']} {v['version']}" for v in result["versions"].values())
    return caption + f" Versions: {versions}.\n\n" + "\n".join(lines) + "\n"


def estimate_seconds(runs: list[dict], rounds: int, steps: int, warmup: int) -> float:
    """Wall time of the same (shape, library) runs at other rounds/steps/warmup: each run's process time
    with its step count changed at its median step time (start-up, imports and set-up kept as measured)."""
    by_key: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        if "error" not in r["result"]:
            by_key.setdefault((r["shape"], r["lib"]), []).append(r["result"])
    total = 0.0
    for results in by_key.values():
        total += statistics.median(
            res["process_wall_s"] + (steps + warmup - res["steps"] - res["warmup"]) * statistics.median(res["step_s"])
            for res in results)
    return rounds * total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", type=parse_shapes, default=parse_shapes("large,notebook"))
    ap.add_argument("--libs", type=parse_libs, default=list(LIBS))
    ap.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    ap.add_argument("--warmup", type=int, default=DEFAULT_WARMUP)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in every process")
    ap.add_argument("--matmul-precision", choices=["highest", "medium"], default="highest")
    ap.add_argument("--venv-root", type=Path, default=HERE / ".venvs")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds one worker process may take")
    ap.add_argument("--gemm-n", type=int, default=4096, help="size of the peak-measuring matmul")
    a = ap.parse_args()
    if min(a.rounds, a.steps, a.warmup) < 1:
        ap.error("--rounds, --steps and --warmup must be >= 1")
    torch.set_num_threads(a.threads)
    precisions = list(dict.fromkeys(["highest", a.matmul_precision]))
    pythons, versions = {}, {}
    for lib in a.libs:
        pythons[lib], versions[lib] = ensure_venv(lib, a.venv_root)
    t0 = time.time()
    start = probes(precisions, a.gemm_n)
    print(f"start: load {start['load_avg'][0]:.2f}, probe {start['elementwise_probe_ms']:.2f} ms, "
          f"GEMM peak {start['gemm_peak_gflops']}", flush=True)
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="peer_throughput_") as tmp:
        data = Path(tmp) / "rows.npy"
        n_rows = (a.warmup + a.steps + 1) * max(s.batch for s in a.shapes)
        np.save(data, np.random.default_rng(0).standard_normal((n_rows, D_IN), dtype=np.float32))
        for r in range(a.rounds):
            for shape in a.shapes:
                for pos, lib in enumerate(rotated(a.libs, r)):
                    load, probe = os.getloadavg()[0], elementwise_probe_ms()
                    res = run_worker(lib, pythons[lib], data, shape, a)
                    runs.append({"round": r, "position": pos, "shape": shape.label, "lib": lib,
                                 "load_avg_1min_before": load, "probe_ms_before": probe, "result": res})
                    msg = res.get("error", "").splitlines()[-1:] if "error" in res else None
                    print(f"round {r} {shape.label:>10} {lib:<9} probe {probe:5.2f} ms" + (f" FAILED {msg}" if msg else
                          f" {shape.batch / statistics.median(res['step_s']):>8,.0f} tokens/s, "
                          f"loss {res['loss_first']:.4g} -> {res['loss_last']:.4g} ({res['loss_kind']}), "
                          f"{res['n_params']:,} params, {res['process_wall_s']:.0f} s"), flush=True)
    end = probes(precisions, a.gemm_n)
    contended = (start["load_avg"][0] > 1.0 or end["load_avg"][0] > a.threads + 1
                 or max([start["elementwise_probe_ms"], end["elementwise_probe_ms"]]
                        + [r["probe_ms_before"] for r in runs]) > CONTENDED_PROBE_MS)
    settings = {"d_in": D_IN, "k": K, "lr": LR, "threads": a.threads, "dtype": "float32",
                "matmul_precision": a.matmul_precision, "rounds": a.rounds, "steps": a.steps, "warmup": a.warmup,
                "libs": a.libs, "shapes": [asdict(s) for s in a.shapes], "data": "seeded N(0,1) float32 rows",
                "optimizer": "Adam lr 1e-3, betas (0.9, 0.999), each library's own construction"}
    result = {"settings": settings, "machine": machine_facts(), "versions": versions,
              "probes": {"start": start, "end": end}, "contended": contended,
              "wall_s": time.time() - t0, "summary": summarise(runs, a.shapes, a.libs), "runs": runs}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "peer_throughput.json").write_text(json.dumps(result, indent=1))
    table = markdown_table(result)
    (a.out / "peer_throughput.md").write_text(table)
    print("\n" + table)
    full = estimate_seconds(runs, DEFAULT_ROUNDS, DEFAULT_STEPS, DEFAULT_WARMUP)
    print(f"{result['wall_s']:.0f} s; these shapes at the defaults (--rounds {DEFAULT_ROUNDS} --steps {DEFAULT_STEPS} "
          f"--warmup {DEFAULT_WARMUP}) "
          f"would take about {full / 60:.0f} min plus the probes. Wrote {a.out}/peer_throughput.{{json,md}}")


if __name__ == "__main__":
    main()
