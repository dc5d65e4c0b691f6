"""Coverage-guided fuzz targets (atheris / libFuzzer) for the parsers.

The hypothesis fuzzers (test_parsers.py, test_native_http.py,
test_s3_http.py) search input spaces shaped by their strategies; these
targets let libFuzzer mutate bytes towards new branches of the instrumented
code instead. Each target takes the fuzzer's ``data: bytes``, draws its
input with :class:`atheris.FuzzedDataProvider`, calls the same objects the
hypothesis fuzzers drive and asserts the same property: the value returned
is sound, or the one documented error is raised. Anything else (an
AssertionError, or an exception of another type) propagates, and libFuzzer
reports it as a crash with the input that caused it.

Run one with ``python -m tests.fuzz.atheris_run TARGET [libFuzzer args]``
(tests/fuzz/atheris_run.py); tests/fuzz/test_atheris.py runs each briefly.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import io
import json
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from urllib.parse import unquote

import atheris
import falcon.testing

from blobstore import Store
from blobstore.backends.local import LocalBackend
from blobstore.backends.memory import MemoryBackend
from blobstore.catalog.sqlite import SQLiteCatalog
from blobstore.errors import BadParams
from blobstore.hashing import hash_bytes
from blobstore.units import parse_duration
from blobstore.units import parse_size
from blobstore_api.app import create_app
from blobstore_api.ranges import RangeNotSatisfiable
from blobstore_api.ranges import parse_range
from blobstore_api.s3 import xml as s3xml
from blobstore_api.s3.chunked import AwsChunkedReader
from blobstore_api.s3.errors import S3Error
from blobstore_api.s3.multipart import _parse_parts
from blobstore_api.s3.objects import MAX_DELETE_KEYS
from blobstore_api.s3.objects import parse_delete
from blobstore_api.s3.sigv4 import STREAMING_SIGNED
from blobstore_api.s3.sigv4 import STREAMING_SIGNED_TRAILER
from blobstore_api.s3.sigv4 import STREAMING_UNSIGNED_TRAILER
from blobstore_api.s3.sigv4 import UNSIGNED_PAYLOAD
from blobstore_api.s3.sigv4 import ChunkSigner
from blobstore_api.s3.sigv4 import Credential
from blobstore_api.s3.sigv4 import HttpRequest
from blobstore_api.s3.sigv4 import Identity
from blobstore_api.s3.sigv4 import Verifier
from blobstore_api.s3.sigv4 import canonical_request
from blobstore_api.s3.sigv4 import signing_key
from blobstore_api.s3.sigv4 import uri_encode
from blobstore_api.s3.tokens import continuation_token
from blobstore_api.s3.tokens import resume_after
from tests.api.conftest import make_settings
from tests.api.conftest import make_store
from tests.fuzz.test_native_http import check as check_native
from tests.s3.signing import ACCESS_KEY
from tests.s3.signing import SECRET_KEY
from tests.s3.signing import aws_chunked

__all__ = ["TARGETS", "Target"]

Provider = atheris.FuzzedDataProvider


@dataclass(frozen=True)
class Target:
    """One fuzz target: *run* takes the fuzzer's bytes; *setup*, if any, runs
    once before fuzzing starts (stores, apps)."""

    name: str
    run: Callable[[bytes], None]
    setup: Callable[[], None] | None = None

    @property
    def doc(self) -> str:
        """The first paragraph of the target's docstring, on one line."""
        return " ".join((self.run.__doc__ or "").strip().split("\n\n")[0].split())


TARGETS: dict[str, Target] = {}


def target(setup: Callable[[], None] | None = None):
    def register(run: Callable[[bytes], None]) -> Callable[[bytes], None]:
        name = run.__name__.removeprefix("fuzz_")
        TARGETS[name] = Target(name, run, setup)
        return run

    return register


# -- drawing inputs ------------------------------------------------------------


