"""Imports flow one way: cli -> eval -> train/serve -> policy/envs -> model/data -> types.

Walks every module's import statements (static, via ast) and checks that no package imports from a
layer above it, and that the torch-free robot client stays torch-free.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "smolvla"

# Higher number = higher layer; a module may import only from layers strictly below it (or its own package).
LAYER = {
    "types": 0,
    "configio": 0,
    "task_tokens": 0,  # numpy task tokenisation shared by the policy and the torch-free runtime
    "model": 1,
    "data": 1,
    "deploy": 1,  # the torch-free ONNX runtime: robot-side floor
    "policy": 2,
    "envs": 2,
    "train": 3,
    "serve": 3,
    "export": 3,
    "eval": 4,
    "robots": 4,  # arms, cameras, recording, deploying through the serve client; torch-free all the same
    "cli": 5,
}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


def _package_of(path: Path) -> str:
    rel = path.relative_to(SRC).parts
    return rel[0].removesuffix(".py") if rel else ""


def test_imports_point_downwards() -> None:
    violations = []
    for path in SRC.rglob("*.py"):
        pkg = _package_of(path)
        if pkg not in LAYER:
            continue
        for mod in _imports(path):
            parts = mod.split(".")
            if parts[0] != "smolvla" or len(parts) < 2 or parts[1] not in LAYER:
                continue
            target = parts[1]
            if target != pkg and LAYER[target] >= LAYER[pkg]:
                violations.append(f"{path.relative_to(SRC)} imports {mod} ({pkg} -> {target})")
    assert not violations, "imports against the layering:\n" + "\n".join(violations)


def test_model_has_no_io_or_logging() -> None:
    banned = {"logging", "socket", "requests", "urllib", "huggingface_hub", "print"}
    bad = []
    for path in (SRC / "model").rglob("*.py"):
        mods = {m.split(".")[0] for m in _imports(path)}
        if mods & banned:
            bad.append(f"{path.name}: {sorted(mods & banned)}")
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in {"print", "open"}:
                bad.append(f"{path.name}:{node.lineno} calls {node.func.id}")
    assert not bad, bad


def test_package_import_does_not_pull_torch() -> None:
    code = "import sys, smolvla, smolvla.types; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
