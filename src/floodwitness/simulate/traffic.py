"""Everyday traffic: people browsing, crawlers, feed readers, monitors, scanners and API polling."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from floodwitness.simulate import _catalog as cat
from floodwitness.simulate import events as ev
from floodwitness.simulate.events import F64, I8, I32, Events
from floodwitness.simulate.network import ipv4_strings

if TYPE_CHECKING:
    from floodwitness.simulate.world import World


def poisson_times(rng: np.random.Generator, rate: F64, t0: float = 0.0) -> F64:
    """Arrival times of a Poisson process whose rate is ``rate[k]`` per second in second ``t0 + k``."""
    counts = rng.poisson(np.maximum(rate, 0.0))
    base = np.repeat(t0 + np.arange(rate.shape[0], dtype=np.float64), counts)
    return base + rng.random(base.shape[0])


def sessions(w: World, rng: np.random.Generator, t0: F64, *, ip: I32, ua: I32, proto: I8,
             landing: npt.NDArray[np.intp], land_ref: I32, extra_pages: float, role: int,
             cold_cache: float = 0.75) -> Events:
    """Browsing sessions: a landing page, its assets within a second, then more pages after think-time.

    Each page is a dynamic request; its assets (stylesheet, scripts, font, logo, favicon on a cold
    cache; content images always) follow with the page as referer (the font with the stylesheet, the
    favicon with none). Later pages have the previous page as referer.
    """
    site = w.site
    n_s = t0.shape[0]
    if n_s == 0:
        return ev.empty()
    n_pages = np.minimum(rng.geometric(1.0 / (1.0 + extra_pages), size=n_s), 15)
    sid = np.repeat(np.arange(n_s), n_pages)
    first = np.cumsum(n_pages) - n_pages
    order = np.arange(sid.shape[0]) - first[sid]
    think = np.clip(rng.lognormal(np.log(25.0), 1.0, size=sid.shape[0]), 2.0, 900.0)
    think[order == 0] = 0.0
    cs = np.cumsum(think)
    pt = t0[sid] + cs - cs[first][sid]
    nav = rng.choice(site.page_w.shape[0], size=sid.shape[0], p=site.page_w)
    page = np.where(order == 0, landing[sid], nav)
    prev = np.roll(page, 1)
    ref = np.where(order == 0, land_ref[sid], site.page_ref[prev])
    n_p = page.shape[0]
    grp = w.new_groups(n_p)
    size = (site.page_size[page] * rng.normal(1.0, 0.01, size=n_p)).astype(np.int32)
    pages = ev.make(pt, ip=ip[sid], ua=ua[sid], path=site.page_path[page], ref=ref, proto=proto[sid],
                    size=size, svc=site.page_svc[page] * rng.lognormal(0.0, 0.3, size=n_p),
                    status=site.page_status[page], role=role, grp=grp)

    # Assets.
    cold = (order == 0) & (rng.random(n_p) < cold_cache) & (site.page_status[page] == 200)
    n_core = site.core_path.shape[0]
    n_img = np.where(site.page_status[page] == 200, rng.integers(0, 4, size=n_p), 0)
    n_assets = np.where(cold, n_core, 0) + n_img
    aid = np.repeat(np.arange(n_p), n_assets)
    j = np.arange(aid.shape[0]) - (np.cumsum(n_assets) - n_assets)[aid]
    is_core = cold[aid] & (j < n_core)
    core_j = np.minimum(j, n_core - 1)
    img_j = (page[aid] * 7 + (j - np.where(cold[aid], n_core, 0)) * 3) % site.img_path.shape[0]
    path = np.where(is_core, site.core_path[core_j], site.img_path[img_j])
    asize = np.where(is_core, site.core_size[core_j], site.img_size[img_j])
    kind = np.where(is_core, site.core_ref_kind[core_j], 0)
    page_url = site.page_ref[page[aid]]
    aref = np.where(kind == 0, page_url, np.where(kind == 1, site.css_ref, 0))
    gap = rng.uniform(0.01, 0.12, size=aid.shape[0])
    at = pt[aid] + 0.06 + pages.svc[aid] + j * gap + rng.uniform(0.0, 0.08, size=aid.shape[0])
    status = np.where(rng.random(aid.shape[0]) < 0.08, 304, 200)
    assets = ev.make(at, ip=pages.ip[aid], ua=pages.ua[aid], path=path, ref=aref, proto=pages.proto[aid],
                     size=np.where(status == 304, 0, asize), svc=0.0005, status=status, cls=ev.STATIC,
                     role=role, grp=grp[aid])
    return Events.concat([pages, assets])


def landing_referers(w: World, rng: np.random.Generator, n: int) -> I32:
    """Where baseline visitors come from: search engines and social sites, or nowhere (typed, bookmarks)."""
    names = [u for u, _w in cat.SEARCH_REFERERS]
    weights = np.array([x for _u, x in cat.SEARCH_REFERERS])
    ids = w.tables.refs.ids(names)
    pick = ids[rng.choice(len(names), size=n, p=weights / weights.sum())]
    direct = rng.random(n) < 0.3
    return np.where(direct, 0, pick).astype(np.int32)


def humans(w: World) -> Events:
    """The site's audience browsing at the rate of the daily curve."""
    rng = w.rng("humans")
    t0 = poisson_times(rng, w.session_rate)
    n = int(t0.shape[0])
    who = rng.choice(w.pool_ip.shape[0], size=n, p=w.pool_w)
    ua = w.pool_ua[who]
    stray = (ua < 0) | (rng.random(n) < 0.15)
    ua = np.where(stray, w.pick_browsers(rng, n), ua).astype(np.int32)
    proto = np.where(rng.random(n) < 0.7, ev.H2, ev.H11).astype(np.int8)
    landing: npt.NDArray[np.intp] = rng.choice(int(w.site.land_w.shape[0]), size=n, p=w.site.land_w)
    return sessions(w, rng, t0, ip=w.pool_ip[who], ua=ua, proto=proto, landing=landing,
                    land_ref=landing_referers(w, rng, n), extra_pages=1.3, role=ev.HUMAN)