def _text(
    fdp: Provider, pieces: Sequence[str] = (), parts: int = 8, *, surrogates=False
) -> str:
    """Up to *parts* pieces: some from *pieces* (tokens the parser looks
    for), the rest arbitrary text, so libFuzzer starts near the grammar."""
    out = []
    for _ in range(fdp.ConsumeIntInRange(0, parts)):
        if pieces and fdp.ConsumeBool():
            out.append(fdp.PickValueInList(list(pieces)))
        else:
            n = fdp.ConsumeIntInRange(0, 8)
            out.append(
                fdp.ConsumeUnicode(n)
                if surrogates
                else fdp.ConsumeUnicodeNoSurrogates(n)
            )
    return "".join(out)


def _one_of(fdp: Provider, choices: Sequence[str], pieces: Sequence[str] = ()) -> str:
    """One of *choices* (valid values), or arbitrary text."""
    if fdp.ConsumeBool():
        return fdp.PickValueInList(list(choices))
    return _text(fdp, pieces)


def _tempdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="blobstore-atheris-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _s3_refusal(exc: S3Error, codes: Sequence[str] | None = None) -> None:
    """*exc* is a documented S3 refusal: a 4xx status (and one of *codes*),
    and an error document that is XML with its Code."""
    assert exc.status[:1] == "4", (exc.code, exc.status)
    assert codes is None or exc.code in codes, (exc.code, exc.message)
    doc = ET.fromstring(s3xml.error(exc.code, exc.message, "/fuzz/k", "id", exc.fields))
    assert doc.tag == "Error" and doc.findtext("Code") == exc.code


# -- blobstore.units -----------------------------------------------------------

_UNIT_PIECES = [
    "8M",
    "1.5",
    "KiB",
    "k",
    "MB",
    "g",
    "GiB",
    "T",
    "b",
    "h",
    "30m",
    "ms",
    "us",
    "s",
    "d",
    "w",
    "-",
    "+",
    "1e9",
    " ",
    "0",
    ".",
    "inf",
    "nan",
    "_",
    "1",
    "9" * 30,
]


@target()
def fuzz_units(data: bytes) -> None:
    """parse_size / parse_duration: a value, or ValueError saying "must be"."""
    fdp = Provider(data)
    kind = fdp.ConsumeIntInRange(0, 5)
    value: Any
    if kind == 0:
        value = _text(fdp, _UNIT_PIECES)
    elif kind == 1:
        value = fdp.ConsumeInt(10)
    elif kind == 2:
        value = fdp.ConsumeFloat()
    elif kind == 3:
        value = fdp.ConsumeBool()
    elif kind == 4:
        value = None
    else:
        value = fdp.ConsumeBytes(8)
    try:
        size = parse_size(value)
    except ValueError as exc:
        assert "must be" in str(exc), exc
    else:
        assert isinstance(size, int) and not isinstance(size, bool) and size >= 0, size
    try:
        duration = parse_duration(value)
    except ValueError as exc:
        assert "must be" in str(exc), exc
    else:
        assert isinstance(duration, timedelta) and duration >= timedelta(0), duration


# -- blobstore_api.ranges ------------------------------------------------------

_RANGE_PIECES = [
    "bytes=",
    "bytes",
    "=",
    "-",
    ",",
    " ",
    "0",
    "1",
    "9",
    "99999999999999999999",
    "\u00b9",
    "\u0663",
    "items=",
    "\t",
]


@target()
def fuzz_range(data: bytes) -> None:
    """parse_range: None, a range inside the entity, or RangeNotSatisfiable."""
    fdp = Provider(data)
    size = fdp.ConsumeIntInRange(0, 2**40)
    kind = fdp.ConsumeIntInRange(0, 2)
    if kind == 0:
        header = None
    elif kind == 1:
        header = _text(fdp, _RANGE_PIECES, 12)
    else:

        def end() -> str:
            if fdp.ConsumeBool():
                return str(fdp.ConsumeIntInRange(0, 2**70))
            return _text(fdp, _RANGE_PIECES, 2)

        header = f"bytes={end()}-{end()}"
    try:
        selected = parse_range(header, size)
    except RangeNotSatisfiable:
        return
    if selected is not None:
        assert 0 <= selected.start <= selected.end < size, (header, size, selected)
        assert selected.length == selected.end - selected.start + 1


