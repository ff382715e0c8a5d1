"""Which destinations are targets: the given victims' hosts, else the destinations hit by a vector's signature;
hosts of one prefix hit moderately by the same vector (carpet bombing) become the prefix as one target."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from floodwitness.enrich.addresses import parse_addresses

if TYPE_CHECKING:
    from collections.abc import Sequence

    from floodwitness.analysis.network_vectors import Vectors


def in_cidrs(dsts: pa.Array, cidrs: Sequence[str]) -> np.ndarray:
    """Whether each address lies in one of ``cidrs`` (IPv4 vectorised; IPv6 per distinct address)."""
    nets = [ipaddress.ip_network(c, strict=False) for c in cidrs]
    parsed = parse_addresses(dsts)
    inside = np.zeros(len(dsts), dtype=bool)
    for net in nets:
        if net.version == 4:
            lo, hi = int(net.network_address), int(net.broadcast_address)
            inside |= (parsed.family == 4) & (parsed.v4 >= lo) & (parsed.v4 <= hi)
    six = [n for n in nets if n.version == 6]
    for i in np.flatnonzero(parsed.family == 6).tolist() if six else []:
        addr = ipaddress.ip_address(str(dsts[i].as_py()).split("%", 1)[0])
        inside[i] = any(addr in n for n in six)
    return inside


def is_private(host: str, vectors: Vectors) -> bool:
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    if addr.version == 6:
        return bool(addr.is_private)
    value = int(addr)
    return any(lo <= value <= hi for lo, hi in vectors.private)


def carpet_prefixes(dv: pa.Table, vectors: Vectors) -> dict[str, str]:
    """dst_ip -> its prefix, for the hosts of prefixes carpet-bombed by one vector: at least ``min_hosts`` hosts
    hit, none with more than ``max_host_share`` of the prefix's packets of that vector, and ``min_records`` flow
    records per host needed behind it. ``dv``: dst_ip, vector, packets, records (IPv4 only: an IPv6 carpet is a known
    gap)."""
    carpet = vectors.carpet
    parsed = parse_addresses(dv["dst_ip"])
    four = parsed.family == 4
    shift = np.uint32(32 - carpet.prefix_v4)
    prefix = (parsed.v4 >> shift).astype(np.int64)
    vec = np.asarray(dv["vector"].to_pylist(), dtype=object)
    packets = dv["packets"].to_numpy(zero_copy_only=False).astype(np.float64)
    flows = (dv["records"].to_numpy(zero_copy_only=False).astype(np.float64) if "records" in dv.column_names
             else np.full(len(packets), float(vectors.min_records)))
    out: dict[str, str] = {}
    dst = dv["dst_ip"].to_pylist()
    own: dict[str, float] = {}
    for d, p in zip(dst, packets.tolist(), strict=True):
        own[d] = own.get(d, 0.0) + p
    for key in set(vec[four].tolist()):
        rows = np.flatnonzero(four & (vec == key))
        groups, inverse, hosts = np.unique(prefix[rows], return_inverse=True, return_counts=True)
        totals = np.bincount(inverse, weights=packets[rows])
        top = np.zeros(len(groups))
        np.maximum.at(top, inverse, packets[rows])
        records = np.bincount(inverse, weights=flows[rows])
        # many hosts, none taking most, and enough flow records behind it: a sampled export's stray records on a
        # few neighbours (each scaled to N packets) are no carpet, and must not fold the real victim into one
        chosen = (hosts >= carpet.min_hosts) & (top <= carpet.max_host_share * totals) \
            & (records >= vectors.min_records * hosts)  # a scan's one or two SYNs a host is no carpet
        for r in rows[chosen[inverse]].tolist():
            if own[dst[r]] > totals[inverse[np.searchsorted(rows, r)]]:
                continue  # a host hit harder by itself (another vector) than the whole carpet stays its own target
            base = ipaddress.IPv4Address(int(prefix[r]) << int(shift))
            out[dst[r]] = f"{base}/{carpet.prefix_v4}"
    return out


def map_targets(dv: pa.Table, dsts: pa.Array | None, victims: Sequence[str] | None,
                vectors: Vectors) -> pa.Table:
    """The table ``dst_ip -> target``: every destination of the given victims (``dsts`` are all destinations),
    else the destinations with a vector's traffic at its ``min_packets`` (as a host or within a carpet prefix)."""
    carpets = carpet_prefixes(dv, vectors)
    if victims is not None:
        assert dsts is not None
        chosen = dsts.filter(pa.array(in_cidrs(dsts, victims)))
    else:
        targets = pa.array([carpets.get(d, d) for d in dv["dst_ip"].to_pylist()], pa.string())
        agg = pa.table({"target": targets, "vector": dv["vector"], "packets": dv["packets"]}) \
            .group_by(["target", "vector"]).aggregate([("packets", "sum")])
        need = pa.array([vectors.all[k].thresholds.min_packets for k in agg["vector"].to_pylist()], pa.int64())
        big = set(agg.filter(pc.greater_equal(agg["packets_sum"], need))["target"].to_pylist())
        chosen = pa.array(sorted({d for d, t in zip(dv["dst_ip"].to_pylist(), targets.to_pylist(), strict=True)
                                  if t in big}), pa.string())
    names = chosen.to_pylist()
    return pa.table({"dst_ip": pa.array(names, pa.string()),
                     "target": pa.array([carpets.get(d, d) for d in names], pa.string())})
