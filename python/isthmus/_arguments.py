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
# {python name: what the user did instead}, for arguments the caller set on the user's behalf (the R
# verb that takes the slices from a Seurat object's images passes batch_key="image", never typed)
_SET_FOR_USER: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar("isthmus_set_for_user",
                                                                                  default={})


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


@contextlib.contextmanager
def set_for_user(descriptions: Mapping[str, str] | None) -> Iterator[None]:
    """Within the block, messages give these arguments' descriptions ("the object's 2 images")
    where they would show the setting: the caller set them, the user did not type them."""
    token = _SET_FOR_USER.set(dict(descriptions or {}))
    try:
        yield
    finally:
        _SET_FOR_USER.reset(token)


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
    """``allow_non_integer=True`` (Python) or ``allow.non.integer = TRUE`` (R); for an argument the
    caller set on the user's behalf (:func:`set_for_user`), what the user did instead."""
    described = _SET_FOR_USER.get().get(python_name)
    if described is not None:
        return described
    return f"{name(python_name)} = {value_text(value)}" if in_r() else f"{name(python_name)}={value_text(value)}"