# -- blobstore_api.s3.tokens ---------------------------------------------------


@target()
def fuzz_tokens(data: bytes) -> None:
    """S3 continuation tokens: ours round-trip, others are InvalidArgument."""
    fdp = Provider(data)
    name = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 64))
    assert resume_after(continuation_token(name)) == name
    garbage = _text(
        fdp,
        ["=", "==", "-", "_", "+", "/", "A", "AA", "%3D", "\u00e9"],
        12,
        surrogates=True,
    )
    try:
        resume_after(garbage)
    except S3Error as exc:  # any other type propagates: a crash
        _s3_refusal(exc, ["InvalidArgument"])


# -- Store.put_ref (ref names) -------------------------------------------------

_REFS: dict[str, Any] = {}


def _setup_refs() -> None:
    tmp = _tempdir()
    store = Store(SQLiteCatalog(str(tmp / "c.db")), MemoryBackend())
    atexit.register(store.close)
    _REFS["store"] = store
    _REFS["target"] = store.put(io.BytesIO(b"target")).hash


@target(setup=_setup_refs)
def fuzz_ref_names(data: bytes) -> None:
    """Store.put_ref: the name is stored exactly, or refused with BadParams."""
    fdp = Provider(data)
    name = _text(
        fdp,
        [
            "/",
            ".",
            "..",
            "a",
            "releases",
            "1.0",
            "\x00",
            "\x1f",
            "\x7f",
            "\u00e9",
            "\u2028",
            "\ufeff",
            "%2F",
            " ",
            "\\",
        ],
        16,
        surrogates=True,
    )
    if fdp.ConsumeBool():  # around the length limit
        name *= fdp.ConsumeIntInRange(1, 600)
    store, blob = _REFS["store"], _REFS["target"]
    try:
        store.put_ref(name, blob)
    except BadParams:
        return
    assert store.get_ref(name).hash == blob, name
    store.delete_ref(name)


# -- blobstore_api.s3.chunked --------------------------------------------------

_AMZ_DATE = "20260101T000000Z"
_SCOPE = "20260101/us-east-1/s3/aws4_request"
_KEY = signing_key(SECRET_KEY, "20260101", "us-east-1")
_SEED = "0" * 64
_TRAILER_NAMES = [
    "x-amz-checksum-crc32",
    "x-amz-checksum-sha256",
    "x-amz-checksum-junk",
]


@target()
def fuzz_aws_chunked(data: bytes) -> None:
    """AwsChunkedReader: the data exactly, or IncompleteBody / InvalidRequest
    / SignatureDoesNotMatch, for framed bodies cut or altered, and garbage."""
    fdp = Provider(data)
    signed, trailer = fdp.ConsumeBool(), fdp.ConsumeBool()
    mode = fdp.ConsumeIntInRange(0, 2)  # 0 raw, 1 framed intact, 2 framed altered
    read_size = fdp.ConsumeIntInRange(1, 70_000)
    payload = b""
    trailers: dict[str, str] = {}
    if mode == 0:
        decoded_length = fdp.ConsumeIntInRange(0, 512)
        body = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 1024))
    else:
        payload = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 300))
        chunk = fdp.ConsumeIntInRange(1, 64)
        if trailer:
            for _ in range(fdp.ConsumeIntInRange(0, 2)):
                value = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 16))
                value = "".join(c for c in value if " " <= c <= "~").strip()
                trailers[fdp.PickValueInList(_TRAILER_NAMES)] = value
        body = aws_chunked(
            payload,
            chunk,
            seed=_SEED if signed else None,
            key=_KEY if signed else None,
            amz_date=_AMZ_DATE,
            scope=_SCOPE,
            trailers=trailers if trailer else None,
        )
        decoded_length = len(payload)
        if mode == 2:
            body = _alter(fdp, body)
            if fdp.ConsumeBool():
                decoded_length = fdp.ConsumeIntInRange(0, 400)
    signer = ChunkSigner(_KEY, _AMZ_DATE, _SCOPE, _SEED) if signed else None
    reader = AwsChunkedReader(io.BytesIO(body), decoded_length, signer, trailer=trailer)
    out = bytearray()
    try:
        while piece := reader.read(read_size):
            out += piece
    except S3Error as exc:  # any other type propagates: a crash
        assert mode != 1, f"an intact body was refused: {exc!r}"
        _s3_refusal(exc, ["IncompleteBody", "InvalidRequest", "SignatureDoesNotMatch"])
        return
    assert len(out) == decoded_length, (len(out), decoded_length)
    if mode == 1:
        assert bytes(out) == payload
        assert reader.trailers == trailers, (reader.trailers, trailers)


