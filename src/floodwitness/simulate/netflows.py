"""The network around the simulated site: its addresses, the TCP connections behind the access log's requests,
and the ordinary noise of a server on the Internet (its own DNS lookups and NTP sync, monitors' pings, port
scanners, the neighbours in its /24)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from floodwitness.simulate import _catalog as cat
from floodwitness.simulate import flowtable as ft
from floodwitness.simulate.flowtable import F64, I64, Flows, make

if TYPE_CHECKING:
    from floodwitness.simulate.world import World

#: seconds a keep-alive connection stays open after its last request (nginx's keepalive_timeout)
KEEPALIVE = 75.0
#: the exporter's active timeout: a longer flow is reported in pieces of at most this many seconds
ACTIVE_TIMEOUT = 60.0


@dataclass
class Requests:
    """Every request of the access log's simulation, logged or not (a request the site never answered still sent
    its SYNs): address code, arrival and completion (seconds), body bytes, HTTP/2 or not, and whether it was
    logged."""

    ip: I64
    t: F64
    done: F64
    size: I64
    h2: npt.NDArray[np.bool_]
    logged: npt.NDArray[np.bool_]
    v6: list[str]  # the IPv6 texts the negative codes index


@dataclass
class NetSite:
    """The site's addresses: the web server in a /24 of its hosting provider, its neighbours, its resolvers."""

    server: int
    server_v6: int  # code of its IPv6 address
    prefix: int  # the /24's first address
    neighbours: I64  # other hosts of the /24 with services of their own
    resolvers: I64
    ntp: I64
    exporter: str  # the router exporting the flows
    v6: list[str] = field(default_factory=list)

    @property
    def prefix_text(self) -> str:
        return f"{ft.v4_text(self.prefix)}/24"

    @staticmethod
    def build(w: World, v6: list[str]) -> NetSite:
        """The site's addresses (IPv6 texts added to ``v6``, the table the requests' codes index)."""
        rng = w.rng("net-site")
        net16 = int(w.space.claim16(rng, cat.HOSTING_OCTETS, 1)[0])
        prefix = (net16 << 16) | (int(rng.integers(0, 256)) << 8)
        hosts = rng.permutation(np.arange(2, 255))
        server_v6 = ft.address_codes([f"2a01:4f8:{int(rng.integers(0x1000, 0xffff)):x}:{prefix & 0xffff:x}::10"],
                                     v6)
        upstream16 = w.space.claim16(rng, cat.HOSTING_OCTETS, 2)
        resolvers = (upstream16[0] << 16) + rng.integers(256, 65000, size=2)
        ntp = (upstream16[1] << 16) + rng.integers(256, 65000, size=4)
        return NetSite(server=prefix + int(hosts[0]), server_v6=int(server_v6[0]), prefix=prefix,
                       neighbours=prefix + hosts[1:int(rng.integers(12, 40))], resolvers=resolvers.astype(np.int64),
                       ntp=ntp.astype(np.int64), exporter=ft.v4_text(prefix + 1), v6=v6)


@dataclass
class NetOutput:
    """What a scenario's network part produced: the flows as exported (sampled when ``sampling`` > 1), what each
    attack vector was, the benign heavy transfers, and where the packet capture is centred."""

    flows: Flows
    site: NetSite
    sampling: int
    vectors: list[dict[str, Any]]  # one per vector id: name, proto, port, port_side, source_role, real counts...
    episodes: list[dict[str, Any]]  # target, carpet_bombing, vector ids, per-second real packets and t0
    benign: list[dict[str, Any]] = field(default_factory=list)
    capture_center: float | None = None


def split_active(flows: Flows, timeout: float = ACTIVE_TIMEOUT) -> Flows:
    """Flows longer than ``timeout`` as the exporter reports them: consecutive pieces, the packets and bytes
    shared out, SYN only on the first piece and FIN only on the last."""
    dur = flows.end - flows.start
    pieces = np.maximum(np.ceil(dur / timeout), 1).astype(np.int64)
    pieces = np.minimum(pieces, np.maximum(flows.packets, 1))
    if (pieces == 1).all():
        return flows
    row = np.repeat(np.arange(len(flows)), pieces)
    k = np.arange(row.shape[0]) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    out = flows.take(row)
    n = pieces[row]
    step = dur[row] / n
    out.start = flows.start[row] + k * step
    out.end = np.where(k == n - 1, flows.end[row], out.start + step * 0.999)
    out.packets = flows.packets[row] // n + (k < flows.packets[row] % n)
    out.bytes = flows.bytes[row] // n + (k < flows.bytes[row] % n)
    keep_syn = np.where(k == 0, ft.SYN, 0)
    keep_fin = np.where(k == n - 1, ft.FIN, 0)
    out.flags = ((out.flags & ~(ft.SYN | ft.FIN)) | (out.flags & (keep_syn | keep_fin))).astype(np.int16)
    return out


