"""How `smolvla` reports a failed command: one line on stderr, the traceback only when asked for.

A user's mistake (a typo in a choice, a folder that is not a dataset, a refused token) deserves one line
naming what was expected and what came, not 40-150 lines of stack frames. `smolvla --debug CMD` (or
`SMOLVLA_DEBUG=1`) prints the traceback above that line, for bug reports.

    error: Invalid value for '--device': 'gpu' is not a torch device: expected cpu, cuda, cuda:N or mps; ...
    error: unexpected RuntimeError: CUDA out of memory (rerun with --debug for the traceback)
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

try:  # recent typers parse with their own copy of click; older ones use click itself
    from typer._click import exceptions as _click_errors
except ImportError:
    from click import exceptions as _click_errors

ClickException = _click_errors.ClickException
# Raised (click >= 8.2) for a bare `smolvla`: its message is the help text, shown as it is.
NoArgsIsHelpError = getattr(_click_errors, "NoArgsIsHelpError", ())

# Errors that code raises on purpose for bad input (paths, files, values, missing optional packages, refused
# connections): their message is the whole story. Anything else is a bug or an environment failure, reported
# as "unexpected" with the --debug hint.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, ModuleNotFoundError)
# Exit codes: 1 for a failed command, 2 for a command line click rejected, 130 for Ctrl-C (as a shell does).
EXIT_FAILURE, EXIT_INTERRUPTED = 1, 130
# Longest message printed: an error echoing a huge input should not flood the terminal.
MAX_MESSAGE_CHARS = 2000

DEBUG_FLAG = "--debug"
_state = {"debug": False}


def set_debug(enabled: bool) -> None:
    """Called by the root callback with the value of `--debug` (or of SMOLVLA_DEBUG)."""
    _state["debug"] = enabled


def one_line(message: str) -> str:
    """`message` with its line breaks and runs of blanks folded into single spaces, capped in length."""
    text = " ".join(message.split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 3] + "..."


def describe(error: BaseException) -> tuple[str, int]:
    """(the one-line message, the exit code) for an exception that ended a command."""
    if isinstance(error, ClickException):  # usage errors (2), BadParameter (2), ClickException (1)
        return one_line(error.format_message()), error.exit_code
    if isinstance(error, typer.Abort):
        return "aborted", EXIT_FAILURE
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", EXIT_INTERRUPTED
    from smolvla.robots.feetech.protocol import FeetechError  # a servo silent or reporting overload: not a bug
    from smolvla.serve.client import HandshakeRefused  # the server's answer (token, version): not a bug

    text = str(error) or type(error).__name__
    if isinstance(error, EXPECTED_ERRORS + (HandshakeRefused, FeetechError)):
        return one_line(text), EXIT_FAILURE
    return one_line(f"unexpected {type(error).__name__}: {text} (rerun with --debug for the traceback)"), EXIT_FAILURE


def report(error: BaseException, debug: bool) -> int:
    """Print `error` as `error: ...` on stderr (after its traceback when `debug`); returns the exit code."""
    if isinstance(error, NoArgsIsHelpError):
        error.show()
        return error.exit_code
    message, code = describe(error)
    if debug and not isinstance(error, ClickException | typer.Abort):
        traceback.print_exception(error, file=sys.stderr)
    typer.echo(f"error: {message}", err=True)
    return code


class ErrorReportingGroup(TyperGroup):
    """The root command group: runs the command line and turns any exception into `report`'s one line.

    In standalone mode (the console script, `CliRunner`) it exits with the code; with
    `standalone_mode=False` exceptions propagate as click documents.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        set_debug(False)  # until the root callback has read --debug / SMOLVLA_DEBUG (usage errors need no traceback)
        args = list(sys.argv[1:] if args is None else args)
        if DEBUG_FLAG in args[1:]:  # `smolvla stats DIR --debug` means `smolvla --debug stats DIR`
            args.remove(DEBUG_FLAG)
            args.insert(0, DEBUG_FLAG)
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except SystemExit:
            raise
        except BaseException as e:  # noqa: BLE001  (KeyboardInterrupt too: one line, exit 130)
            sys.exit(report(e, _state["debug"]))
        # Without standalone mode click returns the exit code of a `typer.Exit` (or --help), else the
        # command's return value (None).
        sys.exit(result if isinstance(result, int) else 0)
