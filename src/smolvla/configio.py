"""Typed (de)serialisation of the frozen config dataclasses: one reader for every config the package stores.

`from_dict(cls, data)` builds a config dataclass from parsed JSON and `check_fields(obj)` (called by each
config's `__post_init__`) checks one built in Python; both check every value against its field's type
annotation, so a config is checked the same way however it was made:

    nested dataclasses      a JSON object in `from_dict`, an instance in Python
    Literal["a", "b"]       one of the listed values; a typo gets the nearest value suggested
    int / float / bool / str    the JSON type (an int is accepted for a float; a bool is never a number);
                            floats must be finite (JSON's NaN/Infinity are refused)
    tuple[X, ...] / tuple[X, Y] / list[X]   a JSON array (stored as a tuple / list)
    dict[str, X]            a JSON object with string keys (a name table, e.g. camera -> view)
    X | None                null or an X

Errors are `ValueError`s naming the key path (`model.decoder.kv_heads`), what was expected and the value.
Unknown keys are an error, never ignored. A class can declare, as ClassVars:

    REQUIRED_KEYS   field names a serialised form must contain although the constructor has a default
                    (ALL_FIELDS: every field), where a default would silently describe something else;
    RETIRED_KEYS    names older versions wrote that no longer mean anything, dropped on read.

`to_dict` is the inverse of `from_dict` (tuples become lists, as JSON has no tuple). Standard library
only, so every layer of the package can use it.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union

T = TypeVar("T")

# REQUIRED_KEYS value meaning "every field of the class".
ALL_FIELDS = "all"
# Longest repr of an offending value quoted in an error: a huge input must not make a huge message.
MAX_SHOWN_CHARS = 80


def from_dict(cls: type[T], data: Any, *, source: str | None = None) -> T:
    """Build the dataclass `cls` from parsed JSON `data`, checking keys and types throughout.

    source: the file (or other origin) the data came from, prefixed to every error message.
    Raises ValueError naming the key path, the expected type and the value.
    """
    return _build(cls, data, "", f"{source}: " if source else "")


def to_dict(obj: Any) -> Any:
    """A config dataclass as JSON-ready data: nested dicts, tuples as lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def check_fields(obj: Any) -> None:
    """Check each field of the dataclass instance `obj` against its annotation (for `__post_init__`).

    Values are normalised in place where the type asks for it (a list for a tuple field becomes a tuple,
    an int for a float field a float), so a frozen config stays hashable and compares equal to its JSON
    round trip. Raises ValueError naming `<Class>.<field>`, the expected type and the value.
    """
    cls = type(obj)
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        value = getattr(obj, f.name)
        checked = _convert(hints[f.name], value, f"{cls.__name__}.{f.name}", "", build=False)
        if checked is not value:
            object.__setattr__(obj, f.name, checked)


def _build(cls: type[T], data: Any, path: str, prefix: str) -> T:
    at = f" in '{path}'" if path else ""
    if not isinstance(data, Mapping):
        raise ValueError(f"{prefix}{path or 'top level'}: expected a JSON object for {cls.__name__}, got {_show(data)}")
    retired = set(getattr(cls, "RETIRED_KEYS", ()))
    data = {k: v for k, v in data.items() if k not in retired}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields), key=str)
    if unknown:
        near = {k: difflib.get_close_matches(str(k), fields, n=1) for k in unknown}
        guesses = [f"{k!r} -> {m[0]!r}" for k, m in near.items() if m]
        hint = f" (did you mean {', '.join(guesses)}?)" if guesses else ""
        raise ValueError(
            f"{prefix}unknown {cls.__name__} keys {unknown}{at}{hint}; expected a subset of {sorted(fields)}"
        )
    required = getattr(cls, "REQUIRED_KEYS", ())
    required = set(fields) if required == ALL_FIELDS else set(required)
    required |= {
        n for n, f in fields.items() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    missing = sorted(required - set(data))
    if missing:
        raise ValueError(f"{prefix}missing {cls.__name__} keys {missing}{at}")
    hints = _hints(cls)
    kwargs = {k: _convert(hints[k], v, f"{path}.{k}" if path else k, prefix, build=True) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ValueError as e:  # __post_init__'s own checks: say where the config came from
        raise ValueError(f"{prefix}{e}") from e


def _convert(tp: Any, value: Any, path: str, prefix: str, *, build: bool) -> Any:
    """`value` checked against the type `tp` (built into dataclasses when `build`); raises ValueError."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if build:
            return _build(tp, value, path, prefix)
        if isinstance(value, tp):
            return value
    elif origin is Literal:
        if value in args and type(value) in {type(a) for a in args}:
            return value
        choices = [a for a in args if isinstance(a, str)]
        near = difflib.get_close_matches(value, choices, n=1) if isinstance(value, str) else []
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ValueError(f"{prefix}{path}: expected one of {list(args)}, got {_show(value)}{hint}")
    elif origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arm in (a for a in args if a is not type(None)):
            try:
                return _convert(arm, value, path, prefix, build=build)
            except ValueError:
                continue
    elif origin in (tuple, list):
        if isinstance(value, tuple | list):
            variadic = origin is list or args[1:] == (Ellipsis,)
            if not variadic and len(value) != len(args):
                raise ValueError(f"{prefix}{path}: expected {len(args)} items, got {len(value)}: {_show(value)}")
            item_types = [args[0]] * len(value) if variadic else list(args)
            items = [
                _convert(t, v, f"{path}[{i}]", prefix, build=build)
                for i, (t, v) in enumerate(zip(item_types, value, strict=True))
            ]
            return tuple(items) if origin is tuple else items
    elif origin is dict:
        if isinstance(value, Mapping):
            bad = [k for k in value if not isinstance(k, str)]
            if bad or args[0] is not str:
                raise ValueError(f"{prefix}{path}: keys must be strings, got {_show(bad or list(value))}")
            return {k: _convert(args[1], v, f"{path}.{k}", prefix, build=build) for k, v in value.items()}
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ValueError(f"{prefix}{path}: expected a finite number, got {value!r}")
            return value if type(value) is float else float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp in (bool, str):
        if isinstance(value, tp):
            return value
    else:
        raise TypeError(f"configio cannot check {path} of type {tp!r}")  # a config class the reader does not know
    raise ValueError(f"{prefix}{path}: expected {_describe(tp)}, got {_show(value)}")


def _describe(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return tp.__name__
    if origin is Literal:
        return f"one of {list(args)}"
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in args)
    if origin is dict:
        return f"a JSON object of {_describe(args[1])}"
    if origin in (tuple, list):
        if origin is list or args[1:] == (Ellipsis,):
            return f"a list of {_describe(args[0])}"
        return f"a list of {len(args)} items ({', '.join(_describe(a) for a in args)})"
    return getattr(tp, "__name__", str(tp))


def _show(value: Any) -> str:
    text = repr(value)
    if len(text) > MAX_SHOWN_CHARS:
        text = text[: MAX_SHOWN_CHARS - 3] + "..."
    return f"{text} ({type(value).__name__})"


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    # The config modules use `from __future__ import annotations`: resolve the string annotations once.
    return typing.get_type_hints(cls)
