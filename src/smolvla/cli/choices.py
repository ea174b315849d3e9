"""Options whose value is checked when the command line is parsed, before anything is loaded.

A typo such as `--freeze expert-only` or `--device gpu` must fail at once with the allowed values and the
closest one, not after a policy or a dataset has been read:

    freeze: str | None = choice_option(None, FREEZE_MODES, help="which parameters train")
    device: str = device_option("cpu", help="torch device of the policy")
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from typing import Any

import typer


def _suggestion(value: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, list(candidates), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def choice_parser(choices: Iterable[str]) -> Callable[[str], str]:
    """A typer `parser` accepting exactly one of `choices` (case-sensitive); its error lists them all and
    suggests the closest."""
    allowed = tuple(choices)

    def parse(value: str) -> str:
        if value in allowed:
            return value
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}{_suggestion(value, allowed)}")

    return parse


def choice_option(default: Any, choices: Iterable[str], *param_decls: str, **kwargs: Any) -> Any:
    """`typer.Option` taking one of `choices`, shown in --help as [a|b|c]."""
    allowed = tuple(choices)
    metavar = f"[{'|'.join(allowed)}]"
    return typer.Option(default, *param_decls, parser=choice_parser(allowed), metavar=metavar, **kwargs)


# torch device strings the commands accept; whether the device exists is checked when it is used.
_DEVICE = re.compile(r"cpu|mps|cuda(:\d+)?")
_DEVICE_ALIASES = {"gpu": "cuda"}


def parse_device(value: str) -> str:
    """A torch device string (cpu, cuda, cuda:N or mps), lower-cased; a BadParameter otherwise."""
    text = value.strip().lower()
    if _DEVICE.fullmatch(text):
        return text
    base, sep, index = text.partition(":")
    alias = _DEVICE_ALIASES.get(base)
    hint = f"; did you mean {alias + sep + index!r}?" if alias else _suggestion(text, ("cpu", "cuda", "mps"))
    raise typer.BadParameter(f"{value!r} is not a torch device: expected cpu, cuda, cuda:N or mps{hint}")


def device_option(default: Any, *param_decls: str, **kwargs: Any) -> Any:
    """`typer.Option` taking a torch device string (see `parse_device`)."""
    return typer.Option(default, *param_decls, parser=parse_device, metavar="[cpu|cuda|cuda:N|mps]", **kwargs)
