"""Every `smolvla` error is one line on stderr with a non-zero exit code; `--debug` adds the traceback."""

from __future__ import annotations

import asyncio
import re
import threading

import pytest
import typer
from typer.core import TyperOption
from typer.main import get_command
from typer.testing import CliRunner

from smolvla.cli.errors import ErrorReportingGroup
from smolvla.cli.main import app
from smolvla.cli.train import MODEL_PRESETS

runner = CliRunner()


def _error_line(result) -> str:
    """The single stderr line of a failed command (fails the test if there are more)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


@pytest.mark.parametrize("command", [["stats", "{dir}"], ["train", "--dataset", "{dir}", "--steps", "1"]])
def test_a_folder_that_is_not_a_dataset_is_one_line(tmp_path, command):
    result = runner.invoke(app, [a.format(dir=tmp_path) for a in command])
    assert result.exit_code == 1
    line = _error_line(result)
    assert str(tmp_path) in line and "info.json" in line
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("info", "message"),
    [("[]", "expected a JSON object"), ('{"codebase_version": "v3.0"', "not valid JSON")],
)
def test_a_damaged_dataset_is_one_line_naming_the_file(tmp_path, info, message):
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "info.json").write_text(info)
    result = runner.invoke(app, ["stats", str(tmp_path)])
    assert result.exit_code == 1
    line = _error_line(result)
    assert str(tmp_path / "meta" / "info.json") in line and message in line


@pytest.mark.parametrize(
    "args",
    [["--debug", "stats", "{dir}"], ["stats", "{dir}", "--debug"]],
    ids=["before-the-command", "after-the-command"],
)
def test_debug_adds_the_traceback(tmp_path, args):
    result = runner.invoke(app, [a.format(dir=tmp_path) for a in args])
    assert result.exit_code == 1
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "info.json" in result.stderr


def test_debug_from_the_environment(tmp_path):
    result = runner.invoke(app, ["stats", str(tmp_path)], env={"SMOLVLA_DEBUG": "1"})
    assert result.exit_code == 1 and "Traceback (most recent call last):" in result.stderr
    result = runner.invoke(app, ["stats", str(tmp_path)], env={"SMOLVLA_DEBUG": "0"})
    assert result.exit_code == 1 and "Traceback" not in result.stderr


def test_an_unexpected_error_says_how_to_see_the_traceback():
    demo = typer.Typer(cls=ErrorReportingGroup, pretty_exceptions_enable=False)

    @demo.command()
    def crash() -> None:
        raise RuntimeError("boom\nsecond line")

    @demo.command()
    def fine() -> None:
        pass

    result = runner.invoke(demo, ["crash"])
    assert result.exit_code == 1
    assert (
        _error_line(result) == "error: unexpected RuntimeError: boom second line (rerun with --debug for the traceback)"
    )
    assert runner.invoke(demo, ["fine"]).exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--dataset", "d", "--freeze", "expert-only"], "'expert-only' is not one of vision_frozen, "),
        (["train", "--dataset", "d", "--freeze", "expert-only"], "did you mean 'expert_only'?"),
        (["train", "--dataset", "d", "--device", "gpu"], "'gpu' is not a torch device: expected cpu, cuda, cuda:N"),
        (["train", "--dataset", "d", "--device", "gpu:1"], "did you mean 'cuda:1'?"),
        (["train", "--dataset", "d", "--model-preset", "smal"], "did you mean 'small'?"),
        (["train", "--dataset", "d", "--preset", "finetun"], "did you mean 'finetune'?"),
        (["train", "--dataset", "d", "--init", "lerobbot"], "did you mean 'lerobot'?"),
        (["train", "--dataset", "d", "--mixed-precision", "fp16"], "'fp16' is not one of no, bf16"),
        (
            ["eval", "--checkpoint", ".", "--mode", "asynch"],
            "'asynch' is not one of async, sync; did you mean 'async'?",
        ),
        (["eval", "--checkpoint", ".", "--aggregate", "weigthed"], "did you mean 'weighted'?"),
        (["eval", "--checkpoint", ".", "--benchmark", "libro"], "did you mean 'libero'?"),
        (["serve", "--checkpoint", ".", "--device", "gpu"], "did you mean 'cuda'?"),
        (["client", "--mode", "asynch"], "did you mean 'async'?"),
        (["client", "--aggregate", "weigthed"], "did you mean 'weighted'?"),
        (["tasks", "libro"], "did you mean 'libero'?"),
        (["trian"], "No such command 'trian'"),
    ],
)
def test_a_wrong_choice_is_refused_before_anything_loads(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in _error_line(result)


def test_a_wrong_token_is_one_line(tmp_path):
    """`smolvla client` against a server that wants another token: the refusal, in one line, exit 1."""
    from smolvla.policy.testing import make_tiny_policy
    from smolvla.serve.runner import PolicyRunner
    from smolvla.serve.server import PolicyServer, ServerConfig

    policy = make_tiny_policy(camera_keys=("observation.images.front",), state_dim=4, action_dim=2)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> tuple[PolicyServer, int]:
        server = PolicyServer(PolicyRunner(policy), ServerConfig(port=0, token="s3cret"))
        return server, await server.start()

    server, port = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        args = ["client", "--uri", f"ws://127.0.0.1:{port}", "--token", "nope", "--n-joints", "2"]
        result = runner.invoke(app, [*args, "--image-size", "16"], env={"SMOLVLA_TOKEN": None})
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
    assert result.exit_code == 1
    assert re.fullmatch(r"error: unauthorized: .*token.*", _error_line(result))


@pytest.mark.parametrize("name", sorted(get_command(app).commands))
def test_every_option_has_help(name):
    command = get_command(app).commands[name]
    missing = [p.name for p in command.params if isinstance(p, TyperOption) and not p.help]
    assert missing == [], f"smolvla {name}: options without help: {missing}"


def test_train_help_fits_80_columns_and_lists_the_choices():
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0
    text = result.stdout
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert f"--model-preset [{'|'.join(MODEL_PRESETS)}]" in text
    assert "--freeze [vision_frozen|expert_only|full]" in text and "--device [cpu|cuda|cuda:N|mps]" in text
    assert "…" not in text  # no option text cut off


def test_bare_command_shows_the_help_not_an_error():
    result = runner.invoke(app, [])
    assert "Usage: " in result.output and "Commands:" in result.output and "tasks" in result.output
    assert "error:" not in result.output
