"""W3C extended log files (IIS, AWS CloudFront): the ``#Fields:`` header line names the columns.

The header may change in the middle of a file (IIS writes a new header block on every restart or
configuration change), so each line is read with the most recent ``#Fields:`` line before it: a
running maximum over the line number finds it, still one vectorised pass. The header in force at the
end of one group of lines is carried into the next (``after``); the first header of a file is bound
from the detection sample (``bind``). Header and other ``#`` lines are counted as ``comment``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from floodwitness.formats import fields as f
from floodwitness.formats.base import LogFormat
from floodwitness.formats.spec import CONVERTERS

if TYPE_CHECKING:
    from collections.abc import Sequence

_PREFIX = "#Fields:"
_KEY_WIDTH = 20  # zero-padded line number in front of the header text, so max() picks the latest header

# W3C field -> (normalized column, converter); the first field present of a column wins.
_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("c-ip", "client_ip", "addr"),
    ("cs-method", "method", "text"),
    ("x-host-header", "host", "text"),
    ("cs-host", "host", "text"),
    ("cs(Host)", "host", "text"),
    ("sc-status", "status", "status"),
    ("sc-bytes", "bytes", "bytes"),
    ("cs-version", "protocol", "text"),
    ("cs-protocol-version", "protocol", "text"),
    ("x-forwarded-for", "xff", "text"),
    ("x-edge-detailed-result-type", "edge_detail", "text"),
)
_NEEDED = ("date", "time", "c-ip")


def _fields_of(header: str) -> tuple[str, ...]:
    return tuple(header.removeprefix(_PREFIX).split())


@dataclass(frozen=True)
class W3CFormat(LogFormat):
    name: str
    description: str
    example: str
    #: "iis" (space-separated, ``+`` for spaces, time-taken in ms) or "cloudfront" (tab-separated,
    #: %-encoded, time-taken in s, x-edge-* result types).
    kind: str
    #: The header in force before the first ``#Fields:`` line of the lines parsed (bound from a sample).
    fields: tuple[str, ...] = field(default=())

    @property
    def provides(self) -> frozenset[str]:  # type: ignore[override]
        out = {"ts", "client_ip", "ip_family", "method", "host", "path", "query", "protocol", "status", "bytes",
               "referer", "user_agent", "request_time"}
        if self.kind == "cloudfront":
            out |= {"xff", "edge_result", "edge_detail"}
        return frozenset(out)

    @property
    def _sep(self) -> str:
        return "\t" if self.kind == "cloudfront" else " "

    def _fits(self, names: Sequence[str]) -> bool:
        if not all(n in names for n in _NEEDED):
            return False
        return ("x-edge-location" in names) == (self.kind == "cloudfront")

    def bind(self, lines: Sequence[str]) -> W3CFormat:
        header = next((line for line in lines if line.startswith(_PREFIX)), None)
        return replace(self, fields=_fields_of(header)) if header is not None else self

    def after(self, group: pa.Table) -> W3CFormat:
        text = group.column("text")
        headers = text.filter(pc.starts_with(text, _PREFIX))
        if len(headers) == 0:
            return self
        return replace(self, fields=_fields_of(str(headers[-1].as_py()).rstrip("\r\n")))

    def match_fraction(self, lines: Sequence[str]) -> float:
        """Share of lines with as many values as the header has fields (0 without a fitting header)."""
        sample = [line for line in lines if line.strip() and not line.startswith("#")]
        if not sample or not self._fits(self.fields):
            return 0.0
        n = len(self.fields)
        ok = sum(1 for line in sample if len(line.split(self._sep)) == n and line[:4].isdigit() and line[4] == "-")
        return ok / len(sample)

    def parse(self, lines: ir.Table) -> ir.Table:
        t = f.strip_newline(lines)
        is_header = t._t.startswith(_PREFIX)
        key = ibis.ifelse(is_header, t.line.cast("string").lpad(_KEY_WIDTH, "0") + t._t.substr(len(_PREFIX)),
                          ibis.null("string"))
        window = ibis.window(group_by=t.file_id, order_by=t.line, preceding=None, following=0)
        t = t.mutate(_hk=key.max().over(window))
        default = " ".join(self.fields)
        t = t.mutate(_hdr=ibis.ifelse(t._hk.isnull(), default, t._hk.substr(_KEY_WIDTH)).strip())
        t = t.mutate(_hf=t._hdr.re_split(r"\s+"), _tok=t._t.split(self._sep))
        wanted = {"date", "time", "cs-uri-stem", "cs-uri-query", "cs(User-Agent)", "cs(Referer)", "time-taken",
                  "x-edge-result-type", *(name for name, _, _ in _FIELDS)}
        # int32: Spark's element_at takes an INT position (ibis types a list index int64)
        t = t.mutate(**{f"_i{i}": t._hf.index(name).cast("int32") for i, name in enumerate(sorted(wanted))})
        index = {name: t[f"_i{i}"] for i, name in enumerate(sorted(wanted))}

        def value(name: str) -> ir.StringValue:
            return ibis.ifelse(index[name] >= 0, t._tok[index[name]], ibis.null("string"))

        text = "pct_spaces" if self.kind == "cloudfront" else "plus_spaces"
        columns: dict[str, ir.Value] = {}
        for name, column, converter in _FIELDS:
            converted = CONVERTERS[converter](value(name))
            columns[column] = converted if column not in columns else ibis.coalesce(columns[column], converted)
        taken = CONVERTERS["seconds" if self.kind == "cloudfront" else "ms"](ibis.coalesce(value("time-taken"), "-"))
        t = t.mutate(
            _mismatch=(t._tok.length() != t._hf.length()) | (index["date"] < 0) | (index["time"] < 0)
            | (index["c-ip"] < 0),
            _when=value("date") + " " + value("time"),
            _status_logged=index["sc-status"] >= 0,  # a header without sc-status: requests of unknown status
            path=CONVERTERS["text"](value("cs-uri-stem")),
            query=CONVERTERS["text"](value("cs-uri-query")),
            user_agent=CONVERTERS[text](value("cs(User-Agent)")),
            referer=CONVERTERS["text"](value("cs(Referer)")),
            request_time=taken,
            _result=value("x-edge-result-type"),
            **columns)
        t = f.iso_time(t, "_when")
        t = t.mutate(ip_family=f.ip_family(ibis.coalesce(t.client_ip, "")))
        if self.kind == "cloudfront":
            t = t.mutate(edge_result=_cloudfront_edge(t._result, ibis.coalesce(t.edge_detail, "")))
        return f.finish(t, "_mismatch", self.provides)


def _cloudfront_edge(result: ir.StringValue, detail: ir.StringValue) -> ir.Value:
    """CloudFront's x-edge-result-type and x-edge-detailed-result-type (AWS CloudFront developer guide)."""
    return ibis.cases(
        (result.isin(["Hit", "RefreshHit"]), "cache"),
        (result.isin(["LimitExceeded", "CapacityExceeded"]), "edge_overload"),
        (detail.startswith("Origin") | detail.contains("OriginError") | detail.startswith("AbortedOrigin"),
         "backend_unreachable"),
        (detail.startswith("ClientCommError") | detail.startswith("ClientHungUp"), "client_abort"),
        (result.isin(["Redirect"]) | detail.startswith("Client") | detail.startswith("Invalid"), "edge"),
        (result == "Miss", "backend"),
        else_=ibis.null("string"))


