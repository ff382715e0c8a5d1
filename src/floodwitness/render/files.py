"""Writing output files: atomically (temp file + rename), and never over an input file."""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from floodwitness.errors import UsageError


def write_atomic(path: str | Path, text: str, *, protect: frozenset[str] = frozenset()) -> None:
    """Write ``text`` to ``path`` so that a reader never sees half a file; refuse to overwrite an input."""
    target = Path(path)
    if str(target.resolve()) in {str(Path(p).resolve()) for p in protect}:
        raise UsageError(f"refusing to overwrite the input file {target}", hint="Choose another output path.")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent if str(target.parent) else ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def blocklist_text(cidrs: list[str]) -> str:
    """Plain CIDR lines, one per line, after a comment saying what they are."""
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    header = f"# floodwitness blocklist: {len(cidrs)} CIDR(s), generated {when}\n"
    return header + "".join(f"{c}\n" for c in cidrs)
