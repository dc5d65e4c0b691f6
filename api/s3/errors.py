"""S3 errors: one class per S3 error code, rendered as S3 XML.

Handlers and the authentication code raise an :class:`S3Error` subclass; the
library raises :mod:`blobstore.errors` classes, which :data:`DOMAIN_ERRORS`
maps to S3 codes. :func:`register_error_handlers` installs one Falcon error
handler per class, so no resource catches and translates errors itself::

    raise NoSuchBucket(f"bucket {name!r} does not exist", BucketName=name)

Every error body carries ``Code``, ``Message``, ``Resource`` and
``RequestId`` (plus any extra fields given), and HEAD responses carry none.
"""

from __future__ import annotations

import logging
from typing import Any
from typing import ClassVar

import falcon

from blobstore import errors as domain
from blobstore_api.s3 import xml
from blobstore_api.streaming import BodyTimeout

__all__ = [
    "DOMAIN_ERRORS",
    "S3Error",
    "register_error_handlers",
]

log = logging.getLogger(__name__)


class S3Error(Exception):
    """An S3 error response. Subclasses set :attr:`code` and :attr:`status`.

    :param message: the human-readable ``Message``.
    :param fields: extra elements of the error body (``BucketName=...``).
    :param headers: extra response headers.
    """

    code: ClassVar[str] = "InternalError"
    status: ClassVar[str] = falcon.HTTP_500
    default_message: ClassVar[str] = (
        "We encountered an internal error. Please try again."
    )

    def __init__(
        self,
        message: str | None = None,
        headers: dict[str, str] | None = None,
        **fields: Any,
    ) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)
        self.fields = fields
        self.headers = headers or {}


def _error(code: str, status: str, message: str) -> type[S3Error]:
    return type(
        code,
        (S3Error,),
        {
            "code": code,
            "status": status,
            "default_message": message,
            "__doc__": message,
        },
    )


