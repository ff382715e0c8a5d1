"""The scenarios: what happens during the simulated hours, and the truth that goes with it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from floodwitness.simulate import events as ev
from floodwitness.simulate import incidents as inc
from floodwitness.simulate import netscen, netwrite, outage
from floodwitness.simulate.events import Events
from floodwitness.simulate.plan import Plan, ScenarioInfo
from floodwitness.simulate.server import Profile, finish, retry_chains
from floodwitness.simulate.traffic import api_polls, automation, crawlers, humans, probes
from floodwitness.simulate.truth import Incident, Truth, rfc3339
from floodwitness.simulate.world import World
from floodwitness.simulate.writer import Lines, write

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def _plan_mirai(w: World) -> Plan:
    """A Mirai HTTP flood of 10-18 minutes at 3-5x the application's capacity."""
    rng = w.rng("mirai")
    win = inc.place(w, rng, (10.0, 18.0))
    rate = float(rng.uniform(3.0, 5.0)) * w.capacity
    return Plan(rows=[inc.mirai(w, rng, win, rate)], incidents=[("attack", win, [], "lines")],
                params={"attack_rps": rate})


def _plan_cachebust(w: World) -> Plan:
    """A cache-busting flood of 12-25 minutes at 2.2-3.8x capacity."""
    rng = w.rng("cachebust")
    win = inc.place(w, rng, (12.0, 25.0))
    rate = float(rng.uniform(2.2, 3.8)) * w.capacity
    return Plan(rows=[inc.cachebust(w, rng, win, rate)], incidents=[("attack", win, [], "lines")],
                params={"attack_rps": rate})


def _plan_pulse(w: World) -> Plan:
    """3-5 bursts of a pulse-wave flood at 4-6.5x capacity; the incident spans all bursts."""
    rng = w.rng("pulse")
    span = inc.place(w, rng, (40.0, 50.0))
    rate = float(rng.uniform(4.0, 6.5)) * w.capacity
    rows, bursts = inc.pulse(w, rng, span, rate)
    span = inc.Window(span.start, bursts[-1].end)
    return Plan(rows=[rows], incidents=[("attack", span, [("burst", b) for b in bursts], "lines")],
                params={"attack_rps": rate, "bursts": float(len(bursts))})


def _plan_dos(w: World) -> Plan:
    """A few servers flooding for 8-12 minutes."""
    rng = w.rng("dos")
    win = inc.place(w, rng, (8.0, 12.0))
    rows = inc.dos(w, rng, win)
    return Plan(rows=[rows], incidents=[("attack", win, [], "lines")],
                params={"attack_rps": len(rows) / win.length})


def _plan_flash(w: World) -> Plan:
    """A flash crowd lasting 12-28 minutes whose peak offers 1.05-1.35x capacity in all."""
    rng = w.rng("flash-crowd")
    win = inc.place(w, rng, (12.0, 28.0))
    target = float(rng.uniform(1.05, 1.35)) * w.capacity
    extra = max(target - inc.baseline_dynamic_rate(w, win.start), 0.5 * w.capacity)
    return Plan(rows=[inc.flash_crowd(w, rng, win, extra)], incidents=[("surge", win, [], "lines")],
                params={"surge_peak_dynamic_rps": extra})


def _plan_failure(w: World) -> Plan:
    """A bad deploy of 15-35 minutes: degraded for 3-6 minutes, then broken until the rollback."""
    rng = w.rng("internal-failure")
    win = inc.place(w, rng, (15.0, 35.0))
    failure = inc.bad_deploy(rng, win, (3.0, 6.0))
    return Plan(failure=failure, incidents=[("failure", win, [], "errors")],
                params={"broken_from": rfc3339(w.start_utc + timedelta(seconds=int(failure.broken))),
                        "p_broken": failure.p_broken})


