"""The README works as written: its Python example is `examples/predict.py` verbatim and runs, and its
documented pipeline (datagen -> stats -> relabel -> train -> inspect-checkpoint -> eval) runs through the
real `smolvla` command at a tiny size, each step's artifacts checked.

The commands are read from the README itself, so a documented flag that stops working fails here. Only
sizes (tasks, episodes, steps) and paths are replaced; `serve` and `demo` are long-running or covered by
tests/serve and tests/eval, the two recipe scripts take tens of minutes.
"""

from __future__ import annotations

import json
import re
import runpy
import shlex
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXAMPLE = ROOT / "examples" / "predict.py"
TASK = "reach-v3"  # the quickest scripted expert


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def readme_commands() -> dict[str, list[str]]:
    """The README's `smolvla ...` commands (continuation lines joined, comments dropped) by subcommand."""
    text = _blocks("bash")[1].replace("\\\n", " ")  # the Commands section (the first block is `make`)
    out = {}
    for line in text.splitlines():
        args = shlex.split(line, comments=True)
        if args and args[0] == "smolvla":
            out[args[1]] = args[1:]
    return out


def _tiny(args: list[str], tmp: Path, **values: str) -> list[str]:
    """`args` with option values replaced (`values`, e.g. steps="2") and relative paths moved under `tmp`."""
    out, i = [], 0
    while i < len(args):
        a = args[i]
        key = a[2:].replace("-", "_") if a.startswith("--") else None
        if key in values and i + 1 < len(args) and not args[i + 1].startswith("--"):
            out += [a, values.pop(key)]
            i += 2
            continue
        out.append(str(tmp / a) if re.match(r"^(data|runs)/|\.json$", a) else a)
        i += 1
    for key, value in values.items():  # options the README leaves at their defaults
        out += [f"--{key.replace('_', '-')}", value]
    return out


def test_every_documented_option_exists() -> None:
    """Each `--option` the README gives a command (including the bracketed optional ones of serve and
    demo, which the pipeline below does not run) is in that command's --help."""
    from smolvla.cli.main import app

    for name, args in readme_commands().items():
        options = {a.strip("[]") for a in args if a.strip("[]").startswith("--")}
        res = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "200"})
        assert res.exit_code == 0, res.output
        missing = sorted(o for o in options if o not in res.output)
        assert not missing, f"README's `smolvla {name}` uses {missing}, absent from its --help"


def test_python_example_is_the_readme_snippet() -> None:
    python = _blocks("python")
    assert python == [EXAMPLE.read_text()], "README's Python block must be examples/predict.py verbatim"


def test_python_example_runs(tmp_path, monkeypatch, capsys) -> None:
    """On a tiny policy of Meta-World's shape (one camera, 4-dim state and action) saved in the test."""
    from smolvla.policy.testing import make_tiny_policy

    make_tiny_policy(("observation.images.corner2",), state_dim=4, action_dim=4).save_pretrained(tmp_path / "p")
    monkeypatch.setattr(sys, "argv", [str(EXAMPLE), str(tmp_path / "p")])
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    assert capsys.readouterr().out.strip() == "('observation.images.corner2',) (1, 10, 4)"


@pytest.mark.sim
def test_documented_pipeline_at_tiny_size(tmp_path, monkeypatch) -> None:
    import smolvla.envs  # noqa: F401  (selects the headless GL backend before MuJoCo loads)
    from smolvla.envs.rendering import rendering_available

    pytest.importorskip("metaworld")

    if not rendering_available():
        pytest.skip("MuJoCo offscreen rendering unavailable (install GL libs: scripts/install_sim_system_deps.sh)")
    from smolvla.cli.main import app
    from smolvla.envs.metaworld_tasks import INSTRUCTIONS

    cmds = readme_commands()
    assert {"datagen", "stats", "relabel", "train", "eval", "inspect-checkpoint"} <= set(cmds)
    monkeypatch.chdir(tmp_path)

    def run(args: list[str]) -> str:
        res = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
        assert res.exit_code == 0, f"smolvla {shlex.join(args)}\n{res.output}"
        return res.output

    data, run_dir = tmp_path / "data" / "mt10", tmp_path / "runs" / "mt10"
    run(_tiny(cmds["datagen"], tmp_path, tasks=TASK, episodes="2", workers="1", max_steps="150"))
    info = json.loads((data / "meta" / "info.json").read_text())
    assert info["total_episodes"] == 2 and "observation.images.corner2" in info["features"]

    run(_tiny(cmds["stats"], tmp_path))
    assert "observation.state" in json.loads((data / "meta" / "stats.json").read_text())

    (tmp_path / "rules.json").write_text(json.dumps({INSTRUCTIONS[TASK]: "reach the goal with the gripper"}))
    run(_tiny(cmds["relabel"], tmp_path))

    run(_tiny(cmds["train"], tmp_path, steps="2", batch_size="2", log_every="1"))
    ckpt = run_dir / "checkpoints" / "last" / "pretrained_model"
    assert [json.loads(x)["step"] for x in (run_dir / "metrics.jsonl").read_text().splitlines()][-1] == 2
    assert json.loads((ckpt / "tokenizer.json").read_text())["model"]["merges"]  # the learned subword vocabulary

    summary = run(["inspect-checkpoint", str(ckpt)])
    assert "48 language tokens" in summary

    eval_args = _tiny(cmds["eval"], tmp_path, tasks=TASK, episodes="1", max_steps="12", workers="1", videos="0")
    run([*eval_args, "--out", str(tmp_path / "eval")])
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["overall"]["episodes"] == 1 and f"metaworld/{TASK}" in report["per_task"]
