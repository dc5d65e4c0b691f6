"""Turn a catalog's "cannot reach the database" errors into ``Unavailable``.

Each catalog names which of its driver's exceptions mean the database is
unreachable or busy (the same request may succeed later) and provides
``_unavailable(exc)`` to word the error; :func:`guard_public_methods` then
wraps every public method, generators included, so no method can forget.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any
from typing import TypeVar

__all__ = ["guard_public_methods"]

_C = TypeVar("_C", bound=type)


def _guard(method: Callable[..., Any], transient: Callable[[BaseException], bool]):
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generator(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                yield from method(self, *args, **kwargs)
            except Exception as exc:
                if transient(exc):
                    raise self._unavailable(exc) from exc
                raise

        return generator

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            if transient(exc):
                raise self._unavailable(exc) from exc
            raise

    return call


def guard_public_methods(
    transient: Callable[[BaseException], bool],
) -> Callable[[_C], _C]:
    """Class decorator: wrap every public method so that exceptions for which
    ``transient(exc)`` is true become ``self._unavailable(exc)``."""

    def decorate(cls: _C) -> _C:
        for name, value in list(vars(cls).items()):
            if not name.startswith("_") and inspect.isfunction(value):
                setattr(cls, name, _guard(value, transient))
        return cls

    return decorate
