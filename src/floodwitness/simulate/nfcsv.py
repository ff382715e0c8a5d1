"""Flow records written exactly as ``nfdump -r FILE -o csv`` (nfdump 1.7.1) prints them: the same 48-column header,
the same row layout (times to the second in the printing machine's zone, here UTC; protocol names; TCP flags as
``CEUAPRSF`` letters or dots; ICMP type*256+code in ``dp``) and the ``Summary`` trailer.

Rows are built column by column with pyarrow's string kernels and written from the joined buffer: no Python
object per flow. A fragmented flow (``nfrag`` > 1) is two records, as a router exports it: the first fragments
with their ports, and the later fragments (no transport header) with ports 0.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from floodwitness.simulate.flowtable import Flows

if TYPE_CHECKING:
    from pathlib import Path

    import numpy.typing as npt

HEADER: Final = ("ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt,in,out,sas,das,smk,dmk,dtos,dir,nh,nhb,"
                 "svln,dvln,ismc,odmc,idmc,osmc," + ",".join(f"mpls{i}" for i in range(1, 11))
                 + ",cl,sl,al,ra,eng,exid,tr")
#: the columns after ``ibyt`` up to ``ra``, all empty in a plain NetFlow record (nfdump prints them anyway)
_MIDDLE: Final = ("0,0,0,0,0,0,0,0,0,0,{nh},{nh},0,0," + ",".join(["00:00:00:00:00:00"] * 4) + ","
                  + ",".join(["0-0-0"] * 10) + ",    0.000,    0.000,    0.000")
_TAIL: Final = "0/0,0,1970-01-01 00:00:00.000"
_PROTO_NAMES: Final = {1: "ICMP", 6: "TCP", 17: "UDP", 47: "GRE", 50: "ESP", 58: "ICMP6", 132: "SCTP"}
#: the largest IP datagram a fragment carries on a 1500-byte MTU link, and its payload in 8-byte units
MTU: Final = 1500
FRAG_PAYLOAD: Final = 1480


def flag_text(flags: int) -> str:
    """nfdump's ``flg`` column: ``CEUAPRSF``, a dot for each flag not set."""
    return "".join(c if flags & (1 << (7 - i)) else "." for i, c in enumerate("CEUAPRSF"))


def split_fragments(flows: Flows) -> Flows:
    """Each fragmented flow as its two records (first fragments with ports; later fragments with ports 0)."""
    frag = np.flatnonzero(flows.nfrag > 1)
    if frag.shape[0] == 0:
        return flows
    first = flows.take(np.arange(len(flows)))
    later = flows.take(frag)
    dgrams = first.packets[frag]
    size = first.bytes[frag] // np.maximum(dgrams, 1)
    extra = (later.nfrag.astype(np.int64) - 1) * dgrams
    first.bytes[frag] = MTU * dgrams
    first.nfrag[frag] = 1
    later.bytes = size * dgrams + 20 * extra - MTU * dgrams
    later.packets = extra
    later.sport[:] = 0
    later.dport[:] = 0
    later.nfrag[:] = 1
    return Flows.concat([first, later])


def _text(values: npt.NDArray[np.generic]) -> pa.Array:
    return pa.array(values).cast(pa.string())


def _addresses(codes: npt.NDArray[np.int64], v6: list[str]) -> pa.Array:
    v4 = np.where(codes >= 0, codes, 0)
    octets = [_text(((v4 >> s) & 255).astype(np.uint8)) for s in (24, 16, 8, 0)]
    dotted = pc.binary_join_element_wise(*octets, ".")
    if not (codes < 0).any():
        return dotted
    six = pa.DictionaryArray.from_arrays(pa.array(np.where(codes < 0, -codes - 1, 0)),
                                         pa.array(v6 or [""], pa.string())).cast(pa.string())
    return pc.if_else(pa.array(codes < 0), six, dotted)


def _lookup(index: npt.NDArray[np.integer], table: list[str]) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(index.astype(np.int32)), pa.array(table, pa.string())).cast(
        pa.string())


def _seconds_text(ms: npt.NDArray[np.int64]) -> pa.Array:
    """``%.3f`` of milliseconds."""
    whole = _text(ms // 1000)
    frac = pc.utf8_lpad(_text(ms % 1000), width=3, padding="0")
    return pc.binary_join_element_wise(whole, frac, ".")


def _stamps(epoch_s: npt.NDArray[np.int64]) -> pa.Array:
    days = np.asarray(epoch_s, dtype="datetime64[s]")
    return pc.replace_substring(pa.array(np.datetime_as_string(days, unit="s")), "T", " ")


def write_csv(path: Path, flows: Flows, *, t0: datetime, v6: list[str], exporter: str) -> int:
    """Write ``flows`` to ``path`` as nfdump's CSV (in order of their end, as a collector receives them); returns
    the number of records written."""
    flows = split_fragments(flows)
    flows = flows.take(np.argsort(flows.end, kind="stable"))
    base_ms = int(t0.astimezone(UTC).timestamp() * 1000)
    start_ms = base_ms + np.floor(flows.start * 1000).astype(np.int64)
    end_ms = np.maximum(base_ms + np.floor(flows.end * 1000).astype(np.int64), start_ms)
    names = [_PROTO_NAMES.get(p, str(p)) for p in range(256)]
    flag_table = [flag_text(f) for f in range(256)]
    is_tcp = flows.proto == 6
    six = flows.src < 0
    middle = pa.scalar(_MIDDLE.format(nh="0.0.0.0"))  # noqa: S104 - nfdump's empty next hop, not a bind
    middle6 = pa.scalar(_MIDDLE.format(nh="::"))
    columns = [
        _stamps(start_ms // 1000), _stamps(end_ms // 1000), _seconds_text(end_ms - start_ms),
        _addresses(flows.src, v6), _addresses(flows.dst, v6), _text(flows.sport), _text(flows.dport),
        _lookup(flows.proto.astype(np.int32) & 255, names),
        _lookup(np.where(is_tcp, flows.flags & 255, 0), flag_table),
        pa.scalar("0,0"), _text(flows.packets), _text(flows.bytes),
        pc.if_else(pa.array(six), middle6, middle) if six.any() else middle,
        pa.scalar(exporter), pa.scalar(_TAIL + "\n"),
    ]
    rows = pc.binary_join_element_wise(*columns, ",")
    rows = rows.combine_chunks() if isinstance(rows, pa.ChunkedArray) else rows
    with path.open("wb") as fh:
        fh.write((HEADER + "\n").encode())
        if len(rows):
            offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32)[rows.offset: rows.offset + len(rows) + 1]
            fh.write(memoryview(rows.buffers()[2])[int(offsets[0]): int(offsets[-1])])
        fh.write(summary(start_ms, end_ms, flows.packets, flows.bytes).encode())
    return len(flows)


def summary(start_ms: npt.NDArray[np.int64], end_ms: npt.NDArray[np.int64], packets: npt.NDArray[np.int64],
            nbytes: npt.NDArray[np.int64]) -> str:
    """nfdump's trailer: flows, bytes, packets and the averages over the span from the first to the last packet
    (truncated to integers, as nfdump prints them)."""
    n, b, p = int(start_ms.shape[0]), int(nbytes.sum()), int(packets.sum())
    span = (int(end_ms.max()) - int(start_ms.min())) / 1000.0 if n else 0.0
    bps = int(b * 8 / span) if span > 0 else 0
    pps = int(p / span) if span > 0 else 0
    bpp = b // p if p else 0
    return f"Summary\nflows,bytes,packets,avg_bps,avg_pps,avg_bpp\n{n},{b},{p},{bps},{pps},{bpp}\n"
