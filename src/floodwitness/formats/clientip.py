"""The real client behind trusted proxies: ``--trust-proxy CIDR`` and ``--trust-cdn NAME``.

The connecting peer (``client_ip`` as the server logged it) is replaced by an X-Forwarded-For entry only
when that peer is in a trusted range; the entry taken is the right-most one that is not trusted (every
hop to its right is ours, every hop to its left could be written by the client). A header from an
untrusted peer never changes ``client_ip``: anyone can send any X-Forwarded-For. When the client was
taken from the header, the peer is kept in ``peer_ip``.

Range membership is computed in the engine on fixed-width keys (an IPv4 address as 12 digits, an IPv6
address as 32 hex digits), which compare as strings in the same order as the addresses: portable and
vectorised, no per-row Python.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir

from floodwitness.errors import UsageError
from floodwitness.formats.base import LogFormat
from floodwitness.formats.fields import ip_family
from floodwitness.formats.spec import addr

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pyarrow as pa

CDN_PREFIX = "cdn:"


def cdn_ranges() -> dict[str, Any]:
    """The bundled, dated CDN range lists (data/cdn_ranges.json)."""
    text = resources.files("floodwitness").joinpath("data/cdn_ranges.json").read_text("utf-8")
    cdns: dict[str, Any] = json.loads(text)["cdns"]
    return cdns


def _key4(address: ipaddress.IPv4Address) -> str:
    return "".join(f"{int(octet):03d}" for octet in str(address).split("."))


def _key6(address: ipaddress.IPv6Address) -> str:
    return address.exploded.replace(":", "")


@dataclass(frozen=True)
class TrustedProxies:
    """Trusted ranges as (low, high) keys per address family, and the specs they came from."""

    v4: tuple[tuple[str, str], ...] = ()
    v6: tuple[tuple[str, str], ...] = ()
    specs: tuple[str, ...] = field(default=())

    def __bool__(self) -> bool:
        return bool(self.v4 or self.v6)

    @classmethod
    def parse(cls, specs: Sequence[str]) -> TrustedProxies:
        """From CIDRs or addresses, and ``cdn:NAME`` for a bundled CDN list. Raises UsageError on a bad one."""
        v4: list[tuple[str, str]] = []
        v6: list[tuple[str, str]] = []
        cdns: dict[str, Any] | None = None
        networks: list[str] = []
        for spec in specs:
            if spec.startswith(CDN_PREFIX):
                cdns = cdns if cdns is not None else cdn_ranges()
                name = spec.removeprefix(CDN_PREFIX)
                if name not in cdns:
                    raise UsageError(f"--trust-cdn: no bundled range list for {name!r}",
                                     hint="Known: " + ", ".join(sorted(cdns)) + "; or give the ranges with "
                                          "--trust-proxy CIDR.")
                networks.extend(cdns[name]["ranges"])
            else:
                networks.append(spec)
        for text in networks:
            try:
                net = ipaddress.ip_network(text.strip(), strict=False)
            except ValueError:
                raise UsageError(f"--trust-proxy: {text!r} is not an IP address or CIDR range",
                                 hint="Give ranges like 10.0.0.0/8, 2001:db8::/32 or a single address.") from None
            if isinstance(net, ipaddress.IPv4Network):
                v4.append((_key4(net.network_address), _key4(net.broadcast_address)))
            else:
                v6.append((_key6(net.network_address), _key6(net.broadcast_address)))
        return cls(tuple(sorted(set(v4))), tuple(sorted(set(v6))), tuple(specs))

    def with_flag(self, t: ir.Table, col: str, out: str) -> ir.Table:
        """``t`` plus boolean column ``out``: whether address ``col`` is in a trusted range (false for what is
        not an address). Staged column by column, so the engine SQL stays linear in size."""
        ip = ibis.coalesce(t[col], "")
        t = t.mutate(_tf=ip_family(ip), _ts=ip.lower().re_replace(r"%.*$", ""))
        t = t.mutate(_t4=ibis.ifelse(t._tf == 4, t._ts.split("."), ibis.null("array<string>")),
                     _tm=t._ts.re_replace(r"[^:]+", "x"))
        present = t._tm.length() - t._tm.replace("x", "").length()
        expanded = ibis.ifelse(t._ts.contains("::"), t._ts.replace("::", ":" + ibis.literal("0:").repeat(8 - present)),
                               t._ts)
        t = t.mutate(_t6=ibis.ifelse(t._tf == 6, expanded.re_replace(r"^:|:$", "").split(":"),
                                     ibis.null("array<string>")))
        k4 = t._t4[0].lpad(3, "0") + t._t4[1].lpad(3, "0") + t._t4[2].lpad(3, "0") + t._t4[3].lpad(3, "0")
        k6 = t._t6[0].lpad(4, "0")
        for i in range(1, 8):
            k6 = k6 + t._t6[i].lpad(4, "0")
        t = t.mutate(_k4=k4, _k6=ibis.ifelse(t._t6.length() == 8, k6, ibis.null("string")))
        inside: ir.BooleanValue = ibis.literal(False)
        for lo, hi in self.v4:
            inside = inside | t._k4.between(lo, hi)
        for lo, hi in self.v6:
            inside = inside | t._k6.between(lo, hi)
        return t.mutate(**{out: ibis.coalesce(inside, False)}).drop("_tf", "_ts", "_t4", "_tm", "_t6", "_k4", "_k6")


#: X-Forwarded-For hops looked at, from the right: a longer chain of trusted hops is not believed.
MAX_HOPS = 5


def resolve_client(t: ir.Table, trust: TrustedProxies) -> ir.Table:
    """``t`` (a normalized table) with client_ip from X-Forwarded-For where the peer is trusted."""
    t = trust.with_flag(t, "client_ip", "_peer_trusted")
    t = t.mutate(_chain=ibis.ifelse(t.xff.notnull() & t._peer_trusted, t.xff.split(","), ibis.null("array<string>")))
    t = t.mutate(_hops=t._chain.length(), **{f"_h{j}": addr(t._chain[-j]) for j in range(1, MAX_HOPS + 1)},
                 _h0=addr(t._chain[0]))
    for j in range(1, MAX_HOPS + 1):
        t = trust.with_flag(t, f"_h{j}", f"_ht{j}")
    # The right-most hop that is not trusted; if every hop is trusted, the left-most (the original client).
    cases = [((t._hops >= j) & ~t[f"_ht{j}"], t[f"_h{j}"]) for j in range(1, MAX_HOPS + 1)]
    cases.append((t._hops <= MAX_HOPS, t._h0))
    t = t.mutate(_cand=ibis.cases(*cases, else_=ibis.null("string")))
    t = t.mutate(_cand_family=ip_family(ibis.coalesce(t._cand, "")))
    use = t._chain.notnull() & t._cand.notnull() & (t._cand_family != 0) & (t._cand != t.client_ip)
    t = t.mutate(_use=use)
    return t.mutate(client_ip=ibis.ifelse(t._use, t._cand, t.client_ip),
                    peer_ip=ibis.ifelse(t._use, t.client_ip, t.peer_ip),
                    ip_family=ibis.ifelse(t._use, t._cand_family, t.ip_family))


@dataclass(frozen=True)
class TrustingFormat(LogFormat):
    """``inner`` with the client resolved behind ``trust``: same name, same fields, plus peer_ip."""

    inner: LogFormat
    trust: TrustedProxies

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.inner.name

    @property
    def description(self) -> str:  # type: ignore[override]
        return self.inner.description

    @property
    def example(self) -> str:  # type: ignore[override]
        return self.inner.example

    @property
    def provides(self) -> frozenset[str]:  # type: ignore[override]
        return self.inner.provides | {"peer_ip"}

    def match_fraction(self, lines: Sequence[str]) -> float:
        return self.inner.match_fraction(lines)

    def bind(self, lines: Sequence[str]) -> LogFormat:
        return with_trusted_proxies(self.inner.bind(lines), self.trust)

    def after(self, group: pa.Table) -> LogFormat:
        return with_trusted_proxies(self.inner.after(group), self.trust)

    def parse(self, lines: ir.Table) -> ir.Table:
        t = self.inner.parse(lines)
        if "xff" not in self.inner.provides:
            return t
        columns = t.columns
        return resolve_client(t, self.trust).select(*columns)


def with_trusted_proxies(fmt: LogFormat, trust: TrustedProxies) -> LogFormat:
    if not trust or "xff" not in fmt.provides or "client_ip" not in fmt.provides:
        return fmt
    return TrustingFormat(fmt, trust)
