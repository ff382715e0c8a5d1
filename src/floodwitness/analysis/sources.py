"""Who was in an incident and what they asked for: the engine queries behind the report's sources and targets
(the listed clients' paths, agents and active minutes, the top user agents, the top paths)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ibis

from floodwitness.analysis.composition import in_ranges

if TYPE_CHECKING:
    from datetime import datetime

    from floodwitness.analysis.dataset import Dataset


def client_details(data: Dataset, window: tuple[datetime, datetime], ips: list[str]) -> dict[str, dict[str, Any]]:
    """Per client of ``ips`` in ``window``: its distinct paths, a user agent, the minutes it sent requests in
    (``active_minutes``) and its busiest minute's requests (``busiest_minute``). A look at their requests only, not
    a count for every client; a pulse wave's bots are idle between bursts, so their rate over the whole incident
    says little about the rate they hit at."""
    w = in_ranges(data.requests, [window])
    listed = w.filter(w.client_ip.isin(ips))
    out = {row["client_ip"]: row for row in data.engine.ibis.to_pyarrow(listed.group_by("client_ip").aggregate(
        distinct_paths=listed.path.nunique(), user_agent=listed.user_agent.max())).to_pylist()}
    per_minute = listed.group_by([listed.client_ip, listed.ts.truncate("m").name("minute")]).aggregate(
        n=listed.count())
    for row in data.engine.ibis.to_pyarrow(per_minute.group_by("client_ip").aggregate(
            minutes=per_minute.count(), busiest=per_minute.n.max())).to_pylist():
        out[row["client_ip"]] |= {"active_minutes": int(row["minutes"]), "busiest_minute": int(row["busiest"])}
    return out


def top_user_agents(data: Dataset, window: tuple[datetime, datetime], n: int = 10) -> list[dict[str, Any]]:
    """The ``n`` user agents with the most requests in ``window``, with their clients."""
    w = in_ranges(data.requests, [window])
    rows: list[dict[str, Any]] = data.engine.ibis.to_pyarrow(w.group_by("user_agent").aggregate(
        requests=w.count(), clients=w.client_ip.nunique()).order_by(
        [ibis.desc("requests"), "user_agent"]).limit(n)).to_pylist()
    return rows


def top_paths(data: Dataset, window: tuple[datetime, datetime], n: int = 10) -> list[dict[str, Any]]:
    """The ``n`` (method, path) with the most requests in ``window``: distinct query strings and server errors."""
    w = in_ranges(data.requests, [window])
    rows: list[dict[str, Any]] = data.engine.ibis.to_pyarrow(w.group_by(["method", "path"]).aggregate(
        requests=w.count(), distinct_queries=w.query.nunique(), errors=(w.status >= 500).sum()).order_by(
        [ibis.desc("requests"), "method", "path"]).limit(n)).to_pylist()
    return rows