def _alter(fdp: Provider, body: bytes) -> bytes:
    """*body* with a few bytes cut, replaced or inserted."""
    for _ in range(fdp.ConsumeIntInRange(1, 3)):
        at = fdp.ConsumeIntInRange(0, len(body))
        op = fdp.ConsumeIntInRange(0, 3)
        if op == 0:
            body = body[:at] + body[at + 1 :]
        elif op == 1:
            body = body[:at] + fdp.ConsumeBytes(1) + body[at + 1 :]
        elif op == 2:
            body = body[:at] + fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 8)) + body[at:]
        else:
            body = body[:at]
    return body


# -- S3 XML request bodies -----------------------------------------------------

_PROLOGUES = [
    "",
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<?xml version="1.0" encoding="latin-1"?>',
    '<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>',
    '<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
]
_XML_TEXT = [
    "1",
    "0",
    "-1",
    "10000",
    "10001",
    " 2 ",
    "\u0661",
    "9" * 5000,
    '"d41d8cd98f00b204e9800998ecf8427e"',
    "&amp;",
    "&a;",
    "&x;",
    "&#0;",
    "&#1;",
    "<",
    "]]>",
    "true",
    "TRUE",
    "false",
    "key",
    "dir/",
    "\u00e9",
    "\ufffe",
]


def _xml_body(
    fdp: Provider, root: str, entries: Sequence[str], fields: Sequence[str]
) -> bytes:
    """An XML document drawn near the schema: *root* holding *entries*
    elements, each holding *fields* with text, with namespaces, junk,
    unescaped text and unclosed elements mixed in."""
    if fdp.ConsumeIntInRange(0, 7) == 0:
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 512))
    names = [*entries, *fields, "Junk"]
    prefix = fdp.PickValueInList(["", "", "s3:"])
    xmlns = fdp.PickValueInList(
        [
            "",
            f' xmlns="{s3xml.NAMESPACE}"',
            ' xmlns="urn:other"',
            f' xmlns:s3="{s3xml.NAMESPACE}"',
        ]
    )
    out = [fdp.PickValueInList(_PROLOGUES)]
    out.append(f"<{prefix}{fdp.PickValueInList([root, root, 'Other'])}{xmlns}>")
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        entry = fdp.PickValueInList(names)
        out.append(f"<{prefix}{entry}>")
        for _ in range(fdp.ConsumeIntInRange(0, 4)):
            field = fdp.PickValueInList(names)
            text = _text(fdp, _XML_TEXT, 3)
            if fdp.ConsumeBool():
                text = text.replace("&", "&amp;").replace("<", "&lt;")
            out.append(f"<{prefix}{field}>{text}</{prefix}{field}>")
        if fdp.ConsumeIntInRange(0, 9):  # mostly closed
            out.append(f"</{prefix}{entry}>")
    if fdp.ConsumeBool():
        out.append(f"<{entries[0]}>" * fdp.ConsumeIntInRange(1, 5000))  # deep, unclosed
    if fdp.ConsumeIntInRange(0, 9):
        out.append(f"</{prefix}{root}>")
    encoding = fdp.PickValueInList(["utf-8", "utf-8", "utf-16", "latin-1"])
    return "".join(out).encode(encoding, "replace")


