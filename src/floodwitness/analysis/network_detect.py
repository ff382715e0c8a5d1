"""Network detection over the flow table: classify every flow by signature (SQL), map destinations to targets,
build per-target per-second series from rate changes (SQL), name the vectors that pass their thresholds, and cut
episodes where their traffic runs. See analysis/network.py for the entry point."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from floodwitness.analysis import network_sql as q
from floodwitness.analysis.network_episodes import build_episodes
from floodwitness.analysis.network_model import NetworkAnalysis, Series, TargetSeries, Victims
from floodwitness.analysis.network_targets import map_targets
from floodwitness.analysis.network_vectors import Vectors, load_vectors

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

EPS = 1e-9


def register_flows(con: Any, flows: pa.Table | Sequence[str | Path]) -> None:
    """Expose the flows as ``flows`` on the connection (the name the evidence queries use)."""
    if isinstance(flows, pa.Table):
        con.register("flows", flows)
        return
    paths = ", ".join(q.sql_text(str(p)) for p in flows)
    con.execute(f"CREATE OR REPLACE TEMP VIEW flows AS SELECT * FROM read_parquet([{paths}])")


def detect(con: Any, flows: pa.Table | Sequence[str | Path], victims: tuple[str, ...] | None,
           files: dict[int, str], vectors: Vectors | None = None) -> NetworkAnalysis:
    vectors = vectors or load_vectors()
    register_flows(con, flows)
    con.execute(f"CREATE OR REPLACE TEMP TABLE fw_net_cls AS {q.classify_sql(vectors)}\n"
                "SELECT start, \"end\", src_ip, dst_ip, src_port, dst_port, proto, tcp_flags, packets, bytes, "
                "sampling, file_id, record, vector, nat FROM classified")
    n, first, last = con.sql("SELECT count(*), CAST(floor(min(epoch(start))) AS BIGINT), "
                             "CAST(floor(max(epoch(\"end\"))) AS BIGINT) FROM fw_net_cls").fetchall()[0]
    if not n:
        return NetworkAnalysis(Victims(victims, victims or (), _how(victims)), (), Series(1, 0, (), ()), 0, None)
    dv = con.sql("SELECT dst_ip, vector, sum(packets) AS packets, count(*) AS records FROM fw_net_cls "
                 "WHERE vector IS NOT NULL "
                 "GROUP BY ALL").to_arrow_table()
    dsts = None
    if victims is not None:
        dsts = con.sql("SELECT DISTINCT dst_ip FROM fw_net_cls").to_arrow_table()["dst_ip"].combine_chunks()
    con.register("fw_net_targets", map_targets(dv, dsts, victims, vectors))
    series = _series(con, int(first), int(last))
    episodes = build_episodes(con, series, vectors, (int(first), int(last)), files)
    watched = tuple(victims) if victims is not None else tuple(dict.fromkeys(e.target for e in episodes))
    shown = [s for s in series if victims is not None or s.target in watched]
    return NetworkAnalysis(Victims(victims, watched, _how(victims)), tuple(episodes),
                           _coarse(shown, int(first), vectors.series_max_points), int(n), (int(first), int(last)))


def _how(victims: tuple[str, ...] | None) -> str:
    if victims is not None:
        return "given: every destination inside the victims' CIDRs is watched"
    return ("chosen from the data: destinations receiving traffic that matches a vector's signature (unsolicited "
            "SYN, ACK or RST without a connection, unanswered UDP, reflected answers from amplification ports, "
            "ICMP, GRE, fragments) above its thresholds (data/vectors.json); hosts of one prefix hit moderately "
            "by one vector are watched as the prefix (carpet bombing)")


def _series(con: Any, first: int, last: int) -> list[TargetSeries]:
    """Dense per-second series per target, from the SQL's rate changes (one cumulative sum per target/key)."""
    rows = con.sql(q.series_sql()).to_arrow_table()
    hosts = con.sql("SELECT target, list(dst_ip ORDER BY dst_ip) AS hosts FROM fw_net_targets GROUP BY target"
                    ).to_arrow_table().to_pylist()
    length = last - first + 2
    out: dict[str, TargetSeries] = {h["target"]: TargetSeries(h["target"], tuple(h["hosts"]), np.zeros(length),
                                                               np.zeros(length), {}) for h in hosts}
    target = rows["target"].to_numpy(zero_copy_only=False)
    key = rows["key"].to_numpy(zero_copy_only=False)
    sec = rows["sec"].to_numpy() - first
    dp = rows["dp"].to_numpy()
    db = rows["db"].to_numpy()
    pairs = np.char.add(np.char.add(target.astype(str), "\x1f"), key.astype(str)) if len(rows) else np.array([])
    uniq, inverse = np.unique(pairs, return_inverse=True)
    for i, pair in enumerate(uniq.tolist()):
        name, _, vec = pair.partition("\x1f")
        mask = inverse == i
        p = np.zeros(length + 1)
        b = np.zeros(length + 1)
        np.add.at(p, sec[mask], dp[mask])
        np.add.at(b, sec[mask], db[mask])
        pp, bb = np.cumsum(p)[:length], np.cumsum(b)[:length]
        pp[np.abs(pp) < EPS] = 0.0
        bb[np.abs(bb) < EPS] = 0.0
        if vec == "*":
            out[name].total_p, out[name].total_b = pp, bb
        else:
            out[name].by_vector[vec] = (pp, bb)
    return list(out.values())


def _coarse(series: list[TargetSeries], first: int, max_points: int) -> Series:
    if not series:
        return Series(1, first, (), ())
    p = np.sum([s.total_p for s in series], axis=0)[:-1]
    b = np.sum([s.total_b for s in series], axis=0)[:-1]
    step = max(1, math.ceil(len(p) / max_points))
    pad = (-len(p)) % step
    p = np.concatenate([p, np.zeros(pad)]).reshape(-1, step).mean(axis=1)
    b = np.concatenate([b, np.zeros(pad)]).reshape(-1, step).mean(axis=1)
    return Series(step, first, tuple(p.tolist()), tuple(b.tolist()))