AccessDenied = _error("AccessDenied", falcon.HTTP_403, "Access Denied")
AuthorizationHeaderMalformed = _error(
    "AuthorizationHeaderMalformed",
    falcon.HTTP_400,
    "The authorization header is malformed.",
)
AuthorizationQueryParametersError = _error(
    "AuthorizationQueryParametersError",
    falcon.HTTP_400,
    "The authorization query parameters are malformed.",
)
BadDigest = _error(
    "BadDigest",
    falcon.HTTP_400,
    "The Content-MD5 or checksum you specified did not match what we received.",
)
BucketAlreadyExists = _error(
    "BucketAlreadyExists",
    falcon.HTTP_409,
    "The requested bucket name is not available. The bucket namespace is shared "
    "by all users of the system. Please select a different name and try again.",
)
BucketNotEmpty = _error(
    "BucketNotEmpty", falcon.HTTP_409, "The bucket you tried to delete is not empty."
)
EntityTooLarge = _error(
    "EntityTooLarge",
    falcon.HTTP_400,
    "Your proposed upload exceeds the maximum allowed size.",
)
EntityTooSmall = _error(
    "EntityTooSmall",
    falcon.HTTP_400,
    "Your proposed upload is smaller than the minimum allowed object size.",
)
IncompleteBody = _error(
    "IncompleteBody",
    falcon.HTTP_400,
    "You did not provide the number of bytes specified by the Content-Length "
    "HTTP header.",
)
InsufficientStorage = _error(
    "InsufficientStorage",
    falcon.HTTP_507,
    "The storage backend has no room for this request.",
)
InternalError = _error(
    "InternalError",
    falcon.HTTP_500,
    "We encountered an internal error. Please try again.",
)
InvalidAccessKeyId = _error(
    "InvalidAccessKeyId",
    falcon.HTTP_403,
    "The AWS access key Id you provided does not exist in our records.",
)
InvalidArgument = _error("InvalidArgument", falcon.HTTP_400, "Invalid Argument")
InvalidBucketName = _error(
    "InvalidBucketName", falcon.HTTP_400, "The specified bucket is not valid."
)
InvalidDigest = _error(
    "InvalidDigest", falcon.HTTP_400, "The Content-MD5 you specified is not valid."
)
InvalidLocationConstraint = _error(
    "InvalidLocationConstraint",
    falcon.HTTP_400,
    "The specified location constraint is not valid.",
)
InvalidPart = _error(
    "InvalidPart",
    falcon.HTTP_400,
    "One or more of the specified parts could not be found. The part might not "
    "have been uploaded, or the specified entity tag might not have matched the "
    "part's entity tag.",
)
InvalidPartOrder = _error(
    "InvalidPartOrder",
    falcon.HTTP_400,
    "The list of parts was not in ascending order. The parts list must be "
    "specified in order by part number.",
)
InvalidPartNumber = _error(
    "InvalidPartNumber",
    falcon.HTTP_416,
    "The requested partnumber is not satisfiable",
)
InvalidRange = _error(
    "InvalidRange", falcon.HTTP_416, "The requested range is not satisfiable"
)
InvalidRequest = _error("InvalidRequest", falcon.HTTP_400, "Invalid Request")
InvalidURI = _error("InvalidURI", falcon.HTTP_400, "Couldn't parse the specified URI.")
KeyTooLongError = _error("KeyTooLongError", falcon.HTTP_400, "Your key is too long")
MalformedXML = _error(
    "MalformedXML",
    falcon.HTTP_400,
    "The XML you provided was not well-formed or did not validate against our "
    "published schema",
)
MetadataTooLarge = _error(
    "MetadataTooLarge",
    falcon.HTTP_400,
    "Your metadata headers exceed the maximum allowed metadata size.",
)
MethodNotAllowed = _error(
    "MethodNotAllowed",
    falcon.HTTP_405,
    "The specified method is not allowed against this resource.",
)
MissingContentLength = _error(
    "MissingContentLength",
    falcon.HTTP_411,
    "You must provide the Content-Length HTTP header.",
)
NoSuchBucket = _error(
    "NoSuchBucket", falcon.HTTP_404, "The specified bucket does not exist"
)
NoSuchKey = _error("NoSuchKey", falcon.HTTP_404, "The specified key does not exist.")
NoSuchUpload = _error(
    "NoSuchUpload",
    falcon.HTTP_404,
    "The specified upload does not exist. The upload ID may be invalid, or the "
    "upload may have been aborted or completed.",
)
NoSuchVersion = _error(
    "NoSuchVersion",
    falcon.HTTP_404,
    "The specified version does not exist.",
)
Unsupported = _error(
    "NotImplemented",
    falcon.HTTP_501,
    "A header or query you provided implies functionality that is not implemented.",
)
OperationAborted = _error(
    "OperationAborted",
    falcon.HTTP_409,
    "A conflicting conditional operation is currently in progress against this "
    "resource. Try again.",
)
PreconditionFailed = _error(
    "PreconditionFailed",
    falcon.HTTP_412,
    "At least one of the preconditions you specified did not hold.",
)
RequestTimeTooSkewed = _error(
    "RequestTimeTooSkewed",
    falcon.HTTP_403,
    "The difference between the request time and the current time is too large.",
)
RequestTimeout = _error(
    "RequestTimeout",
    falcon.HTTP_400,
    "Your socket connection to the server was not read from or written to "
    "within the timeout period.",
)
ServiceUnavailable = _error(
    "ServiceUnavailable", falcon.HTTP_503, "Please reduce your request rate."
)
SignatureDoesNotMatch = _error(
    "SignatureDoesNotMatch",
    falcon.HTTP_403,
    "The request signature we calculated does not match the signature you "
    "provided. Check your key and signing method.",
)
XAmzContentSHA256Mismatch = _error(
    "XAmzContentSHA256Mismatch",
    falcon.HTTP_400,
    "The provided 'x-amz-content-sha256' header does not match what was computed.",
)

