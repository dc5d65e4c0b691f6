"""Helpers the native resources share: query parameters, JSON bodies,
timestamps. Each turns bad input into :class:`~blobstore.errors.BadParams`."""

from __future__ import annotations

import json
from datetime import datetime
from datetime import timedelta
from typing import Any

import falcon

from blobstore.errors import BadParams
from blobstore.units import parse_duration

__all__ = [
    "MAX_JSON_BODY",
    "duration_value",
    "int_param",
    "iso",
    "json_body",
]

#: The largest JSON request body read (a finish of 10,000 parts fits).
MAX_JSON_BODY = 2 * 1024 * 1024


def iso(t: datetime) -> str:
    """RFC 3339 in UTC with milliseconds: ``2024-05-01T12:00:00.123Z``."""
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def int_param(req: falcon.Request, name: str, *, minimum: int = 0) -> int | None:
    """An integer query parameter, or None when absent."""
    raw = req.get_param(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadParams(f"{name} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise BadParams(f"{name} must be at least {minimum}, not {value}")
    return value


def duration_value(name: str, raw: Any) -> timedelta:
    """A positive duration: seconds, or a string such as ``"30m"``."""
    try:
        value = parse_duration(raw)
    except ValueError:
        raise BadParams(
            f'{name} must be a duration in seconds (or like "30m"), not {raw!r}'
        ) from None
    if value <= timedelta(0):
        raise BadParams(f"{name} must be positive")
    return value


def json_body(req: falcon.Request) -> dict[str, Any]:
    """The request's JSON object body.

    :raises falcon.HTTPContentTooLarge: above :data:`MAX_JSON_BODY`.
    :raises BadParams: not a JSON object.
    """
    length = req.content_length
    if length is not None and length > MAX_JSON_BODY:
        raise falcon.HTTPContentTooLarge(
            description=f"JSON bodies are limited to {MAX_JSON_BODY} bytes"
        )
    stream = req.bounded_stream if length is not None else req.stream
    if length is None and not req.env.get("wsgi.input_terminated"):
        raw = b""
    else:
        raw = stream.read(MAX_JSON_BODY + 1)
    if len(raw) > MAX_JSON_BODY:
        raise falcon.HTTPContentTooLarge(
            description=f"JSON bodies are limited to {MAX_JSON_BODY} bytes"
        )
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadParams(f"invalid JSON body: {exc}") from None
    except RecursionError:  # "[[[[..." within the size limit
        raise BadParams("invalid JSON body: nested too deeply") from None
    if not isinstance(doc, dict):
        raise BadParams("the JSON body must be an object")
    if _has_lone_surrogate(doc):
        raise BadParams(
            "invalid JSON body: a string escapes a lone surrogate (\\ud800-\\udfff), "
            "which is not Unicode text"
        )
    return doc


def _has_lone_surrogate(doc: Any) -> bool:
    """Whether a string (or key) in *doc* holds a lone surrogate, which JSON's
    ``\\uXXXX`` escapes can name but UTF-8 (and so the catalog) cannot carry.
    Iterative: *doc* may nest as deep as the parser allowed."""
    pending = [doc]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if not value.isascii():
                try:
                    value.encode()
                except UnicodeEncodeError:
                    return True
        elif isinstance(value, dict):
            pending.extend(value)
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False