#: CloudFront's standard-log fields (its files start with this header; a sample without one uses it).
CLOUDFRONT_FIELDS = _fields_of(
    "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) "
    "cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol "
    "cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version "
    "fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type "
    "sc-content-len sc-range-start sc-range-end")

#: IIS 8.5's default field set (a file without a header of its own is read with it).
IIS_FIELDS = _fields_of(
    "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) "
    "sc-status sc-substatus sc-win32-status time-taken")

IIS = W3CFormat(
    "iis_w3c",
    "IIS W3C extended log (`u_ex*.log`): columns from each `#Fields:` header, which may change mid-file; "
    "times UTC, time-taken in ms.",
    "2016-01-10 17:17:30 172.31.22.76 HEAD / - 80 - 208.100.26.232 Mozilla/5.0+(compatible;+Nmap+Scripting+Engine;"
    "+http://nmap.org/book/nse.html) - 200 0 0 89",
    "iis",
    IIS_FIELDS,
)

CLOUDFRONT = W3CFormat(
    "cloudfront",
    "AWS CloudFront standard log (W3C, tab-separated, `#Fields:` header; x-edge-result-type as edge_result).",
    "2024-03-12\t15:22:28\tCDG50-P2\t703\t1.2.3.4\tGET\td6rcaj0q1hys9.cloudfront.net\t/testseb\t400\t-\tcurl/7.81.0\t"
    "query_param=42\t-\tError\t375WZmnR4hhhnlZKNn0D_LvkWhAqvWvBsUqySq8f_GOoAPP3k8R8fw==\thub-cdn.crowdsec.net\t"
    "https\t62\t0.113\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\tError\tHTTP/2.0\t-\t-\t51754\t0.113\tError\t"
    "text/plain;%20charset=utf-8\t20\t-\t-",
    "cloudfront",
    CLOUDFRONT_FIELDS,
)

