"""nfdump CSV exports (the layout ``nfdump -o csv`` prints) built vectorised, for the flow watch tests: ordinary
background (completed HTTPS connections both ways) with an optional SYN flood from spoofed sources."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

HEADER = ("ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt,in,out,sas,das,smk,dmk,dtos,dir,nh,nhb,svln,"
          "dvln,ismc,odmc,idmc,osmc,mpls1,mpls2,mpls3,mpls4,mpls5,mpls6,mpls7,mpls8,mpls9,mpls10,cl,sl,al,ra,eng,"
          "exid,tr")
COLUMNS = HEADER.split(",")
VICTIM = "203.0.113.10"


@dataclass(frozen=True)
class Flood:
    start: int  # seconds from the export's first second
    seconds: int
    pps: int    # SYN packets per second, one packet per spoofed source


def _ips(prefix: str, n: np.ndarray) -> pa.Array:
    n = n.astype(np.int64)
    text = [prefix, (n // 65536 % 256).astype(str), ".", (n // 256 % 256).astype(str), ".", (n % 250 + 1).astype(str)]
    return pa.array(np.char.add(np.char.add(np.char.add(np.char.add(np.char.add(*text[:2]), text[2]), text[3]),
                                            text[4]), text[5]))


def _times(epoch: np.ndarray) -> pa.Array:
    ts = pa.array(epoch.astype("datetime64[s]"))
    return pc.strftime(ts, format="%Y-%m-%d %H:%M:%S")


def flows(t0: int, seconds: int, *, per_second: int = 20, flood: Flood | None = None,
          seed: int = 7) -> pa.Table:
    """Rows of the CSV (all columns as text) sorted by start: per second ``per_second`` client connections to the
    victim's port 443 and its answers, and the flood's one-packet SYNs to port 80 from spoofed sources."""
    rng = np.random.default_rng(seed)
    n = seconds * per_second
    at = t0 + np.repeat(np.arange(seconds), per_second)
    client = rng.integers(0, 2000, n)
    sport = rng.integers(1024, 65535, n)
    parts = [{"at": at, "sa": _ips("198.", client), "da": pa.array(np.full(n, VICTIM)), "sp": sport,
              "dp": np.full(n, 443), "flg": "...AP.SF", "pk": rng.integers(5, 20, n), "size": 80},
             {"at": at, "sa": pa.array(np.full(n, VICTIM)), "da": _ips("198.", client), "sp": np.full(n, 443),
              "dp": sport, "flg": "...AP.SF", "pk": rng.integers(5, 40, n), "size": 1200}]
    if flood is not None:
        m = flood.seconds * flood.pps
        fat = t0 + flood.start + np.repeat(np.arange(flood.seconds), flood.pps)
        parts.append({"at": fat, "sa": _ips("100.", rng.integers(0, 1 << 24, m)), "da": pa.array(np.full(m, VICTIM)),
                      "sp": rng.integers(1024, 65535, m), "dp": np.full(m, 80), "flg": "......S.",
                      "pk": np.ones(m, dtype=np.int64), "size": 40})
    tables = [_rows(p) for p in parts]
    out = pa.concat_tables(tables)
    return out.take(pc.sort_indices(out, [("ts", "ascending")]))


def _rows(p: dict[str, object]) -> pa.Table:
    at = np.asarray(p["at"])
    n = len(at)
    pk = np.asarray(p["pk"], dtype=np.int64)
    times = _times(at)
    cols: dict[str, pa.Array] = {c: pa.array(np.full(n, "0")) for c in COLUMNS}
    cols.update({"ts": times, "te": times, "td": pa.array(np.full(n, "0.000")), "sa": p["sa"], "da": p["da"],
                 "sp": pa.array(np.asarray(p["sp"]).astype(str)), "dp": pa.array(np.asarray(p["dp"]).astype(str)),
                 "pr": pa.array(np.full(n, "TCP")), "flg": pa.array(np.full(n, str(p["flg"]))),
                 "ipkt": pa.array(pk.astype(str)), "ibyt": pa.array((pk * int(str(p["size"]))).astype(str)),
                 "ra": pa.array(np.full(n, "192.0.2.1"))})
    return pa.table([cols[c] for c in COLUMNS], names=COLUMNS)


def csv_bytes(rows: pa.Table, *, header: bool = True) -> bytes:
    sink = pa.BufferOutputStream()
    pacsv.write_csv(rows, sink, write_options=pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return (HEADER + "\n").encode() * header + sink.getvalue().to_pybytes()
