"""S3 XML: building response documents and parsing request bodies.

Responses are built with :mod:`xml.etree.ElementTree` from nested
``(tag, value)`` lists, so each response reads like the S3 API reference's
schema. Request bodies are untrusted and parsed with :mod:`defusedxml`
(no entity expansion, no external references); a body that is not
well-formed, or lacks a required element, raises :class:`MalformedXMLError`.

Element namespaces are ignored when parsing: clients send S3's namespace,
another, or none.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from typing import Any
from urllib.parse import quote
from urllib.parse import quote_plus

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

__all__ = [
    "NAMESPACE",
    "MalformedXMLError",
    "document",
    "echoed",
    "error",
    "find_text",
    "iso_time",
    "local_name",
    "parse",
    "url_encoder",
]

NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

#: A child value: text-like (str, int, bool, datetime), None (omitted), a
#: list of (tag, value) pairs for a nested element, or (attributes, list).
Children = Iterable[tuple[str, Any]]


class MalformedXMLError(ValueError):
    """A request body that is not the XML the operation expects."""


def iso_time(t: datetime) -> str:
    """S3's timestamp format in XML: ``2009-10-12T17:50:30.000Z``."""
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return iso_time(value)
    return str(value)


def _fill(parent: ET.Element, children: Children) -> None:
    for tag, value in children:
        if value is None:
            continue
        child = ET.SubElement(parent, tag)
        if isinstance(value, tuple):  # (attributes, children)
            child.attrib.update(value[0])
            value = value[1]
        if isinstance(value, list):
            _fill(child, value)
        else:
            child.text = _text(value)


def document(root: str, children: Children | str = ()) -> bytes:
    """An S3 response document: ``<root xmlns=S3>children</root>``."""
    element = ET.Element(root, xmlns=NAMESPACE)
    if isinstance(children, str):
        element.text = children
    else:
        _fill(element, children)
    return _DECLARATION + ET.tostring(element, encoding="utf-8", xml_declaration=False)


#: What XML 1.0 cannot carry, even as a character reference.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_safe(value: Any) -> Any:
    """*value* with the characters XML 1.0 cannot carry percent-encoded."""
    if not isinstance(value, str) or not _NOT_XML.search(value):
        return value
    return _NOT_XML.sub(
        lambda m: quote(m.group().encode("utf-8", "surrogatepass"), safe=""), value
    )


def error(
    code: str, message: str, resource: str, request_id: str, fields: Mapping[str, Any]
) -> bytes:
    """An S3 error document (errors carry no namespace).

    Errors echo what the client sent (a key, a resource); characters XML 1.0
    cannot carry are percent-encoded there, so the document always parses.
    """
    element = ET.Element("Error")
    _fill(
        element,
        [
            ("Code", code),
            ("Message", _xml_safe(message)),
            *((name, _xml_safe(value)) for name, value in fields.items()),
            ("Resource", _xml_safe(resource)),
            ("RequestId", request_id),
        ],
    )
    return _DECLARATION + ET.tostring(element, encoding="utf-8", xml_declaration=False)


def url_encoder(encoding_type: str | None):
    """The function listings apply to keys and prefixes: URL-encoding for
    ``encoding-type=url``, else identity.

    Encoded as AWS encodes (measured): form-style, a space is ``+`` and a
    ``+`` is ``%2B``, ``/`` stays; clients decode with ``unquote_plus``.
    """
    if encoding_type == "url":
        return lambda s: None if s is None else quote_plus(s, safe="/")
    return lambda s: s


def echoed(value: str | None) -> str | None:
    """A value a listing echoes unencoded (ListObjects v1's ``Prefix``),
    with only what XML 1.0 cannot carry percent-encoded."""
    return _xml_safe(value)


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse(body: bytes, root: str) -> ET.Element:
    """Parse a request body whose root element must be *root*."""
    if not body.strip():
        raise MalformedXMLError("the request body is empty")
    try:
        element = SafeET.fromstring(body)
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise MalformedXMLError(
            f"the request body is not well-formed XML: {exc}"
        ) from None
    if local_name(element.tag) != root:
        raise MalformedXMLError(f"expected a <{root}> document")
    return element


def children(element: ET.Element, tag: str) -> list[ET.Element]:
    """The direct children of *element* named *tag* (any namespace)."""
    return [c for c in element if local_name(c.tag) == tag]


def find_text(element: ET.Element, tag: str) -> str | None:
    """The text of the first direct child named *tag*, or None."""
    found = children(element, tag)
    if not found:
        return None
    return found[0].text or ""
