"""The README's runnable examples, found by their ``<!-- readme-test: NAME -->``
tag, so tests can run each one as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(r"<!-- readme-test: (\w+) -->\n```\w*\n(.*?)```", re.S)


def readme_blocks() -> dict[str, str]:
    return dict(_BLOCK.findall(README.read_text()))


def with_endpoint(code: str, url: str) -> str:
    """The example pointed at *url* instead of the default address."""
    for default in ("http://127.0.0.1:8080", "http://localhost:8080"):
        code = code.replace(default, url)
    return code
