"""Bearer-token authentication with three access levels.

``[auth] tokens`` lists tokens, each with an access level: ``read`` (GET and
HEAD), ``read-write`` (also PUT, POST, DELETE) or ``admin`` (also the
operator routes). Each resource says what its methods need in an
``access`` class attribute::

    class BlobResource:
        access = {"GET": "read", "HEAD": "read", "PUT": "read-write"}

A method missing from it needs ``admin``; a resource with ``access = None``
is public (health probes). A request without a known token gets 401 with
``WWW-Authenticate: Bearer``; a known token without enough access gets 403.

With no tokens configured the service is open (every request is ``admin``);
the configuration refuses that unless the service listens on loopback only
(:func:`blobstore.config.require_safe_bind`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

import falcon

from blobstore.config import ACCESS_LEVELS
from blobstore.config import Token

__all__ = ["AuthMiddleware"]

_RANK = {level: rank for rank, level in enumerate(ACCESS_LEVELS)}


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class AuthMiddleware:
    """Checks ``Authorization: Bearer <token>`` against the resource's needs."""

    def __init__(self, tokens: Iterable[Token]) -> None:
        # Looked up by digest: the dict lookup's timing then says nothing
        # about the secret itself, and compare_digest settles the match.
        self._levels = {_digest(t.token): t.access for t in tokens}
        self.open = not self._levels

    def level_of(self, req: falcon.Request) -> str | None:
        """The access level of the request's token, or None."""
        header = req.get_header("Authorization")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = _digest(token.strip())
        for known, level in self._levels.items():
            if hmac.compare_digest(known, digest):
                return level
        return None

    def process_resource(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        resource: Any,
        params: dict[str, Any],
    ) -> None:
        access = getattr(resource, "access", {})
        if access is None:
            return  # public
        needed = access.get(req.method, "admin")
        if self.open:
            req.context.access = "admin"
            return
        level = self.level_of(req)
        if level is None:
            raise falcon.HTTPUnauthorized(
                title="Unauthorized",
                description="a valid bearer token is required",
                challenges=['Bearer realm="blobstore"'],
                code="unauthorized",
            )
        if _RANK[level] < _RANK[needed]:
            raise falcon.HTTPForbidden(
                description=f"this request needs {needed} access; the token has "
                f"{level} access",
                code="forbidden",
            )
        req.context.access = level
