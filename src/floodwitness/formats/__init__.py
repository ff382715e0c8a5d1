"""Stage 2: formats. Detect which format a file is in and parse its lines into the normalized schema.

Formats register by name in :data:`FORMATS`; the name is the format's own ``name`` field, so the
registry, the CLI's ``--format`` choices and ``floodwitness formats`` cannot drift apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from floodwitness.errors import FormatError
from floodwitness.formats.base import LogFormat
from floodwitness.formats.builtin import TEMPLATES
from floodwitness.formats.json_format import NginxJsonFormat
from floodwitness.formats.proxies import FORMATS as PROXY_FORMATS
from floodwitness.formats.w3c import CLOUDFRONT, IIS

if TYPE_CHECKING:
    from collections.abc import Sequence

FORMATS: dict[str, LogFormat] = {fmt.name: fmt for fmt in (*TEMPLATES, NginxJsonFormat(), *PROXY_FORMATS, IIS,
                                                            CLOUDFRONT)}


def get_format(name: str, own: Sequence[LogFormat] = ()) -> LogFormat:
    """The format called ``name``: one of the user's own (``own``) or a built-in."""
    for fmt in own:
        if fmt.name == name:
            return fmt
    try:
        return FORMATS[name]
    except KeyError:
        names = sorted({*FORMATS, *(fmt.name for fmt in own)})
        raise FormatError(f"unknown format {name!r}",
                          hint="Choose one of: auto, " + ", ".join(names) + " (see `floodwitness formats`).") from None


__all__ = ["FORMATS", "LogFormat", "get_format"]
