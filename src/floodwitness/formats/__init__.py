"""Stage 2: formats. Detect which format a file is in and parse its lines into the normalized schema.

Formats register by name in :data:`FORMATS`; the name is the format's own ``name`` field, so the
registry, the CLI's ``--format`` choices and ``floodwitness formats`` cannot drift apart.
"""

from __future__ import annotations

from floodwitness.errors import FormatError
from floodwitness.formats.base import LogFormat
from floodwitness.formats.builtin import TEMPLATES
from floodwitness.formats.json_format import NginxJsonFormat

FORMATS: dict[str, LogFormat] = {fmt.name: fmt for fmt in (*TEMPLATES, NginxJsonFormat())}


def get_format(name: str) -> LogFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise FormatError(f"unknown format {name!r}",
                          hint="Choose one of: auto, " + ", ".join(sorted(FORMATS))
                          + " (see `floodwitness formats`).") from None


__all__ = ["FORMATS", "LogFormat", "get_format"]
