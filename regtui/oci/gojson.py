"""JSON bytes exactly as Go's encoding/json.Marshal writes them (what go-containerregistry hashes)."""

from __future__ import annotations

import json
from typing import Any

_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def go_escape(text: str) -> str:
    """JSON text with the characters Go escapes (HTML-safe: < > &, and U+2028/U+2029) escaped as Go does."""
    if any(c in text for c in _GO_ESCAPES):
        text = "".join(_GO_ESCAPES.get(c, c) for c in text)
    return text


def go_marshal(obj: Any) -> bytes:
    """Compact, insertion-ordered, HTML-escaped like Go; non-ASCII stays UTF-8."""
    return go_escape(json.dumps(obj, separators=(",", ":"), ensure_ascii=False)).encode("utf-8")
