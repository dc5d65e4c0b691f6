"""``/v1/openapi.yaml``, ``/v1/openapi.json`` and ``/v1/docs``: the service
describes itself.

The document is ``api/openapi.yaml`` (shipped in the package; a test keeps
it in step with the routes), read once when the app is made. ``/v1/docs``
renders it on the server into one self-contained HTML page: inline CSS, no
script, no fonts or assets from anywhere, so it works offline, behind a
firewall and in a text browser. All three are public, like the health
probes: an API's description is not a secret, and a browser cannot send a
bearer token.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any

import falcon
import yaml

__all__ = ["DocsPage", "OpenApiDocument", "load_spec", "render_page"]

_METHODS = ("get", "head", "post", "put", "delete", "patch", "options")

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 64rem;
       padding: 1.5rem; color: #1b1f24; }
h1 { margin-bottom: .2rem; } .summary { color: #57606a; margin-top: 0; }
section.path { border-top: 1px solid #d0d7de; padding: .6rem 0; }
h2 { font: 600 1.05rem ui-monospace, monospace; margin: .4rem 0; }
.op { margin: .3rem 0 .8rem 1rem; }
.method { display: inline-block; min-width: 4.2rem; padding: .05rem .4rem;
          border-radius: .3rem; color: #fff; font: 600 .8rem ui-monospace, monospace;
          text-align: center; text-transform: uppercase; }
.get, .head { background: #0969da; } .post { background: #1a7f37; }
.put { background: #9a6700; } .delete { background: #cf222e; }
.public { color: #57606a; font-size: .85rem; }
table { border-collapse: collapse; margin: .3rem 0; font-size: .9rem; }
td, th { border: 1px solid #d0d7de; padding: .15rem .5rem; text-align: left;
         vertical-align: top; }
code { font: .9em ui-monospace, monospace; }
.desc { white-space: pre-wrap; margin: .3rem 0; }
"""


def load_spec() -> tuple[str, dict[str, Any]]:
    """The document as shipped (YAML text) and parsed."""
    text = (resources.files("blobstore_api") / "openapi.yaml").read_text("utf-8")
    return text, yaml.safe_load(text)


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """*node*, or what its ``$ref`` points to in *spec*."""
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return node
    target: Any = spec
    for part in ref[2:].split("/"):
        target = target.get(part, {}) if isinstance(target, dict) else {}
    return target


def _parameters(spec: dict[str, Any], params: list[Any]) -> str:
    if not params:
        return ""
    rows = []
    for raw in params:
        p = _resolve(spec, raw)
        rows.append(
            f"<tr><td><code>{_esc(p.get('name', ''))}</code></td>"
            f"<td>{_esc(p.get('in', ''))}</td>"
            f"<td>{'yes' if p.get('required') else ''}</td>"
            f"<td>{_esc(' '.join(str(p.get('description', '')).split()))}</td></tr>"
        )
    return (
        "<table><tr><th>parameter</th><th>in</th><th>required</th>"
        "<th>meaning</th></tr>" + "".join(rows) + "</table>"
    )


def render_page(spec: dict[str, Any]) -> str:
    """The HTML page for *spec*: every path, its operations, parameters and
    responses, in the document's order."""
    info = spec.get("info", {})
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name=viewport content="width=device-width, initial-scale=1">',
        f"<title>{_esc(info.get('title', 'API'))}</title><style>{_STYLE}</style>",
        "</head><body>",
        f"<h1>{_esc(info.get('title', 'API'))} <small>{_esc(info.get('version', ''))}"
        "</small></h1>",
        f"<p class=summary>{_esc(info.get('summary', ''))}</p>",
        f"<div class=desc>{_esc(info.get('description', '').strip())}</div>",
        '<p>The document itself: <a href="/v1/openapi.yaml">openapi.yaml</a>, '
        '<a href="/v1/openapi.json">openapi.json</a>.</p>',
    ]
    for path, item in spec.get("paths", {}).items():
        parts.append(f'<section class=path id="{_esc(path)}"><h2>{_esc(path)}</h2>')
        shared = item.get("parameters", [])
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            is_public = op.get("security") == []
            public = " <span class=public>(public)</span>" if is_public else ""
            codes = ", ".join(_esc(code) for code in op.get("responses", {}))
            parts += [
                "<div class=op>",
                f"<span class='method {method}'>{method}</span> "
                f"<strong>{_esc(op.get('summary', ''))}</strong>{public}",
                f"<div class=desc>{_esc(str(op.get('description', '')).strip())}</div>",
                _parameters(spec, shared + op.get("parameters", [])),
                f"<div>responses: {codes}</div></div>",
            ]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


class OpenApiDocument:
    """``GET /v1/openapi.yaml`` or ``/v1/openapi.json``: the document."""

    access = None  # public

    def __init__(self, body: str, content_type: str) -> None:
        self._body = body.encode("utf-8")
        self._content_type = content_type

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = self._content_type
        resp.data = self._body

    @classmethod
    def pair(cls) -> tuple[OpenApiDocument, OpenApiDocument, dict[str, Any]]:
        """The YAML and JSON resources, and the parsed document."""
        text, spec = load_spec()
        return (
            cls(text, "application/yaml"),
            cls(json.dumps(spec, indent=1), falcon.MEDIA_JSON),
            spec,
        )


class DocsPage:
    """``GET /v1/docs``: the document as a page (see the module docs)."""

    access = None  # public

    def __init__(self, spec: dict[str, Any]) -> None:
        self._page = render_page(spec).encode("utf-8")

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_HTML
        resp.data = self._page