def crawlers(w: World) -> Events:
    """Search-engine crawlers from their published networks: pages, robots.txt, sitemap, some images."""
    rng = w.rng("crawlers")
    blocks: list[Events] = []
    site = w.site
    for _name, ua, net, plen, n_ip, rate in cat.CRAWLERS:
        ip_ids = w.tables.ips.ids(ipv4_strings(w.space.hosts_in_prefix(rng, net, plen, n_ip)))
        t = poisson_times(rng, np.full(w.n_sec, rate * w.scale))
        n = t.shape[0]
        what = rng.random(n)
        page = rng.integers(0, site.page_path.shape[0], size=n)
        img = rng.integers(0, site.img_path.shape[0], size=n)
        is_robots = what < 0.03
        is_sitemap = (what >= 0.03) & (what < 0.04)
        is_img = (what >= 0.04) & (what < 0.12)
        path = np.where(is_robots, site.robots, np.where(is_sitemap, site.sitemap,
                        np.where(is_img, site.img_path[img], site.page_path[page])))
        static = is_robots | is_sitemap | is_img
        size = np.where(is_robots, 213, np.where(is_sitemap, 9_812,
                        np.where(is_img, site.img_size[img], site.page_size[page])))
        status = np.where(static, 200, site.page_status[page])
        blocks.append(ev.make(t, ip=ip_ids[rng.integers(0, n_ip, size=n)], ua=w.tables.uas.id(ua),
                              path=path, size=size, svc=np.where(static, 0.0005, site.page_svc[page]),
                              status=status, cls=np.where(static, ev.STATIC, ev.DYNAMIC),
                              role=ev.CRAWLER))
    return Events.concat(blocks)


