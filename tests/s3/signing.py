"""In-process S3 requests signed by botocore's own signer, for unit tests.

:class:`Api` serves the façade through Falcon's TestClient. Requests are
signed with botocore (``S3SigV4Auth`` / ``S3SigV4QueryAuth``), so a valid
request is valid by the reference client's definition; tests then tamper with
what is sent to check each rejection. ``aws_chunked`` builds streaming bodies
from the AWS specification (independently of the server's decoder).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.auth import S3SigV4Auth
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from falcon import testing

from blobstore import Store
from blobstore.backends.local import LocalBackend
from blobstore.catalog.sqlite import SQLiteCatalog
from blobstore_api.s3 import create_s3_app

__all__ = ["ACCESS_KEY", "SECRET_KEY", "Api", "aws_chunked"]

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
OTHER_KEY = "AKIDOTHER"
OTHER_SECRET = "other-secret"
HOST = "s3.test"


class _Signer(S3SigV4Auth):
    """botocore's S3 signer, with the payload hash value chosen by the test."""

    def __init__(self, credentials, region: str, payload: str | None) -> None:
        super().__init__(credentials, "s3", region)
        self._payload = payload

    def payload(self, request):
        return self._payload if self._payload is not None else super().payload(request)


@dataclass
class Api:
    store: Store
    client: testing.TestClient
    #: Added to the real time the app sees (botocore signs with the real time).
    skew: timedelta = timedelta(0)

    @classmethod
    @contextmanager
    def create(cls, tmp: Path, **config: Any) -> Iterator[Api]:
        store = Store(SQLiteCatalog(tmp / "catalog.db"), LocalBackend(tmp / "blobs"))
        settings = {
            "credentials": [
                {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY},
                {"access_key": OTHER_KEY, "secret_key": OTHER_SECRET},
            ],
            **config,
        }
        api = cls(store, None)  # type: ignore[arg-type]
        app = create_s3_app(store, settings, clock=lambda: datetime.now(UTC) + api.skew)
        api.client = testing.TestClient(app)
        try:
            yield api
        finally:
            store.close()

    def request(
        self,
        method: str,
        path: str,
        query: str = "",
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        payload: str | None = None,
        access_key: str = ACCESS_KEY,
        secret_key: str = SECRET_KEY,
        region: str = "us-east-1",
        sign: bool = True,
        tamper: Callable[[dict[str, str]], None] | None = None,
        send_body: bytes | None = None,
    ) -> testing.Result:
        """Sign (unless *sign* is false) and send a request.

        :param path: the path as sent (percent-encoded).
        :param payload: the x-amz-content-sha256 value to sign (default: the
            body's SHA-256).
        :param tamper: edits the headers after signing.
        :param send_body: send this instead of the signed *body*.
        """
        if sign:
            sent = self.sign(
                method,
                path,
                query,
                body,
                headers,
                payload=payload,
                access_key=access_key,
                secret_key=secret_key,
                region=region,
            )
        else:
            sent = dict(headers or {})
        if tamper is not None:
            tamper(sent)
        return self.send(
            method, path, query, sent, body if send_body is None else send_body
        )

    def sign(
        self,
        method: str,
        path: str,
        query: str = "",
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        payload: str | None = None,
        access_key: str = ACCESS_KEY,
        secret_key: str = SECRET_KEY,
        region: str = "us-east-1",
    ) -> dict[str, str]:
        """The headers of the request, signed by botocore."""
        url = f"http://{HOST}{path}" + (f"?{query}" if query else "")
        request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
        _Signer(Credentials(access_key, secret_key), region, payload).add_auth(request)
        return dict(request.headers)

    def send(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> testing.Result:
        target = path + (f"?{query}" if query else "")
        return self.client.simulate_request(
            method,
            path=path,
            query_string=query,
            headers=headers,
            body=body,
            host=HOST,
            # What gunicorn passes: the request target exactly as sent.
            extras={"RAW_URI": target},
        )

    def presign(
        self,
        method: str,
        path: str,
        query: str = "",
        *,
        expires: int = 3600,
        access_key: str = ACCESS_KEY,
        secret_key: str = SECRET_KEY,
    ) -> tuple[str, str]:
        """A presigned (path, query) for *method* on *path*."""
        url = f"http://{HOST}{path}" + (f"?{query}" if query else "")
        request = AWSRequest(method=method, url=url)
        S3SigV4QueryAuth(
            Credentials(access_key, secret_key), "s3", "us-east-1", expires=expires
        ).add_auth(request)
        parts = urlsplit(request.url)
        return parts.path, parts.query


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str = "us-east-1") -> bytes:
    key = _hmac(("AWS4" + secret).encode(), date)
    for part in (region, "s3", "aws4_request"):
        key = _hmac(key, part)
    return key


def aws_chunked(
    data: bytes,
    chunk_size: int,
    *,
    seed: str | None = None,
    key: bytes | None = None,
    amz_date: str = "",
    scope: str = "",
    trailers: dict[str, str] | None = None,
) -> bytes:
    """*data* as an aws-chunked body: signed chunks when *seed* and *key* are
    given (the AWS "chunked upload" spec), else unsigned; with *trailers*
    after the last chunk (signed too, in the signed variant)."""
    empty = hashlib.sha256(b"").hexdigest()
    previous = seed
    out = []
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
    for chunk in [*chunks, b""]:
        header = f"{len(chunk):x}"
        if key is not None:
            to_sign = "\n".join(
                [
                    "AWS4-HMAC-SHA256-PAYLOAD",
                    amz_date,
                    scope,
                    previous or "",
                    empty,
                    hashlib.sha256(chunk).hexdigest(),
                ]
            )
            previous = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
            header += f";chunk-signature={previous}"
        out.append(header.encode() + b"\r\n")
        if chunk:
            out.append(chunk + b"\r\n")
    if trailers is None:
        out.append(b"\r\n")
        return b"".join(out)
    lines = "".join(f"{k}:{v}\n" for k, v in trailers.items())
    out.extend(f"{k}:{v}\r\n".encode() for k, v in trailers.items())
    if key is not None:
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256-TRAILER",
                amz_date,
                scope,
                previous or "",
                hashlib.sha256(lines.encode()).hexdigest(),
            ]
        )
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        out.append(f"x-amz-trailer-signature:{signature}\r\n".encode())
    out.append(b"\r\n")
    return b"".join(out)
