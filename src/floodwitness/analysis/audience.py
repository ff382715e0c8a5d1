"""The audience model: which networks, autonomous systems and countries the site's clients normally come
from (the baseline), and how an incident's sources compare, level by level (IP, /24, /16, AS, country).

Per level: the share of the incident's requests (and of its excess) from entities the baseline never saw,
against the site's ordinary churn (how much of the baseline's last half hour came from entities its earlier
part never saw), and the concentration of requests (top-10 share, Gini, normalised entropy) against the
baseline's. Addresses are enriched once, distinct, by :class:`floodwitness.enrich.Enricher`.
IPv6 prefixes stand in for the IPv4 ones: /48 for /24, /32 for /16.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from floodwitness.analysis.composition import in_ranges, range_condition, split_baseline
from floodwitness.enrich import parse_addresses
from floodwitness.errors import FloodwitnessError

if TYPE_CHECKING:
    from datetime import datetime

    from floodwitness.analysis.composition import Composition
    from floodwitness.analysis.dataset import Dataset
    from floodwitness.enrich import Addresses, Enricher

LEVELS = ("ip", "/24", "/16", "asn", "country")
TOP_ROWS = 15

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LevelStats:
    """One level of the audience model for one incident."""

    level: str
    entities: int             # distinct entities among the incident's clients
    baseline_entities: int
    new_entities: int         # of the incident's, never seen in the baseline
    new_share: float          # share of the incident's requests from new entities
    new_excess_share: float   # share of the excess from new entities, beyond the ordinary churn
    baseline_churn: float     # ordinary churn: share of the baseline's last part from entities unseen before it
    unknown_share: float      # share of the incident's requests whose entity is unknown (no database answer)
    top10_share: float
    baseline_top10_share: float
    gini: float
    baseline_gini: float
    entropy: float            # Shannon entropy of the request shares / log(entities): 1 = evenly spread
    baseline_entropy: float

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Audience:
    levels: tuple[LevelStats, ...]
    asns: list[dict[str, Any]] = field(default_factory=list)
    countries: list[dict[str, Any]] = field(default_factory=list)
    databases: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None   # why AS and country levels are missing, when they are

    def level(self, name: str) -> LevelStats | None:
        return next((lv for lv in self.levels if lv.level == name), None)


def baseline_clients(data: Dataset, baseline: list[tuple[datetime, datetime]]) -> pa.Table:
    """One row per client of the baseline: ``client_ip, requests, ref_requests`` (those in the baseline's last
    part, see :func:`split_baseline`). Computed once per analysis and shared by its incidents."""
    t = in_ranges(data.requests, baseline)
    _, reference = split_baseline(baseline)
    agg = t.group_by("client_ip").aggregate(requests=t.count(),
                                            ref_requests=range_condition(t, reference).sum())
    return data.engine.ibis.to_pyarrow(agg)


def _concentration(counts: F64) -> tuple[float, float, float]:
    """Top-10 share, Gini coefficient and normalised entropy of positive ``counts``."""
    x = np.sort(counts[counts > 0])
    total = float(x.sum())
    n = len(x)
    if n == 0 or total <= 0:
        return 0.0, 0.0, 0.0
    top10 = float(x[-10:].sum()) / total
    gini = float(2 * np.sum(np.arange(1, n + 1) * x) / (n * total) - (n + 1) / n) if n > 1 else 0.0
    p = x / total
    entropy = float(-(p * np.log(p)).sum() / np.log(n)) if n > 1 else 0.0
    return top10, gini, entropy


def _codes(values: pa.Array) -> I64:
    """Dense integer codes of ``values`` (-1 for null)."""
    enc = pc.dictionary_encode(values)
    return np.asarray(pc.fill_null(enc.indices.cast(pa.int64()), -1).to_numpy(zero_copy_only=False), np.int64)


def _prefix_codes(addr: Addresses, v4_shift: int, v6_shift: int) -> I64:
    keys = np.arange(len(addr.family), dtype=np.uint64) | np.uint64(3 << 62)  # a host name is its own network
    is4, is6 = addr.family == 4, addr.family == 6
    keys[is4] = (addr.v4[is4].astype(np.uint64) >> np.uint64(v4_shift)) | np.uint64(1 << 62)
    keys[is6] = (addr.v6[is6] >> np.uint64(v6_shift)) & np.uint64((1 << 62) - 1) | np.uint64(2 << 62)
    _, inverse = np.unique(keys, return_inverse=True)
    return np.asarray(inverse, dtype=np.int64)


def _sums(codes: I64, weights: F64 | None, size: int) -> F64:
    return np.asarray(np.bincount(codes, weights=weights, minlength=size), dtype=np.float64)


def _level(name: str, codes: I64, w: tuple[I64, F64], b: tuple[I64, F64, F64], expected: float,
           excess: float) -> LevelStats:
    w_ent, w_req = codes[w[0]], w[1]
    b_ent, b_req, b_ref = codes[b[0]], b[1], b[2]
    size = int(codes.max()) + 1 if len(codes) else 0
    wv, bv = w_ent >= 0, b_ent >= 0
    w_counts = _sums(w_ent[wv], w_req[wv], size)
    b_counts = _sums(b_ent[bv], b_req[bv], size)
    b_refc = _sums(b_ent[bv], b_ref[bv], size)
    b_prior = b_counts - b_refc
    known = b_counts > 0
    w_total, all_total = float(w_counts.sum()), float(w_req.sum())
    new_req = float(w_counts[~known].sum())
    ref_total = float(b_refc.sum())
    churn = float(b_refc[b_prior <= 0].sum()) / ref_total if ref_total > 0 and float(b_prior.sum()) > 0 else 0.0
    known_frac = w_total / all_total if all_total > 0 else 0.0
    new_excess = min(max((new_req - churn * expected * known_frac) / excess, 0.0), 1.0) if excess > 0 else 0.0
    top10, gini, entropy = _concentration(w_counts)
    btop10, bgini, bentropy = _concentration(b_counts)
    present = w_counts > 0
    return LevelStats(
        level=name, entities=int(present.sum()), baseline_entities=int(known.sum()),
        new_entities=int((present & ~known).sum()), new_share=new_req / w_total if w_total > 0 else 0.0,
        new_excess_share=new_excess, baseline_churn=churn,
        unknown_share=1.0 - known_frac if all_total > 0 else 0.0, top10_share=top10, baseline_top10_share=btop10,
        gini=gini, baseline_gini=bgini, entropy=entropy, baseline_entropy=bentropy)


def _table(labels: dict[str, pa.Array], codes: I64, w: tuple[I64, F64], b: tuple[I64, F64, F64]
           ) -> list[dict[str, Any]]:
    """The incident's top entities of one level with their baseline share (a row per entity)."""
    w_ent, w_req = codes[w[0]], w[1]
    b_ent, b_req = codes[b[0]], b[1]
    size = int(codes.max()) + 1 if len(codes) else 0
    wv, bv = w_ent >= 0, b_ent >= 0
    w_counts = _sums(w_ent[wv], w_req[wv], size)
    w_clients = _sums(w_ent[wv], None, size)
    b_counts = _sums(b_ent[bv], b_req[bv], size)
    w_total, b_total = max(float(w_req.sum()), 1.0), max(float(b_req.sum()), 1.0)
    first = np.full(size, -1, dtype=np.int64)  # a union row of each entity, to read its labels
    valid = np.flatnonzero(codes >= 0)
    first[codes[valid][::-1]] = valid[::-1]
    rows = []
    for e in np.argsort(-w_counts, kind="stable")[:TOP_ROWS].tolist():
        if w_counts[e] <= 0:
            break
        row: dict[str, Any] = {k: v[int(first[e])].as_py() for k, v in labels.items()}
        row |= {"requests": int(w_counts[e]), "clients": int(w_clients[e]),
                "share": round(float(w_counts[e]) / w_total, 4),
                "baseline_share": round(float(b_counts[e]) / b_total, 4), "known": bool(b_counts[e] > 0)}
        rows.append(row)
    return rows


