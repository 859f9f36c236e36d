"""Gather every notebook's ``claims.json`` and ``run.json`` into run_all's summary and the README.

    python -m saelib.companion.scoreboard measure OUT.json CMD ...   (run CMD: its peak memory and the machine's load)
    python -m saelib.companion.scoreboard record NAME SECONDS STATUS PRESET [OUT.json]
    python -m saelib.companion.scoreboard summary [NAME ...]
    python -m saelib.companion.scoreboard readme
    python -m saelib.companion.scoreboard harvest PRESET   (build the shared harvests first, timed apart)
"""
from __future__ import annotations

import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from ..utils import atomic_path, figures_dir, repo_root

START, END = "<!-- scoreboard:start -->", "<!-- scoreboard:end -->"
NB_START, NB_END = "<!-- notebooks:start -->", "<!-- notebooks:end -->"
BUDGET_MIN = {"00_quickstart": 4, "01_llama_scope": 5, "02_batchtopk": 3, "03_jumprelu": 3, "04_mutual_choice": 4,
              "05_gradient_sae": 4.5, "06_atm": 3.75, "07_seed_stability": 5, "08_feature_consistency": 4.5,
              "09_splinterp_mnist": 3.5, "10_splinterp_llm": 4}
"""Each notebook's solo wall-time budget on 2 CPU cores (quick preset; the shared harvest excluded)."""
OUTPUTS = (":!figures", ":!notebooks/*.ipynb", ":!README.md", ":!docs/uncertainty.md")
"""What a run itself rewrites: left out of ``dirty`` (which says whether the *code* that ran was committed)."""
PEAK_RSS_LIMIT_MIB = 4096
"""The resident-memory goal for one notebook's kernel, 4 GiB (the project's budget)."""
CONTENDED_CORES = 0.25
"""A run is marked "under load" when other processes used more than this many cores on average while it ran."""
PACKAGES = ("torch", "transformers", "datasets", "numpy", "scipy", "scikit-learn", "safetensors", "papermill")


def _load(name: str, file: str) -> dict:
    path = figures_dir(name) / file
    return json.loads(path.read_text()) if path.exists() else {}


def provenance() -> dict:
    """Commit (and whether the tree had changes), package versions, CPU (:func:`host.describe`) and thread count of this run."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=repo_root(), capture_output=True, text=True).stdout.strip()
        except OSError:
            return ""
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    import torch

    from .host import describe

    return {"commit": git("rev-parse", "--short=12", "HEAD"), "dirty": bool(git("status", "--porcelain", "-uno", "--", ".", *OUTPUTS)),
            "python": platform.python_version(), "packages": versions, "cpu": describe(), "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads()}


def _busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (Linux /proc/stat), or None elsewhere."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def measure(out: str, cmd: list[str]) -> int:
    """Run ``cmd`` and write to ``out`` its peak resident memory (the largest of its processes, i.e. the
    notebook's kernel, once reaped) and how many cores *other* processes kept busy meanwhile."""
    from ..utils import gemm_gflops
    gflops = gemm_gflops(n=2048, reps=5)  # ~0.5 s: the host's speed, so that times from two hosts can be compared
    busy0, t0 = _busy_cpu_seconds(), time.perf_counter()
    rc = subprocess.call(cmd)
    wall, busy1 = time.perf_counter() - t0, _busy_cpu_seconds()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = usage.ru_utime + usage.ru_stime
    other = None if busy0 is None or busy1 is None else max(0.0, (busy1 - busy0 - own) / max(wall, 1e-9))
    Path(out).write_text(json.dumps({"peak_rss_mib": round(usage.ru_maxrss / 1024), "cpu_seconds": round(own, 1),
                                     "other_cores": None if other is None else round(other, 2),
                                     "gemm_gflops": round(gflops)}))
    return rc


def record(name: str, seconds: str, status: str, preset: str, measured: str | None = None) -> None:
    """Write run.json: time, status and preset of the last run (with its peak memory and the machine's load
    from :func:`measure`'s file, when given); the ``"data"`` and ``"provenance"`` of the results in
    figures/<name> (this run's when it succeeded, else the last good run's, which stay)."""
    path = figures_dir(name) / "run.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    doc = {"seconds": int(seconds), "status": status, "preset": preset,
           **{k: old[k] for k in ("data", "provenance") if k in old}}
    if measured and Path(measured).exists():
        m = json.loads(Path(measured).read_text())
        doc.update(peak_rss_mib=m["peak_rss_mib"], other_cores=m["other_cores"],
                   under_load=m["other_cores"] is not None and m["other_cores"] > CONTENDED_CORES)
        if "gemm_gflops" in m:
            doc["gemm_gflops"] = m["gemm_gflops"]
    if status == "ok":
        doc["provenance"] = provenance()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))