def _plan_mixed(w: World) -> Plan:
    """A flood (Mirai-like 60 %, cache-busting 40 %) and a bad deploy. In 60 % of the seeds the flood
    breaks the application halfway and the failure outlasts it by 12-25 minutes; otherwise the
    application is already failing 4-10 minutes before the flood and stays broken 6-15 minutes after."""
    rng = w.rng("mixed")
    h = w.duration
    use_mirai = bool(rng.random() < 0.6)
    if rng.random() < 0.6:  # the flood breaks the application, which stays broken after it ends
        attack = inc.place(w, rng, (8.0, 18.0))
        f_start = attack.start + float(rng.uniform(0.3, 0.7)) * attack.length
        f_end = min(attack.end + float(rng.uniform(12.0, 25.0)) * 60.0, 0.95 * h)
        order = "attack-first"
    else:  # the application was already failing when the flood came
        f_start = float(rng.uniform(h / 3, 2 * h / 3))
        a_start = f_start + float(rng.uniform(4.0, 10.0)) * 60.0
        attack = inc.place(w, rng, (8.0, 18.0), start=min(a_start, 0.8 * h))
        f_end = min(attack.end + float(rng.uniform(6.0, 15.0)) * 60.0, 0.95 * h)
        order = "failure-first"
    f_end = max(f_end, attack.end + 120.0)
    fwin = inc.Window(f_start, f_end)
    failure = inc.bad_deploy(rng, fwin, (2.0, 4.0))
    if use_mirai:
        rate = float(rng.uniform(3.0, 5.0)) * w.capacity
        rows = inc.mirai(w, rng, attack, rate)
    else:
        rate = float(rng.uniform(2.2, 3.5)) * w.capacity
        rows = inc.cachebust(w, rng, attack, rate)
    whole = inc.Window(min(attack.start, fwin.start), max(attack.end, fwin.end))
    return Plan(rows=[rows], failure=failure,
                incidents=[("attack+failure", whole, [("attack", attack), ("failure", fwin)], "lines")],
                params={"attack": "mirai" if use_mirai else "cachebust", "order": order, "attack_rps": rate})


def _down_params(down: outage.Down, w: World) -> dict[str, float | str]:
    return {"down_from": rfc3339(w.start_utc + timedelta(seconds=int(down.start))),
            "down_until": rfc3339(w.start_utc + timedelta(seconds=int(down.end))), "stragglers": down.stragglers,
            "recovery_ramp_s": down.ramp, "retry_share": down.retry_share}


def _plan_outage(w: World) -> Plan:
    """The site stops answering mid-day for 10-40 minutes, with nothing before it in the log."""
    rng = w.rng("outage")
    down = outage.place_down(rng, float(rng.uniform(w.duration / 3, 0.6 * w.duration)), (10.0, 40.0), w.duration)
    win = inc.Window(down.start, down.end)
    return Plan(incidents=[("outage", win, [("outage", win)], "start")], params=_down_params(down, w), down=down)


def _plan_outage_flood(w: World) -> Plan:
    """A Mirai-like flood at 3-5x capacity takes the site down after 4-8 minutes; down for 10-30 minutes."""
    rng = w.rng("outage-flood")
    flood = inc.place(w, rng, (4.0, 8.0))
    down = outage.place_down(rng, flood.end, (10.0, 30.0), w.duration)
    rate = float(rng.uniform(3.0, 5.0)) * w.capacity
    rows = inc.mirai(w, rng, flood, rate)  # (it may go on: nothing of it reaches the log once the site is down)
    return Plan(rows=[rows], incidents=[("attack", flood, [("attack", flood), ("outage", inc.Window(
        down.start, down.end))], "lines")], params=_down_params(down, w) | {"attack_rps": rate}, down=down)


def _plan_outage_failure(w: World) -> Plan:
    """A bad deploy fails for 5-10 minutes, then the server stops answering for 10-30 minutes; it comes back
    healthy (rolled back while down)."""
    rng = w.rng("outage-failure")
    start = float(rng.uniform(w.duration / 3, 0.55 * w.duration))
    down = outage.place_down(rng, start + float(rng.uniform(5.0, 10.0)) * 60.0, (10.0, 30.0), w.duration)
    failure = inc.bad_deploy(rng, inc.Window(start, down.start + 1.0), (2.0, 4.0))
    win = inc.Window(start, down.start)
    return Plan(failure=failure, incidents=[("failure", win, [("failure", win), ("outage", inc.Window(
        down.start, down.end))], "errors")], params=_down_params(down, w), down=down)


def _plan_quiet(w: World) -> Plan:
    """Nothing happens."""
    return Plan()