def audience_of(comp: Composition, base: pa.Table, enricher: Enricher | None) -> Audience:
    """The audience model of one incident (``comp``) against the baseline clients ``base``."""
    win = comp.clients_table
    union = pc.unique(pa.concat_arrays([win.column("client_ip").combine_chunks().cast(pa.string()),
                                        base.column("client_ip").combine_chunks().cast(pa.string())]))
    union = union.drop_null() if union.null_count else union

    def index(column: pa.ChunkedArray) -> I64:
        return np.asarray(pc.index_in(column, value_set=union).to_numpy(zero_copy_only=False), np.int64)

    def floats(table: pa.Table, name: str) -> F64:
        return np.asarray(table.column(name).to_numpy(zero_copy_only=False), np.float64)

    w = (index(win.column("client_ip")), floats(win, "requests"))
    b = (index(base.column("client_ip")), floats(base, "requests"), floats(base, "ref_requests"))
    addr = parse_addresses(union)  # once, for every level
    codes: dict[str, I64] = {"ip": np.arange(len(union), dtype=np.int64),
                             "/24": _prefix_codes(addr, 8, 16), "/16": _prefix_codes(addr, 16, 32)}
    note, databases = None, []
    asns: list[dict[str, Any]] = []
    countries: list[dict[str, Any]] = []
    if enricher is not None:
        try:
            info = enricher.enrich(union, addr)
            databases = enricher.databases()
        except FloodwitnessError as exc:
            note = f"no AS or country level: {exc.message}"
        else:
            as_key = pc.if_else(pc.is_null(info.column("asn")), info.column("as_name"),
                                pc.cast(info.column("asn"), pa.string()))
            codes["asn"] = _codes(as_key.combine_chunks() if isinstance(as_key, pa.ChunkedArray) else as_key)
            codes["country"] = _codes(info.column("country").combine_chunks())
            asns = _table({"asn": info.column("asn").combine_chunks(),
                           "as_name": info.column("as_name").combine_chunks()}, codes["asn"], w, b)
            countries = _table({"country": info.column("country").combine_chunks()}, codes["country"], w, b)
    else:
        note = "no AS or country level: enrichment is off"
    levels = tuple(_level(name, codes[name], w, b, comp.expected, comp.excess) for name in LEVELS if name in codes)
    return Audience(levels, asns, countries, databases, note)
