"""JSON bytes exactly as Go's encoding/json.Marshal writes them (what go-containerregistry hashes)."""

from __future__ import annotations

import json

_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def go_marshal(obj) -> bytes:
    """Compact, insertion-ordered, HTML-escaped like Go; non-ASCII stays UTF-8."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    if any(c in text for c in _GO_ESCAPES):
        text = "".join(_GO_ESCAPES.get(c, c) for c in text)
    return text.encode("utf-8")
