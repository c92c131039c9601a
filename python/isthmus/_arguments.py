"""Argument names in messages, in the caller's own language.

Python users type ``allow_non_integer=True``; R users type ``allow.non.integer = TRUE``. Every
isthmus message that names an argument goes through :func:`name` / :func:`setting`, and the R
bridge (``isthmus._r.call``) sets, for the length of one call, the verb's map from Python names to
its own argument names. One validation can then speak to both kinds of user.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterator, Mapping

# {python name: the caller's name}; empty for Python callers
_NAMES: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar("isthmus_argument_names", default={})
# "python" or "r": how values are written in messages
_LANGUAGE: contextvars.ContextVar[str] = contextvars.ContextVar("isthmus_argument_language", default="python")


@contextlib.contextmanager
def names_of(caller_names: Mapping[str, str] | None, language: str = "r") -> Iterator[None]:
    """Within the block, messages name arguments as ``caller_names`` does (R: the verb's own)."""
    names_token = _NAMES.set(dict(caller_names or {}))
    language_token = _LANGUAGE.set(language)
    try:
        yield
    finally:
        _NAMES.reset(names_token)
        _LANGUAGE.reset(language_token)


def in_r() -> bool:
    return _LANGUAGE.get() == "r"


def name(python_name: str) -> str:
    """The argument as the caller types it (R: the verb's name for it, when it has one)."""
    return _NAMES.get().get(python_name, python_name)


def value_text(value: Any) -> str:
    """A value as the caller would type it: TRUE / NULL / c(5, 10) in R, True / None / [5, 10] in Python."""
    r = in_r()
    if value is None:
        return "NULL" if r else "None"
    if isinstance(value, bool):
        return ("TRUE" if value else "FALSE") if r else str(value)
    if isinstance(value, str):
        return f'"{value}"' if r else repr(value)
    if isinstance(value, (list, tuple)):
        inner = ", ".join(value_text(v) for v in value)
        return f"c({inner})" if r else f"[{inner}]"
    if isinstance(value, float) and value.is_integer() and r:
        return str(int(value))
    return str(value)


def setting(python_name: str, value: Any) -> str:
    """``allow_non_integer=True`` (Python) or ``allow.non.integer = TRUE`` (R)."""
    return f"{name(python_name)} = {value_text(value)}" if in_r() else f"{name(python_name)}={value_text(value)}"