@target()
def fuzz_complete_multipart_xml(data: bytes) -> None:
    """CompleteMultipartUpload bodies: parts, or MalformedXML."""
    fdp = Provider(data)
    body = _xml_body(
        fdp,
        "CompleteMultipartUpload",
        ["Part"],
        ["PartNumber", "ETag", "ChecksumCRC32"],
    )
    try:
        parts = _parse_parts(body)
    except S3Error as exc:  # any other type propagates: a crash
        _s3_refusal(exc, ["MalformedXML"])
        return
    assert parts, body
    for number, etag in parts:
        assert isinstance(number, int) and isinstance(etag, str), (number, etag)


@target()
def fuzz_delete_objects_xml(data: bytes) -> None:
    """DeleteObjects bodies: 1..1000 (key, version) pairs, or MalformedXML."""
    fdp = Provider(data)
    body = _xml_body(fdp, "Delete", ["Object", "Quiet"], ["Key", "VersionId", "Quiet"])
    try:
        quiet, requests = parse_delete(body)
    except S3Error as exc:  # any other type propagates: a crash
        _s3_refusal(exc, ["MalformedXML"])
        return
    assert isinstance(quiet, bool)
    assert 1 <= len(requests) <= MAX_DELETE_KEYS, len(requests)
    for key, version in requests:
        assert isinstance(key, str) and (version is None or isinstance(version, str))


# -- SigV4 / SigV2 verification ------------------------------------------------

_NOW = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
_VERIFIER = Verifier([Credential(ACCESS_KEY, SECRET_KEY, "fuzz-owner")], "us-east-1")
_AMZ_DATES = [
    "20260101T000000Z",
    "20251231T230000Z",
    "20260102T000000Z",
    "20260101T0000Z",
    "",
]
_HTTP_DATES = [
    "Thu, 01 Jan 2026 00:00:00 GMT",
    "Thu, 01 Jan 2026 00:00:00 +0000",
    "Thu, 01 Jan 2026 00:00:00",
    "Mon, 01 Jan 1990 00:00:00 GMT",
    "01 Jan 2026",
    "Thu, 32 Jan 2026 00:00:00 GMT",
]
_PAYLOADS = [
    UNSIGNED_PAYLOAD,
    STREAMING_SIGNED,
    STREAMING_SIGNED_TRAILER,
    STREAMING_UNSIGNED_TRAILER,
    "0" * 64,
    "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
]
_SIGNED_HEADERS = [
    "host;x-amz-content-sha256;x-amz-date",
    "host",
    "host;x-amz-date",
    "Host",
    "x-amz-date;host",
    "",
]
_CRED_PIECES = [
    ACCESS_KEY,
    "20260101",
    "us-east-1",
    "s3",
    "aws4_request",
    "/",
    "eu-west-1",
    "iam",
]
_PATH_PIECES = [
    "/",
    "fuzz",
    "obj",
    "%2F",
    "%2e",
    "..",
    "%",
    "%zz",
    " ",
    "+",
    "\u00e9",
    "~",
]
_QUERY_KEYS = [
    "uploads",
    "uploadId",
    "partNumber",
    "delete",
    "acl",
    "versionId",
    "list-type",
    "response-content-type",
    "X-Amz-Algorithm",
    "X-Amz-Signature",
]