def notebooks() -> list[str]:
    return sorted(p.stem for p in (repo_root() / "notebooks").glob("[0-9][0-9]_*.py"))


def summary(names: list[str]) -> str:
    lines = [f"{'notebook':<28} {'time':>7} {'budget':>7} {'peak MB':>8} {'GFLOP/s':>8}  {'claims':>8}  status", "-" * 83]
    for n in names or notebooks():
        run, claims = _load(n, "run.json"), _load(n, "claims.json").get("claims", [])
        t, budget, rss = run.get("seconds", 0), BUDGET_MIN.get(n), run.get("peak_rss_mib")
        row = (f"{n:<28} {t / 60:>5.1f}m {'' if budget is None else f'{budget:g}m':>7} {'' if rss is None else rss:>8}"
               f" {run.get('gemm_gflops', ''):>8}  {_tally(claims):>8}  ")
        row += run.get("status", "?")
        if budget is not None and t > 60 * budget:
            row += f"  (over budget by {t / 60 - budget:.1f} min)"
        if rss is not None and rss > PEAK_RSS_LIMIT_MIB:
            row += f"  (over {PEAK_RSS_LIMIT_MIB} MB)"
        if run.get("under_load"):
            row += f"  (under load: other processes used {run['other_cores']:.2f} cores)"
        lines.append(row)
    return "\n".join(lines)


def _replace(text: str, start: str, end: str, body: str) -> str:
    block = f"{start}\n{body}\n{end}"
    if start in text and end in text:
        return re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    return text + "\n" + block + "\n"


def _cell(text: str) -> str:
    """Escape what would break a markdown table cell (pipes, newlines)."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _interval(c: dict) -> str:
    """'estimate [lo, hi], margin m' for claims scored by the verdict model, '-' for the older boolean form."""
    if c.get("interval") is None:
        return "-"
    lo, hi = c["interval"]
    if c.get("estimate") is None or lo is None or hi is None:
        return f"none ({c.get('precondition') or 'no interval'})"
    return f"{c['estimate']:.3g} [{lo:.3g}, {hi:.3g}], margin {c['margin']:g}"


def _tally(claims: list[dict]) -> str:
    """'reproduced/claims', with the inconclusive ones counted apart."""
    ok = sum(c["verdict"] == "reproduced" for c in claims)
    inc = sum(c["verdict"] == "inconclusive" for c in claims)
    return f"{ok}/{len(claims)}" + (f" ({inc} inconclusive)" if inc else "")


def readme() -> None:
    rows = ["| notebook | claim | verdict | measured here | estimate [95% interval] | paper |", "|---|---|---|---|---|---|"]
    nb_rows = ["| notebook | default run time (2 CPU cores) | peak memory | host fp32 GEMM (n = 2048) | claims reproduced |",
               "|---|---|---|---|---|"]
    for n in notebooks():
        doc, run = _load(n, "claims.json"), _load(n, "run.json")
        claims = doc.get("claims", [])
        status = run.get("status", "ok")
        label = n if status == "ok" else f"{n} (last run {status}: these are the last good results)"
        for c in claims:
            cells = [_cell(c["claim"]), f"**{c['verdict']}**", _cell(c["measured"]), _cell(_interval(c)),
                     _cell(c["paper"] or "-")]
            rows.append(f"| {label} | " + " | ".join(cells) + " |")
        t = f"{run['seconds'] / 60:.1f} min" if "seconds" in run else "-"
        t = t if status == "ok" else f"last run {status} after {t}"
        if run.get("under_load"):
            t += f" (under load: other processes used {run['other_cores']:.2f} cores)"
        rss = f"{run['peak_rss_mib'] / 1024:.1f} GB" if "peak_rss_mib" in run else "-"
        host = f"{run['gemm_gflops']} GFLOP/s" if "gemm_gflops" in run else "-"
        nb_rows.append(f"| [`{n}`](notebooks/{n}.ipynb) | {t} | {rss} | {host} | {_tally(claims)} |")
    path = repo_root() / "README.md"
    text = path.read_text() if path.exists() else ""
    text = _replace(text, START, END, "\n".join(rows))
    text = _replace(text, NB_START, NB_END, "\n".join(nb_rows))
    with atomic_path(path) as tmp:
        tmp.write_text(text)

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "record":
        record(*args)
    elif cmd == "summary":
        print(summary(args))
    elif cmd == "measure":
        raise SystemExit(measure(args[0], args[1:]))
    elif cmd == "readme":
        readme()
    elif cmd == "harvest":
        from .notebook import build_shared
        build_shared(*args)
    else:
        raise SystemExit(f"command must be one of measure, record, summary, readme, harvest; got {cmd!r}")
