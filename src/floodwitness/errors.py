"""One error hierarchy. The library raises these; only the CLI prints them.

Every error says what went wrong *and* how to fix it, and carries where it happened
(a file, and a line when there is one) so a message can point at the input.
"""

from __future__ import annotations


class FloodwitnessError(Exception):
    """Root of every error floodwitness raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None, path: str | None = None,
                 line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.path = path
        self.line = line

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line is not None else f"{self.path}: "
        text = f"{where}{self.message}"
        if self.hint:
            text += f"\n{self.hint}"
        return text


class InputError(FloodwitnessError):
    """An input cannot be found, opened or read."""


class FormatError(FloodwitnessError):
    """No log format fits the input, or a format name or spec is wrong."""


class StoreError(FloodwitnessError):
    """A Parquet store is missing, incomplete or of another schema version."""


class UsageError(FloodwitnessError):
    """Arguments that do not fit together (a bad time range, an unknown option value)."""


class ResourceError(FloodwitnessError):
    """The engine ran out of a resource it was allowed (memory under --memory-limit)."""