SCENARIOS: dict[str, ScenarioInfo] = {
    "mirai": ScenarioInfo(
        "mirai", "ddos",
        "Mirai-style HTTP flood: 2,000-5,000 IoT bots (x scale) from networks the site never saw, each "
        "about 1 request/s while active, one fixed path, Mirai's five User-Agents, no Referer; "
        "3-5x the application's capacity for 10-18 minutes."),
    "cachebust": ScenarioInfo(
        "cachebust", "ddos",
        "Targeted cache-busting flood from 300-1,000 proxies/servers: random query strings (/?r=<hex>, "
        "/search?q=<random>), a browser UA rotated per request, no assets, no or fake Referers; "
        "2.2-3.8x capacity for 12-25 minutes."),
    "pulse": ScenarioInfo(
        "pulse", "ddos",
        "Pulse-wave flood: a botnet (1,000-3,000 bots) hits for 2-4 minutes, pauses 5-10, repeats over "
        "20-40 minutes; 4-6.5x capacity during each burst."),
    "dos": ScenarioInfo(
        "dos", "dos",
        "DoS from 2-6 servers at 50-300 requests/s each (x scale, at most 300 in all): HULK, GoldenEye "
        "or a plain script, for 8-12 minutes."),
    "flash_crowd": ScenarioInfo(
        "flash_crowd", "flash_crowd",
        "A link on a news site: many new visitors from the audience's own ISPs open the article (news "
        "site as Referer) and its assets; the wave peaks at 1.05-1.35x capacity (some 503s, slow pages) "
        "and decays over 12-28 minutes."),
    "internal_failure": ScenarioInfo(
        "internal_failure", "internal_failure",
        "A bad deploy: with normal traffic, 500/504s and latency creep up for 3-6 minutes, then the "
        "application crash-loops (502/503) and the known API clients retry with backoff (a retry storm) "
        "until the rollback; 15-35 minutes in all."),
    "mixed": ScenarioInfo(
        "mixed", "mixed",
        "A Mirai-like or cache-busting flood and a failure of our own: either the flood breaks the "
        "application, which stays broken 12-25 minutes after the flood ends, or the application was "
        "already failing when the flood came. API clients retry throughout."),
    "outage": ScenarioInfo(
        "outage", "outage",
        "The site stops answering mid-day for 10-40 minutes with nothing before it in the log (a network-level "
        "flood, an upstream or power failure): a few requests in flight are still logged, traffic comes back over "
        "1-10 minutes, and some clients retry at once when it does."),
    "outage_flood": ScenarioInfo(
        "outage_flood", "ddos",
        "A Mirai-like flood at 3-5x capacity takes the site down after 4-8 minutes; nothing is logged for 10-30 "
        "minutes, then traffic comes back as in `outage`."),
    "outage_failure": ScenarioInfo(
        "outage_failure", "internal_failure",
        "A bad deploy fails for 5-10 minutes (errors and latency), then the server stops answering for 10-30 "
        "minutes and comes back healthy, as in `outage`."),
    "quiet": ScenarioInfo(
        "quiet", "no_incident",
        "A normal day: people browsing, crawlers, API polling, feed readers, monitors and a few "
        "vulnerability scanners. Nothing happens."),
    **netscen.SCENARIOS,
}

_PLANS: dict[str, Callable[[World], Plan]] = {
    "mirai": _plan_mirai, "cachebust": _plan_cachebust, "pulse": _plan_pulse, "dos": _plan_dos,
    "flash_crowd": _plan_flash, "internal_failure": _plan_failure, "mixed": _plan_mixed,
    "quiet": _plan_quiet, "outage": _plan_outage, "outage_flood": _plan_outage_flood,
    "outage_failure": _plan_outage_failure,
    **netscen.PLANS,
}

_PEOPLE = (ev.HUMAN, ev.SURGE)
#: How often someone who got an error page reloads it, and how many times at most.
RELOAD_SHARE = 0.5
RELOADS = 3
_LEGIT = (ev.HUMAN, ev.CRAWLER, ev.API, ev.AUTOMATION)


