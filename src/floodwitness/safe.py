"""Make attacker-controlled text safe to show.

Log fields are written by whoever sent the request: a user agent can hold terminal escape sequences
that rewrite the screen, or rich markup. Everything from a log goes through here before a terminal.
Shared by every stage that writes text (mitigation's exports, the renderers, the CLI), so it sits before them all.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

# C0 controls except none kept, DEL, C1 controls; plus Unicode bidi overrides that can reorder text.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


#: Characters JSON leaves as they are that a terminal or editor would act on (C1 controls, bidi overrides, line
#: separators): written as \\uXXXX escapes, so a JSON file can be shown with `cat` safely and still means the same.
_JSON_VISIBLE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


#: orjson: indented output ten times faster than the standard library's (whose C encoder cannot indent; a report's
#: blocklist alone can be tens of thousands of entries); dates and dataclasses through ``str`` like ``json.dumps``'s
#: ``default=str``; NaN and infinities as null (strict JSON).
_ORJSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def json_text(data: Any, *, indent: bool = True) -> str:
    """``data`` as JSON (UTF-8 text kept readable, indented by two spaces unless ``indent`` is False) whose
    every control character is an escape."""
    text = orjson.dumps(data, default=str, option=_ORJSON | (orjson.OPT_INDENT_2 if indent else 0)).decode()
    return _JSON_VISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def terminal_safe(text: str | None, limit: int | None = 200) -> str:
    """Control characters as visible ``\\xNN`` escapes, and the result cut to ``limit`` characters."""
    if text is None:
        return "-"
    out = _UNSAFE.sub(_escape, text)
    if limit is not None and len(out) > limit:
        out = out[: limit - 1] + "…"
    return out