#: Library errors → S3 errors (the most specific class wins, by MRO).
DOMAIN_ERRORS: dict[type[domain.BlobStoreError], type[S3Error]] = {
    domain.BlobStoreError: InternalError,
    domain.NotFound: NoSuchKey,
    domain.BucketNotFound: NoSuchBucket,
    domain.ObjectNotFound: NoSuchKey,
    domain.UploadNotFound: NoSuchUpload,
    domain.BadParams: InvalidArgument,
    domain.SizeMismatch: IncompleteBody,
    domain.InvalidBucketName: InvalidBucketName,
    domain.InvalidKey: InvalidArgument,
    domain.KeyTooLong: KeyTooLongError,
    domain.EntityTooLarge: EntityTooLarge,
    domain.InvalidPart: InvalidPart,
    domain.InvalidPartOrder: InvalidPartOrder,
    domain.PartTooSmall: EntityTooSmall,
    domain.Conflict: OperationAborted,
    domain.BucketExists: BucketAlreadyExists,
    domain.BucketNotEmpty: BucketNotEmpty,
    domain.Unavailable: ServiceUnavailable,
    domain.InsufficientStorage: InsufficientStorage,
    domain.AccessDenied: AccessDenied,
    domain.Corrupt: InternalError,
}


def _resource(req: falcon.Request) -> str:
    return req.env.get("blobstore.s3.resource") or req.path


def _render(req: falcon.Request, resp: falcon.Response, error: S3Error) -> None:
    resp.status = error.status
    for name, value in error.headers.items():
        resp.set_header(name, value)
    resp.content_type = "application/xml"
    if req.method != "HEAD":
        resp.data = xml.error(
            error.code,
            error.message,
            _resource(req),
            req.context.get("request_id", ""),
            error.fields,
        )


def _handle_s3_error(req, resp, ex: S3Error, params) -> None:
    _render(req, resp, ex)


def _domain_handler(s3_class: type[S3Error]):
    def handle(req, resp, ex: domain.BlobStoreError, params) -> None:
        if s3_class is InternalError:
            log.error("request %s failed: %s", req.context.get("request_id"), ex)
            _render(req, resp, InternalError())  # details stay in the log
            return
        if isinstance(ex, domain.NotFound):
            # S3's own wording, plus what was not found: clients show these.
            bucket, _, key = _resource(req).lstrip("/").partition("/")
            fields = {"BucketName": bucket} if s3_class is NoSuchBucket else {}
            if s3_class is NoSuchKey and key:
                fields = {"Key": key}
            _render(req, resp, s3_class(**fields))
            return
        _render(req, resp, s3_class(str(ex)))

    return handle


def _handle_http_error(req, resp, ex: falcon.HTTPError, params) -> None:
    # Falcon's own errors (a malformed header it parsed for us, ...).
    error = InvalidRequest(ex.description or ex.title)
    error.status = ex.status  # type: ignore[misc]
    _render(req, resp, error)


def _handle_request_timeout(req, resp, ex: BodyTimeout, params) -> None:
    # The body stalled past [server] body_timeout: S3 says RequestTimeout.
    _render(req, resp, RequestTimeout(headers=dict(ex.headers or {})))


def _handle_unexpected(req, resp, ex: Exception, params) -> None:
    log.exception("request %s failed", req.context.get("request_id"))
    _render(req, resp, InternalError())


def register_error_handlers(app: falcon.App) -> None:
    """Install one handler per error class on *app*."""
    app.add_error_handler(Exception, _handle_unexpected)
    app.add_error_handler(falcon.HTTPError, _handle_http_error)
    app.add_error_handler(BodyTimeout, _handle_request_timeout)
    for domain_class, s3_class in DOMAIN_ERRORS.items():
        app.add_error_handler(domain_class, _domain_handler(s3_class))
    app.add_error_handler(S3Error, _handle_s3_error)
