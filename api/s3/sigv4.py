"""AWS Signature Version 4 verification, in the Authorization header or in a
presigned query string (and, for the clients that still use it, Version 2:
see :mod:`.sigv2`).

:class:`Verifier` rebuilds the canonical request from what arrived (the raw
request target as the client sent it, the headers it says it signed), derives
the signing key from the access key's secret, and compares signatures in
constant time. Verification never trusts anything the signature does not
cover: unsigned ``x-amz-*`` headers are refused, the credential scope must
name this service's region, the request time must be within 15 minutes of
ours (or, presigned, inside its 1 second .. 7 day validity).

The payload is checked later, while it streams (see :mod:`.payload`): the
result of verification carries the ``x-amz-content-sha256`` value and, for
``aws-chunked`` bodies, a :class:`ChunkSigner` seeded with the request
signature to check each chunk's signature.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote

from blobstore_api.s3 import sigv2
from blobstore_api.s3.errors import AccessDenied
from blobstore_api.s3.errors import AuthorizationHeaderMalformed
from blobstore_api.s3.errors import AuthorizationQueryParametersError
from blobstore_api.s3.errors import InvalidAccessKeyId
from blobstore_api.s3.errors import InvalidArgument
from blobstore_api.s3.errors import InvalidRequest
from blobstore_api.s3.errors import RequestTimeTooSkewed
from blobstore_api.s3.errors import SignatureDoesNotMatch

__all__ = [
    "ALGORITHM",
    "STREAMING_PAYLOADS",
    "STREAMING_SIGNED",
    "STREAMING_SIGNED_TRAILER",
    "STREAMING_UNSIGNED_TRAILER",
    "UNSIGNED_PAYLOAD",
    "ChunkSigner",
    "Credential",
    "HttpRequest",
    "Identity",
    "Verifier",
    "signing_key",
]

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_PAYLOADS = frozenset(
    {STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER}
)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

MAX_SKEW = timedelta(minutes=15)
MAX_EXPIRES = 7 * 24 * 3600

_HEX64 = re.compile(r"[0-9a-f]{64}")
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_PRESIGN_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)


@dataclass(frozen=True, slots=True)
class Credential:
    """An access key, its secret, and the owner its requests act as."""

    access_key: str
    secret_key: str = field(repr=False)
    owner: str


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What the signature covers, as it arrived.

    :param raw_path: the path exactly as the client sent it (percent-encoded).
    :param path: the decoded path.
    :param query: the decoded query parameters, in order (blank values kept).
    :param headers: lowercase header names → values.
    """

    method: str
    raw_path: str
    path: str
    query: Sequence[tuple[str, str]]
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified request: who sent it and how its payload must be checked."""

    credential: Credential
    payload_hash: str
    chunk_signer: ChunkSigner | None = None

    @property
    def owner(self) -> str:
        return self.credential.owner


def signing_key(secret: str, date: str, region: str, service: str = "s3") -> bytes:
    """The SigV4 signing key for *date* (``YYYYMMDD``) and *region*."""
    key = _hmac(("AWS4" + secret).encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ChunkSigner:
    """Expected signatures of an ``aws-chunked`` body's chunks and trailer.

    Each chunk's signature covers its data and the previous signature (the
    request's signature seeds the chain), so chunks cannot be dropped,
    reordered or replaced.
    """

    def __init__(self, key: bytes, amz_date: str, scope: str, seed: str) -> None:
        self._key = key
        self._amz_date = amz_date
        self._scope = scope
        self.previous = seed

    def _sign(self, kind: str, digest: str, extra: str | None) -> str:
        lines = [kind, self._amz_date, self._scope, self.previous]
        if extra is not None:
            lines.append(extra)
        lines.append(digest)
        signature = hmac.new(
            self._key, "\n".join(lines).encode(), hashlib.sha256
        ).hexdigest()
        self.previous = signature
        return signature

    def chunk(self, data_sha256: str) -> str:
        """The signature the next chunk (with this data digest) must carry."""
        return self._sign("AWS4-HMAC-SHA256-PAYLOAD", data_sha256, EMPTY_SHA256)

    def trailer(self, trailer_sha256: str) -> str:
        """The signature the trailing headers (with this digest) must carry."""
        return self._sign("AWS4-HMAC-SHA256-TRAILER", trailer_sha256, None)


def uri_encode(value: str, safe: str = "") -> str:
    """SigV4 URI encoding: everything but ``A-Za-z0-9-._~`` (and *safe*) as
    ``%XY`` with uppercase hex, over UTF-8."""
    return quote(value, safe=safe)


def canonical_query(query: Sequence[tuple[str, str]], skip: str | None = None) -> str:
    pairs = sorted((uri_encode(k), uri_encode(v)) for k, v in query if k != skip)
    return "&".join(f"{k}={v}" for k, v in pairs)


def canonical_request(
    request: HttpRequest,
    canonical_uri: str,
    signed_headers: Sequence[str],
    payload_hash: str,
    skip_query: str | None = None,
) -> str:
    headers = "".join(
        f"{name}:{' '.join(request.headers.get(name, '').split())}\n"
        for name in signed_headers
    )
    return "\n".join(
        [
            request.method,
            canonical_uri,
            canonical_query(request.query, skip_query),
            headers,
            ";".join(signed_headers),
            payload_hash,
        ]
    )


def _parse_amz_date(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, _AMZ_DATE).replace(tzinfo=UTC)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _Claim:
    """What a request claims about its signature, before it is checked."""

    access_key: str
    date: str
    region: str
    service: str
    terminal: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str
    payload_hash: str
    presigned: bool

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{self.terminal}"


class Verifier:
    """Checks SigV4 signatures against a set of credentials for one region."""

    def __init__(self, credentials: Sequence[Credential], region: str) -> None:
        self._credentials = {c.access_key: c for c in credentials}
        self.region = region

    def verify(self, request: HttpRequest, now: datetime) -> Identity:
        """Authenticate *request* at time *now*; raise the S3 error S3 would."""
        query = dict(request.query)
        header = request.headers.get("authorization")
        presigned = "X-Amz-Algorithm" in query or "X-Amz-Signature" in query
        if header is not None and presigned:
            raise InvalidArgument(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query "
                "parameter or the Authorization header should be specified"
            )
        if header is not None and header.startswith("AWS "):
            return self._v2(
                sigv2.verify_header(header, *self._v2_args(request), now=now)
            )
        if header is not None:
            claim = self._header_claim(header, request, now)
        elif presigned:
            claim = self._query_claim(query, request, now)
        elif "AWSAccessKeyId" in query or "Signature" in query:
            return self._v2(sigv2.verify_query(query, *self._v2_args(request), now=now))
        else:
            raise AccessDenied("Anonymous access is not allowed; sign your requests.")
        return self._check(claim, request)

    def _v2_args(self, request: HttpRequest) -> tuple:
        secrets = {k: c.secret_key for k, c in self._credentials.items()}
        return (
            request.method,
            request.raw_path,
            request.query,
            request.headers,
            secrets,
        )

    def _v2(self, access_key: str) -> Identity:
        # SigV2 signs no payload hash: the body is taken as unsigned.
        return Identity(self._credentials[access_key], UNSIGNED_PAYLOAD)

    # -- what the request claims ---------------------------------------------

    def _header_claim(self, header: str, request: HttpRequest, now: datetime) -> _Claim:
        algorithm, _, rest = header.strip().partition(" ")
        if algorithm != ALGORITHM:
            raise InvalidArgument(f"Unsupported Authorization Type {algorithm!r}")
        fields: dict[str, str] = {}
        for part in rest.split(","):
            name, sep, value = part.strip().partition("=")
            if not sep:
                raise AuthorizationHeaderMalformed(
                    f"the authorization header component {part.strip()!r} is malformed"
                )
            fields[name.strip()] = value.strip()
        missing = [
            f for f in ("Credential", "SignedHeaders", "Signature") if f not in fields
        ]
        if missing:
            raise AuthorizationHeaderMalformed(
                f"the authorization header is missing {', '.join(missing)}"
            )
        amz_date = request.headers.get("x-amz-date")
        if amz_date is None and "date" in request.headers:
            amz_date = _http_date_as_amz(request.headers["date"])
        when = _parse_amz_date(amz_date) if amz_date else None
        if when is None:
            raise AccessDenied(
                "AWS authentication requires a valid Date or x-amz-date header"
            )
        if abs(now - when) > MAX_SKEW:
            raise RequestTimeTooSkewed(
                RequestTime=amz_date, ServerTime=now.strftime(_AMZ_DATE)
            )
        payload = request.headers.get("x-amz-content-sha256")
        if payload is None:
            raise InvalidRequest(
                "Missing required header for this request: x-amz-content-sha256"
            )
        _check_payload_hash(payload)
        claim = self._claim(
            fields["Credential"],
            fields["SignedHeaders"],
            fields["Signature"],
            amz_date,
            payload,
            presigned=False,
            malformed=AuthorizationHeaderMalformed,
        )
        unsigned = sorted(
            name
            for name in request.headers
            if name.startswith("x-amz-") and name not in claim.signed_headers
        )
        if unsigned:
            raise AccessDenied(
                "There were headers present in the request which were not signed",
                HeadersNotSigned=", ".join(unsigned),
            )
        return claim

    def _query_claim(
        self, query: Mapping[str, str], request: HttpRequest, now: datetime
    ) -> _Claim:
        missing = [p for p in _PRESIGN_PARAMS if p not in query]
        if missing:
            raise AuthorizationQueryParametersError(
                "Query-string authentication version 4 requires the X-Amz-Algorithm, "
                "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, "
                f"and X-Amz-Expires parameters (missing {', '.join(missing)})"
            )
        if query["X-Amz-Algorithm"] != ALGORITHM:
            raise AuthorizationQueryParametersError(
                f"X-Amz-Algorithm only supports {ALGORITHM!r}"
            )
        amz_date = query["X-Amz-Date"]
        when = _parse_amz_date(amz_date)
        if when is None:
            raise AccessDenied("X-Amz-Date must be in the ISO8601 Long Format")
        expires_text = query["X-Amz-Expires"]
        try:
            expires = int(expires_text)
        except ValueError:
            raise AccessDenied("X-Amz-Expires should be a number") from None
        if expires <= 0:
            raise AccessDenied("X-Amz-Expires must be positive")
        if expires > MAX_EXPIRES:
            raise AccessDenied(
                "X-Amz-Expires must be less than a week (in seconds) that is 604800"
            )
        if when - now > MAX_SKEW:
            raise AccessDenied("Request is not valid yet")
        if now > when + timedelta(seconds=expires):
            raise AccessDenied(
                "Request has expired",
                Expires=(when + timedelta(seconds=expires)).strftime(_AMZ_DATE),
                ServerTime=now.strftime(_AMZ_DATE),
            )
        payload = request.headers.get("x-amz-content-sha256", UNSIGNED_PAYLOAD)
        _check_payload_hash(payload)
        return self._claim(
            query["X-Amz-Credential"],
            query["X-Amz-SignedHeaders"],
            query["X-Amz-Signature"],
            amz_date,
            payload,
            presigned=True,
            malformed=AuthorizationQueryParametersError,
        )

    def _claim(
        self,
        credential: str,
        signed_headers: str,
        signature: str,
        amz_date: str,
        payload: str,
        *,
        presigned: bool,
        malformed: type,
    ) -> _Claim:
        parts = credential.rsplit("/", 4)
        if len(parts) != 5 or not parts[0]:
            raise malformed(
                f"the Credential {credential!r} must be "
                "<access key>/<date>/<region>/s3/aws4_request"
            )
        access_key, date, region, service, terminal = parts
        if date != amz_date[:8]:
            raise malformed(
                f"Invalid credential date {date!r}: it is not the date of the "
                f"request ({amz_date[:8]!r})"
            )
        if region != self.region:
            raise malformed(
                f"the region {region!r} is wrong; expecting {self.region!r}",
                Region=self.region,
            )
        if service != "s3":
            raise malformed(f"the service {service!r} is wrong; expecting 's3'")
        if terminal != "aws4_request":
            raise malformed(
                f"the credential terminator {terminal!r} is wrong; "
                "expecting 'aws4_request'"
            )
        names = tuple(signed_headers.split(";"))
        if "host" not in names or list(names) != sorted(set(names)):
            raise malformed(
                "SignedHeaders must be sorted, lowercase, unique and include host"
            )
        return _Claim(
            access_key,
            date,
            region,
            service,
            terminal,
            names,
            signature,
            amz_date,
            payload,
            presigned,
        )

    # -- the check itself ------------------------------------------------------

    def _check(self, claim: _Claim, request: HttpRequest) -> Identity:
        credential = self._credentials.get(claim.access_key)
        if credential is None:
            raise InvalidAccessKeyId(AWSAccessKeyId=claim.access_key)
        provided = claim.signature.lower()
        if not _HEX64.fullmatch(provided):
            raise SignatureDoesNotMatch(
                "The signature is not 64 hexadecimal digits",
                AWSAccessKeyId=claim.access_key,
                SignatureProvided=claim.signature,
            )
        key = signing_key(credential.secret_key, claim.date, claim.region)
        skip = "X-Amz-Signature" if claim.presigned else None
        # The canonical URI is the URI-encoded path; clients that encode
        # differently from the rules still sign the path they sent.
        uris = [uri_encode(request.path, safe="/")]
        if request.raw_path != uris[0]:
            uris.append(request.raw_path)
        matched = False
        first_request = first_string = ""
        for uri in uris:
            canonical = canonical_request(
                request, uri, claim.signed_headers, claim.payload_hash, skip
            )
            string_to_sign = "\n".join(
                [
                    ALGORITHM,
                    claim.amz_date,
                    claim.scope,
                    _sha256_hex(canonical.encode()),
                ]
            )
            expected = hmac.new(
                key, string_to_sign.encode(), hashlib.sha256
            ).hexdigest()
            # Compare every candidate (constant time each), not just until one
            # matches, so timing reveals nothing about which one did.
            matched |= hmac.compare_digest(expected, provided)
            if not first_request:
                first_request, first_string = canonical, string_to_sign
        if not matched:
            raise SignatureDoesNotMatch(
                AWSAccessKeyId=claim.access_key,
                StringToSign=first_string,
                SignatureProvided=claim.signature,
                CanonicalRequest=first_request,
            )
        signer = None
        if claim.payload_hash in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER):
            signer = ChunkSigner(key, claim.amz_date, claim.scope, provided)
        return Identity(credential, claim.payload_hash, signer)


def _check_payload_hash(value: str) -> None:
    if value in (UNSIGNED_PAYLOAD, *STREAMING_PAYLOADS) or _HEX64.fullmatch(value):
        return
    if value.startswith("STREAMING-AWS4-ECDSA"):
        raise InvalidRequest("SigV4a (ECDSA) signing is not supported")
    raise InvalidArgument(
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-* value, "
        "or a valid sha256 value.",
        ArgumentName="x-amz-content-sha256",
        ArgumentValue=value,
    )


def _http_date_as_amz(value: str) -> str | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime(_AMZ_DATE)