def _request(
    fdp: Provider, headers: dict[str, str], query: list[tuple[str, str]]
) -> HttpRequest:
    raw_path = "/" + _text(fdp, _PATH_PIECES, 6)
    for _ in range(fdp.ConsumeIntInRange(0, 3)):
        query.append(
            (fdp.PickValueInList(_QUERY_KEYS), _text(fdp, ["", "1", "url"], 2))
        )
    headers.setdefault("host", "s3.test")
    for _ in range(fdp.ConsumeIntInRange(0, 2)):
        name = fdp.PickValueInList(
            ["x-amz-meta-k", "content-md5", "content-type", "x-amz-acl", "range"]
        )
        headers[name] = _text(fdp, ["", "a", " "], 2)
    return HttpRequest(
        fdp.PickValueInList(["GET", "PUT", "HEAD", "DELETE", "POST"]),
        raw_path,
        unquote(raw_path),
        tuple(query),
        headers,
    )


def _verify(request: HttpRequest) -> None:
    """Verifier.verify: an Identity of our credential, or an S3 refusal."""
    try:
        identity = _VERIFIER.verify(request, _NOW)
    except S3Error as exc:  # any other type propagates: a crash
        _s3_refusal(exc)
        return
    assert isinstance(identity, Identity) and identity.owner == "fuzz-owner"


def _sign_v4(
    request: HttpRequest, scope: str, signed_headers: str, payload: str, skip=None
) -> str:
    """The signature a client holding the secret would send (so the fuzzer
    also reaches what follows a match)."""
    canonical = canonical_request(
        request,
        uri_encode(request.path, safe="/"),
        signed_headers.split(";"),
        payload,
        skip,
    )
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            _AMZ_DATE,
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    return hmac.new(_KEY, to_sign.encode(), hashlib.sha256).hexdigest()


@target()
def fuzz_sigv4_header(data: bytes) -> None:
    """SigV4 Authorization headers: verified, or an S3Error 4xx."""
    fdp = Provider(data)
    headers: dict[str, str] = {}
    if fdp.ConsumeBool():
        headers["x-amz-date"] = _one_of(fdp, _AMZ_DATES, ["2026", "T", "Z", "0"])
    if fdp.ConsumeBool():
        headers["date"] = _one_of(fdp, _HTTP_DATES)
    if fdp.ConsumeIntInRange(0, 4):
        headers["x-amz-content-sha256"] = _one_of(
            fdp, _PAYLOADS, ["0", "STREAMING-", "-"]
        )
    kind = fdp.ConsumeIntInRange(0, 2)
    credential = "/".join(_one_of(fdp, [piece]) for piece in _CRED_PIECES[:5])
    signed_headers = _one_of(fdp, _SIGNED_HEADERS, ["host", ";", "x-amz-date", "A"])
    signature = _one_of(fdp, ["0" * 64, "F" * 64, "0" * 63], ["0", "f", "g"])
    request = _request(fdp, headers, [])
    if kind == 0:
        headers["authorization"] = _text(
            fdp,
            [
                "AWS4-HMAC-SHA256 ",
                "AWS4-HMAC-SHA256",
                "Credential=",
                "SignedHeaders=",
                "Signature=",
                ",",
                ", ",
                "=",
                credential,
                signed_headers,
                signature,
            ],
            12,
        )
    else:
        if kind == 2:
            payload = headers.get("x-amz-content-sha256", "")
            signature = _sign_v4(request, _SCOPE, signed_headers, payload)
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={credential}, "
            f"SignedHeaders={signed_headers}, Signature={signature}"
        )
    _verify(request)


