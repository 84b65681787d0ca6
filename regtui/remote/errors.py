"""What a registry exchange can fail with: one line (what, where, what to do), and the retryable kind."""

from __future__ import annotations

import httpx


class RemoteError(Exception):
    """A failure the user gets as one line: `where: what (hint)`."""

    def __init__(self, what: str, *, where: str | None = None, hint: str | None = None):
        self.what = what
        self.where = where
        self.hint = hint
        super().__init__(self.line())

    def line(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        return f"{text} ({self.hint})" if self.hint else text


class Unreachable(RemoteError):
    """No HTTP answer at all: refused, unknown host, timed out, TLS failed. `where` is the host."""


class Transient(Exception):
    """A failure worth retrying: a broken connection, 408, 429 or 5xx (with the registry's Retry-After)."""

    def __init__(self, reason: str, retry_after: float | None = None):
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(reason)


TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 30.0  # a registry asking for longer is not waited for that long


def registry_errors(resp: httpx.Response) -> tuple[str, str]:
    """(code, message) of a distribution error body (`{"errors": [...]}`), or ('', the body's start)."""
    try:
        errs = resp.json().get("errors") or []
        e = errs[0]
        msg = str(e.get("message", ""))
        detail = e.get("detail")
        if isinstance(detail, str) and detail:
            msg += f" ({detail[:120]})"
        return str(e.get("code", "")), msg
    except (ValueError, AttributeError, IndexError, TypeError, KeyError):
        return "", resp.text[:120].strip() if resp.content else ""


def error_text(resp: httpx.Response) -> str:
    """Every error of a distribution error body as `CODE: message; …`, else `HTTP <status>`."""
    try:
        errs = resp.json().get("errors") or []
        return "; ".join(f"{x.get('code')}: {x.get('message')}" for x in errs) or f"HTTP {resp.status_code}"
    except (ValueError, AttributeError):
        return f"HTTP {resp.status_code}"


def retry_after(resp: httpx.Response) -> float | None:
    """The Retry-After delay in seconds (capped), or None when absent or a date."""
    try:
        return min(MAX_RETRY_AFTER, float(resp.headers.get("retry-after", "")))
    except ValueError:
        return None