def _service_port(ip: I64) -> npt.NDArray[np.int32]:
    """443 for most clients, 80 for one in ten (the same for every connection of an address)."""
    return np.where((ip * 2654435761 >> 9) % 10 == 0, 80, 443).astype(np.int32)


def sessions(rng: np.random.Generator, req: Requests, site: NetSite, kind: int = ft.BACKGROUND) -> Flows:
    """The TCP connections that carried the logged requests, both directions: an address's requests share a
    keep-alive connection until it has been idle for :data:`KEEPALIVE` seconds; TLS on 443 adds its handshake."""
    sel = np.flatnonzero(req.logged)
    order = sel[np.lexsort((req.t[sel], req.ip[sel]))]
    ip, t, done, size = req.ip[order], req.t[order], req.done[order], req.size[order]
    if ip.shape[0] == 0:
        return Flows.concat([])
    new = np.ones(ip.shape[0], dtype=bool)
    new[1:] = (ip[1:] != ip[:-1]) | (t[1:] - np.maximum.accumulate(done)[:-1] > KEEPALIVE)
    conn = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    n_req = np.bincount(conn)
    body = np.bincount(conn, weights=size + 250).astype(np.int64)
    data_pkts = np.bincount(conn, weights=np.ceil((size + 250) / 1448.0)).astype(np.int64)
    last = np.maximum.reduceat(done, first)
    cip = ip[first]
    port = _service_port(cip)
    tls = port == 443
    rtt = rng.lognormal(np.log(0.04), 0.6, size=first.shape[0])
    start = t[first] - rtt * np.where(tls, 2.5, 1.0)
    close = last + np.where(rng.random(first.shape[0]) < 0.6, KEEPALIVE, rng.uniform(0.5, KEEPALIVE,
                                                                                      size=first.shape[0]))
    acks = data_pkts // 2
    req_bytes = rng.integers(350, 900, size=first.shape[0]) * n_req
    c_pk = 3 + n_req + acks + np.where(tls, 3, 0)
    c_by = 40 * (3 + acks) + req_bytes + 40 * n_req + np.where(tls, 700, 0)
    s_pk = 2 + data_pkts + np.where(tls, 3, 0)
    s_by = 80 + body + 40 * data_pkts + np.where(tls, 4300, 0)
    sport = ft.ephemeral(rng, first.shape[0])
    server = np.where(cip < 0, site.server_v6, site.server)
    up = make(start, close, src=cip, dst=server, sport=sport, dport=port, proto=ft.TCP, packets=c_pk,
              nbytes=c_by, kind=kind, flags=ft.SESSION)
    down = make(start + rtt, close + rtt / 2, src=server, dst=cip, sport=port, dport=sport, proto=ft.TCP,
                packets=s_pk, nbytes=s_by, kind=kind, flags=ft.SESSION)
    return split_active(Flows.concat([up, down]))


def unanswered(rng: np.random.Generator, req: Requests, site: NetSite, lo: float, hi: float) -> Flows:
    """The connection attempts of clients whose requests were never answered between ``lo`` and ``hi`` (the
    server's backlog full): SYNs retransmitted after 1 and 3 seconds, one flow per attempt."""
    sel = np.flatnonzero(~req.logged & (req.t >= lo) & (req.t < hi) & (req.ip >= 0))
    ip, t = req.ip[sel], req.t[sel]
    _u, first = np.unique(np.stack([ip, np.floor(t / 10.0).astype(np.int64)]), axis=1, return_index=True)
    ip, t = ip[first], t[first]
    tries = rng.integers(1, 4, size=ip.shape[0])
    return make(t, t + np.where(tries > 1, 2.0 ** (tries - 1) - 1, 0.0), src=ip, dst=site.server,
                sport=ft.ephemeral(rng, ip.shape[0]), dport=_service_port(ip), proto=ft.TCP, packets=tries,
                nbytes=60 * tries, kind=ft.BACKGROUND, flags=ft.SYN)


def _pairs(start: F64, end: F64, a: I64, b: I64, aport: npt.ArrayLike, bport: npt.ArrayLike, proto: int,
           pk: tuple[npt.ArrayLike, npt.ArrayLike], by: tuple[npt.ArrayLike, npt.ArrayLike], delay: F64 | float,
           flags: int = 0) -> Flows:
    """Request and answer flows of ``a`` talking to ``b``."""
    there = make(start, end, src=a, dst=b, sport=aport, dport=bport, proto=proto, packets=pk[0], nbytes=by[0],
                 kind=ft.NOISE, flags=flags)
    back = make(start + delay, end + delay, src=b, dst=a, sport=bport, dport=aport, proto=proto, packets=pk[1],
                nbytes=by[1], kind=ft.NOISE, flags=flags)
    return Flows.concat([there, back])


