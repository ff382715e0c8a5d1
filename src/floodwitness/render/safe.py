"""Make attacker-controlled text safe to show.

Log fields are written by whoever sent the request: a user agent can hold terminal escape sequences
that rewrite the screen, or rich markup. Everything from a log goes through here before a terminal.
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 controls except none kept, DEL, C1 controls; plus Unicode bidi overrides that can reorder text.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


#: Characters JSON leaves as they are that a terminal or editor would act on (C1 controls, bidi overrides, line
#: separators): written as \\uXXXX escapes, so a JSON file can be shown with `cat` safely and still means the same.
_JSON_VISIBLE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def json_text(data: Any, *, indent: int | None = 1) -> str:
    """``data`` as JSON (UTF-8 text kept readable) whose every control character is an escape."""
    text = json.dumps(data, indent=indent, ensure_ascii=False, default=str)
    return _JSON_VISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def terminal_safe(text: str | None, limit: int | None = 200) -> str:
    """Control characters as visible ``\\xNN`` escapes, and the result cut to ``limit`` characters."""
    if text is None:
        return "-"
    out = _UNSAFE.sub(_escape, text)
    if limit is not None and len(out) > limit:
        out = out[: limit - 1] + "…"
    return out
