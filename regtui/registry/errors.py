"""Distribution-spec error responses: `{"errors": [{"code", "message", "detail"}]}` with the right status."""

from __future__ import annotations

import json

# code -> (HTTP status, message), as the OCI distribution spec and distribution's errcode define them.
CODES: dict[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "TAG_INVALID": (400, "manifest tag did not match URI"),
    "PAGINATION_NUMBER_INVALID": (400, "invalid number of results requested"),
    "RANGE_INVALID": (416, "requested range not satisfiable"),
    "UNAUTHORIZED": (401, "authentication required"),
    "UNSUPPORTED": (405, "The operation is unsupported."),
    "NOT_FOUND": (404, "endpoint not found"),
    "TOOMANYREQUESTS": (429, "too many requests"),
    "UNAVAILABLE": (503, "service unavailable"),
    "UNKNOWN": (500, "unknown error"),
}


class RegistryError(Exception):
    """Raised by handlers; rendered as a spec error body (headers only on HEAD)."""

    def __init__(
        self,
        code: str,
        detail: str | dict | None = None,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(code)
        self.code = code
        self.status = status or CODES[code][0]
        self.message = CODES[code][1]
        self.detail = detail
        self.headers = headers or {}

    def body(self) -> bytes:
        err: dict = {"code": self.code, "message": self.message}
        if self.detail is not None:
            err["detail"] = self.detail
        return json.dumps({"errors": [err]}, separators=(",", ":")).encode() + b"\n"

    def detail_text(self) -> str | None:
        if self.detail is None:
            return None
        return self.detail if isinstance(self.detail, str) else json.dumps(self.detail)
