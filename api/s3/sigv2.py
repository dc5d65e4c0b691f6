"""AWS Signature Version 2 verification (``Authorization: AWS key:sig`` and
``?AWSAccessKeyId=&Signature=&Expires=`` query strings).

SigV4 is the signature S3 asks for, but boto3 still makes *presigned URLs*
with SigV2 by default (and s3cmd can be told to sign with it), so the façade
accepts both. The string to sign is the method, Content-MD5, Content-Type,
the date (the ``Expires`` time for query strings), the ``x-amz-*`` headers,
and the resource: the path as sent plus the sub-resources and ``response-*``
overrides in the query. The signature is HMAC-SHA1, compared in constant
time. There is no payload hash in SigV2: bodies are checked only by
Content-MD5 / checksum headers when present.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from email.utils import parsedate_to_datetime

from blobstore_api.s3.errors import AccessDenied
from blobstore_api.s3.errors import InvalidAccessKeyId
from blobstore_api.s3.errors import InvalidArgument
from blobstore_api.s3.errors import RequestTimeTooSkewed
from blobstore_api.s3.errors import SignatureDoesNotMatch

__all__ = ["string_to_sign", "verify_header", "verify_query"]

MAX_SKEW = timedelta(minutes=15)

#: Query parameters that are part of the signed resource.
SIGNED_SUBRESOURCES = frozenset(
    {
        "acl",
        "cors",
        "delete",
        "lifecycle",
        "location",
        "logging",
        "notification",
        "partNumber",
        "policy",
        "requestPayment",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "response-content-language",
        "response-content-type",
        "response-expires",
        "restore",
        "tagging",
        "torrent",
        "uploadId",
        "uploads",
        "versionId",
        "versioning",
        "versions",
        "website",
    }
)


def string_to_sign(
    method: str,
    raw_path: str,
    query: list[tuple[str, str]] | tuple[tuple[str, str], ...],
    headers: Mapping[str, str],
    date: str,
) -> str:
    amz = sorted(
        (name, " ".join(value.split()))
        for name, value in headers.items()
        if name.startswith("x-amz-")
    )
    resource = raw_path
    sub = sorted((k, v) for k, v in query if k in SIGNED_SUBRESOURCES)
    if sub:
        resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in sub)
    return "\n".join(
        [
            method,
            headers.get("content-md5", ""),
            headers.get("content-type", ""),
            date,
            *(f"{name}:{value}" for name, value in amz),
            resource,
        ]
    )


def _check(secret: str, text: str, signature: str, access_key: str) -> None:
    expected = base64.b64encode(
        hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()
    )
    if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
        raise SignatureDoesNotMatch(
            AWSAccessKeyId=access_key, StringToSign=text, SignatureProvided=signature
        )


def verify_header(
    header: str,
    method: str,
    raw_path: str,
    query,
    headers: Mapping[str, str],
    secrets: Mapping[str, str],
    *,
    now: datetime,
) -> str:
    """Check ``Authorization: AWS <key>:<signature>``; return the access key."""
    access_key, sep, signature = header.strip()[4:].strip().rpartition(":")
    if not sep or not access_key:
        raise InvalidArgument("the AWS authorization header is malformed")
    date = headers.get("x-amz-date") or headers.get("date")
    when = None
    if date:
        try:
            when = parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError):
            when = None
    if when is None:
        raise AccessDenied(
            "AWS authentication requires a valid Date or x-amz-date header"
        )
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if abs(now - when) > MAX_SKEW:
        raise RequestTimeTooSkewed(RequestTime=date)
    secret = secrets.get(access_key)
    if secret is None:
        raise InvalidAccessKeyId(AWSAccessKeyId=access_key)
    # With x-amz-date, the Date line is empty (x-amz-date is signed as a header).
    signed_date = "" if "x-amz-date" in headers else headers.get("date", "")
    text = string_to_sign(method, raw_path, query, headers, signed_date)
    _check(secret, text, signature, access_key)
    return access_key


def verify_query(
    params: Mapping[str, str],
    method: str,
    raw_path: str,
    query,
    headers: Mapping[str, str],
    secrets: Mapping[str, str],
    *,
    now: datetime,
) -> str:
    """Check a SigV2 presigned query string; return the access key."""
    access_key = params.get("AWSAccessKeyId", "")
    signature = params.get("Signature", "")
    expires_text = params.get("Expires", "")
    if not access_key or not signature or not expires_text:
        raise AccessDenied(
            "Query-string authentication requires the Signature, Expires and "
            "AWSAccessKeyId parameters"
        )
    try:
        expires = datetime.fromtimestamp(int(expires_text), UTC)
    except (ValueError, OverflowError, OSError):
        raise AccessDenied("Expires must be a number of seconds since 1970") from None
    if now > expires:
        raise AccessDenied(
            "Request has expired",
            Expires=expires.isoformat(),
            ServerTime=now.isoformat(),
        )
    secret = secrets.get(access_key)
    if secret is None:
        raise InvalidAccessKeyId(AWSAccessKeyId=access_key)
    text = string_to_sign(method, raw_path, query, headers, expires_text)
    _check(secret, text, signature, access_key)
    return access_key
