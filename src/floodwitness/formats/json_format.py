"""nginx JSON access logs (``log_format ... escape=json '{"time_local":"$time_local", ...}'``).

There is no single standard set of keys, so the format learns which of the common names a file uses
from its sample and reads those; values are taken with one anchored pattern per key (portable, and an
invalid JSON line becomes a counted rejection, never an engine error).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import ibis
import ibis.expr.types as ir

from floodwitness.formats import fields as f
from floodwitness.formats.base import LogFormat

if TYPE_CHECKING:
    from collections.abc import Sequence

# normalized role -> accepted key names, most common first
KEYS: dict[str, tuple[str, ...]] = {
    "time_iso": ("time_iso8601", "@timestamp", "timestamp", "time", "ts"),
    "time_local": ("time_local",),
    "msec": ("msec",),
    "client_ip": ("remote_addr", "client_ip", "clientip", "ip", "remote_ip"),
    "request": ("request",),
    "method": ("request_method", "method"),
    "uri": ("request_uri", "uri"),
    "args": ("args", "query_string"),
    "protocol": ("server_protocol", "protocol"),
    "status": ("status", "response_status"),
    "bytes": ("body_bytes_sent", "bytes_sent", "bytes"),
    "referer": ("http_referer", "http_referrer", "referer", "referrer"),
    "user_agent": ("http_user_agent", "user_agent", "agent"),
    "request_time": ("request_time",),
    "upstream_time": ("upstream_response_time",),
    "upstream_status": ("upstream_status",),
    "upstream_addr": ("upstream_addr",),
    "xff": ("http_x_forwarded_for", "x_forwarded_for"),
    "host": ("host", "http_host", "server_name", "vhost"),
}

_EXAMPLE = ('{"time_iso8601":"2024-05-17T10:05:03+02:00","remote_addr":"203.0.113.7","request":"GET /?q=1 HTTP/1.1",'
            '"status":"200","body_bytes_sent":"612","request_time":"0.004","http_referer":"",'
            '"http_user_agent":"Mozilla/5.0 (X11; Linux x86_64)","http_x_forwarded_for":""}')


def _value_pattern(key: str) -> str:
    # "key": "string with \" escapes"  or  "key": 123  (numbers, true/false/null unquoted)
    return r'"' + re.escape(key) + r'"\s*:\s*(?:"((?:[^"\\]|\\.)*)"|([^",}\s]+))'


def _unescape(s: ir.StringValue) -> ir.StringValue:
    # nginx escape=json writes \" \\ and \uXXXX for control bytes; keep \uXXXX visible as it is.
    return s.replace('\\"', '"').replace("\\/", "/").replace("\\\\", "\\")


@dataclass(frozen=True)
class NginxJsonFormat(LogFormat):
    """One JSON object per line with nginx-style (or common) key names."""

    generic: ClassVar[bool] = True

    name: str = "nginx_json"
    description: str = "nginx JSON logs (`escape=json`), keys learned from the file: time_iso8601/time_local/msec, " \
                       "remote_addr, request or request_method+request_uri, status, body_bytes_sent, ..."
    example: str = _EXAMPLE
    keys: tuple[tuple[str, str], ...] = field(default=())  # (role, key) bound from a sample

    @property
    def provides(self) -> frozenset[str]:  # type: ignore[override]
        roles = {role for role, _ in self.keys} or set(KEYS)
        out = {"ts", "client_ip", "ip_family"}
        if roles & {"request", "uri"}:
            out |= {"method", "path", "query", "protocol"}
        out |= roles & {"status", "bytes", "referer", "user_agent", "request_time", "upstream_time",
                        "upstream_status", "upstream_addr", "xff", "host"}
        return frozenset(out)

    @staticmethod
    def _objects(lines: Sequence[str]) -> list[dict[str, Any]]:
        out = []
        for line in lines:
            text = line.strip()
            if not text.startswith("{"):
                continue
            try:
                value = json.loads(text)
            except ValueError:
                continue
            if isinstance(value, dict):
                out.append(value)
        return out

    def bind(self, lines: Sequence[str]) -> NginxJsonFormat:
        """This format with the keys the sample uses."""
        present: set[str] = set()
        for obj in self._objects(lines):
            present.update(obj)
        chosen = []
        for role, names in KEYS.items():
            for name in names:
                if name in present:
                    chosen.append((role, name))
                    break
        return NginxJsonFormat(keys=tuple(chosen))

    def _usable(self, obj: dict[str, Any]) -> bool:
        has_time = any(k in obj for names in (KEYS["time_iso"], KEYS["time_local"], KEYS["msec"]) for k in names)
        has_ip = any(k in obj for k in KEYS["client_ip"])
        has_request = any(k in obj for k in KEYS["request"] + KEYS["uri"])
        return has_time and has_ip and has_request

    def match_fraction(self, lines: Sequence[str]) -> float:
        sample = [line for line in lines if line.strip()]
        if not sample:
            return 0.0
        return sum(1 for obj in self._objects(sample) if self._usable(obj)) / len(sample)

    def parse(self, lines: ir.Table) -> ir.Table:
        fmt = self if self.keys else self.bind([])
        roles = dict(fmt.keys)
        t = f.strip_newline(lines)

        def get(role: str) -> Any:
            pattern = _value_pattern(roles[role])
            quoted, bare = t._t.re_extract(pattern, 1), t._t.re_extract(pattern, 2)
            return ibis.ifelse(bare != "", bare, _unescape(quoted))

        t = t.mutate(**{f"_v_{role}": get(role) for role in roles})
        v = {role: t[f"_v_{role}"] for role in roles}
        values: dict[str, Any] = {}
        ip = v.get("client_ip", ibis.literal(""))
        values["client_ip"] = ip
        values["ip_family"] = f.ip_family(ip)
        if "status" in v:
            values["status"] = f.status_code(v["status"])
        if "bytes" in v:
            values["bytes"] = v["bytes"].try_cast("int64")
        for role in ("referer", "user_agent", "upstream_addr", "xff", "host"):
            if role in v:
                values[role] = f.dash_null(v[role])
        if "request_time" in v:
            values["request_time"] = v["request_time"].try_cast("float64")
        if "upstream_time" in v:
            values["upstream_time"] = f.last_of_list(v["upstream_time"]).try_cast("float64")
        if "upstream_status" in v:
            values["upstream_status"] = f.last_of_list(v["upstream_status"]).try_cast("int16")
        if "request" in v:
            values["_req"] = v["request"]
        elif "uri" in v:
            values["_req"] = (v["method"] if "method" in v else ibis.literal("GET")) + " " + v["uri"]
        values["_mismatch"] = ~t._t.startswith("{") | (ip == "")
        t = t.mutate(**values)
        if "time_iso" in v:
            t = f.iso_time(t, "_v_time_iso")
        elif "time_local" in v:
            t = f.clf_time(t, "_v_time_local")
        elif "msec" in v:
            t = f.epoch_time(t, "_v_msec")
        else:
            t = t.mutate(ts=ibis.null("timestamp"))
        if "_req" in t.columns:
            t = f.split_request(t, "_req")
            if "args" in v:
                t = t.mutate(query=ibis.ifelse(t._v_args == "", t.query, t._v_args))
            if "protocol" in v:
                t = t.mutate(protocol=f.dash_null(t._v_protocol))
        return f.finish(t, "_mismatch", fmt.provides)
