"""The simulated site and its everyday audience: pages, networks, clients, clock and capacity."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from floodwitness.simulate import _catalog as cat
from floodwitness.simulate.events import F64, I8, I16, I32, Tables
from floodwitness.simulate.network import (
    AUDIENCE_V6_PREFIXES,
    Audience,
    IPSpace,
    ipv4_strings,
    ipv6_strings,
)

#: Human requests per second (pages + assets) at the daily peak, at scale 1.
HUMAN_PEAK_RPS = 22.0
#: Traffic at the daily trough relative to the peak.
DIURNAL_MIN = 0.12
#: Local hour of the daily peak.
PEAK_HOUR = 15.0
#: Mean number of requests a human session makes (pages and assets), used to turn rates into sessions.
REQS_PER_SESSION = 9.5
#: Mean pages per baseline session.
PAGES_PER_SESSION = 2.3
#: API polling requests per second at scale 1 (constant over the day).
API_RPS = 8.0
#: Share of human pool addresses that are IPv6.
V6_SHARE = 0.04

TZ_CHOICES = ("+0200", "+0100", "-0500", "-0400", "+0530", "+0900", "-0700", "-0300", "+1000",
              "+0800", "-0600", "+0300")


@dataclass
class Site:
    """The pages and files of the site, with the ids the rows use."""

    host: str
    page_names: list[str]
    page_path: I32
    page_w: F64  # navigation popularity
    land_w: F64  # popularity as a landing page (search traffic favours articles)
    page_size: I32
    page_svc: F64
    page_ref: I32  # referer id of the page's own URL
    page_status: I16
    core_path: I32  # css, js, font, logo, favicon: loaded with a page when the cache is cold
    core_size: I32
    core_ref_kind: I8  # 0: the page, 1: the stylesheet, 2: none
    css_ref: int
    img_path: I32
    img_size: I32
    robots: int
    sitemap: int
    feed: int
    home: int  # page index of "/"

    def url(self, path: str) -> str:
        return f"https://{self.host}{path}"

    @staticmethod
    def build(rng: np.random.Generator, tables: Tables) -> Site:
        host = cat.SITE_HOSTS[int(rng.integers(len(cat.SITE_HOSTS)))]
        pages: list[tuple[str, float, float, int, float, int]] = []  # name, nav w, land w, size, svc, status
        pages.append(("/", 30.0, 12.0, 24_512, 0.045, 200))
        for name, w in (("/about", 2.0), ("/pricing", 5.0), ("/contact", 1.5), ("/blog/", 6.0),
                        ("/products", 5.0), ("/docs/", 3.0), ("/login", 3.0), ("/cart", 1.5)):
            pages.append((name, w, w * 0.3, int(rng.integers(9_000, 30_000)), 0.05, 200))
        for i, slug in enumerate(cat.BLOG_SLUGS):
            w = 6.0 / (i + 1) ** 0.9
            pages.append((f"/blog/{slug}", w, w * 4.0, int(rng.integers(14_000, 60_000)), 0.06, 200))
        for i, slug in enumerate(cat.PRODUCT_SLUGS):
            w = 4.0 / (i + 1) ** 0.8
            pages.append((f"/products/{slug}", w, w * 1.5, int(rng.integers(18_000, 45_000)), 0.08, 200))
        for i, slug in enumerate(cat.DOC_SLUGS):
            w = 3.0 / (i + 1) ** 0.8
            pages.append((f"/docs/{slug}", w, w * 2.0, int(rng.integers(8_000, 40_000)), 0.04, 200))
        for i, term in enumerate(cat.SEARCH_TERMS):
            w = 1.5 / (i + 1) ** 0.7
            pages.append((f"/search?q={term}", w, w * 0.2, int(rng.integers(6_000, 20_000)), 0.22, 200))
        pages.append(("/blog/2019/03/old-announcement", 0.3, 0.4, 1_126, 0.03, 404))
        names = [p[0] for p in pages]
        core = [
            ("/static/css/main.3f9a1c.css", 48_211, 0),
            ("/static/js/vendor.c41f07.js", 311_094, 0),
            ("/static/js/app.8b2e4d.js", 182_530, 0),
            ("/static/fonts/inter-var.woff2", 98_420, 1),
            ("/img/logo.png", 6_342, 0),
            ("/favicon.ico", 15_086, 2),
        ]
        images = [f"/img/blog/{slug}.png" for slug in cat.BLOG_SLUGS]
        images += [f"/img/products/{slug}.png" for slug in cat.PRODUCT_SLUGS]
        images += [f"/img/hero-{i}.png" for i in range(1, 5)]
        return Site(
            host=host,
            page_names=names,
            page_path=tables.paths.ids(names),
            page_w=_norm(np.array([p[1] for p in pages])),
            land_w=_norm(np.array([p[2] for p in pages])),
            page_size=np.array([p[3] for p in pages], dtype=np.int32),
            page_svc=np.array([p[4] for p in pages], dtype=np.float64),
            page_ref=tables.refs.ids([f"https://{host}{n}" for n in names]),
            page_status=np.array([p[5] for p in pages], dtype=np.int16),
            core_path=tables.paths.ids([c[0] for c in core]),
            core_size=np.array([c[1] for c in core], dtype=np.int32),
            core_ref_kind=np.array([c[2] for c in core], dtype=np.int8),
            css_ref=tables.refs.id(f"https://{host}{core[0][0]}"),
            img_path=tables.paths.ids(images),
            img_size=rng.integers(20_000, 420_000, size=len(images)).astype(np.int32),
            robots=tables.paths.id("/robots.txt"),
            sitemap=tables.paths.id("/sitemap.xml"),
            feed=tables.paths.id("/feed.xml"),
            home=0,
        )

    def page_index(self, name: str) -> int:
        return self.page_names.index(name)


def _norm(w: F64) -> F64:
    out: F64 = w / w.sum()
    return out


@dataclass
class ApiClients:
    """Known API clients: one address each, polling one endpoint at a fixed interval."""

    ip: I32
    ua: I32
    path: I32
    meth: I8
    proto: I8
    interval: F64
    phase: F64
    size: I32
    svc: F64
    app: npt.NDArray[np.bool_]  # a mobile app (refreshes its session when calls fail)


@dataclass
class World:
    """Everything that is the same whatever happens during the simulated hours."""

    seed: int
    scale: float
    hours: float
    n_sec: int
    start_utc: datetime
    tz: str
    local_hour0: float
    tables: Tables
    site: Site
    space: IPSpace
    audience: Audience
    hosting16: npt.NDArray[np.int64]
    browser_ua: I32
    browser_w: F64
    browser_mobile: npt.NDArray[np.bool_]
    pool_ip: I32  # human addresses (ids into tables.ips)
    pool_w: F64
    pool_ua: I32  # each address's usual browser (-1: a carrier NAT shared by many people)
    session_rate: F64  # baseline human sessions per second, per second of the log
    api: ApiClients
    capacity: float  # dynamic requests per second the application serves before it sheds load
    baseline_dyn_peak: float
    _grp: list[int] = field(default_factory=lambda: [0])

    def rng(self, name: str) -> np.random.Generator:
        """An independent random stream per component, so one component's draws never shift another's."""
        return np.random.default_rng([self.seed, zlib.crc32(name.encode())])

    def new_groups(self, n: int) -> npt.NDArray[np.int64]:
        """``n`` fresh page-view ids."""
        first = self._grp[0]
        self._grp[0] += n
        return np.arange(first, first + n, dtype=np.int64)

    @property
    def duration(self) -> float:
        return float(self.n_sec)

    def add_ipv4(self, ips: npt.NDArray[np.uint32]) -> I32:
        return self.tables.ips.ids(ipv4_strings(ips))

    def pick_browsers(self, rng: np.random.Generator, n: int, mobile_boost: float = 1.0) -> I32:
        w = self.browser_w * np.where(self.browser_mobile, mobile_boost, 1.0)
        return self.browser_ua[rng.choice(self.browser_ua.shape[0], size=n, p=w / w.sum())]

    @staticmethod
    def build(seed: int, scale: float, hours: float) -> World:
        def rng(name: str) -> np.random.Generator:
            return np.random.default_rng([seed, zlib.crc32(name.encode())])

        tables = Tables.new()
        r = rng("clock")
        tz = TZ_CHOICES[int(r.integers(len(TZ_CHOICES)))]
        tz_min = (1 if tz[0] == "+" else -1) * (int(tz[1:3]) * 60 + int(tz[3:5]))
        day = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=int(r.integers(0, 365)))
        local_hour0 = float(r.uniform(0.0, 24.0))
        local_start = day + timedelta(seconds=int(local_hour0 * 3600))
        start_utc = local_start - timedelta(minutes=tz_min)
        n_sec = int(np.ceil(hours * 3600))

        site = Site.build(rng("site"), tables)
        space = IPSpace()

        # Daily curve and expected number of sessions.
        hour = local_hour0 + np.arange(n_sec) / 3600.0
        curve = DIURNAL_MIN + (1 - DIURNAL_MIN) * (1 + np.sin(2 * np.pi * (hour - PEAK_HOUR + 6) / 24)) / 2
        session_rate = scale * HUMAN_PEAK_RPS / REQS_PER_SESSION * curve
        expected_sessions = float(session_rate.sum())
        pool_n = max(40, int(0.7 * expected_sessions))

        r = rng("audience")
        audience = Audience.build(r, space, scale, pool_n)
        hosting16 = space.claim16(r, cat.HOSTING_OCTETS, 40)

        uas = [u for u, _w, _m in cat.BROWSER_UAS]
        browser_ua = tables.uas.ids(uas)
        browser_w = _norm(np.array([w for _u, w, _m in cat.BROWSER_UAS]))
        browser_mobile = np.array([m for _u, _w, m in cat.BROWSER_UAS])

        # Human address pool: IPv4 in the audience /24s, a few IPv6, a few carrier NATs.
        r = rng("pool")
        n6 = round(pool_n * V6_SHARE)
        v4 = space.hosts(r, audience.nets24, audience.w24, pool_n - n6)
        ip_strs = ipv4_strings(v4) + ipv6_strings(r, AUDIENCE_V6_PREFIXES, n6)
        pool_ip = tables.ips.ids(ip_strs)
        pool_w = r.lognormal(0.0, 1.0, size=pool_n)
        nat = r.random(pool_n) < 0.02
        pool_w[nat] *= 25.0
        pool_w = _norm(pool_w)
        pool_ua = browser_ua[r.choice(browser_ua.shape[0], size=pool_n, p=browser_w)]
        pool_ua[nat] = -1

        api = _api_clients(rng("api-clients"), tables, space=space, audience=audience, hosting16=hosting16,
                           scale=scale)

        crawl_rps = scale * sum(c[5] for c in cat.CRAWLERS)
        dyn_peak = (scale * HUMAN_PEAK_RPS / REQS_PER_SESSION * PAGES_PER_SESSION
                    + float((1.0 / api.interval).sum()) + crawl_rps + 0.05 * scale)
        capacity = float(rng("capacity").uniform(3.0, 5.0)) * dyn_peak

        return World(seed=seed, scale=scale, hours=hours, n_sec=n_sec, start_utc=start_utc, tz=tz,
                     local_hour0=local_hour0, tables=tables, site=site, space=space, audience=audience,
                     hosting16=hosting16, browser_ua=browser_ua, browser_w=browser_w,
                     browser_mobile=browser_mobile, pool_ip=pool_ip, pool_w=pool_w, pool_ua=pool_ua,
                     session_rate=session_rate, api=api, capacity=capacity, baseline_dyn_peak=dyn_peak)


def _api_clients(r: np.random.Generator, tables: Tables, *, space: IPSpace, audience: Audience,
                 hosting16: npt.NDArray[np.int64], scale: float) -> ApiClients:
    intervals = np.array([10.0, 15.0, 20.0, 30.0, 60.0])
    iv_w = np.array([0.15, 0.2, 0.25, 0.3, 0.1])
    mean_rate = float((iv_w / intervals).sum())
    n = max(3, round(scale * API_RPS / mean_rate))
    ua_names = [u for u, _w in cat.API_UAS]
    ua_w = _norm(np.array([w for _u, w in cat.API_UAS]))
    ua_pick = r.choice(len(ua_names), size=n, p=ua_w)
    app = np.array([ua_names[i].startswith(("okhttp", "MyApp")) for i in ua_pick.tolist()])
    # Apps sit on residential/mobile lines of the audience; integrations on servers.
    n_app = int(app.sum())
    ips = np.zeros(n, dtype=np.uint32)
    ips[app] = space.hosts(r, audience.nets24, audience.w24, n_app)
    ips[~app] = space.hosts_in_16s(r, hosting16, None, n - n_app)
    path_pick = r.choice(len(cat.API_PATHS), size=n, p=_norm(np.array([5, 4, 3, 2, 2, 1, 1.0])))
    return ApiClients(
        ip=tables.ips.ids(ipv4_strings(ips)),
        ua=tables.uas.ids([ua_names[i] for i in ua_pick.tolist()]),
        path=tables.paths.ids([cat.API_PATHS[i] for i in path_pick.tolist()]),
        meth=np.zeros(n, dtype=np.int8),
        proto=np.where(app, 1, 0).astype(np.int8),
        interval=r.choice(intervals, size=n, p=iv_w) * r.uniform(0.97, 1.03, size=n),
        phase=r.uniform(0.0, 60.0, size=n),
        size=r.integers(180, 4_000, size=n).astype(np.int32),
        svc=r.uniform(0.012, 0.06, size=n),
        app=app,
    )
