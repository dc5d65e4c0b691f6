"""Turn a catalog's driver errors into domain errors: "cannot reach the
database" into ``Unavailable``, "the database is full" into
``InsufficientStorage``.

Each catalog names which of its driver's exceptions are the database's
state (unreachable or busy: the same request may succeed later; or full)
and provides ``_driver_error(exc)`` to word the error and pick its class;
:func:`guard_public_methods` then wraps every public method, generators
included, so no method can forget.
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
                    raise self._driver_error(exc) from exc
                raise

        return generator

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            if transient(exc):
                raise self._driver_error(exc) from exc
            raise

    return call


def guard_public_methods(
    transient: Callable[[BaseException], bool],
) -> Callable[[_C], _C]:
    """Class decorator: wrap every public method so that exceptions for which
    ``transient(exc)`` is true become ``self._driver_error(exc)``."""

    def decorate(cls: _C) -> _C:
        for name, value in list(vars(cls).items()):
            if not name.startswith("_") and inspect.isfunction(value):
                setattr(cls, name, _guard(value, transient))
        return cls

    return decorate
