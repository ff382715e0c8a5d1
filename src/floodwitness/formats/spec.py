"""Formats written as a small declarative spec: one or more line layouts plus how raw values become columns.

A layout is either an anchored regular expression whose *named* groups are the raw values, or a JSON
object recognised by keys it must contain (values then come from one pattern per key, so an invalid
JSON line is a counted rejection, never an engine error). A format may have several layouts (Envoy
writes its default text lines and JSON lines into the same container log): each line is read with
the first layout it fits. The same patterns, in Python, score sample lines for auto-detection, so
detection and parsing cannot disagree.

Raw values become normalized columns through named converters (``CONVERTERS``); what needs several
raw values at once (a load balancer's three processing times, where the failure happened) is the
format's ``derive`` hook. Everything stays a portable ibis expression.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir

from floodwitness.errors import FormatError
from floodwitness.formats import fields as f
from floodwitness.formats.base import LogFormat
from floodwitness.formats.template import python_regex

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

_NAMED = re.compile(r"\(\?P<(\w+)>")

#: A quoted field that may contain backslash escapes (Apache/ALB style).
Q = r'((?:[^"\\]|\\.)*)'


def named_only(pattern: str, keep: str) -> str:
    """``pattern`` with named group ``keep`` as the only (plain) capturing group, others non-capturing (``keep``
    empty: none captures). The names are for Python; no engine sees them."""
    return _NAMED.sub(lambda m: "(" if m.group(1) == keep else "(?:", pattern)


def _nulls(s: ir.StringValue) -> ir.StringValue:
    """``-``, empty and JSON ``null`` mean absent."""
    return ibis.ifelse((s == "-") | (s == "") | (s == "null"), ibis.null("string"), s)


def _seconds(scale: float) -> Callable[[ir.StringValue], ir.Value]:
    """A duration in some unit to seconds; negative (AWS's ``-1``: never happened) is null."""
    def convert(s: ir.StringValue) -> ir.Value:
        value = s.replace("+", "").replace("s", "").try_cast("float64")
        return ibis.ifelse(value >= 0, value * scale, ibis.null("float64"))
    return convert


def addr(s: ir.StringValue) -> ir.StringValue:
    """An address as logged to the bare IP: ``1.2.3.4:80`` -> ``1.2.3.4``, ``[v6]:80`` or ``[v6]`` -> ``v6``.

    An unbracketed IPv6 literal (several colons) is kept whole: its last group cannot be told from a port.
    """
    s = _nulls(s.strip())
    colons = s.length() - s.replace(":", "").length()
    return ibis.cases(
        (s.startswith("::ffff:") & s.contains("."), s.substr(7)),  # an IPv4 client of a dual-stack socket
        (s.startswith("["), s.re_extract(r"^\[([^\]]*)\]", 1)),
        (colons == 1, s.re_extract(r"^([^:]*):", 1)),
        else_=s,
    )


def status0(s: ir.StringValue) -> ir.IntegerValue:
    """A status where "no response" is written ``-``, ``-1``, ``0`` or ``000``: that becomes 0."""
    none = (s == "-") | (s == "-1") | (s == "0") | (s == "000")
    return ibis.ifelse(none, ibis.literal(0, "int16"), f.status_code(s))


def _int_plus(s: ir.StringValue) -> ir.IntegerValue:
    return s.replace("+", "").try_cast("int64")


#: Converters by name: raw text -> typed value.
CONVERTERS: dict[str, Callable[[ir.StringValue], ir.Value]] = {
    "text": _nulls,
    "plus_spaces": lambda s: _nulls(s).replace("+", " "),  # IIS writes spaces as +
    "pct_spaces": lambda s: _nulls(s).replace("%20", " ").replace("%2520", " "),  # CloudFront %-encodes
    "addr": addr,
    "status": f.status_code,
    "status0": status0,
    "upstream_status": lambda s: ibis.ifelse(status0(s) == 0, ibis.null("int16"), status0(s)),
    "int": _int_plus,
    "bytes": lambda s: ibis.ifelse((s == "-") | (s == ""), 0, _int_plus(s)),
    "seconds": _seconds(1.0),
    "ms": _seconds(1e-3),
    "us": _seconds(1e-6),
    "ns": _seconds(1e-9),
}


def epoch_auto(t: ir.Table, col: str, out: str = "ts") -> ir.Table:
    """A time written as RFC 3339 or as a Unix time in s, ms, us or ns (Cloudflare's ``timestamp_format``)."""
    s = t[col]
    digits = s.length()
    whole = ibis.cases((digits >= 18, s.substr(0, digits - 9)), (digits >= 15, s.substr(0, digits - 6)),
                       (digits >= 12, s.substr(0, digits - 3)), else_=s)
    frac = ibis.cases((digits >= 18, s.substr(digits - 9, 6)), (digits >= 15, s.substr(digits - 6, 6)),
                      (digits >= 12, s.substr(digits - 3, 3)), else_=ibis.literal("0"))
    t = t.mutate(_ea_num=ibis.ifelse(s.contains("-") | s.contains("."), s, whole + "." + frac))
    t = f.epoch_time(t, "_ea_num", "_ea_epoch")
    t = f.iso_time(t, col, "_ea_iso")
    t = t.mutate(**{out: ibis.ifelse(s.contains("-"), t._ea_iso, t._ea_epoch)})
    return t.drop("_ea_num", "_ea_epoch", "_ea_iso")


def clf_ms(t: ir.Table, col: str, out: str = "ts") -> ir.Table:
    """HAProxy's ``06/Feb/2009:12:14:14.655`` (no zone: read as UTC) with its milliseconds."""
    s = t[col]
    t = t.mutate(_cm_clf=s.substr(0, 20) + " +0000", _cm_ms=s.substr(21, 3).try_cast("int64"))
    t = f.clf_time(t, "_cm_clf", "_cm_ts")
    t = t.mutate(**{out: ibis.ifelse((s.length() == 24) & t._cm_ms.notnull(),
                                     t._cm_ts + t._cm_ms.as_interval("ms"), ibis.null("timestamp"))})
    return t.drop("_cm_clf", "_cm_ms", "_cm_ts")


#: Time converters by name: (table, raw column, output column) -> table with the UTC timestamp added.
TIMES: dict[str, Callable[[ir.Table, str, str], ir.Table]] = {
    "iso": f.iso_time, "clf": f.clf_time, "epoch": f.epoch_time, "epoch_auto": epoch_auto, "clf_ms": clf_ms,
}


def _request_columns(t: ir.Table, request: bool, uri: bool) -> ir.Table:
    """method/path/query/protocol from a request line (``_v_request``) and/or a target (``_v_uri``); a
    layout without a request line keeps the method and protocol it has as values of their own."""
    own = [c for c in ("method", "protocol") if c in t.columns]
    t = t.rename({f"_c_{c}": c for c in own})
    if request:
        t = f.split_request(t, "_v_request")
    if uri:
        u = t._v_uri
        t = t.mutate(_q=u.find("?"))
        path = ibis.ifelse(t._q >= 0, u.substr(0, t._q), u)
        query = ibis.ifelse(t._q >= 0, u.substr(t._q + 1), ibis.null("string"))
        if request:
            path = ibis.ifelse(t._v_request.isnull(), path, t.path)
            query = ibis.ifelse(t._v_request.isnull(), query, t.query)
        t = t.mutate(path=path, query=query).drop("_q")
    for c in own:
        t = t.mutate(**{c: ibis.coalesce(t[c], t[f"_c_{c}"]) if c in t.columns else t[f"_c_{c}"]})
        t = t.drop(f"_c_{c}")
    return absolute_path(t)


def absolute_path(t: ir.Table) -> ir.Table:
    """A ``path`` that is an absolute URL (``https://host:443/p``, as load balancers and proxies log it)
    becomes the path alone, and gives ``_url_host``: the host without its port."""
    p = t.path
    absolute = p.startswith("http://") | p.startswith("https://")
    rest = p.re_extract(r"^https?://[^/?#]*(.*)$", 1)
    return t.mutate(path=ibis.ifelse(absolute, ibis.ifelse(rest == "", "/", rest), p),
                    _url_host=ibis.ifelse(absolute, p.re_extract(r"^https?://(\[[^\]]*\]|[^/?#:]*)", 1),
                                          ibis.null("string")))


@dataclass(frozen=True)
class Layout:
    """One way a line of the format can look.

    Text: ``pattern`` is an anchored regex whose named groups are raw values. JSON: ``keys`` maps a raw
    value to a key (``"a|b"``: the first present; ``"User-Agent[]"``: the first element of an array) and
    a line is of this layout when it contains every string of ``require``. Layouts are tried in order.
    """

    pattern: str = ""
    keys: tuple[tuple[str, str], ...] = ()
    require: tuple[str, ...] = ()
    #: False for the format's own lines that record no request (HAProxy connection errors, Caddy debug
    #: lines): they are counted as ``not_a_request``, and make a file this format's only beside requests.
    request: bool = True

    @cached_property
    def compiled(self) -> re.Pattern[str] | None:
        return python_regex(self.pattern) if self.pattern else None

    @property
    def roles(self) -> tuple[str, ...]:
        if self.pattern:
            return tuple(_NAMED.findall(self.pattern))
        return tuple(role for role, _ in self.keys)

    def matches(self, line: str) -> bool:
        if self.compiled is not None:
            return self.compiled.match(line) is not None
        return "{" in line and all(r in line for r in self.require)

    def test(self, text: ir.StringValue) -> ir.BooleanValue:
        if self.pattern:  # the names are Python's syntax (Java's regex reads ``(?P<`` as an error): unnamed
            return text.re_search(named_only(self.pattern, ""))
        cond = text.contains("{")
        for r in self.require:
            cond = cond & text.contains(r)
        return cond

    def extract(self, text: ir.StringValue, role: str) -> ir.StringValue:
        if self.pattern:
            return text.re_extract(named_only(self.pattern, role), 1)
        key = dict(self.keys)[role]
        values = [_json_value(text, k) for k in key.split("|")]
        out = values[-1]
        for value in reversed(values[:-1]):
            out = ibis.ifelse(_nulls(value).isnull(), out, value)
        return out


def _json_value(text: ir.StringValue, key: str) -> ir.StringValue:
    if key.endswith("[]"):
        pattern = r'"' + re.escape(key[:-2]) + r'"\s*:\s*\[\s*"((?:[^"\\]|\\.)*)"'
        return _unescape(text.re_extract(pattern, 1))
    pattern = r'"' + re.escape(key) + r'"\s*:\s*(?:"((?:[^"\\]|\\.)*)"|([^",}\s\]]+))'
    quoted, bare = text.re_extract(pattern, 1), text.re_extract(pattern, 2)
    return ibis.ifelse(bare != "", bare, _unescape(quoted))


def _unescape(s: ir.StringValue) -> ir.StringValue:
    return s.replace('\\"', '"').replace("\\/", "/").replace("\\\\", "\\")


@dataclass(frozen=True)
class SpecFormat(LogFormat):
    """A format defined by layouts, column converters and a time converter (see the module docstring).

    ``columns`` are ``(column, converter, raw value)``; the raw values ``request`` (a whole request line)
    and ``uri`` (a request target, maybe an absolute URL) fill method/path/query/protocol and, from an
    absolute URL, host. ``time`` is ``(time converter, raw value)``.
    """

    name: str
    description: str
    example: str
    layouts: tuple[Layout, ...]
    time: tuple[str, str]
    columns: tuple[tuple[str, str, str], ...] = ()
    #: Raw value copied to ``edge_detail`` (null when ``-``), when the format has one.
    detail: str = ""
    #: Extra normalized columns ``derive`` fills.
    derived: frozenset[str] = field(default=frozenset())

    def __post_init__(self) -> None:
        for layout in self.layouts:
            if layout.compiled is not None and layout.compiled.groups != len(layout.compiled.groupindex):
                raise FormatError(f"format {self.name!r}: every group of a layout pattern must be named "
                                  "(use (?:...) for the others)")

    @cached_property
    def roles(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for layout in self.layouts:
            seen.update(dict.fromkeys(layout.roles))
        return tuple(seen)

    @property
    def provides(self) -> frozenset[str]:  # type: ignore[override]
        out = {"ts"} | {column for column, _, role in self.columns if role in self.roles} | set(self.derived)
        if "client_ip" in out:
            out.add("ip_family")
        if "request" in self.roles:
            out |= {"method", "path", "query", "protocol"}
        if "uri" in self.roles:
            out |= {"path", "query"}
        if out & {"path"} and "host" not in out and ("request" in self.roles or "uri" in self.roles):
            out.add("host")  # from an absolute URL, when the line has one
        if self.detail:
            out.add("edge_detail")
        return frozenset(out)

    def match_fraction(self, lines: Sequence[str]) -> float:
        """Share of lines in one of the layouts; 0 when none of them is a request."""
        sample = [line for line in lines if line.strip()]
        requests = other = 0
        for line in sample:
            layout = next((layout for layout in self.layouts if layout.matches(line)), None)
            if layout is not None:
                requests += layout.request
                other += not layout.request
        return (requests + other) / len(sample) if requests else 0.0

    def derive(self, t: ir.Table) -> dict[str, ir.Value]:
        """Columns computed from several raw values (``_v_<raw>``) and converted columns: none by default."""
        del t
        return {}

    def parse(self, lines: ir.Table) -> ir.Table:
        t = f.strip_newline(lines)
        text = t._t
        layouts = self.layouts
        t = t.mutate(_lay=ibis.cases(*((layout.test(text), i) for i, layout in enumerate(layouts)), else_=-1)
                     if len(layouts) > 1 else ibis.ifelse(layouts[0].test(text), 0, -1))
        raw: dict[str, ir.Value] = {}
        for role in self.roles:
            branches = [(t._lay == i, layout.extract(text, role)) for i, layout in enumerate(layouts)
                        if role in layout.roles]
            raw[f"_v_{role}"] = ibis.cases(*branches, else_=ibis.null("string"))
        t = t.mutate(_mismatch=t._lay < 0, **raw)
        others = [i for i, layout in enumerate(layouts) if not layout.request]
        if others:
            t = t.mutate(pre_reject=ibis.ifelse(t._lay.isin(others) & t.pre_reject.isnull(), "not_a_request",
                                                t.pre_reject))
        values: dict[str, ir.Value] = {}
        for column, converter, role in self.columns:
            if role in self.roles:
                values[column] = CONVERTERS[converter](t[f"_v_{role}"])
        if self.detail:
            values["edge_detail"] = _nulls(t[f"_v_{self.detail}"])
        t = t.mutate(**values)
        convert, role = self.time
        t = TIMES[convert](t, f"_v_{role}", "ts")
        if "request" in self.roles or "uri" in self.roles:
            t = _request_columns(t, "request" in self.roles, "uri" in self.roles)
        if "_url_host" in t.columns:
            host = t._url_host if "host" not in t.columns else ibis.coalesce(t.host, t._url_host)
            t = t.mutate(host=host).drop("_url_host")
        extra = self.derive(t)
        if extra:
            t = t.mutate(**extra)
        if "client_ip" in t.columns:
            t = t.mutate(ip_family=f.ip_family(ibis.coalesce(t.client_ip, "")))
        return f.finish(t, "_mismatch", self.provides)


def value_of(t: ir.Table, role: str) -> Any:
    """Raw value ``role`` of a staged parse (for ``derive`` hooks)."""
    return t[f"_v_{role}"]
