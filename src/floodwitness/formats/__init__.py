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

#: Other names of built-in formats, the ones users know them by: the default access log of nginx and of Apache
#: (``log_format combined``, ``LogFormat ... combined``) is the combined format.
ALIASES: dict[str, str] = {"nginx": "combined", "apache": "combined"}


def format_names() -> list[str]:
    """Every name ``--format`` takes besides auto: the built-in formats and their aliases, sorted."""
    return sorted({*FORMATS, *ALIASES})


def aliases_of(name: str) -> list[str]:
    """The other names of the built-in format ``name``."""
    return sorted(alias for alias, target in ALIASES.items() if target == name)


def get_format(name: str, own: Sequence[LogFormat] = ()) -> LogFormat:
    """The format called ``name`` (or one of its :data:`ALIASES`): one of the user's own (``own``) or a built-in."""
    for fmt in own:
        if fmt.name == name:
            return fmt
    try:
        return FORMATS[ALIASES.get(name, name)]
    except KeyError:
        names = sorted({*format_names(), *(fmt.name for fmt in own)})
        raise FormatError(f"unknown format {name!r}",
                          hint="Choose one of: auto, " + ", ".join(names) + " (see `floodwitness formats`).") from None


__all__ = ["ALIASES", "FORMATS", "LogFormat", "aliases_of", "format_names", "get_format"]
