"""Continuation tokens: where the next page of a listing starts.

ListObjectsV2 and ListBuckets hand the client an opaque token naming the
last key (or bucket) of a page; the next request resumes after it. The
token is that name in URL-safe base64 (opaque to clients, safe in a query
string, and stateless: any node can resume any listing).
"""

from __future__ import annotations

import base64
import binascii

from blobstore_api.s3.errors import InvalidArgument

__all__ = ["continuation_token", "resume_after"]


def continuation_token(name: str) -> str:
    """The token that resumes a listing after *name*."""
    return base64.urlsafe_b64encode(name.encode()).decode()


def resume_after(token: str) -> str:
    """The name a listing resumes after.

    :raises InvalidArgument: not a token this service made.
    """
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidArgument(
            "The continuation token provided is incorrect",
            ArgumentName="continuation-token",
            ArgumentValue=token,
        ) from None
