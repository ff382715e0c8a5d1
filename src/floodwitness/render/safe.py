"""Make attacker-controlled text safe to show.

Log fields are written by whoever sent the request: a user agent can hold terminal escape sequences
that rewrite the screen, or rich markup. Everything from a log goes through here before a terminal.
"""

from __future__ import annotations

import re

# C0 controls except none kept, DEL, C1 controls; plus Unicode bidi overrides that can reorder text.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str | None, limit: int | None = 200) -> str:
    """Control characters as visible ``\\xNN`` escapes, and the result cut to ``limit`` characters."""
    if text is None:
        return "-"
    out = _UNSAFE.sub(_escape, text)
    if limit is not None and len(out) > limit:
        out = out[: limit - 1] + "…"
    return out