@target()
def fuzz_sigv4_query(data: bytes) -> None:
    """SigV4 presigned query strings: verified, or an S3Error 4xx."""
    fdp = Provider(data)
    params = {
        "X-Amz-Algorithm": ["AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"],
        "X-Amz-Credential": [
            "/".join([ACCESS_KEY, *_SCOPE.split("/")]),
            f"{ACCESS_KEY}/2026",
        ],
        "X-Amz-Date": _AMZ_DATES,
        "X-Amz-Expires": ["3600", "604800", "604801", "0", "-1", "1", "1e3", "9" * 30],
        "X-Amz-SignedHeaders": _SIGNED_HEADERS,
        "X-Amz-Signature": ["0" * 64],
    }
    query = [
        (name, _one_of(fdp, values, ["0", "/", "Z", ";"]))
        for name, values in params.items()
        if fdp.ConsumeIntInRange(0, 7)  # each mostly present
    ]
    headers: dict[str, str] = {}
    if not fdp.ConsumeIntInRange(0, 7):
        headers["authorization"] = _text(fdp, ["AWS ", "AWS4-HMAC-SHA256 "], 2)
    if fdp.ConsumeBool():
        headers["x-amz-content-sha256"] = _one_of(fdp, _PAYLOADS)
    sign = fdp.ConsumeBool()
    request = _request(fdp, headers, query)
    if sign:
        fields = dict(request.query)
        signature = _sign_v4(
            request,
            fields.get("X-Amz-Credential", "").partition("/")[2],
            fields.get("X-Amz-SignedHeaders", ""),
            headers.get("x-amz-content-sha256", UNSIGNED_PAYLOAD),
            "X-Amz-Signature",
        )
        request = HttpRequest(
            request.method,
            request.raw_path,
            request.path,
            (
                *(p for p in request.query if p[0] != "X-Amz-Signature"),
                ("X-Amz-Signature", signature),
            ),
            request.headers,
        )
    _verify(request)


@target()
def fuzz_sigv2_header(data: bytes) -> None:
    """SigV2 ``Authorization: AWS key:signature``: verified, or an S3Error 4xx."""
    fdp = Provider(data)
    headers: dict[str, str] = {}
    if fdp.ConsumeBool():
        headers["date"] = _one_of(fdp, _HTTP_DATES, [",", " ", "GMT", "2026", "Jan"])
    if fdp.ConsumeBool():
        headers["x-amz-date"] = _one_of(fdp, _HTTP_DATES, [",", " ", "GMT"])
    key = _one_of(fdp, [ACCESS_KEY, "", "AKIDOTHER"], [":", " "])
    signature = _one_of(
        fdp, ["", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "\u00e9"], ["=", "+", "/"]
    )
    header = (
        f"AWS {key}:{signature}"
        if fdp.ConsumeIntInRange(0, 3)
        else "AWS " + _text(fdp, [":", " ", ACCESS_KEY], 6)
    )
    headers["authorization"] = header
    _verify(_request(fdp, headers, []))


