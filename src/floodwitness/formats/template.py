"""Formats written as an nginx ``log_format`` string (``$remote_addr - $remote_user [$time_local] ...``).

A template compiles to two parsers that agree:

* a **fast path** that splits the line on ``"`` and then on spaces, by the positions the template
  implies (vectorised string splitting: the engine's fastest string work), used when the line has
  exactly the expected number of pieces;
* a **regex path**, one anchored pattern built from the template, for the odd lines the fast path
  cannot take (Apache's ``\\"`` inside a user agent, spaces inside a URL). The same pattern, in
  Python, scores sample lines for auto-detection, so detection and parsing cannot disagree.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import ibis
import ibis.expr.types as ir

from floodwitness.errors import FormatError
from floodwitness.formats import fields as f
from floodwitness.formats.base import LogFormat

_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")

# Pattern of a variable outside quotes. Inside quotes every variable is "anything but an unescaped quote".
_QUOTED = r'((?:[^"\\]|\\.)*)'
_BARE = r"(\S*)"
_LIST = r"(\S+(?:(?:, | : )\S+)*)"  # "10.0.0.1:80, 10.0.0.2:80 : ..." when a request went to several upstreams
_NUM = r"(?:-|[0-9]+(?:\.[0-9]+)?)"
_NUM_LIST = rf"({_NUM}(?:(?:, | : ){_NUM})*)"
_STATUS_LIST = r"((?:-|[0-9]{3})(?:(?:, | : )(?:-|[0-9]{3}))*)"
_BARE_PATTERNS = {
    "time_local": r"([0-9]{2}/[A-Za-z]{3}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4})",
    "status": r"([0-9]{3})",
    "body_bytes_sent": r"(-|[0-9]+)", "bytes_sent": r"(-|[0-9]+)", "request_length": r"(-|[0-9]+)",
    "msec": r"([0-9]+(?:\.[0-9]+)?)",
    "request_time": rf"({_NUM})",
    "upstream_response_time": _NUM_LIST, "upstream_connect_time": _NUM_LIST, "upstream_header_time": _NUM_LIST,
    "upstream_status": _STATUS_LIST, "upstream_addr": _LIST,
}
#: Variables whose value contains a fixed number of spaces when unquoted (so the fast path can count).
_SPACES = {"time_local": 1}

#: Any line of the NCSA family: optional virtual host, client, ident, user, [time], "request", status,
#: bytes, optional "referer" "user agent", then extra fields (quotes balanced, so a line cut inside a
#: quoted field is still a mismatch); the ident may be missing. Lines of a
#: mixed file that do
#: not fit the file's own template (a vhost line among combined lines, a line with an extra field) are
#: read with this instead of being lost; only the fields it knows are filled.
LENIENT_CLF = (r'^(?:(\S+) )??(\S+) (?:(\S+) )?(\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" ([0-9]{3}) (\S+)'
               r'(?: "((?:[^"\\]|\\.)*)"(?: "((?:[^"\\]|\\.)*)")?)?(?:[ \t](?:[^"]|"(?:[^"\\]|\\.)*")*)?$')
_LENIENT_GROUPS = {"remote_addr": 2, "time_local": 5, "request": 6, "status": 7, "body_bytes_sent": 8,
                   "bytes_sent": 8, "http_referer": 9, "http_user_agent": 10}
_LENIENT_RE = re.compile(LENIENT_CLF)


@functools.lru_cache(maxsize=1024)
def lenient_match(line: str) -> bool:
    """Whether ``line`` is any NCSA-family line. Cached: every lenient format asks about the same sample lines,
    and crafted lines make this backtracking pattern cost microseconds per character (detect clears it)."""
    return _LENIENT_RE.match(line) is not None


def only_group(pattern: str, keep: int) -> str:
    """``pattern`` with every capturing group but number ``keep`` made non-capturing.

    Engines differ in how many groups an extract may address (DuckDB: 9), so each field is extracted
    as group 1 of its own variant of the pattern, which every engine supports.
    """
    out, index, i = [], 0, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if ch == "[":  # a character class: copy it whole (a "(" inside is literal)
            j = i + 1
            if j < len(pattern) and pattern[j] == "^":
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                j += 1
            while j < len(pattern) and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            out.append(pattern[i:j + 1])
            i = j + 1
            continue
        if ch == "(" and not pattern.startswith("(?", i):
            index += 1
            out.append("(" if index == keep else "(?:")
            i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _first(raw: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in raw:
            return raw[name]
    return None


# How each normalized column is computed from the template's raw variable values.
_Builder = Callable[[dict[str, Any]], Any]
_COLUMN_RULES: dict[str, tuple[tuple[str, ...], _Builder]] = {
    "client_ip": (("remote_addr",), lambda r: r["remote_addr"]),
    "host": (("host", "http_host", "server_name"),
             lambda r: f.dash_null(_first(r, "host", "http_host", "server_name"))),
    "status": (("status",), lambda r: f.status_code(r["status"])),
    "bytes": (("body_bytes_sent", "bytes_sent"), lambda r: ibis.ifelse(
        _first(r, "body_bytes_sent", "bytes_sent") == "-", 0,
        _first(r, "body_bytes_sent", "bytes_sent").try_cast("int64"))),
    "referer": (("http_referer",), lambda r: f.dash_null(r["http_referer"])),
    "user_agent": (("http_user_agent",), lambda r: f.dash_null(r["http_user_agent"])),
    "request_time": (("request_time",), lambda r: r["request_time"].try_cast("float64")),
    "upstream_status": (("upstream_status",), lambda r: f.last_of_list(r["upstream_status"]).try_cast("int16")),
    "upstream_time": (("upstream_response_time",),
                      lambda r: f.last_of_list(r["upstream_response_time"]).try_cast("float64")),
    "upstream_addr": (("upstream_addr",), lambda r: f.dash_null(r["upstream_addr"])),
    "xff": (("http_x_forwarded_for",), lambda r: f.dash_null(r["http_x_forwarded_for"])),
}
_TIME_RULES: tuple[tuple[str, Callable[[ir.Table, str], ir.Table]], ...] = (
    ("time_local", f.clf_time), ("time_iso8601", f.iso_time), ("msec", f.epoch_time),
)


@dataclass(frozen=True)
class _Piece:
    """One variable's place in the fast path: in quoted piece ``segment``, or in bare ``segment`` at
    space-separated tokens ``token .. token+width`` with a literal ``prefix``/``suffix`` to strip."""

    name: str
    segment: int
    token: int | None = None
    width: int = 1
    prefix: str = ""
    suffix: str = ""
    sep: str = ""  # several variables in one token ("$server_name:$server_port"): split it on sep
    part: int = 0
    parts: int = 1


@dataclass(frozen=True)
class TemplateFormat(LogFormat):
    """A format defined by an nginx-style template (Apache formats are translated to one)."""

    name: str
    template: str
    description: str
    example: str
    aliases: tuple[str, ...] = field(default=())
    #: Fall back to LENIENT_CLF for lines that do not fit this template (NCSA-family formats only).
    lenient: bool = False

    def __post_init__(self) -> None:
        variables = self.variables
        if not any(v in variables for v, _ in _TIME_RULES):
            raise FormatError(f"format {self.name!r} has no time variable",
                              hint="A log format needs $time_local, $time_iso8601 or $msec.")
        if "remote_addr" not in variables:
            raise FormatError(f"format {self.name!r} has no client address",
                              hint="A log format needs $remote_addr (Apache: %h or %a).")

    # -- structure ----------------------------------------------------------------------------------

    @cached_property
    def variables(self) -> tuple[str, ...]:
        return tuple(m.group(1) or m.group(2) for m in _VAR.finditer(self.template))

    @cached_property
    def provides(self) -> frozenset[str]:  # type: ignore[override]
        names = {"ts"}
        for column, (needs, _) in _COLUMN_RULES.items():
            if any(n in self.variables for n in needs):
                names.add(column)
        if "remote_addr" in self.variables:
            names.add("ip_family")
        if "request" in self.variables:
            names |= {"method", "path", "query", "protocol"}
        return frozenset(names)

    @cached_property
    def regex(self) -> str:
        out, quoted, pos = ["^"], False, 0
        for m in _VAR.finditer(self.template):
            literal = self.template[pos:m.start()]
            quoted ^= literal.count('"') % 2 == 1
            out.append(re.escape(literal))
            name = m.group(1) or m.group(2)
            out.append(_QUOTED if quoted else _BARE_PATTERNS.get(name, _BARE))
            pos = m.end()
        out.append(re.escape(self.template[pos:]) + r"[ \t]*$")
        return "".join(out)

    @cached_property
    def _compiled(self) -> re.Pattern[str]:
        return re.compile(self.regex)

    @cached_property
    def pieces(self) -> tuple[_Piece, ...] | None:
        """Fast-path layout, or None when the template is not splittable (then the regex does it all)."""
        segments = self.template.split('"')
        result: list[_Piece] = []
        for index, segment in enumerate(segments):
            names = [m.group(1) or m.group(2) for m in _VAR.finditer(segment)]
            if index % 2 == 1:  # inside quotes: exactly one variable, maybe with literal text around it
                if len(names) != 1:
                    return None
                m = _VAR.search(segment)
                assert m is not None
                result.append(_Piece(names[0], index, prefix=segment[:m.start()], suffix=segment[m.end():]))
                continue
            token = 0
            for word in segment.split(" "):
                found = list(_VAR.finditer(word))
                if len(found) > 1:
                    seps = {word[a.end():b.start()] for a, b in itertools.pairwise(found)}
                    if len(seps) != 1 or "" in seps or word[:found[0].start()] or word[found[-1].end():]:
                        return None
                    sep = seps.pop()
                    for position, m in enumerate(found):
                        name = m.group(1) or m.group(2)
                        result.append(_Piece(name, index, token, 1, sep=sep, part=position, parts=len(found)))
                    token += 1
                    continue
                if found:
                    m = found[0]
                    name = m.group(1) or m.group(2)
                    # A "0.1, 0.2" upstream list adds tokens: the count check then sends the line to the regex.
                    width = _SPACES.get(name, 0) + 1
                    result.append(_Piece(name, index, token, width, word[:m.start()], word[m.end():]))
                    token += width
                else:
                    token += 1
        return tuple(result)

    @cached_property
    def _token_counts(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for index, segment in enumerate(self.template.split('"')):
            if index % 2 == 0:
                counts[index] = len(segment.split(" ")) + sum(
                    _SPACES.get(m.group(1) or m.group(2), 0) for m in _VAR.finditer(segment))
        return counts

    # -- LogFormat ----------------------------------------------------------------------------------

    def match_fraction(self, lines: Sequence[str]) -> float:
        """Share of lines this format reads: its own layout, or (lenient formats) any NCSA-family line."""
        sample = [line for line in lines if line.strip()]
        if not sample:
            return 0.0
        ok = sum(1 for line in sample
                 if self._compiled.match(line) or (self.lenient and lenient_match(line)))
        return ok / len(sample)

    def exact_fraction(self, lines: Sequence[str]) -> float:
        """Share of lines in exactly this template's layout (tie-breaker between lenient formats)."""
        sample = [line for line in lines if line.strip()]
        return sum(1 for line in sample if self._compiled.match(line)) / len(sample) if sample else 0.0

    def parse(self, lines: ir.Table) -> ir.Table:
        pieces = self.pieces
        raw: dict[str, str] = {}  # variable -> column holding its text
        if pieces is None:
            t = f.strip_newline(lines)  # every line takes the regex: strip each once
            text = t._t
            t = t.mutate(_fast=ibis.literal(False))
        else:
            # The fast path splits the line as read: stripping the newline from every whole line costs more
            # than the split. Only the last piece holds the line ending, so only it is stripped. A CR
            # anywhere else sends the line to the regex path, which reads the stripped text.
            text = f.stripped(lines.text)  # inlined under the regex branches: computed for those lines only
            last = len(self.template.split('"')) - 1
            t = lines.mutate(_p=lines.text.split('"'))

            def segment(seg: int) -> ir.StringValue:
                return f.stripped(t._p[seg]) if seg == last else t._p[seg]

            t = t.mutate(**{f"_s{seg}": segment(seg).split(" ") for seg in self._token_counts})
            fast = t._p.length() == last + 1
            for seg, count in self._token_counts.items():
                fast = fast & (t[f"_s{seg}"].length() == count)
            for piece in pieces:
                if piece.sep:
                    fast = fast & (t[f"_s{piece.segment}"][piece.token].split(piece.sep).length() == piece.parts)
            fast = fast & ibis.ifelse(t.text.contains("\r"),
                                      f.count_cr(t.text) == f.count_cr(t._p[last]), True)
            t = t.mutate(_fast=fast)
        t = t.mutate(_own=ibis.ifelse(t._fast, True, text.re_search(self.regex)))
        if self.lenient:
            t = t.mutate(_lenient=ibis.ifelse(t._own, False, text.re_search(LENIENT_CLF)))
            t = t.mutate(_mismatch=~t._own & ~t._lenient)
        else:
            t = t.mutate(_mismatch=~t._own)
        extracted: dict[str, Any] = {}
        for group, name in enumerate(self.variables, start=1):
            if name in extracted:
                continue
            slow = text.re_extract(only_group(self.regex, group), 1)
            if self.lenient:
                fallback = (text.re_extract(only_group(LENIENT_CLF, _LENIENT_GROUPS[name]), 1)
                            if name in _LENIENT_GROUPS else ibis.literal("-"))
                slow = ibis.ifelse(t._own, slow, fallback)
            if pieces is None:
                extracted[name] = slow
                continue
            piece = next(p for p in pieces if p.name == name)
            if piece.sep:
                value = t[f"_s{piece.segment}"][piece.token].split(piece.sep)[piece.part]
            elif piece.token is None:
                value = segment(piece.segment)
            else:
                tokens = t[f"_s{piece.segment}"]
                value = tokens[piece.token]
                for extra in range(piece.token + 1, piece.token + piece.width):
                    value = value + " " + tokens[extra]  # concatenation: cheaper than slicing and joining a list
            if piece.prefix or piece.suffix:
                cut = len(piece.prefix) + len(piece.suffix)
                value = value.substr(len(piece.prefix), value.length() - cut)
            extracted[name] = ibis.ifelse(t._fast, value, slow)
        for name in extracted:
            raw[name] = f"_v_{name}"
        t = t.mutate(**{raw[name]: expr for name, expr in extracted.items()})
        t = t.mutate(**self._columns({name: t[col] for name, col in raw.items()}))
        for variable, convert in _TIME_RULES:
            if variable in raw:
                t = convert(t, raw[variable])
                break
        if "request" in raw:
            t = f.split_request(t, raw["request"])
        return f.finish(t, "_mismatch", self.provides, fast="_fast")

    def _columns(self, raw: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for column, (needs, build) in _COLUMN_RULES.items():
            if any(n in raw for n in needs):
                values[column] = build(raw)
        values["ip_family"] = f.ip_family(raw["remote_addr"])
        return values