def run(kind: str, outdir: Path, seed: int, scale: float, hours: float) -> Truth:
    """Simulate ``kind``; write ``access.log`` and ``truth.json`` into ``outdir``."""
    w = World.build(seed, scale, hours)
    plan = _PLANS[kind](w)
    rows = Events.concat([humans(w), crawlers(w), automation(w), probes(w), *plan.rows])
    plan.rows.clear()

    # Server state: failure plan, then the load everyone but the API clients offers.
    prof = Profile.build(w.n_sec, plan.failure, w.rng("failure-noise"))
    api_rate = float((1.0 / w.api.interval).sum())
    prof.set_load(rows.t, rows.cls == ev.DYNAMIC, w.capacity, extra=api_rate)
    refresh = w.tables.paths.id("/api/v1/auth/refresh")
    api = retry_chains(w.rng("api-retries"), api_polls(w), prof, duration=w.duration, app=w.api.app,
                       refresh_path=refresh)
    rows = Events.concat([rows, api])
    del api
    prof.set_load(rows.t, rows.cls == ev.DYNAMIC, w.capacity)

    rng = w.rng("server")
    status, size, rt, ut = finish(rng, rows, prof)

    # People: a page that failed loads no assets, and people press reload (again and again).
    people = np.isin(rows.role, _PEOPLE)
    failed = people & (rows.cls == ev.DYNAMIC) & ((status >= 500) | (status == 499))
    orphan = people & (rows.cls == ev.STATIC) & np.isin(rows.grp, rows.grp[failed])
    blocks: list[Events] = []
    results: list[tuple[npt.NDArray[Any], ...]] = []
    cur, cur_failed, cur_rt = rows, failed, rt
    for _ in range(RELOADS):
        again = np.flatnonzero(cur_failed & (rng.random(len(cur)) < RELOAD_SHARE))
        if again.shape[0] == 0:
            break
        nxt = cur.take(again)
        nxt.t = nxt.t + cur_rt[again] + rng.uniform(2.0, 15.0, size=again.shape[0])
        nxt.flags = np.full(again.shape[0], ev.RELOAD, dtype=np.int8)
        res = finish(rng, nxt, prof)
        blocks.append(nxt)
        results.append(res)
        cur, cur_failed, cur_rt = nxt, (res[0] >= 500) | (res[0] == 499), res[2]
    reload = Events.concat(blocks)
    r_status, r_size, r_rt, r_ut = (np.concatenate([r[i] for r in results]) if results
                                    else np.zeros(0, dtype=d)
                                    for i, d in enumerate((np.int16, np.int32, np.float64, np.float64)))

    cols: dict[str, npt.NDArray[Any]] = {}
    for name in ("t", "ip", "ua", "meth", "path", "proto", "ref", "tok", "role", "flags"):
        cols[name] = np.concatenate([getattr(rows, name), getattr(reload, name)])
    del rows, reload
    for name, ours, again in (("status", status, r_status), ("size", size, r_size), ("rt", rt, r_rt),
                              ("ut", ut, r_ut)):
        cols[name] = np.concatenate([ours, again])
    keep = np.concatenate([~orphan, np.ones(r_status.shape[0], dtype=bool)])

    # nginx logs a request when it completes; the log covers [0, duration).
    done: npt.NDArray[np.float64] = cols["t"] + cols["rt"]
    if plan.down is not None:  # the site stops answering: nothing is logged while it is down
        cols, keep, done = outage.apply(w.rng("outage"), plan.down, cols, keep, done)
    if plan.loss is not None:  # a saturated uplink: a share of the requests never arrive
        lost = (cols["t"] >= plan.loss.start) & (cols["t"] < plan.loss.end)
        keep &= ~(lost & (w.rng("uplink-loss").random(done.shape[0]) < plan.loss.share))
    keep &= done < w.duration
    return _write_outputs(kind, w, plan, cols, keep, done, outdir)


def _write_outputs(kind: str, w: World, plan: Plan, cols: dict[str, npt.NDArray[Any]], keep: npt.NDArray[np.bool_],
                   done: npt.NDArray[np.float64], outdir: Path) -> Truth:
    """Write ``access.log`` (the rows ``keep``, in order of completion), the flows of a network scenario beside
    it, and ``truth.json``."""
    order = np.flatnonzero(keep)[np.argsort(done[keep], kind="stable")]
    local_start = w.start_utc + timedelta(minutes=_tz_minutes(w.tz))
    outdir.mkdir(parents=True, exist_ok=True)
    lines = Lines(t=done, ip=cols["ip"], ua=cols["ua"], meth=cols["meth"], path=cols["path"],
                  proto=cols["proto"], ref=cols["ref"], tok=cols["tok"], status=cols["status"], size=cols["size"],
                  rt=cols["rt"], ut=cols["ut"])
    n_lines = write(outdir / "access.log", lines, order, ips=w.tables.ips, uas=w.tables.uas,
                    paths=w.tables.paths, refs=w.tables.refs, local_start=local_start.replace(tzinfo=None),
                    tz=w.tz, n_sec=w.n_sec)
    network = None
    if plan.network is not None:
        network = netwrite.write_network(w, plan.network, outdir, requests=netwrite.requests(w, cols, done, keep))

    logged = _Logged(ip=cols["ip"][keep], role=cols["role"][keep], flags=cols["flags"][keep],
                     arrival=cols["t"][keep], done=done[keep], status=cols["status"][keep])
    truth = replace(_truth(kind, w, plan, logged, n_lines), network=network)
    (outdir / "truth.json").write_text(truth.to_json(), encoding="utf-8")
    return truth


