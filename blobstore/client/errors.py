"""The service's error answers as the library's own error classes.

The native API answers every error as ``{"code": ..., "message": ...}``
where ``code`` is the ``code`` of a :class:`~blobstore.errors.BlobStoreError`
class (``blob_not_found``, ``hash_mismatch``, ...) or, for errors of HTTP
itself, a name derived from the status (``length_required``). The client
raises the class with that code, so code written against
:class:`~blobstore.Store` catches the same exceptions from
:class:`~blobstore.client.Client`; a code it does not know falls back to the
class of the status.
"""

from __future__ import annotations

import functools
from typing import Any

from blobstore import errors

__all__ = ["error_for"]

#: An answer whose code names no class: the class of its status.
_BY_STATUS: dict[int, type[errors.BlobStoreError]] = {
    400: errors.BadParams,
    401: errors.AccessDenied,
    403: errors.AccessDenied,
    404: errors.NotFound,
    408: errors.BadParams,
    409: errors.Conflict,
    411: errors.BadParams,
    412: errors.Conflict,
    413: errors.EntityTooLarge,
    416: errors.BadParams,
    500: errors.BlobStoreError,
    502: errors.Unavailable,
    503: errors.Unavailable,
    504: errors.Unavailable,
    507: errors.InsufficientStorage,
}


@functools.cache
def _by_code() -> dict[str, type[errors.BlobStoreError]]:
    found: dict[str, type[errors.BlobStoreError]] = {}
    pending: list[type[errors.BlobStoreError]] = [errors.BlobStoreError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


def error_for(
    status: int,
    body: Any,
    what: str,
    not_found: type[errors.NotFound] | None = None,
) -> errors.BlobStoreError:
    """The exception for an error answer: *status*, its decoded JSON *body*
    (or anything else, for an answer that was not JSON), and *what* was
    asked (``"GET /v1/blobs/..."``) for messages that do not say.

    :param not_found: the class of a 404 that has no body to say (a HEAD).
    """
    code = message = None
    if isinstance(body, dict):
        code, message = body.get("code"), body.get("message")
    cls = _by_code().get(code) if isinstance(code, str) else None
    if cls is None and status == 404 and not_found is not None:
        cls = not_found
    if cls is None:
        cls = _BY_STATUS.get(status)
    if cls is None:
        cls = errors.BlobStoreError if status >= 500 else errors.BadParams
    if not isinstance(message, str) or not message:
        message = f"{what}: HTTP {status}"
    return cls(message)