@target()
def fuzz_sigv2_query(data: bytes) -> None:
    """SigV2 presigned query strings: verified, or an S3Error 4xx."""
    fdp = Provider(data)
    params = {
        "AWSAccessKeyId": [ACCESS_KEY, "AKIDOTHER"],
        "Signature": ["AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "%2B"],
        "Expires": [
            "1767229200",
            "0",
            "-1",
            "9" * 30,
            "1e9",
            "253402300800",
            "-" + "9" * 20,
        ],
    }
    query = [
        (name, _one_of(fdp, values, ["0", "9", "-", "="]))
        for name, values in params.items()
        if fdp.ConsumeIntInRange(0, 7)
    ]
    _verify(_request(fdp, {}, query))


# -- the native API's JSON bodies ----------------------------------------------

_NATIVE: dict[str, Any] = {}


def _setup_native() -> None:
    tmp = _tempdir()
    store = make_store(tmp, LocalBackend(tmp / "blobs", fsync=False))
    atexit.register(store.close)
    known = store.put(io.BytesIO(b"known")).hash
    client = falcon.testing.TestClient(create_app(store, make_settings()))
    _NATIVE.update(client=client, known=known, part=hash_bytes(b"part"))
    _new_upload()


def _new_upload() -> None:
    client = _NATIVE["client"]
    upload = client.simulate_post("/v1/uploads").json["id"]
    part = client.simulate_put(
        f"/v1/uploads/{upload}/parts/0", params={"hash": _NATIVE["part"]}, body=b"part"
    )
    assert part.status_code == 200, part.text
    _NATIVE["upload"] = upload


_JSON_KEYS = ["hash", "parts", "owner", "expires", "size", "x"]


def _json_value(fdp: Provider, depth: int = 0) -> Any:
    kind = fdp.ConsumeIntInRange(0, 9 if depth < 4 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeBool()
    if kind == 2:
        return fdp.ConsumeInt(fdp.ConsumeIntInRange(1, 10))
    if kind == 3:
        return fdp.ConsumeRegularFloat()
    if kind in (4, 5):
        return fdp.PickValueInList(
            [
                _NATIVE["known"],
                _NATIVE["part"],
                "0" * 96,
                "",
                "1h",
                "10",
                "owner",
                "-1",
                "1e9",
            ]
        )
    if kind in (6, 7):
        # JSON's \uXXXX escapes can name a lone surrogate: not Unicode text.
        return _text(
            fdp, ["a", "\u00e9", "/", "..", "%", "\ud800", "\udfff"], 4, surrogates=True
        )
    if kind == 8:
        return [_json_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    return {
        _one_of(fdp, _JSON_KEYS): _json_value(fdp, depth + 1)
        for _ in range(fdp.ConsumeIntInRange(0, 3))
    }


@target(setup=_setup_native)
def fuzz_native_json(data: bytes) -> None:
    """Native JSON bodies (refs, finish, owner) through the app: no 5xx, and
    every error the JSON {"code", "message"} shape."""
    fdp = Provider(data)
    upload = (
        _NATIVE["upload"]
        if fdp.ConsumeIntInRange(0, 3)
        else _text(fdp, ["x", "%2F"], 2)
    )
    method, path = fdp.PickValueInList(
        [
            ("PUT", "/v1/refs/{name}"),
            ("POST", "/v1/uploads/{upload}/finish"),
            ("PUT", "/v1/uploads/{upload}/owner"),
        ]
    )
    name = _text(fdp, ["r", "/", ".", "%2F", "\u00e9"], 4)
    path = path.format(name=quote(name, safe="/%"), upload=quote(upload, safe="%"))
    kind = fdp.ConsumeIntInRange(0, 4)
    if kind == 0:
        body = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 256))
    else:
        doc: dict[str, Any] = {}
        if fdp.ConsumeBool():
            doc["hash"] = _json_value(fdp, 3) if fdp.ConsumeBool() else _NATIVE["known"]
        if fdp.ConsumeBool():
            doc["parts"] = [
                {"hash": _NATIVE["part"]} if fdp.ConsumeBool() else _json_value(fdp, 2)
                for _ in range(fdp.ConsumeIntInRange(0, 2))
            ]
        if fdp.ConsumeBool():
            doc["owner"] = _json_value(fdp, 3) if fdp.ConsumeBool() else "fuzz"
        if fdp.ConsumeBool():
            doc["expires"] = _json_value(fdp, 3)
        for _ in range(fdp.ConsumeIntInRange(0, 2)):
            doc[_text(fdp, _JSON_KEYS, 2)] = _json_value(fdp)
        value: Any = doc if kind < 4 else _json_value(fdp)
        body = json.dumps(value, ensure_ascii=fdp.ConsumeBool()).encode(
            "utf-8", "surrogatepass"
        )
    headers = {
        "Content-Type": fdp.PickValueInList(["application/json", "text/plain", ""])
    }
    result = _NATIVE["client"].simulate_request(
        method, path, headers=headers, body=body
    )
    try:
        check_native(result, method)
    except AssertionError as exc:
        raise AssertionError(f"{method} {path} {body[:200]!r}: {exc}") from None
    if path.endswith("/finish") and result.status_code == 200:
        _new_upload()  # that upload is a blob now: start another


# -- the harness itself --------------------------------------------------------


@target()
def fuzz_canary(data: bytes) -> None:
    """Fails on purpose for an input starting FUZZ (test_atheris.py proves
    with it that a failing target fails the run)."""
    if data[:4] == b"FUZZ":
        raise AssertionError("the canary input")
