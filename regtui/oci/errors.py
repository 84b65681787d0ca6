"""The one error type the domain raises for bad input: short, precise, printable as one line."""

from __future__ import annotations


class ArchiveError(Exception):
    """A problem with an archive the user gave us: what, where (member), and what to do."""

    def __init__(self, what: str, *, member: str | None = None, hint: str | None = None, path: str | None = None):
        self.what = what
        self.member = member
        self.hint = hint
        self.path = path
        super().__init__(self.line())

    def line(self) -> str:
        where = ""
        if self.path:
            where += f"{self.path}: "
        if self.member:
            where += f"member {self.member!r}: "
        text = f"{where}{self.what}"
        if self.hint:
            text += f" ({self.hint})"
        return text