def automation(w: World) -> Events:
    """Feed readers polling the RSS feed and uptime monitors checking the home page."""
    rng = w.rng("automation")
    blocks: list[Events] = []
    n_feed = max(3, round(12 * w.scale))
    n_mon = 3
    ips = w.add_ipv4(w.space.hosts_in_16s(rng, w.hosting16, None, n_feed + n_mon))
    for k in range(n_feed + n_mon):
        feed = k < n_feed
        interval = float(rng.uniform(300, 1800)) if feed else float(rng.choice([60.0, 300.0]))
        t = np.arange(float(rng.uniform(0, interval)), w.duration, interval)
        t = t + rng.normal(0, 0.5 if feed else 0.05, size=t.shape[0]).clip(-0.4, 0.4)
        t = t[(t >= 0) & (t < w.duration)]
        n = t.shape[0]
        if feed:
            ua = w.tables.uas.id(cat.FEED_UAS[k % len(cat.FEED_UAS)])
            fresh = rng.random(n) < 0.3
            blocks.append(ev.make(t, ip=ips[k], ua=ua, path=w.site.feed, size=np.where(fresh, 48_213, 0),
                                  status=np.where(fresh, 200, 304), svc=0.012, role=ev.AUTOMATION,
                                  proto=ev.H11))
        else:
            ua = w.tables.uas.id(cat.MONITOR_UAS[k % len(cat.MONITOR_UAS)])
            blocks.append(ev.make(t, ip=ips[k], ua=ua, path=w.site.page_path[w.site.home], meth=2,
                                  size=0, svc=0.04, role=ev.AUTOMATION, proto=ev.H11))
    return Events.concat(blocks)


def probes(w: World) -> Events:
    """Vulnerability scanners: a new address now and then (about 6 an hour, whatever the size of the
    site) sending a short burst of probes, mostly answered 404."""
    rng = w.rng("probes")
    visits = poisson_times(rng, np.full(w.n_sec, 6.0 * max(w.scale, 1.0) ** 0.5 / 3600.0))
    n_v = visits.shape[0]
    if n_v == 0:
        return ev.empty()
    space16 = w.space.claim16(rng, cat.HOSTING_OCTETS, max(5, n_v // 3 + 1))
    ips = w.add_ipv4(w.space.hosts_in_16s(rng, space16, None, n_v))
    uas = w.tables.uas.ids(list(cat.SCANNER_UAS))
    visit_ua = uas[rng.integers(0, uas.shape[0], size=n_v)]
    count = rng.integers(3, 25, size=n_v)
    vid = np.repeat(np.arange(n_v), count)
    step = rng.exponential(0.4, size=vid.shape[0])
    cs = np.cumsum(step)
    first = np.cumsum(count) - count
    t = visits[vid] + cs - cs[first][vid]
    paths = [p for p, _s in cat.PROBE_PATHS]
    pid = w.tables.paths.ids(paths)
    pick = rng.integers(0, len(paths), size=vid.shape[0])
    status = np.array([s for _p, s in cat.PROBE_PATHS], dtype=np.int16)[pick]
    dynamic = np.array([p.startswith("/search") for p in paths])[pick]
    size = np.where(status == 404, 153, np.where(status == 403, 153, 7_140))
    return ev.make(t, ip=ips[vid], ua=visit_ua[vid], path=pid[pick], size=size, status=status,
                   svc=np.where(dynamic, 0.2, 0.0005), cls=np.where(dynamic, ev.DYNAMIC, ev.STATIC),
                   role=ev.PROBE)


def api_polls(w: World) -> Events:
    """Every API client polling its endpoint at its interval (with a little jitter)."""
    rng = w.rng("api-polls")
    a = w.api
    counts = np.ceil((w.duration - a.phase) / a.interval).astype(np.int64).clip(0)
    cid = np.repeat(np.arange(a.ip.shape[0]), counts)
    k = np.arange(cid.shape[0]) - (np.cumsum(counts) - counts)[cid]
    t = a.phase[cid] + k * a.interval[cid] + rng.normal(0.0, 0.15, size=cid.shape[0])
    keep = (t >= 0) & (t < w.duration)
    cid, t = cid[keep], t[keep]
    return ev.make(t, ip=a.ip[cid], ua=a.ua[cid], path=a.path[cid], meth=a.meth[cid], proto=a.proto[cid],
                   size=(a.size[cid] * rng.normal(1.0, 0.03, size=cid.shape[0])).astype(np.int32),
                   svc=a.svc[cid] * rng.lognormal(0.0, 0.3, size=cid.shape[0]), role=ev.API,
                   grp=cid.astype(np.int64))
