"""Turn what the user typed (files, globs, directories, ``-``) into an ordered list of inputs.

Rotated series are read oldest first: ``access.log.3.gz, access.log.2.gz, access.log.1, access.log``
and date-stamped rotations (``access.log-20240101.gz``) by date, before the live file.
"""

from __future__ import annotations

import glob
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from floodwitness.errors import InputError

STDIN = "-"

_COMPRESSED_SUFFIX = re.compile(r"\.(gz|gzip|zst|zstd|bz2)$", re.IGNORECASE)
_NUMBERED = re.compile(r"^(?P<base>.+?)\.(?P<num>\d{1,4})$")
_DATED = re.compile(r"^(?P<base>.+?)[-_.](?P<date>\d{8}(?:\d{2,6})?)$")


@dataclass(frozen=True)
class InputFile:
    """One input as given: a path on disk, or ``-`` for standard input."""

    path: str
    #: Named by the user directly (not found by expanding a folder or glob): a file that fits no format
    #: is then an error rather than a skipped input.
    explicit: bool = True

    @property
    def is_stdin(self) -> bool:
        return self.path == STDIN


def rotation_key(path: str) -> tuple[str, str, int, str]:
    """Sort key that puts a rotated series in time order (oldest first), other files by name.

    ``access.log.2.gz`` -> (dir/access.log, '', -2); ``access.log`` -> (dir/access.log, '', 0) so the live file
    (number 0) comes after every numbered one; dated rotations sort by their date before the live file.
    """
    directory, name = os.path.split(path)
    stem = _COMPRESSED_SUFFIX.sub("", name)
    numbered = _NUMBERED.match(stem)
    if numbered:
        return (os.path.join(directory, numbered["base"]), "", -int(numbered["num"]), name)
    dated = _DATED.match(stem)
    if dated:
        return (os.path.join(directory, dated["base"]), dated["date"], 0, name)
    # The live file: after all dated ("~" sorts after digits) and numbered rotations of the same base.
    return (os.path.join(directory, stem), "~", 0, name)


def _expand_directory(directory: Path) -> list[str]:
    found: list[str] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(os.path.join(root, f) for f in files if not f.startswith("."))
    return found


def discover(specs: list[str]) -> list[InputFile]:
    """Expand files, globs and directories; keep ``-`` (stdin) in place; order rotated series.

    Raises InputError naming the argument when it matches nothing or is not a readable file.
    """
    if not specs:
        raise InputError("no input given", hint="Name one or more log files, globs, directories, or - for stdin.")
    result: list[InputFile] = []
    seen: set[str] = set()
    for spec in specs:
        if spec == STDIN:
            if STDIN in seen:
                raise InputError("standard input (-) named twice", hint="Name - at most once.")
            seen.add(STDIN)
            result.append(InputFile(STDIN))
            continue
        path = Path(spec)
        explicit = False
        if path.is_dir():
            matches = _expand_directory(path)
            if not matches:
                raise InputError("directory holds no files", path=spec,
                                 hint="Point at the folder that holds the access logs.")
        elif glob.has_magic(spec):
            matches = [m for m in glob.glob(spec, recursive=True) if Path(m).is_file()]
            if not matches:
                raise InputError("no file matches this pattern", path=spec,
                                 hint="Check the pattern; quote it so the shell does not expand it first.")
        else:
            try:
                mode = path.stat().st_mode
            except FileNotFoundError:
                raise InputError("no such file", path=spec, hint="Check the path and spelling.") from None
            except OSError as exc:
                raise InputError(f"cannot read: {exc.strerror}", path=spec,
                                 hint="Check the file's permissions.") from None
            if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
                raise InputError("not a regular file", path=spec, hint="Name a log file or a folder of them.")
            matches = [spec]
            explicit = True
        for match in sorted(matches, key=rotation_key):
            if match not in seen:
                seen.add(match)
                result.append(InputFile(match, explicit=explicit))
    for source in result:
        _check_readable(source.path)
    return result


def _check_readable(path: str) -> None:
    """Open each regular file once before anything is read, so an unreadable one stops the run at once (naming
    it) rather than after the files before it were parsed. Pipes and devices are left alone: opening one may
    block or consume it."""
    if path == STDIN:
        return
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror}", path=path,
                         hint="Check the file's permissions, or leave it out; nothing was read.") from None
