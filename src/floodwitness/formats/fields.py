"""Conversions from raw field text to normalized columns, as portable ibis expressions.

These run on every line, on DuckDB and on Spark alike, so they use only string slicing, casts,
CASE and integer arithmetic (no dialect-specific time-format strings and no per-row Python).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir

from floodwitness.schema import ARROW_SCHEMA, RAW_SAMPLE_CHARS, REQUEST_COLUMNS

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _int(s: ir.StringValue) -> ir.IntegerValue:
    return s.try_cast("int64")


def _utc(seconds: ir.IntegerValue, micros: ir.IntegerValue) -> ir.TimestampValue:
    """A naive timestamp holding UTC from epoch seconds and microseconds.

    The epoch plus two intervals: that stays a plain (naive) timestamp on every engine, and PySpark has no
    epoch in milliseconds. Going through a zoned timestamp makes DuckDB convert each row through ICU, which
    costs more than the parse.
    """
    epoch = ibis.literal(datetime(1970, 1, 1), type="timestamp")
    return epoch + seconds.as_interval("s") + micros.as_interval("us")


def _with_epoch(t: ir.Table, out: str) -> ir.Table:
    """Add column ``out`` = UTC timestamp from staged parts ``_y _mo _d _hh _mi _ss _off _us _ok``.

    Days since the epoch follow Howard Hinnant's ``days_from_civil`` (proleptic Gregorian, integer-only);
    each intermediate is its own stage so the generated SQL stays linear in size.
    """
    t = t.mutate(_y2=t._y - (t._mo <= 2).cast("int64"))
    t = t.mutate(_era=t._y2 // 400)
    t = t.mutate(_yoe=t._y2 - t._era * 400,
                 _doy=(153 * ((t._mo + 9) % 12) + 2) // 5 + t._d - 1)
    t = t.mutate(_doe=t._yoe * 365 + t._yoe // 4 - t._yoe // 100 + t._doy)
    t = t.mutate(_secs=(t._era * 146097 + t._doe - 719468) * 86400 + t._hh * 3600 + t._mi * 60 + t._ss - t._off)
    ok = t._ok & t._secs.notnull() & t._mo.between(1, 12) & t._d.between(1, 31) & t._hh.between(0, 23) \
        & t._mi.between(0, 59) & t._ss.between(0, 60)
    t = t.mutate(**{out: ibis.ifelse(ok, _utc(t._secs, t._us), ibis.null("timestamp"))})
    return t.drop("_y", "_mo", "_d", "_hh", "_mi", "_ss", "_off", "_us", "_ok", "_y2", "_era", "_yoe", "_doy",
                  "_doe", "_secs")


def clf_time(t: ir.Table, col: str, out: str = "ts") -> ir.Table:
    """``10/Oct/2000:13:55:36 -0700`` (Apache/nginx ``$time_local``) to UTC; null when malformed.

    The engine's own time parser (``strptime`` on DuckDB, ``to_timestamp`` on Spark: sqlglot translates the
    format), made a *try*-parse when the parse is compiled (see ``ingest.pipeline.parse_sql``), so a
    malformed time is a null, never an error. The length check keeps lenient parsers from accepting
    a one-digit day or a missing zone.
    """
    s = t[col]
    parsed = s.as_timestamp("%d/%b/%Y:%H:%M:%S %z")
    return t.mutate(**{out: ibis.ifelse(s.length() == 26, parsed, ibis.null("timestamp('UTC')"))})


def iso_time(t: ir.Table, col: str, out: str = "ts") -> ir.Table:
    """ISO 8601 / RFC 3339 (``2024-05-17T10:05:03.123+02:00``, ``Z``, ``+0200``, or none = UTC) to UTC."""
    s = t[col]
    t = t.mutate(_frac=s.re_extract(r"^.{19}[.,]([0-9]+)", 1),
                 _zone=s.re_extract(r"([+-][0-9]{2}):?([0-9]{2})$", 0).replace(":", ""))
    sep = s.substr(10, 1)
    zsign = ibis.cases((t._zone.substr(0, 1) == "-", -1), (t._zone.substr(0, 1) == "+", 1), else_=0)
    t = t.mutate(_y=_int(s.substr(0, 4)), _mo=_int(s.substr(5, 2)), _d=_int(s.substr(8, 2)),
                 _hh=_int(s.substr(11, 2)), _mi=_int(s.substr(14, 2)), _ss=_int(s.substr(17, 2)),
                 _us=ibis.ifelse(t._frac == "", 0, _int((t._frac + "000000").substr(0, 6))),
                 _off=zsign * (_int(t._zone.substr(1, 2)) * 3600 + _int(t._zone.substr(3, 2)) * 60),
                 _ok=((sep == "T") | (sep == " ")) & (s.substr(4, 1) == "-"))
    t = t.mutate(_off=ibis.ifelse(t._zone == "", 0, t._off)).drop("_frac", "_zone")
    return _with_epoch(t, out)


def epoch_time(t: ir.Table, col: str, out: str = "ts") -> ir.Table:
    """``1715933103.123`` (nginx ``$msec``) to UTC."""
    t = t.mutate(_val=t[col].try_cast("decimal(20, 6)"))
    t = t.mutate(_whole=t._val.floor().cast("int64"))
    t = t.mutate(_us=((t._val - t._whole) * 1_000_000).round().cast("int64"))
    ts = _utc(t._whole, t._us)
    t = t.mutate(**{out: ibis.ifelse(t._val.notnull() & (t._whole > 0), ts, ibis.null("timestamp"))})
    return t.drop("_val", "_whole", "_us")


def dash_null(s: ir.StringValue) -> ir.StringValue:
    """CLF writes ``-`` for an absent value."""
    return ibis.ifelse((s == "-") | (s == ""), ibis.null("string"), s)


def ip_family(ip: ir.StringValue) -> ir.IntegerValue:
    """4 for a dotted quad, 6 for an IPv6 literal, 0 for anything else (host names in old Apache logs).

    An anchored regex over the short address field (measured: half the cost of the equivalent string checks).
    """
    dotted = ip.re_search(r"^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$")
    v6 = ip.contains(":") & (ip.length() <= 45) & ~ip.contains(" ") & ~ip.contains("/")
    return ibis.cases((dotted, 4), (v6, 6), else_=0).cast("int8")


def last_of_list(s: ir.StringValue) -> ir.StringValue:
    """nginx logs ``502, 200`` or ``0.1, 0.2 : 0.3`` when a request went to several upstreams: the last."""
    return s.replace(" : ", ", ").split(", ")[-1]


def split_request(t: ir.Table, request: str) -> ir.Table:
    """Add method, path, query, protocol from the request-line column ``request``.

    ``GET /a?b=1 HTTP/1.1`` gives all four; two tokens (HTTP/0.9 style) give method and URL; a URL with
    spaces (old Apache) keeps them; a request line that is not a request at all (TLS bytes sent to a
    plain-HTTP port) is kept whole in ``path`` with no method, so the evidence is not lost; ``-`` or an
    empty request (the client sent nothing before timing out: Slowloris's 408s) leaves all four null.
    """
    t = t.mutate(_rp=t[request].split(" "))
    t = t.mutate(_rn=ibis.ifelse((t[request] == "-") | (t[request] == ""), 0, t._rp.length()))
    method = t._rp[0]
    # A method is a short token (GET, PROPFIND...): junk bytes sent to the port are not split into one.
    junk = (t._rn >= 2) & (method.contains("\\") | method.contains("/") | method.contains(":")
                           | (method.length() > 24))
    t = t.mutate(_rn=ibis.ifelse(junk, -1, t._rn))
    t = t.mutate(_rproto=(t._rn >= 3) & t._rp[-1].startswith("HTTP/"))
    t = t.mutate(_url=ibis.cases((t._rn == 0, ibis.null("string")),
                                 (t._rproto & (t._rn == 3), t._rp[1]),
                                 (t._rproto, t._rp[1:-1].join(" ")),
                                 (t._rn == 2, t._rp[1]),
                                 (t._rn > 2, t._rp[1:].join(" ")),
                                 else_=t[request]))
    t = t.mutate(_q=t._url.find("?"))
    return t.mutate(
        method=ibis.ifelse(t._rn >= 2, t._rp[0], ibis.null("string")),
        path=ibis.ifelse(t._q >= 0, t._url.substr(0, t._q), t._url),
        query=ibis.ifelse(t._q >= 0, t._url.substr(t._q + 1), ibis.null("string")),
        protocol=ibis.ifelse(t._rproto, t._rp[-1], ibis.null("string")),
    ).drop("_rp", "_rn", "_rproto", "_url", "_q")


def status_code(s: ir.StringValue) -> ir.IntegerValue:
    code = s.try_cast("int16")
    return ibis.ifelse((s.length() == 3) & code.between(0, 999), code, ibis.null("int16"))


def stripped(text: ir.StringValue) -> ir.StringValue:
    """``text`` without its line ending.

    ``replace`` rather than ``rstrip``: on DuckDB a character-set RTRIM costs ten times more than the
    whole field split. A CR inside a line (never written by nginx or Apache, which escape it) goes too.
    """
    return text.replace("\n", "").replace("\r", "")


def count_cr(s: ir.StringValue) -> ir.IntegerValue:
    return s.length() - s.replace("\r", "").length()


def strip_newline(lines: ir.Table) -> ir.Table:
    """Add ``_t``: the line without its line ending (see ``stripped``)."""
    return lines.mutate(_t=stripped(lines.text))


def finish(t: ir.Table, mismatch: str, provides: frozenset[str], *, fast: str | None = None) -> ir.Table:
    """Select the normalized table from a staged parse ``t``.

    ``t`` has the raw line columns (``file_id, line, text, pre_reject``), a boolean column ``mismatch``
    (true where the line does not have the format's layout) and a column for each normalized value the
    format provides. Missing columns become typed nulls. The stripped text is column ``_t`` when the parse
    made one; otherwise it is computed here only for the lines that need it (rejected lines, lines off the
    ``fast`` path), never for every line. A format whose lines say which fields they have (a W3C header) sets
    a boolean ``_status_logged``: a line without a status field is then a request of unknown status, and only a
    status field that does not read as one rejects the line (``bad_status``).
    """
    text = t._t if "_t" in t.columns else stripped(t.text)
    empty: ir.BooleanValue = ibis.ifelse(text.length() <= 64, text.strip() == "", False)
    comment = text.startswith("#")
    if "_t" not in t.columns:
        # Same answer as on the stripped text: only a leading CR could differ, and then we strip.
        comment = ibis.ifelse(t.text.startswith("\r"), comment, t.text.startswith("#"))
    if fast is not None:
        empty = ibis.ifelse(t[fast], False, empty)  # a line that split into the format's pieces is not blank
    reason = ibis.cases(
        (t.pre_reject.notnull(), t.pre_reject),
        (empty, "empty_line"),
        (comment, "comment"),
        (t[mismatch], "format_mismatch"),
        (t.ts.isnull(), "bad_timestamp"),
        *([(t.status.isnull() & (t._status_logged if "_status_logged" in t.columns else True), "bad_status")]
          if "status" in provides and "status" in t.columns else []),
        else_=ibis.null("string"),
    )
    t = t.mutate(reject_reason=reason)
    # Its own stage, so the reason is computed once (an engine may not share a CASE between columns).
    t = t.mutate(raw=ibis.ifelse(t.reject_reason.isnull(), ibis.null("string"), text.substr(0, RAW_SAMPLE_CHARS)))
    columns: dict[str, ir.Value] = {}
    for field in ARROW_SCHEMA:
        kind = _ibis_type(field.type)
        if field.name not in t.columns:
            columns[field.name] = ibis.null(kind)
        elif field.name in REQUEST_COLUMNS:
            # A rejected line is not a request: none of its half-parsed fields may be counted as one
            # (its text is kept in ``raw``).
            columns[field.name] = ibis.ifelse(t.reject_reason.isnull(), t[field.name].cast(kind), ibis.null(kind))
        else:
            columns[field.name] = t[field.name].cast(kind)
    return t.select(**columns)


def _ibis_type(arrow_type: Any) -> Any:
    import ibis.expr.datatypes as dt  # noqa: PLC0415 - keep module import light

    return dt.dtype(arrow_type)