def _tz_minutes(tz: str) -> int:
    return (1 if tz[0] == "+" else -1) * (int(tz[1:3]) * 60 + int(tz[3:5]))


def _ips(w: World, ids: npt.NDArray[np.int32]) -> tuple[str, ...]:
    values = w.tables.ips.values
    return tuple(sorted(values[i] for i in np.unique(ids).tolist()))


@dataclass
class _Logged:
    """The columns of the logged rows the truth is computed from."""

    ip: npt.NDArray[np.int32]
    role: npt.NDArray[np.int8]
    flags: npt.NDArray[np.int8]
    arrival: npt.NDArray[np.float64]
    done: npt.NDArray[np.float64]
    status: npt.NDArray[np.int16]


#: A crowd has no sharp end: it is over once its own requests per minute stay below this share of its
#: busiest minute (the news link has scrolled off; stragglers keep browsing for a while).
CROWD_END_SHARE = 0.25


def _crowd_end(crowd_minutes: npt.NDArray[np.int64], n_min: int, start: float) -> float:
    """End (seconds) of the last minute in which the crowd's own requests were >= CROWD_END_SHARE of its peak."""
    per_min = np.bincount(crowd_minutes, minlength=n_min)
    busy = np.flatnonzero(per_min >= CROWD_END_SHARE * per_min.max())
    return max(float((busy[-1] + 1) * 60), start + 60.0)


def _truth(kind: str, w: World, plan: Plan, logged: _Logged, n_lines: int) -> Truth:
    def at(sec: float) -> datetime:
        return w.start_utc + timedelta(seconds=int(np.floor(sec)))

    ip, role, flags, done, status = logged.ip, logged.role, logged.flags, logged.done, logged.status
    attack = role == ev.ATTACK
    # Minutes of the clock (as a report bins them), not minutes counted from the log's first second.
    shift = w.start_utc.second + w.start_utc.microsecond / 1e6
    minute = ((done + shift) // 60).astype(np.int64)
    n_min = int((w.n_sec + shift) // 60) + 1
    lines_per_min = np.bincount(minute, minlength=n_min)
    errors_per_min = np.bincount(minute[status >= 500], minlength=n_min)

    incidents: list[Incident] = []
    def last_line(p: inc.Window) -> float:
        """When the last attack request that arrived in ``p`` was logged (slow answers end late)."""
        sel = attack & (logged.arrival >= p.start) & (logged.arrival <= p.end)
        return max(p.end, float(np.ceil(done[sel].max()))) if sel.any() else p.end

    for cause, win, planned, peak_by in plan.incidents:
        start, end = win.start, win.end
        if "attack" in cause:
            end = max(end, last_line(win))
        elif cause == "surge":
            end = _crowd_end(minute[role == ev.SURGE], n_min, start + shift) - shift
        phases = [(what, inc.Window(p.start, last_line(p)) if what in ("attack", "burst") else p)
                  for what, p in planned]
        per_min = lines_per_min if peak_by == "lines" else errors_per_min
        lo, hi = int((start + shift) // 60), int((end + shift) // 60) + 1
        peak = start if peak_by == "start" else (lo + int(np.argmax(per_min[lo:hi]))) * 60 - shift
        incidents.append(Incident(
            start=at(start), end=at(np.ceil(end)), peak=at(max(peak, start)), cause=cause,
            phases=tuple((what, at(p.start), at(np.ceil(p.end))) for what, p in phases)))

    first = min((win.start for _c, win, _p, _b in plan.incidents), default=w.duration / 3)
    known = np.isin(role, _LEGIT) & (done < np.floor(first))
    return Truth(
        kind=kind,
        expected_verdict=SCENARIOS[kind].expected_verdict,
        seed=w.seed,
        tz=w.tz,
        log="access.log",
        lines=n_lines,
        incidents=tuple(incidents),
        attackers=_ips(w, ip[attack]),
        known_clients=_ips(w, ip[known]),
        crawlers=_ips(w, ip[role == ev.CRAWLER]),
        retry_clients=_ips(w, ip[(flags & ev.RETRY) != 0]),
        surge_clients=_ips(w, ip[role == ev.SURGE]),
        log_start=w.start_utc,
        log_end=at(w.duration),
        scale=w.scale,
        hours=w.hours,
        params={"capacity_dynamic_rps": round(w.capacity, 2),
                "baseline_dynamic_peak_rps": round(w.baseline_dyn_peak, 2),
                **{k: (round(v, 2) if isinstance(v, float) else v) for k, v in plan.params.items()}},
    )
