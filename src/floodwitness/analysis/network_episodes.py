"""Episodes: where the named vectors' traffic to a target runs (gaps up to ``merge_gap_s`` bridged), with start,
peak and end to the second, totals, baseline, and per vector its counts, sources, query and sample flows."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from floodwitness.analysis import network_sql as q
from floodwitness.analysis.network_claims import claim
from floodwitness.analysis.network_model import Episode, FlowSample, Spoofing, TargetSeries, VectorHit
from floodwitness.analysis.network_targets import is_private

if TYPE_CHECKING:
    from floodwitness.analysis.network_vectors import Vectors, VectorSpec

#: seconds of the mean an episode's edges are found on (see :func:`flood_runs`)
SMOOTH_S = 10
PROTO_NAMES = {1: "ICMP", 6: "TCP", 17: "UDP", 47: "GRE", 58: "ICMPv6"}


@dataclass(frozen=True)
class Cut:
    target: TargetSeries
    s0: int  # index into the series
    s1: int
    vectors: tuple[str, ...]


def qualifies(spec: VectorSpec, packets: float, sources: int, records: int, vp: np.ndarray, total: np.ndarray, *,
              min_records: int = 0, edge_share: float = 0.01) -> bool:
    """Whether a vector's traffic to a target passes its thresholds (data/vectors.json); ``records``: the flow
    records behind it (a sampled export scales one record to N packets: a handful of records is no flood, whatever
    the packets they stand for)."""
    t = spec.thresholds
    active = np.flatnonzero(vp > 0)
    # the peak as a 10-second mean: a sampled export's single record stands for N packets in one second, which
    # no flood makes of ordinary traffic once averaged
    smooth = mean10(vp)
    peak = float(smooth.max()) if len(vp) else 0.0
    if packets < t.min_packets or sources < t.min_sources or not len(active) or peak < t.min_peak_pps \
            or records < min_records:
        return False
    # its share of the target's traffic while it floods (the seconds its 10-second mean is at the episode edges'
    # level), not over the hours between its first and last stray packet
    flooding = smooth >= edge_share * peak
    span = total[flooding].sum()
    return bool(span > 0 and vp[flooding].sum() / span >= t.min_share)


def _dense(vectors: Vectors, spec: VectorSpec, c: Cut, d: dict[str, Any]) -> bool:
    """Whether the episode's flow records of a vector are enough to call it: at least ``min_records``, and for a
    direct vector (a signature of flags or protocol, which a sampled export's stray packets of ordinary connections
    can show) at least ``min_records_per_minute`` of the episode's minutes. Reflection has its own evidence (answers
    nobody asked for, from several reflectors)."""
    records = int(d.get("records") or 0)
    if records < vectors.min_records:
        return False
    minutes = (c.s1 - c.s0 + 1) / 60
    return spec.reflection or records >= vectors.min_records_per_minute * minutes


def runs(active: np.ndarray, gap: int) -> list[tuple[int, int]]:
    """Index ranges [a, b] where ``active`` holds, bridging gaps of at most ``gap`` seconds."""
    idx = np.flatnonzero(active)
    if not len(idx):
        return []
    breaks = np.flatnonzero(np.diff(idx) > gap + 1)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], [idx[-1]]])
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def mean10(values: np.ndarray) -> np.ndarray:
    """The centred :data:`SMOOTH_S`-second mean of a per-second series, the same length as it (a capture of a
    fraction of a second is one second long)."""
    if not len(values):
        return values.astype(np.float64)
    full = np.convolve(values, np.ones(SMOOTH_S) / SMOOTH_S, mode="full")
    return full[SMOOTH_S // 2:SMOOTH_S // 2 + len(values)]


def flood_runs(attack: np.ndarray, gap: int, edge_share: float) -> list[tuple[int, int]]:
    """The seconds of a vector's flood: runs of its traffic (gaps of at most ``gap`` seconds bridged), each cut to
    where it reaches ``edge_share`` of that run's peak (split again where it falls below for longer than ``gap``):
    the stray packets of the signature an ordinary day has (a client's retried SYN, a sampled ACK) neither start a
    flood early nor stretch it."""
    out: list[tuple[int, int]] = []
    for a, b in runs(attack > 0, gap):
        seg = attack[a:b + 1]
        # on a 10-second mean: a burst's peak second must not make the flood that follows look like a trickle
        smooth = mean10(seg)
        for x, y in runs(smooth >= edge_share * float(smooth.max()), gap):
            sent = np.flatnonzero(seg[x:y + 1] > 0)
            if len(sent):
                out.append((a + x + int(sent[0]), a + x + int(sent[-1])))
    return out


def cut(series: list[TargetSeries], counts: dict[tuple[str, str], tuple[int, int, int]],
        vectors: Vectors) -> list[Cut]:
    out: list[Cut] = []
    for s in series:
        named = tuple(sorted(v for v, (vp, _) in s.by_vector.items()
                             if qualifies(vectors.all[v], *counts.get((s.target, v), (0, 0, 0)), vp, s.total_p,
                                          min_records=vectors.min_records, edge_share=vectors.edge_share)))
        if not named:
            continue
        attack = np.sum([s.by_vector[v][0] for v in named], axis=0)
        out += [Cut(s, a, b, tuple(v for v in named if s.by_vector[v][0][a:b + 1].sum() > 0))
                for a, b in flood_runs(attack, vectors.merge_gap_s, vectors.edge_share)]
    return sorted(out, key=lambda c: (c.s0, c.target.target))


def build_episodes(con: Any, series: list[TargetSeries], vectors: Vectors, span: tuple[int, int],
                   files: dict[int, str]) -> list[Episode]:
    counts = {(r["target"], r["vector"]): (r["p"], r["s"], r["n"]) for r in con.sql(
        "SELECT t.target, c.vector, sum(c.packets) AS p, count(DISTINCT c.src_ip) AS s, count(*) AS n "
        "FROM fw_net_cls c "
        "JOIN fw_net_targets t USING (dst_ip) WHERE c.vector IS NOT NULL GROUP BY ALL").to_arrow_table().to_pylist()}
    cuts = cut(series, counts, vectors)
    if not cuts:
        return []
    first = span[0]
    rows = [{"id": f"N{i}", "target": c.target.target, "vector": v, "s0": first + c.s0, "s1": first + c.s1,
             "private_target": is_private(c.target.hosts[0], vectors)}
            for i, c in enumerate(cuts, 1) for v in c.vectors]
    con.register("fw_net_eps", pa.Table.from_pylist(rows))
    bogons = [(lo, hi, False) for lo, hi in vectors.bogons] + [(lo, hi, True) for lo, hi in vectors.private]
    con.register("fw_net_bogons", pa.table({"lo": [b[0] for b in bogons], "hi": [b[1] for b in bogons],
                                            "private": [b[2] for b in bogons]}))
    details = {(r["id"], r["vector"]): r for r in con.sql(q.episode_vectors_sql()).to_arrow_table().to_pylist()}
    spoof = {r["id"]: r for r in con.sql(q.spoofing_sql()).to_arrow_table().to_pylist()}
    samples: dict[tuple[str, str], list[FlowSample]] = {}
    for r in con.sql(q.samples_sql()).to_arrow_table().to_pylist():
        samples.setdefault((r["id"], r["vector"]), []).append(
            FlowSample(files.get(r["file_id"], str(r["file_id"])), r["record"], _sample(r)))
    out = []
    for i, c in enumerate(cuts, 1):
        ident = f"N{i}"
        spoofing = _spoofing(spoof.get(ident), vectors)
        hits = tuple(_hit(vectors, vectors.all[v], c, details[(ident, v)], spoofing, first,
                          tuple(samples.get((ident, v), ()))) for v in c.vectors
                     if (ident, v) in details and _dense(vectors, vectors.all[v], c, details[(ident, v)]))
        if not hits:
            continue
        out.append(_episode(ident, c, hits, spoofing, first, span, vectors.min_baseline_s))
    return [replace(e, id=f"N{n}") for n, e in enumerate(out, 1)]  # numbered as reported


def _episode(ident: str, c: Cut, hits: tuple[VectorHit, ...], spoofing: Spoofing, first: int,
             span: tuple[int, int], min_baseline_s: int) -> Episode:
    s = c.target
    window = slice(c.s0, c.s1 + 1)
    peak = c.s0 + int(np.argmax(s.total_p[window]))
    packets = float(s.total_p[window].sum())
    outside = (span[1] - span[0] + 1) - (c.s1 - c.s0 + 1)
    rest_p = float(s.total_p.sum()) - packets
    rest_b = float(s.total_b.sum()) - float(s.total_b[window].sum())
    return Episode(ident, s.target, len(s.hosts), "/" in s.target, first + c.s0, first + peak, first + c.s1,
                   float(s.total_p[peak]), float(s.total_b[peak]), round(packets),
                   round(float(s.total_b[window].sum()) / 8), rest_p / outside if outside >= min_baseline_s else None,
                   rest_b / outside if outside >= min_baseline_s else None, hits, spoofing, s.hosts)


def _spoofing(row: dict[str, Any] | None, vectors: Vectors) -> Spoofing:
    if row is None:
        return Spoofing(0, 0.0, 0, 0, ())
    sources, share = int(row["sources"]), float(row["one_packet_share"])
    indicators = []
    if sources >= vectors.spoofed_min_sources and share >= vectors.one_packet_share:
        indicators.append(f"{sources:,} distinct sources, {share:.0%} of them sent a single packet (or a single flow "
                          "record): addresses "
                          "forged per packet, not hosts holding connections")
    if row["bogon_sources"] and row["bogon_sources"] >= vectors.bogon_share * sources:
        indicators.append(f"{row['bogon_sources']:,} sources in bogon ranges (never routed on the Internet): "
                          "forged addresses")
    return Spoofing(sources, share, int(row["bogon_sources"]), int(row["bogon_packets"]), tuple(indicators))


def _sample(r: dict[str, Any]) -> str:
    proto = PROTO_NAMES.get(r["proto"], str(r["proto"]))
    src = r["src_ip"] if r["src_port"] is None else f"{r['src_ip']}:{r['src_port']}"
    dst = r["dst_ip"] if r["dst_port"] is None else f"{r['dst_ip']}:{r['dst_port']}"
    flags = "" if r["tcp_flags"] is None else f" flags={r['tcp_flags']}"
    return f"{src} > {dst} {proto}{flags} packets={r['packets']} bytes={r['bytes']}"[:200]


def _hit(vectors: Vectors, spec: VectorSpec, c: Cut, d: dict[str, Any], spoofing: Spoofing, first: int,
         samples: tuple[FlowSample, ...]) -> VectorHit:
    vp, vb = c.target.by_vector[spec.key]
    window = slice(c.s0, c.s1 + 1)
    total = float(c.target.total_p[window].sum())
    packets = int(d["packets"])
    if spec.reflection:
        port, role = spec.port, "reflectors"
    else:
        dominant = d["top_port"] is not None and d["top_port_packets"] >= 0.5 * packets
        port = d["top_port"] if spec.port_side == "dst" and dominant else None
        # the episode's spoofing evidence speaks for a vector with a spoofed flood's spread of sources, not for a
        # single sender beside it (a UDP flood from one address during a spoofed SYN flood)
        role = "spoofed" if spoofing.spoofed and int(d["sources"]) >= vectors.spoofed_min_sources else "sources"
    query = q.evidence_sql(vectors, spec.key, list(c.target.hosts), first + c.s0, first + c.s1)
    hit = VectorHit(spec.key, spec.name, spec.technique, spec.proto[0] if len(spec.proto) == 1 else None, port,
                    spec.port_side if port is not None else None, packets, int(d["bytes"]),
                    min(1.0, packets / total) if total else 0.0, float(vp[window].max()), float(vb[window].max()),
                    int(d["sources"]), role, spec.amplification(), query, samples, "", int(d["nat_sources"]))
    return replace(hit, claim=claim(hit, c.target.target, vectors))
