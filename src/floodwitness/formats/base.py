"""What a log format is: a name, a description, an example, how sure it is that lines are its own,
and how to turn a table of raw lines into the normalized request table."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from collections.abc import Sequence

    import ibis.expr.types as ir
    import pyarrow as pa


class LogFormat(ABC):
    """A log format. Subclasses are small; the heavy lifting is in ``fields`` and ``template``.

    ``parse`` receives a table with columns ``file_id, line, text, pre_reject`` (``text`` still has its
    newline) and returns one row per input row with every column of ``schema.ARROW_SCHEMA``.
    """

    name: str
    description: str
    example: str
    #: Normalized columns this format fills (others are null).
    provides: frozenset[str]
    #: A catch-all (nginx JSON with learned keys): loses ties against a format made for the lines.
    generic: ClassVar[bool] = False

    @abstractmethod
    def match_fraction(self, lines: Sequence[str]) -> float:
        """Share of ``lines`` (newline stripped, blank lines excluded) that have this format's layout."""

    def exact_fraction(self, lines: Sequence[str]) -> float:
        """Share of ``lines`` in exactly this format's own layout (a tie-breaker; lenient formats differ)."""
        return self.match_fraction(lines)

    def bind(self, lines: Sequence[str]) -> LogFormat:
        """This format adapted to a file from a sample of its first lines (comment lines included): JSON
        keys learned, a W3C header read. Most formats need nothing."""
        del lines
        return self

    def after(self, group: pa.Table) -> LogFormat:
        """The format to parse the next group of lines of the same file with, after ``group`` (a W3C
        header carried over). Most formats stay as they are."""
        del group
        return self

    @abstractmethod
    def parse(self, lines: ir.Table) -> ir.Table:
        """Portable (ibis) expression parsing ``lines`` into the normalized schema."""

    def specificity(self) -> int:
        """Tie-breaker when two formats match the same lines: the one that reads more fields wins."""
        return len(self.provides)
