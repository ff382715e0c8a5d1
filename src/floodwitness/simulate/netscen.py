"""The network-level scenarios (#21): floods seen in flow records (and a packet capture) beside an access log that
shows their effect, and a heavy but benign day.

Each seed draws the exporter's sampling (1:1 in half the seeds, then the capture is written too; else 1:100 or
1:1000, the counts scaled back up as nfcapd does) and the attack's size in reported flows per second (the real
packet rate is that times the sampling rate).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from floodwitness.simulate import _catalog as cat
from floodwitness.simulate import flowtable as ft
from floodwitness.simulate import incidents as inc
from floodwitness.simulate import netattacks as na
from floodwitness.simulate import outage
from floodwitness.simulate.netflows import NetOutput, NetSite, Requests, noise, sessions, unanswered
from floodwitness.simulate.plan import Loss, Plan, ScenarioInfo
from floodwitness.simulate.truth import rfc3339

if TYPE_CHECKING:
    from collections.abc import Callable

    from floodwitness.simulate.world import World

#: the vector keys of data/vectors.json, with how each is named and whose addresses its sources are
_VECTORS: dict[str, dict[str, Any]] = {
    "syn_flood": {"name": "SYN flood", "proto": 6, "port_side": "dst", "source_role": "spoofed"},
    "ack_flood": {"name": "ACK flood", "proto": 6, "port_side": "dst", "source_role": "spoofed"},
    "udp_flood": {"name": "UDP flood", "proto": 17, "port_side": None, "source_role": "sources"},
    "ntp_reflection": {"name": "NTP reflection/amplification", "proto": 17, "port": 123, "port_side": "src",
                       "source_role": "reflectors"},
    "dns_reflection": {"name": "DNS reflection/amplification", "proto": 17, "port": 53, "port_side": "src",
                       "source_role": "reflectors"},
}


def _sampling(rng: np.random.Generator) -> int:
    return int(rng.choice([1, 1, 100, 1000]))


def _vector(key: str, drawn: na.Drawn, port: int | None = None) -> dict[str, Any]:
    spec = {"vector": key, "port": port, **_VECTORS[key]}
    return spec | {"t0": drawn.t0, "per_second": drawn.per_second, "real_bytes": drawn.real_bytes,
                   "real_packets": drawn.packets, "sources_real": drawn.sources_real}


def _finish(w: World, req: Requests, site: NetSite, sampling: int, attacks: list[na.Drawn],
            extra: list[ft.Flows] | None = None) -> ft.Flows:
    """The scenario's flows as exported: the clients' connections and the noise sampled like the attack."""
    rng = w.rng("net-background")
    real = ft.Flows.concat([sessions(rng, req, site), noise(w, site), *(extra or [])])
    return ft.Flows.concat([ft.sample(rng, real, sampling), *(d.flows for d in attacks)])


def _flood_pps(rng: np.random.Generator, sampling: int, length: int, per_sec: tuple[float, float]) -> np.ndarray:
    return na.shape(rng, length, float(rng.uniform(*per_sec)) * sampling)


def _plan_syn_flood(w: World) -> Plan:
    """A spoofed SYN flood of 8-15 minutes on the web server; the site stops answering within seconds."""
    rng = w.rng("syn-flood")
    win = inc.place(w, rng, (8.0, 15.0))
    sampling = _sampling(rng)
    down = outage.Down(win.start + float(rng.uniform(1.0, 8.0)), win.end + float(rng.uniform(0.0, 30.0)),
                       stragglers=float(rng.uniform(0.02, 0.08)), ramp=float(rng.uniform(30.0, 180.0)),
                       retry_share=float(rng.choice([0.0, 0.1, 0.3])))
    ports = ((443,), (80, 443), (80,))[int(rng.integers(3))]

    def network(w: World, req: Requests) -> NetOutput:
        r = w.rng("syn-flood-flows")
        site = NetSite.build(w, req.v6)
        d = na.syn_flood(r, win.start, _flood_pps(r, sampling, int(win.length), (150.0, 700.0)), site.server, ports,
                         sampling, 0)
        flows = _finish(w, req, site, sampling, [d], [unanswered(r, req, site, down.start, down.end)])
        return NetOutput(flows, site, sampling, [_vector("syn_flood", d, ports[0] if len(ports) == 1 else None)],
                         [_target(site.server, [0])], capture_center=win.start)

    return Plan(incidents=[("attack", win, [("attack", win), ("outage", inc.Window(down.start, down.end))],
                            "start")], params=_params(w, down, sampling), down=down, network=network)


def _target(ip: int | str, vectors: list[int], carpet: bool = False) -> dict[str, Any]:
    return {"target": ip if isinstance(ip, str) else ft.v4_text(ip), "vectors": vectors, "carpet_bombing": carpet}


def _params(w: World, down: outage.Down | None, sampling: int) -> dict[str, float | str]:
    out: dict[str, float | str] = {"flow_sampling": float(sampling)}
    if down is not None:
        out["down_from"] = rfc3339(w.start_utc + _td(down.start))
        out["down_until"] = rfc3339(w.start_utc + _td(down.end))
    return out


def _td(sec: float) -> timedelta:
    return timedelta(seconds=int(sec))


def _reflectors(w: World, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` misused servers: home routers and hosted machines all over the world."""
    nets = w.space.claim16(rng, cat.HOSTING_OCTETS + cat.BOT_OCTETS, max(4, n // 25))
    return w.space.hosts_in_16s(rng, nets, None, n).astype(np.int64)


def _plan_reflection(service: str) -> Callable[[World], Plan]:
    """The plan of a reflection attack by ``service`` on the web server for 8-20 minutes; the uplink saturates in
    half the seeds."""

    def plan(w: World) -> Plan:
        rng = w.rng(f"{service}-reflection")
        win = inc.place(w, rng, (8.0, 20.0))
        sampling = _sampling(rng)
        n_refl = int(rng.integers(200, 3000) if service == "ntp" else rng.integers(500, 8000))
        per_sec = (100.0, 600.0)
        saturates = bool(rng.random() < 0.5)
        loss = Loss(win.start + 2.0, win.end, float(rng.uniform(0.5, 0.97))) if saturates else None
        key = f"{service}_reflection"

        def network(w: World, req: Requests) -> NetOutput:
            r = w.rng(f"{service}-reflection-flows")
            site = NetSite.build(w, req.v6)
            refl = _reflectors(w, r, n_refl)
            d = na.reflection(r, win.start, _flood_pps(r, sampling, int(win.length), per_sec), site.server, refl,
                              service, sampling, 0)
            flows = _finish(w, req, site, sampling, [d])
            return NetOutput(flows, site, sampling, [_vector(key, d, na.SERVICES[service]["port"])],
                             [_target(site.server, [0])], capture_center=win.start)

        incidents = [("attack", win, [("attack", win)], "start")]
        params = _params(w, None, sampling) | {"reflectors": float(n_refl), "uplink_saturated": str(saturates)}
        return Plan(incidents=incidents, params=params, loss=loss, network=network)

    return plan


def _plan_carpet(w: World) -> Plan:
    """Every host of the site's /24 hit moderately (UDP from a botnet, or spoofed ACKs) for 10-20 minutes; the
    saturated uplink loses 20-60 % of the site's requests."""
    rng = w.rng("carpet-bombing")
    win = inc.place(w, rng, (10.0, 20.0))
    sampling = _sampling(rng)
    ack = bool(rng.random() < 0.4)
    loss = Loss(win.start + 1.0, win.end, float(rng.uniform(0.2, 0.6)))

    def network(w: World, req: Requests) -> NetOutput:
        r = w.rng("carpet-bombing-flows")
        site = NetSite.build(w, req.v6)
        hosts = site.prefix + np.arange(1, 255, dtype=np.int64)
        hosts = hosts[r.random(hosts.shape[0]) < float(r.uniform(0.6, 1.0))]
        bots = None if ack else _reflectors(w, r, int(r.integers(500, 3000)))
        d = na.packet_flood(r, win.start, _flood_pps(r, sampling, int(win.length), (200.0, 800.0)), hosts, bots,
                            sampling, 0, tcp_ack=ack)
        flows = _finish(w, req, site, sampling, [d])
        key = "ack_flood" if ack else "udp_flood"
        return NetOutput(flows, site, sampling, [_vector(key, d)], [_target(site.prefix_text, [0], carpet=True)],
                         capture_center=win.start)

    return Plan(incidents=[("attack", win, [("attack", win)], "start")],
                params=_params(w, None, sampling) | {"carpet": "ack" if ack else "udp"}, loss=loss, network=network)


def _plan_mixed_l3l7(w: World) -> Plan:
    """A Mirai-like HTTP flood at 3-5x capacity for 10-18 minutes and, overlapping it, a SYN flood or a UDP flood
    from another botnet on the same server."""
    rng = w.rng("mixed-l3l7")
    win = inc.place(w, rng, (10.0, 18.0))
    rate = float(rng.uniform(3.0, 5.0)) * w.capacity
    rows = inc.mirai(w, rng, win, rate)
    sampling = _sampling(rng)
    syn = bool(rng.random() < 0.5)
    shift = float(rng.uniform(-60.0, 60.0))
    net_win = inc.Window(win.start + shift, win.end + shift)

    def network(w: World, req: Requests) -> NetOutput:
        r = w.rng("mixed-l3l7-flows")
        site = NetSite.build(w, req.v6)
        pps = _flood_pps(r, sampling, int(net_win.length), (150.0, 600.0))
        if syn:
            d = na.syn_flood(r, net_win.start, pps, site.server, (443,), sampling, 0)
        else:
            bots = _reflectors(w, r, int(r.integers(300, 2000)))
            d = na.packet_flood(r, net_win.start, pps, np.array([site.server]), bots, sampling, 0, tcp_ack=False)
        flows = _finish(w, req, site, sampling, [d])
        vec = _vector("syn_flood", d, 443) if syn else _vector("udp_flood", d)
        return NetOutput(flows, site, sampling, [vec], [_target(site.server, [0])], capture_center=net_win.start)

    whole = inc.Window(min(win.start, net_win.start), max(win.end, net_win.end))
    return Plan(rows=[rows], incidents=[("attack", whole, [("attack", win), ("network", net_win)], "lines")],
                params=_params(w, None, sampling) | {"attack_rps": rate, "network": "syn" if syn else "udp"},
                network=network)


def _plan_heavy_benign(w: World) -> Plan:
    """A heavy but benign day: 2-5 peers (a backup, a mirror) each pull 10-60 GB from the server at 0.3-1.5
    Gbit/s over completed TCP; the access log is ordinary."""
    rng = w.rng("heavy-benign")
    n = int(rng.integers(2, 6))
    starts = np.sort(rng.uniform(w.duration / 4, 0.6 * w.duration, size=n))
    gigabytes = rng.uniform(10.0, 60.0, size=n)
    gbits = rng.uniform(0.3, 1.5, size=n)
    port = int(rng.choice([22, 873, 443]))
    sampling = _sampling(rng)

    def network(w: World, req: Requests) -> NetOutput:
        r = w.rng("heavy-benign-flows")
        site = NetSite.build(w, req.v6)
        peers = w.space.hosts_in_16s(r, w.hosting16, None, n).astype(np.int64)
        bulk = na.bulk_transfers(r, starts, peers, site.server, port, gigabytes, gbits)
        flows = _finish(w, req, site, sampling, [], [bulk])
        benign = [{"what": "bulk transfer (the server sending)", "peer": ft.v4_text(int(p)), "port": port,
                   "gigabytes": round(float(g), 2), "gbit_s": round(float(b), 3),
                   "start": rfc3339(w.start_utc + _td(s)), "end": rfc3339(w.start_utc + _td(s + g * 8 / b))}
                  for p, g, b, s in zip(peers.tolist(), gigabytes.tolist(), gbits.tolist(), starts.tolist(),
                                        strict=True)]
        return NetOutput(flows, site, sampling, [], [], benign=benign, capture_center=float(starts[0]))

    return Plan(params=_params(w, None, sampling) | {"transfers": float(n)}, network=network)


PLANS: dict[str, Callable[[World], Plan]] = {
    "syn_flood": _plan_syn_flood, "ntp_reflection": _plan_reflection("ntp"),
    "dns_reflection": _plan_reflection("dns"), "carpet_bombing": _plan_carpet, "mixed_l3l7": _plan_mixed_l3l7,
    "heavy_benign": _plan_heavy_benign,
}

_FILES = " Writes flows.csv (nfdump CSV) beside the access log, and capture.pcap when the flows are unsampled."
SCENARIOS: dict[str, ScenarioInfo] = {
    "syn_flood": ScenarioInfo(
        "syn_flood", "ddos",
        "A spoofed SYN flood (random sources, some bogons, one packet each mostly) on the web server for 8-15 "
        "minutes: the access log goes almost silent within seconds, as in `outage`." + _FILES),
    "ntp_reflection": ScenarioInfo(
        "ntp_reflection", "ddos",
        "NTP reflection/amplification (monlist answers from source port 123) from 200-3,000 reflectors for 8-20 "
        "minutes, beside the server's own NTP sync; in half the seeds the uplink saturates and most requests "
        "never arrive." + _FILES),
    "dns_reflection": ScenarioInfo(
        "dns_reflection", "ddos",
        "DNS reflection/amplification (large fragmented answers from source port 53) from 500-8,000 open "
        "resolvers for 8-20 minutes, beside the server's own DNS lookups; the uplink saturates in half the "
        "seeds." + _FILES),
    "carpet_bombing": ScenarioInfo(
        "carpet_bombing", "ddos",
        "Carpet bombing: 60-100 % of the hosts of the site's /24 each hit moderately by UDP from a botnet or by "
        "spoofed ACKs for 10-20 minutes; the access log loses 20-60 % of its requests." + _FILES),
    "mixed_l3l7": ScenarioInfo(
        "mixed_l3l7", "ddos",
        "A Mirai-like HTTP flood (as `mirai`) and, overlapping it within a minute, a SYN flood or a UDP flood on "
        "the same server." + _FILES),
    "heavy_benign": ScenarioInfo(
        "heavy_benign", "no_incident",
        "A heavy but benign day: 2-5 peers each pull 10-60 GB from the server at 0.3-1.5 Gbit/s over completed "
        "TCP (a backup, a mirror); the access log is ordinary. Not an attack." + _FILES),
}