def noise(w: World, site: NetSite) -> Flows:
    """The server's own traffic and the Internet's background: DNS lookups to its two resolvers (answers from
    source port 53: not reflection), NTP sync with four servers (123 to 123), monitors' pings, port scans of the
    /24 (SYN, answered by RST), and the neighbours' own services."""
    rng = w.rng("net-noise")
    n_sec = w.n_sec
    blocks: list[Flows] = []
    t = ft.instants(rng, ft.per_second_counts(rng, np.full(n_sec, 0.6 * w.scale ** 0.5)), 0.0)
    n = t.shape[0]
    res = site.resolvers[rng.integers(0, 2, size=n)]
    delay = rng.lognormal(np.log(0.01), 0.8, size=n)
    answer = np.clip(rng.lognormal(np.log(140), 0.6, size=n), 60, 1232).astype(np.int64)
    blocks.append(_pairs(t, t, np.full(n, site.server), res, ft.ephemeral(rng, n), 53, ft.UDP, (1, 1),
                         (rng.integers(58, 90, size=n), answer), delay))
    for server in site.ntp.tolist():
        poll = float(rng.choice([64.0, 128.0, 256.0, 1024.0]))
        s = np.arange(float(rng.uniform(0, poll)), w.duration, poll)
        blocks.append(_pairs(s, s, np.full(s.shape[0], site.server), np.full(s.shape[0], server), 123, 123,
                             ft.UDP, (1, 1), (76, 76), np.full(s.shape[0], 0.02)))
    monitors = w.space.hosts_in_16s(rng, w.hosting16, None, 3).astype(np.int64)
    for m in monitors.tolist():
        s = np.arange(float(rng.uniform(0, 60)), w.duration, 60.0)
        ping = make(s, s, src=m, dst=site.server, sport=0, dport=8 << 8, proto=ft.ICMP, packets=1, nbytes=84,
                    kind=ft.NOISE)
        pong = make(s + 0.03, s + 0.03, src=site.server, dst=m, sport=0, dport=0, proto=ft.ICMP, packets=1,
                    nbytes=84, kind=ft.NOISE)
        blocks += [ping, pong]
    blocks.append(_scans(rng, w, site))
    blocks.append(_neighbours(rng, w, site))
    return Flows.concat(blocks)


def _scans(rng: np.random.Generator, w: World, site: NetSite) -> Flows:
    """Internet-wide scanners: each sends one SYN to some ports of every host of the /24 within a minute (a
    fixed source port, as masscan does); closed ports answer RST."""
    n_scan = int(rng.poisson(20 * w.hours)) + 1
    who = (w.hosting16[rng.integers(0, w.hosting16.shape[0], size=n_scan)] << 16) + rng.integers(256, 65280,
                                                                                                  size=n_scan)
    per = rng.integers(254, 2000, size=n_scan)
    row = np.repeat(np.arange(n_scan), per)
    t = rng.uniform(0, w.duration - 60, size=n_scan)[row] + rng.uniform(0, 60, size=row.shape[0])
    dst = site.prefix + rng.integers(1, 255, size=row.shape[0])
    dport = rng.choice(np.array([22, 23, 80, 443, 445, 3389, 8080, 8443, 5900, 6379, 9200, 25, 3306]),
                       size=row.shape[0])
    sport = rng.integers(40000, 65535, size=n_scan)[row]
    syn = make(t, t, src=who[row], dst=dst, sport=sport, dport=dport, proto=ft.TCP, packets=1, nbytes=40,
               kind=ft.NOISE, flags=ft.SYN)
    answered = (dst == site.server) & ~np.isin(dport, (80, 443))
    rst = make(t[answered] + 0.001, t[answered] + 0.001, src=dst[answered], dst=who[row][answered],
               sport=dport[answered], dport=sport[answered], proto=ft.TCP, packets=1, nbytes=40, kind=ft.NOISE,
               flags=ft.RST | ft.ACK)
    return Flows.concat([syn, rst])


def _neighbours(rng: np.random.Generator, w: World, site: NetSite) -> Flows:
    """The other hosts of the /24: mail, SSH and HTTPS sessions from their own clients, a few a minute each."""
    hosts = site.neighbours
    rate = rng.lognormal(np.log(0.02), 1.0, size=hosts.shape[0]) * w.scale
    counts = rng.poisson(rate * w.duration)
    row = np.repeat(np.arange(hosts.shape[0]), counts)
    n = row.shape[0]
    t = rng.uniform(0, w.duration, size=n)
    dur = rng.lognormal(np.log(3.0), 1.2, size=n)
    port = rng.choice(np.array([25, 22, 443, 993, 587]), size=hosts.shape[0])[row]
    clients = (w.audience.new_24s(rng, n) << 8) + rng.integers(1, 255, size=n)
    pk = rng.integers(8, 80, size=n)
    by = pk * rng.integers(60, 900, size=n)
    back = (pk + 2) * rng.integers(200, 1400, size=n)
    return _pairs(t, t + dur, clients, hosts[row], ft.ephemeral(rng, n), port, ft.TCP, (pk, pk + 2),
                  (by, back), np.full(n, 0.02), flags=ft.SESSION)
