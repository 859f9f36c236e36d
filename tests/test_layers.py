"""The package's layers, read from the source: imports flow one way, left to right.

    core (utils -> fastpath, zipf, checkpoint, distributed -> formats -> sparsifiers -> sae -> losses -> train -> callbacks -> saelib/__init__)
      -> data -> metrics -> orchestration (sweep, multiseed, store, train_ddp) -> papers -> companion

A module may import from its own layer or from layers to its left, never to its right. Every
import counts: module level, inside functions, and under ``if TYPE_CHECKING``. There is no list
of exceptions: where this fails, the code is in the wrong place.
"""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "saelib"

# (layer name, module prefixes), left to right.
LAYERS = [
    ("utils", ["saelib.utils"]),
    ("kernels", ["saelib.fastpath", "saelib.zipf", "saelib.checkpoint", "saelib.distributed"]),
    ("formats", ["saelib.formats"]),
    ("sparsifiers", ["saelib.sparsifiers"]),
    ("sae", ["saelib.sae"]),
    ("losses", ["saelib.losses"]),
    ("train", ["saelib.train"]),
    ("callbacks", ["saelib.callbacks"]),
    ("public surface", ["saelib"]),
    ("data", ["saelib.data"]),
    ("metrics", ["saelib.metrics"]),
    ("orchestration", ["saelib.sweep", "saelib.multiseed", "saelib.store", "saelib.train_ddp"]),
    ("papers", ["saelib.papers"]),
    ("companion", ["saelib.companion"]),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def rank(module: str) -> int:
    """Index of the layer holding ``module`` (longest matching prefix)."""
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


def saelib_imports(source: str, me: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module) of every saelib import in the source of module ``me``."""
    package = me if is_package else me.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "saelib"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "saelib":
                continue
            if node.module is None:  # from . import x: x is a submodule
                out += [(node.lineno, f"{target}.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, target))
    return out


def violations(source: str, me: str, is_package: bool = False) -> list[str]:
    return [f"line {line}: {me} ({LAYERS[rank(me)][0]}) imports {target} ({LAYERS[rank(target)][0]}), "
            f"a layer to its right" for line, target in saelib_imports(source, me, is_package) if rank(target) > rank(me)]


MODULES = sorted(PKG.rglob("*.py"))


def test_every_module_is_in_a_layer():
    for path in MODULES:
        rank(module_name(path))


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_imports_flow_left_to_right(path):
    bad = violations(path.read_text(), module_name(path), path.name == "__init__.py")
    assert not bad, "\n".join(bad)


def test_sae_needs_only_the_sparsifier_interface():
    """sae.py knows sparsifiers only through base.py (the families register themselves)."""
    targets = {t for _, t in saelib_imports((PKG / "sae.py").read_text(), "saelib.sae")
               if t.startswith("saelib.sparsifiers")}
    assert targets == {"saelib.sparsifiers.base"}


def test_the_checker_catches_imports_against_the_flow():
    """The rule can fail: upward imports are caught whether relative, absolute, lazy or type-only."""
    src = ("from ..sweep import run_sweep\n"
           "from typing import TYPE_CHECKING\n"
           "if TYPE_CHECKING:\n    from saelib.papers.pam import fit\n"
           "def f():\n    from .. import companion\n"
           "from ..sae import SAE\nfrom .matching import hungarian\n")
    found = violations(src, "saelib.metrics.fake")
    assert [v.split(" imports ")[1].split(" ")[0] for v in found] == ["saelib.sweep", "saelib.papers.pam",
                                                                         "saelib.companion"]
    assert violations("from ..sae import SAE\n", "saelib.sparsifiers.fake") != []
