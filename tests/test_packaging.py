"""A non-editable install ships every subpackage: build the wheel, import each subpackage from it."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

IMPORT_ALL = """
import importlib, pkgutil, sys
import saelib
assert saelib.__file__.startswith(sys.argv[1]), saelib.__file__
names = sorted(m.name for m in pkgutil.walk_packages(saelib.__path__, "saelib."))
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_wheel_ships_and_imports_every_subpackage(tmp_path):
    src = tmp_path / "src"  # build from a copy: the checkout gets no build/ or egg-info
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "saelib", src / "saelib", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(src)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("saelib-*.whl"))
    shipped = set(zipfile.ZipFile(wheel).namelist())
    wanted = {p.relative_to(ROOT).as_posix() for p in (ROOT / "saelib").rglob("*.py")}
    assert wanted <= shipped, f"missing from the wheel: {sorted(wanted - shipped)}"

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    out = subprocess.run([sys.executable, "-c", IMPORT_ALL, str(site)], cwd=tmp_path, check=True,
                         capture_output=True, text=True, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    n_subpackages = sum(1 for p in (ROOT / "saelib").rglob("*.py") if p.name != "__init__.py") + \
        sum(1 for p in (ROOT / "saelib").rglob("__init__.py")) - 1
    assert int(out.stdout.split()[-1]) == n_subpackages
