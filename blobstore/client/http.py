"""The client's HTTP: one pooled session, the bearer token, timeouts, and
retries where a retry is safe.

Built on ``requests`` (already a dependency through python-swiftclient, and
the HTTP library artifact stores most often already use): a ``Session``
pools keep-alive connections per host, streams bodies in both directions,
and is safe to share between the threads of a parallel upload when each
request is independent, as here.

**Retries.** Only requests whose repeat does no harm are retried: reads
(GET, HEAD), a PUT of a blob by its hash, a PUT of a part by its hash (the
server answers "already stored" to a repeat), a ref PUT or DELETE (a
DELETE resent after its answer was lost finds the ref gone: that 404 is
success), an upload's creation (a repeat makes one more upload, unused,
which expires) and its finish. They are retried on a connection failure, a
timeout and a 503, with exponential backoff and jitter (tenacity), for at
most ``Retry.total`` seconds in all. That also covers HTTP's keep-alive race
(RFC 9112 §9.3.1): the server closes an idle pooled connection just as a
request goes out on it. A body is re-sent from the start on each attempt,
so a request with a body takes it as a callable that makes a fresh one. A
POST of a blob streamed from something that cannot be read again is sent
once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
import tenacity

from blobstore import errors
from blobstore.client.errors import error_for

__all__ = ["Http", "Retry"]

log = logging.getLogger("blobstore.client")

#: A body, or a callable that makes a fresh one for each attempt.
Body = bytes | Callable[[], Any] | None


@dataclass(frozen=True)
class Retry:
    """How long and how often a safe request is retried."""

    #: Seconds, from the first attempt, after which no retry starts.
    total: float = 60.0
    attempts: int = 8
    #: First backoff in seconds; it doubles (with jitter) up to ``longest``.
    first: float = 0.25
    longest: float = 8.0


class _Transient(Exception):
    """A failure worth retrying; carries the error to raise if none is left."""

    def __init__(self, error: errors.BlobStoreError) -> None:
        super().__init__(str(error))
        self.error = error


class Http:
    """Requests to one service (``url``) with one token.

    :param timeout: seconds to wait for a connection and for each read.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 60.0,
        retry: Retry | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.retry = retry or Retry()
        self.session = session or requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        # Many threads of one upload share the pool: room for all of them.
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=32)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    @staticmethod
    def path(*segments: str) -> str:
        """A path of percent-encoded segments (a ref name keeps its ``/``).

        ``.`` and ``..`` segments are encoded too (``%2E``): sent as they
        are, the HTTP stack would resolve them, and ``a/../b`` would name
        ``b`` instead of being refused by the service.
        """
        parts = "/".join(quote(s, safe="/") for s in segments).split("/")
        return "/" + "/".join(
            p.replace(".", "%2E") if p in (".", "..") else p for p in parts
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        body: Body = None,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        safe: bool = False,
        ok: tuple[int, ...] = (200, 201, 204, 206),
        ok_when_resent: tuple[int, ...] = (),
        not_found: type[errors.NotFound] | None = None,
    ) -> requests.Response:
        """Send a request and return its answer when its status is in *ok*.

        :param safe: the request may be sent again (see the module docs).
        :param ok_when_resent: statuses that are success too when the request
            is a resend (a DELETE whose first answer was lost: 404).
        :param not_found: what a 404 without a body means (a HEAD's).
        :raises BlobStoreError: the class of the service's error answer;
            :class:`~blobstore.errors.Unavailable` when it cannot be reached.
        """
        what = f"{method} {path}"
        sent = 0

        def attempt() -> requests.Response:
            nonlocal sent
            sent += 1
            data = body() if callable(body) else body
            try:
                response = self.session.request(
                    method,
                    self.url + path,
                    params=params,
                    json=json,
                    data=data,
                    headers=headers,
                    stream=stream,
                    timeout=self.timeout,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise _Transient(
                    errors.Unavailable(f"{what}: cannot reach {self.url}: {exc}")
                ) from exc
            if response.status_code in ok or (
                sent > 1 and response.status_code in ok_when_resent
            ):
                return response
            error = error_for(response.status_code, _json(response), what, not_found)
            response.close()
            if isinstance(error, errors.Unavailable):
                raise _Transient(error)
            raise error

        if not safe:
            try:
                return attempt()
            except _Transient as exc:
                raise exc.error from None
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Transient),
            stop=tenacity.stop_after_delay(self.retry.total)
            | tenacity.stop_after_attempt(self.retry.attempts),
            wait=tenacity.wait_exponential_jitter(
                multiplier=self.retry.first,
                max=self.retry.longest,
                jitter=self.retry.first,
            ),
            before_sleep=lambda state: log.warning(
                "retrying %s (attempt %d): %s",
                what,
                state.attempt_number,
                state.outcome.exception() if state.outcome else "",
            ),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Transient as exc:
            raise exc.error from None


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
