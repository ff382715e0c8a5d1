"""Packet captures (pcap, pcapng) into flows, by nfstream's native flow meter.

nfstream meters bidirectional flows; each becomes up to two rows of the flow table, one per direction that carried
packets, so a capture's flows read like a router's unidirectional NetFlow records.

Accounting (:func:`read_capture`): tcpdump counts the packets read and those outside any flow (non-IP frames such
as ARP), and lists the IPv4 fragments after the first, which a flow meter drops (they carry no ports): each becomes
a row of its own (null ports, 1 packet, its IP length, ``fragments`` 1), so a fragment flood stays visible.
Without tcpdump the packets read are unknown (said so) and the fragments are not added.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from floodwitness.errors import FormatError
from floodwitness.schema import FLOW_ARROW_SCHEMA, TCP_FLAGS

if TYPE_CHECKING:
    from pathlib import Path

#: nfstream's per-direction flag counters, by the flag bit they stand for
_FLAG_COUNTERS = {"syn": TCP_FLAGS["SYN"], "ack": TCP_FLAGS["ACK"], "rst": TCP_FLAGS["RST"], "fin": TCP_FLAGS["FIN"],
                  "psh": TCP_FLAGS["PSH"], "urg": TCP_FLAGS["URG"], "ece": TCP_FLAGS["ECE"], "cwr": TCP_FLAGS["CWR"]}
PORTED = (6, 17, 132)  # TCP, UDP, SCTP
METER = "nfstream"


def read_pcap(path: str | Path, file_id: int = 0) -> pa.Table:
    """The capture's flows as a table of :data:`FLOW_ARROW_SCHEMA` (both directions, in flow order)."""
    from nfstream import NFStreamer  # noqa: PLC0415 - heavy import, only for captures

    try:
        frame = NFStreamer(source=str(path), statistical_analysis=True, n_dissections=0, accounting_mode=1,
                           idle_timeout=120, active_timeout=1800).to_pandas()
    except (ValueError, OSError) as exc:  # nfstream raises ValueError for a capture libpcap cannot open
        raise FormatError(f"not a readable packet capture ({str(exc).strip()[:200]})", path=str(path),
                          hint="Check that the file is a complete pcap or pcapng capture.") from None
    table = pa.Table.from_pandas(frame, preserve_index=False) if len(frame) else None
    if table is None:
        return FLOW_ARROW_SCHEMA.empty_table()
    forward = _direction(table, "src2dst", ("src_ip", "dst_ip", "src_port", "dst_port"), file_id, 0)
    backward = _direction(table, "dst2src", ("dst_ip", "src_ip", "dst_port", "src_port"), file_id, 1)
    both = pa.concat_tables([forward, backward])
    both = both.filter(pc.greater(both["packets"], 0))
    return both.sort_by([("record", "ascending")])


def _direction(t: pa.Table, side: str, names: tuple[str, str, str, str], file_id: int, offset: int) -> pa.Table:
    src, dst, sport, dport = names
    proto = t["protocol"].cast(pa.int16())
    ported = pc.is_in(proto, pa.array(PORTED, pa.int16()))
    flags = np.zeros(len(t), dtype=np.int16)
    for counter, bit in _FLAG_COUNTERS.items():
        flags |= np.where(t[f"{side}_{counter}_packets"].to_numpy() > 0, bit, 0).astype(np.int16)
    is_tcp = pc.equal(proto, 6)
    null16 = pa.nulls(len(t), pa.int16())
    null32 = pa.nulls(len(t), pa.int32())
    n = len(t)
    columns = {
        "start": pc.cast(t[f"{side}_first_seen_ms"], pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
        .cast(pa.timestamp("us", tz="UTC")),
        "end": pc.cast(t[f"{side}_last_seen_ms"], pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
        .cast(pa.timestamp("us", tz="UTC")),
        "src_ip": t[src].cast(pa.string()),
        "dst_ip": t[dst].cast(pa.string()),
        "ip_family": t["ip_version"].cast(pa.int8()),
        "src_port": pc.if_else(ported, t[sport].cast(pa.int32()), null32),
        "dst_port": pc.if_else(ported, t[dport].cast(pa.int32()), null32),
        "proto": proto,
        "tcp_flags": pc.if_else(is_tcp, pa.array(flags, pa.int16()), null16),
        "packets": t[f"{side}_packets"].cast(pa.int64()),
        "bytes": t[f"{side}_bytes"].cast(pa.int64()),
        "sampling": pa.array(np.ones(n, dtype=np.int32)),
        "fragments": pa.nulls(n, pa.int64()),
        "exporter": pa.array([METER] * n, pa.string()) if n else pa.array([], pa.string()),
        "file_id": pa.array(np.full(n, file_id, dtype=np.int32)),
        "record": pa.array(np.arange(n, dtype=np.int64) * 2 + 1 + offset),
        "reject_reason": pa.nulls(n, pa.string()),
        "raw": pa.nulls(n, pa.string()),
    }
    return pa.table(columns, schema=FLOW_ARROW_SCHEMA)
