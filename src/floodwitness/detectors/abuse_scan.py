"""Hostile behaviour that is not a flood: each source of a window classified by what it did (a scan, a brute
force, scraping), by the rules of data/behaviours.json (:mod:`floodwitness.detectors.abuse_rules`).

One grouped query over the window's requests counts, per source, its requests, statuses and each signature's
matching requests and distinct paths; the sources are then classified with vector operations over that table
(no loop per source or per line). The findings that state it are :mod:`floodwitness.detectors.abuse`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from floodwitness.analysis.composition import in_ranges
from floodwitness.detectors.abuse_rules import BehaviourRules, Signature, bundled_behaviours

if TYPE_CHECKING:
    from datetime import datetime

    from floodwitness.analysis.dataset import Dataset


@dataclass(frozen=True)
class AbuseScan:
    """The sources of a window with their behaviour: ``table`` has, per source, ``client_ip``, ``requests``,
    ``posts``, ``status_4xx``, ``status_5xx``, ``auth_refused`` (401/403), ``paths`` (distinct), ``first``,
    ``last``, ``n<i>``/``d<i>`` (signature i's matching requests and, where a threshold needs them, distinct
    paths) and ``behaviour`` (the first behaviour, in the rules' order, it shows; null for none)."""

    rules: BehaviourRules
    table: pa.Table

    def of(self, behaviour: str) -> pa.Table:
        """The sources showing ``behaviour``, busiest first (ties by address)."""
        t = self.table.filter(pc.fill_null(pc.equal(self.table.column("behaviour"), behaviour), False))
        return t.sort_by([("requests", "descending"), ("client_ip", "ascending")])

    @property
    def hostile(self) -> pa.Table:
        """``client_ip`` of every source showing a behaviour."""
        return self.table.filter(pc.is_valid(self.table.column("behaviour"))).select(["client_ip"])


def _column(t: pa.Table, name: str) -> np.ndarray:
    return np.asarray(pc.fill_null(t.column(name), 0).to_numpy(zero_copy_only=False), dtype=float)


def shows(t: pa.Table, i: int, sig: Signature) -> np.ndarray:
    """Whether each source of ``t`` reaches signature ``i``'s threshold."""
    n, requests = _column(t, f"n{i}"), _column(t, "requests")
    d = _column(t, f"d{i}") if f"d{i}" in t.column_names else n
    return np.asarray((n > 0) & (n >= sig.min_requests) & (d >= sig.min_distinct_paths)
                      & (n >= sig.min_source_share * requests) & (d >= sig.min_distinct_share * n))


#: the request columns each condition of a signature reads
_COLUMNS = {"user_agents": "user_agent", "user_agent_regex": "user_agent", "referer_absent": "referer",
            "referer_regex": "referer", "path_regex": "path", "query_regex": "query", "query_absent": "query",
            "methods": "method", "protocol_not_in": "protocol", "status": "status", "bytes": "bytes",
            "status_at_least": "status", "status_below": "status", "status_in": "status", "non_asset": "path"}


def classify_sources(data: Dataset, window: tuple[datetime, datetime] | None,
                     rules: BehaviourRules | None = None) -> AbuseScan:
    """Every source of ``window`` (or of the whole data) with its counts and its behaviour, by ``rules`` (the
    bundled ones by default): one grouped query, then vector operations over its per-source table. The requests
    are first grouped by source and the columns the signatures read (a flood repeats a few requests: its
    hundreds of thousands of rows become a few hundred), and the signatures' conditions run on those groups."""
    rules = rules or bundled_behaviours()
    t = data.requests if window is None else in_ranges(data.requests, [window])
    read = {"client_ip", "path", "method", "status"} | {_COLUMNS[k] for s in rules.signatures for k in s.spec}
    g = t.group_by(sorted(read)).aggregate(c=t.count(), first=t.ts.min(), last=t.ts.max())
    m = g.mutate(**{f"p{i}": s.predicate(g) for i, s in enumerate(rules.signatures)})
    aggs: dict[str, Any] = {
        "requests": m.c.sum(), "posts": m.c.sum(where=m.method == "POST"),
        "status_4xx": m.c.sum(where=(m.status >= 400) & (m.status < 500)), "status_5xx": m.c.sum(where=m.status >= 500),
        "auth_refused": m.c.sum(where=m.status.isin([401, 403])), "paths": m.path.nunique(),
        "first": m.first.min(), "last": m.last.max()}
    for i, sig in enumerate(rules.signatures):
        aggs[f"n{i}"] = m.c.sum(where=m[f"p{i}"])
        if sig.min_distinct_paths or sig.min_distinct_share:  # a distinct count only where a threshold needs it
            aggs[f"d{i}"] = m.path.nunique(where=m[f"p{i}"])
    table = data.engine.ibis.to_pyarrow(m.group_by("client_ip").aggregate(**aggs))
    requests = _column(table, "requests")
    behaviour = np.full(table.num_rows, None, dtype=object)
    for b in rules.behaviours:
        shown = np.zeros(table.num_rows, dtype=bool)
        for i, sig in enumerate(rules.signatures):
            if sig.behaviour == b.name and not sig.supporting:
                shown |= shows(table, i, sig)
        behaviour[(behaviour == None) & shown & (requests >= b.min_source_requests)] = b.name  # noqa: E711
    return AbuseScan(rules, table.append_column("behaviour", pa.array(behaviour.tolist(), pa.string())))
