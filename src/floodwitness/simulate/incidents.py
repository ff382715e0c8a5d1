"""What goes wrong: floods, a flash crowd, a bad deploy. Each returns rows or a server failure plan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from floodwitness.simulate import _catalog as cat
from floodwitness.simulate import events as ev
from floodwitness.simulate.events import I32, Events
from floodwitness.simulate.network import ipv6_strings
from floodwitness.simulate.server import Failure
from floodwitness.simulate.traffic import poisson_times, sessions
from floodwitness.simulate.world import PAGES_PER_SESSION

if TYPE_CHECKING:
    from floodwitness.simulate.world import World


@dataclass(frozen=True)
class Window:
    start: float
    end: float

    @property
    def length(self) -> float:
        return self.end - self.start


def place(w: World, rng: np.random.Generator, minutes: tuple[float, float],
          start: float | None = None) -> Window:
    """A window starting in the middle third of the log (unless ``start`` is given), ``minutes`` long,
    clipped so that it ends before the last 8 % of the log."""
    h = w.duration
    s = float(rng.uniform(h / 3, 2 * h / 3)) if start is None else start
    e = min(s + float(rng.uniform(*minutes)) * 60.0, 0.92 * h)
    return Window(s, max(e, s + 60.0))


def _bot_addresses(w: World, rng: np.random.Generator, n: int, octets: tuple[int, ...]) -> I32:
    """``n`` addresses spread over many /16s nobody legitimate uses (about four bots per /16, more in
    very large botnets: at most a fifth of the /16s under ``octets`` are used)."""
    nets = w.space.claim16(rng, octets, max(8, min(n // 4, len(octets) * 50)))
    weights: npt.NDArray[np.float64] = rng.lognormal(0.0, 0.8, size=int(nets.shape[0]))
    return w.add_ipv4(w.space.hosts_in_16s(rng, nets, weights, n))


def _page(w: World, name: str) -> int:
    return w.site.page_index(name)


def mirai(w: World, rng: np.random.Generator, win: Window, rate: float) -> Events:
    """Mirai's HTTP flood (attack_app_http): thousands of IoT bots from networks the site never saw,
    each requesting one fixed path about once a second (the bot sleeps 1 s per request on one socket),
    HTTP/1.1, no Referer, one of Mirai's five User-Agents per connection. Bots join and drop out
    (flaky IoT uplinks), so each one is active for a stretch of the attack; together they offer
    ``rate`` requests per second."""
    n = max(30, int(rng.uniform(2000, 5000) * w.scale))
    ips = _bot_addresses(w, rng, n, cat.BOT_OCTETS)
    r = np.clip(rng.lognormal(np.log(1.0), 0.45, size=n), 0.5, 3.0)
    active = min(win.length, rate * win.length / float(r.sum()))
    spread = rng.uniform(0.6, 1.6, size=n)
    length = np.minimum(active * spread, win.length)
    start = win.start + rng.random(n) * (win.length - length)
    counts = np.maximum(1, (length * r).astype(np.int64))
    bot = np.repeat(np.arange(n), counts)
    k = np.arange(bot.shape[0]) - (np.cumsum(counts) - counts)[bot]
    t = start[bot] + (k + rng.uniform(0.0, 0.3, size=bot.shape[0])) / r[bot]
    t = np.minimum(t, win.end - 1e-3)
    uas = w.tables.uas.ids(list(cat.MIRAI_UAS))
    bot_ua = uas[rng.integers(0, 5, size=n)]
    rotating = rng.random(n) < 0.1  # conns > 1: one UA per socket
    ua = np.where(rotating[bot], uas[rng.integers(0, 5, size=bot.shape[0])], bot_ua[bot])
    target = ["/", "/", "/", "/login", "/products"][int(rng.integers(5))]
    page = _page(w, target)
    meth = ev.POST if target == "/login" else ev.GET
    return ev.make(t, ip=ips[bot], ua=ua, path=w.site.page_path[page], meth=meth,
                   size=w.site.page_size[page], svc=w.site.page_svc[page], role=ev.ATTACK)


CACHEBUST_ROOT = ("/?r={x12}", "/?r={x16}", "/?{d10}", "/?nocache={x8}")
CACHEBUST_SEARCH = ("/search?q={l8}", "/search?q={l5}+{l6}", "/search?q={l11}")
CACHEBUST_OTHER = ("/products?_={d13}", "/blog/?v={x10}")


def cachebust(w: World, rng: np.random.Generator, win: Window, rate: float) -> Events:
    """A targeted layer-7 flood through proxies and rented servers: hundreds of sources, each at a
    modest rate, rotating real browser User-Agents per request, random cache-busting query strings so
    every request reaches the application, no assets, no Referer or a fake one."""
    n = max(20, int(rng.uniform(300, 1000) * w.scale))
    ips = _bot_addresses(w, rng, n, cat.HOSTING_OCTETS + cat.BOT_OCTETS[::3])
    share = rng.gamma(2.0, 1.0, size=n)
    per_src = rate * share / share.sum()
    begin = win.start + rng.uniform(0.0, min(60.0, win.length / 4), size=n)
    end = win.end - rng.uniform(0.0, min(60.0, win.length / 4), size=n)
    counts = rng.poisson(per_src * (end - begin))
    src = np.repeat(np.arange(n), counts)
    t = begin[src] + rng.random(src.shape[0]) * (end - begin)[src]
    m = src.shape[0]
    templates = [CACHEBUST_ROOT[int(rng.integers(len(CACHEBUST_ROOT)))],
                 CACHEBUST_SEARCH[int(rng.integers(len(CACHEBUST_SEARCH)))]]
    if rng.random() < 0.5:
        templates.append(CACHEBUST_OTHER[int(rng.integers(len(CACHEBUST_OTHER)))])
    tpl_ids = w.tables.paths.ids(templates)
    pick = rng.integers(0, len(templates), size=m)
    is_search = np.array(["search" in x for x in templates])[pick]
    uas = w.browser_ua[rng.integers(0, w.browser_ua.shape[0], size=m)]
    fake = w.tables.refs.ids([*cat.FAKE_REFERERS, f"https://{w.site.host}/"])
    ref = np.where(rng.random(m) < 0.55, 0, fake[rng.integers(0, fake.shape[0], size=m)])
    return ev.make(t, ip=ips[src], ua=uas, path=tpl_ids[pick], ref=ref,
                   proto=np.where(rng.random(m) < 0.3, ev.H2, ev.H11),
                   size=np.where(is_search, rng.integers(5_800, 6_400, size=m), w.site.page_size[0]),
                   svc=np.where(is_search, 0.25, 0.12) * rng.lognormal(0.0, 0.3, size=m),
                   role=ev.ATTACK, rng=rng)


def pulse(w: World, rng: np.random.Generator, span: Window, rate: float) -> tuple[Events, list[Window]]:
    """A pulse-wave flood: the whole botnet hits for 2-4 minutes, pauses 5-10 minutes, hits again.
    Bots use slightly outdated browser User-Agents (one each), no Referer, and aim at the home page,
    the product list and the login form."""
    n = max(30, int(rng.uniform(1000, 3000) * w.scale))
    ips = _bot_addresses(w, rng, n, cat.BOT_OCTETS)
    uas = w.tables.uas.ids(list(cat.OLD_BROWSER_UAS))
    bot_ua = uas[rng.integers(0, uas.shape[0], size=n)]
    targets = [(_page(w, "/"), ev.GET, 0.7), (_page(w, "/products"), ev.GET, 0.15),
               (_page(w, "/login"), ev.POST, 0.15)]
    bursts: list[Window] = []
    t0 = span.start
    for _ in range(int(rng.integers(3, 6))):
        b = Window(t0, min(t0 + float(rng.uniform(120.0, 240.0)), span.end))
        if b.length < 60.0:
            break
        bursts.append(b)
        t0 = b.end + float(rng.uniform(300.0, 600.0))
    blocks: list[Events] = []
    for b in bursts:
        active = np.flatnonzero(rng.random(n) < rng.uniform(0.7, 0.95))
        counts = rng.poisson(rate * b.length / active.shape[0], size=active.shape[0])
        bot = np.repeat(active, counts)
        ramp = rng.exponential(6.0, size=bot.shape[0])
        t = np.clip(b.start + ramp + rng.random(bot.shape[0]) * b.length, b.start, b.end - 1e-3)
        m = bot.shape[0]
        tgt = rng.choice(3, size=m, p=[x[2] for x in targets])
        page = np.array([x[0] for x in targets])[tgt]
        meth = np.array([x[1] for x in targets], dtype=np.int8)[tgt]
        blocks.append(ev.make(t, ip=ips[bot], ua=bot_ua[bot], path=w.site.page_path[page], meth=meth,
                              size=w.site.page_size[page], svc=w.site.page_svc[page], role=ev.ATTACK))
    return Events.concat(blocks), bursts


def _goldeneye_uas(w: World, rng: np.random.Generator, n: int) -> I32:
    out = []
    for _ in range(n):
        sysinfo = cat.GOLDENEYE_SYSINFO[int(rng.integers(len(cat.GOLDENEYE_SYSINFO)))]
        if rng.random() < 0.5:
            plat = (f"Gecko/{int(rng.integers(2001, 2011))}{int(rng.integers(1, 32)):02d}"
                    f"{int(rng.integers(1, 13)):02d} Firefox/{int(rng.integers(10, 26))}.0")
        else:
            plat = (f"AppleWebKit/{int(rng.integers(535, 538))}.{int(rng.integers(0, 40))} "
                    f"(KHTML, like Gecko) Chrome/{int(rng.integers(6, 33))}.0.{int(rng.integers(0, 1500))}"
                    f".{int(rng.integers(0, 200))} "
                    f"Safari/{int(rng.integers(535, 538))}.{int(rng.integers(0, 40))}")
        out.append(f"Mozilla/5.0 ({sysinfo}) {plat}")
    return w.tables.uas.ids(out)


def dos(w: World, rng: np.random.Generator, win: Window) -> Events:
    """A DoS from a handful of servers (2-6), each flooding at 50-300 requests/s (times ``scale``):
    HULK-style random upper-case queries with HULK's UAs and referers, GoldenEye-style random queries
    with a fresh odd UA per request, or a plain script hammering one page with one UA."""
    n = int(rng.integers(2, 7))
    rates = rng.uniform(50.0, 300.0, size=n)
    if rates.sum() > 300.0:
        rates = np.maximum(50.0, rates * 300.0 / rates.sum())
    rates *= w.scale
    nets = w.space.claim16(rng, cat.HOSTING_OCTETS, n)
    ips = w.add_ipv4(w.space.hosts_in_16s(rng, nets, None, n))
    blocks: list[Events] = []
    hulk_uas = w.tables.uas.ids(list(cat.HULK_UAS))
    hulk_refs = w.tables.refs.ids(list(cat.HULK_REFERERS))
    ge_uas = _goldeneye_uas(w, rng, 2000)
    for i in range(n):
        b = win.start + float(rng.uniform(0, 45))
        e = win.end - float(rng.uniform(0, 45))
        m = int(rng.poisson(rates[i] * (e - b)))
        t = b + rng.random(m) * (e - b)
        style = int(rng.integers(3))
        if style == 0:  # HULK
            path = w.tables.paths.id("/?{U5}={U7}")
            ua = hulk_uas[rng.integers(0, hulk_uas.shape[0], size=m)]
            ref = hulk_refs[rng.integers(0, hulk_refs.shape[0], size=m)]
        elif style == 1:  # GoldenEye
            path = w.tables.paths.id("/?{a6}={a12}&{a4}={a9}")
            ua = ge_uas[rng.integers(0, ge_uas.shape[0], size=m)]
            ref = np.where(rng.random(m) < 0.5, 0, w.tables.refs.id("http://www.google.com/"))
        else:  # one script, one page
            page = _page(w, ["/", "/search?q=pricing", "/products"][int(rng.integers(3))])
            path = int(w.site.page_path[page])
            ua = np.full(m, w.tables.uas.id(cat.TOOL_UAS[int(rng.integers(len(cat.TOOL_UAS)))]))
            ref = np.zeros(m, dtype=np.int32)
        blocks.append(ev.make(t, ip=ips[i], ua=ua, path=path, ref=ref, size=w.site.page_size[0],
                              svc=0.1 * rng.lognormal(0.0, 0.3, size=m), role=ev.ATTACK, rng=rng))
    return Events.concat(blocks)


def flash_crowd(w: World, rng: np.random.Generator, win: Window, peak_load: float) -> Events:
    """A link on a news site: a sudden wave of new visitors, mostly from the ISPs the audience already
    uses (same /16s, new addresses; some from other /16s of the same ISPs), who open the linked article
    from the news site (Referer), load its assets, sometimes read another page, then leave. The wave
    rises within minutes and decays; ``peak_load`` is the dynamic requests/s it adds at its peak."""
    s = np.arange(w.n_sec, dtype=np.float64)
    x = s - win.start
    rise = 1.0 - np.exp(-np.maximum(x, 0.0) / float(rng.uniform(60.0, 180.0)))
    tau = win.length / np.log(float(rng.uniform(3.0, 5.0)))
    g = np.where(x >= 0, rise * np.exp(-np.maximum(x, 0.0) / tau), 0.0)
    g = np.where(s >= win.end, g * np.exp(-(s - win.end) / 90.0), g)
    g = g / max(float(g.max()), 1e-9)
    extra_pages = 0.5
    visitors = peak_load / (1.0 + extra_pages) * g
    t0 = poisson_times(rng, visitors)
    n = int(t0.shape[0])

    # Who: some regular visitors, mostly new addresses in the audience's networks.
    kind: npt.NDArray[np.float64] = rng.random(n)
    ip = np.zeros(n, dtype=np.int32)
    regular = kind < 0.15
    ip[regular] = w.pool_ip[rng.choice(w.pool_ip.shape[0], size=int(regular.sum()), p=w.pool_w)]
    same24 = (kind >= 0.15) & (kind < 0.45)
    new24 = (kind >= 0.45) & (kind < 0.73)
    sibling = (kind >= 0.73) & (kind < 0.95)
    v6 = kind >= 0.95
    a = w.audience
    ip[same24] = w.add_ipv4(w.space.hosts(rng, a.nets24, a.w24, int(same24.sum())))
    ip[new24] = w.add_ipv4(w.space.hosts(rng, a.new_24s(rng, max(1, int(new24.sum()) // 6 + 1)), None,
                                         int(new24.sum())))
    ip[sibling] = w.add_ipv4(w.space.hosts_in_16s(rng, a.siblings16, None, int(sibling.sum())))
    ip[v6] = w.tables.ips.ids(ipv6_strings(rng, cat.AUDIENCE_V6, int(v6.sum())))

    ua = w.pick_browsers(rng, n, mobile_boost=2.0)
    proto = np.where(rng.random(n) < 0.8, ev.H2, ev.H11).astype(np.int8)
    article = _page(w, f"/blog/{cat.BLOG_SLUGS[int(rng.integers(0, 6))]}")
    landing = np.where(rng.random(n) < 0.85, article, w.site.home).astype(np.intp)
    news = cat.NEWS_REFERERS[int(rng.integers(len(cat.NEWS_REFERERS)))]
    refs = w.tables.refs.ids([news, *cat.NEWS_REFERERS, "https://www.google.com/", "https://t.co/"])
    src = rng.choice(refs.shape[0], size=n, p=[0.6, 0.01, 0.01, 0.01, 0.01, 0.01, 0.1, 0.05 + 0.2])
    land_ref = refs[src]
    land_ref[src == refs.shape[0] - 1] = np.where(rng.random(int((src == refs.shape[0] - 1).sum())) < 0.8,
                                                  0, refs[-1])
    return sessions(w, rng, t0, ip=ip, ua=ua, proto=proto, landing=landing, land_ref=land_ref,
                    extra_pages=extra_pages, role=ev.SURGE, cold_cache=0.9)


def bad_deploy(rng: np.random.Generator, win: Window, degraded_minutes: tuple[float, float]) -> Failure:
    """A bad deploy: errors and latency creep up for a few minutes, then the application mostly fails
    (crash loop: 502/503) until it is rolled back; the last minutes recover."""
    broken = win.start + min(float(rng.uniform(*degraded_minutes)) * 60.0, win.length * 0.4)
    recover = max(broken + 60.0, win.end - float(rng.uniform(2.0, 5.0)) * 60.0)
    return Failure(start=win.start, broken=broken, recover=min(recover, win.end), end=win.end,
                   p_degraded=float(rng.uniform(0.25, 0.45)), p_broken=float(rng.uniform(0.75, 0.92)))


def baseline_dynamic_rate(w: World, at: float) -> float:
    """Expected dynamic requests/s of the everyday traffic at second ``at``."""
    s = int(np.clip(at, 0, w.n_sec - 1))
    return float(w.session_rate[s] * PAGES_PER_SESSION + (1.0 / w.api.interval).sum()
                 + 0.5 * w.scale)

