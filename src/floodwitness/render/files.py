"""Writing output files: atomically (a temporary file beside the target, then a rename, so a firewall or
dashboard reloading it never reads half a file), keeping the target's permissions, and never over an input."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from floodwitness.errors import FloodwitnessError, UsageError


def write_atomic(path: str | os.PathLike[str], text: str, *, protect: frozenset[str] = frozenset(),
                 what: str = "the file") -> None:
    """Write ``text`` to ``path`` atomically; refuse to overwrite any path in ``protect`` (the inputs)."""
    target = Path(path)
    if str(target.resolve()) in {str(Path(p).resolve()) for p in protect}:
        raise UsageError(f"refusing to overwrite the input file {target}", hint="Choose another output path.")
    tmp: str | None = None
    try:
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o644  # mkstemp's 0600 would hide it
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise FloodwitnessError(f"cannot write {what}: {exc.strerror or exc}", path=str(target),
                                hint="Check that the folder exists and is writable.") from None
