"""Fixed vocabularies the simulator draws from: user agents, networks, paths, referers.

Everything here is data, not behaviour. Strings that imitate a real client were copied from the
client's public source or from real logs (the Mirai strings from ``shared/realdata/fingerprints.md``).
"""

from __future__ import annotations

from typing import Final

# --- User agents -------------------------------------------------------------------------------

#: The five HTTP-flood User-Agents hard-coded in Mirai's ``table.c`` (TABLE_HTTP_ONE..FIVE).
MIRAI_UAS: Final[tuple[str, ...]] = (
    "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/51.0.2704.103 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/52.0.2743.116 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/51.0.2704.103 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/52.0.2743.116 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_6) AppleWebKit/601.7.7 (KHTML, like Gecko) "
    "Version/9.1.2 Safari/601.7.7",
)

#: Current desktop and mobile browsers with their share of a typical audience; the bool marks mobile.
BROWSER_UAS: Final[tuple[tuple[str, float, bool], ...]] = (
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36", 13.0, False),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/125.0.0.0 Safari/537.36", 9.0, False),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36", 5.0, False),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4.1 Safari/605.1.15", 5.0, False),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0", 4.5, False),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", 1.5, False),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:126.0) Gecko/20100101 Firefox/126.0", 1.2, False),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80", 4.5, False),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36", 1.5, False),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36 OPR/110.0.0.0", 0.8, False),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4.1 Mobile/15E148 Safari/604.1", 11.0, True),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.5 Mobile/15E148 Safari/604.1", 4.0, True),
    ("Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4 Mobile/15E148 Safari/604.1", 1.5, True),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1", 1.5, True),
    ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Mobile Safari/537.36", 11.0, True),
    ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/125.0.0.0 Mobile Safari/537.36", 5.0, True),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36", 2.5, True),
    ("Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.6367.113 Mobile Safari/537.36", 1.5, True),
    ("Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0", 0.8, True),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/125.0.0.0 Safari/537.36 Edg/125.0.2535.51", 0.8, False),
)

#: Browsers a few years out of date: what commodity HTTP-flood botnets put in their requests.
OLD_BROWSER_UAS: Final[tuple[str, ...]] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/87.0.4280.88 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/91.0.4472.124 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/79.0.3945.130 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:78.0) Gecko/20100101 Firefox/78.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/96.0.4664.110 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 13_2_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/13.0.3 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 8.0.0; SM-G960F) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/83.0.4103.106 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/13.1.2 Safari/605.1.15",
)

#: HULK's ``useragent_list()`` (grafov/hulk hulk.py).
HULK_UAS: Final[tuple[str, ...]] = (
    "Mozilla/5.0 (X11; U; Linux x86_64; en-US; rv:1.9.1.3) Gecko/20090913 Firefox/3.5.3",
    "Mozilla/5.0 (Windows; U; Windows NT 6.1; en; rv:1.9.1.3) Gecko/20090824 Firefox/3.5.3 "
    "(.NET CLR 3.5.30729)",
    "Mozilla/5.0 (Windows; U; Windows NT 5.2; en-US; rv:1.9.1.3) Gecko/20090824 Firefox/3.5.3 "
    "(.NET CLR 3.5.30729)",
    "Mozilla/5.0 (Windows; U; Windows NT 6.1; en-US; rv:1.9.1.1) Gecko/20090718 Firefox/3.5.1",
    "Mozilla/5.0 (Windows; U; Windows NT 5.1; en-US) AppleWebKit/532.1 (KHTML, like Gecko) "
    "Chrome/4.0.219.6 Safari/532.1",
    "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; WOW64; Trident/4.0; SLCC2; .NET CLR 2.0.50727; "
    "InfoPath.2)",
    "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 5.2; Win64; x64; Trident/4.0)",
    "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 5.1; Trident/4.0; SV1; .NET CLR 2.0.50727; InfoPath.2)",
    "Mozilla/5.0 (Windows; U; MSIE 7.0; Windows NT 6.0; en-US)",
    "Mozilla/4.0 (compatible; MSIE 6.1; Windows XP)",
)

#: Referer prefixes HULK appends random upper-case letters to.
HULK_REFERERS: Final[tuple[str, ...]] = (
    "http://www.google.com/?q={U8}",
    "http://www.usatoday.com/search/results?q={U6}",
    "http://engadget.search.aol.com/search?q={U7}",
)

#: UAs of generic single-source flooding scripts.
TOOL_UAS: Final[tuple[str, ...]] = (
    "Go-http-client/1.1",
    "python-httpx/0.27.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Apache-HttpClient/4.5.14 (Java/17.0.9)",
)

#: Mobile-app and integration clients of the site's API, with weights.
API_UAS: Final[tuple[tuple[str, float], ...]] = (
    ("okhttp/4.9.3", 4.0),
    ("MyApp/5.2 (iPhone; iOS 17.1; Scale/3.00)", 3.0),
    ("MyApp/5.2 (iPhone; iOS 17.4.1; Scale/3.00)", 2.0),
    ("MyApp/5.1.4 (Android 14; SM-S911B)", 1.5),
    ("python-requests/2.31.0", 1.5),
    ("Go-http-client/2.0", 0.7),
    ("axios/1.6.8", 0.6),
)

#: API endpoints the clients poll (all answered by the application).
API_PATHS: Final[tuple[str, ...]] = (
    "/api/v1/notifications",
    "/api/v1/feed?limit=20",
    "/api/v1/status",
    "/api/v1/orders?status=open",
    "/api/v1/messages/unread",
    "/api/v1/inventory/changes",
    "/api/v1/config",
)

#: Feed readers and uptime monitors (legitimate automation).
FEED_UAS: Final[tuple[str, ...]] = (
    "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 23 subscribers; like FeedFetcher-Google)",
    "Mozilla/5.0 (compatible; inoreader.com; 4 subscribers)",
    "Tiny Tiny RSS/23.04 (https://tt-rss.org/)",
    "FreshRSS/1.23.1 (Linux; https://freshrss.org)",
    "Miniflux/2.1.3; +https://miniflux.app",
    "NewsBlur Feed Fetcher - 7 subscribers - https://www.newsblur.com/site/6120581/example",
)
MONITOR_UAS: Final[tuple[str, ...]] = (
    "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
    "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
)

#: Vulnerability scanners' UAs; one has a quote in it (logged as \x22 by nginx).
SCANNER_UAS: Final[tuple[str, ...]] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/78.0.3904.108 Safari/537.36",
    "Mozilla/5.0 zgrab/0.x",
    "curl/7.88.1",
    "Go-http-client/1.1",
    "python-requests/2.25.1",
    "Mozilla/5.0 (Linux; Android 6.0; HTC One M9 Build/MRA540) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/52.0.2743.98 Mobile Safari/537.3",
    "Mozilla/5.0 (compatible; \"Nimbostratus-Bot\"/v1.3.2; http://cloudsystemnetworks.com)",
    "-",
)

#: Paths scanners probe for, with the status this site answers.
PROBE_PATHS: Final[tuple[tuple[str, int], ...]] = (
    ("/wp-login.php", 404),
    ("/wp-admin/setup-config.php", 404),
    ("/xmlrpc.php", 404),
    ("/.env", 404),
    ("/.git/config", 403),
    ("/.aws/credentials", 404),
    ("/phpmyadmin/index.php", 404),
    ("/admin.php", 404),
    ("/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", 404),
    ("/cgi-bin/luci/;stok=/locale", 404),
    ("/actuator/health", 404),
    ("/server-status", 403),
    ("/config.json", 404),
    ("/backup.zip", 404),
    ("/wp-content/plugins/wp-file-manager/readme.txt", 404),
    ("/search?q=\"><script>alert(1)</script>", 200),
    ("/index.php?s=/Index/\\think\\app/invokefunction", 404),
)

# --- Crawlers ---------------------------------------------------------------------------------

#: (name, UA, network, prefix length, number of IPs, requests/s at scale 1)
CRAWLERS: Final[tuple[tuple[str, str, str, int, int, float], ...]] = (
    ("googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
     "66.249.64.0", 19, 8, 0.14),
    ("googlebot-smartphone",
     "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/126.0.6478.126 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
     "66.249.64.0", 19, 6, 0.12),
    ("bingbot", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
     "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
     "157.55.39.0", 24, 5, 0.10),
    ("applebot", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
     "17.241.219.0", 24, 2, 0.03),
    ("yandexbot", "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
     "213.180.203.0", 24, 2, 0.03),
    ("ahrefsbot", "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
     "54.36.148.0", 23, 3, 0.05),
    ("duckduckbot", "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
     "20.191.45.0", 24, 1, 0.01),
)

# --- Networks ---------------------------------------------------------------------------------
# First octets of public unicast space, by who typically sits there. None of these is reserved
# (10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.168/16, 198.18/15, 224/4 are never used).

#: Residential/cable/DSL ISPs in Europe and North America: where the site's audience lives.
AUDIENCE_OCTETS: Final[tuple[int, ...]] = (
    24, 47, 67, 68, 69, 70, 71, 73, 75, 76, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91,
    92, 93, 94, 96, 97, 98, 99, 108, 109, 174, 176, 178, 188, 212, 213, 217,
)

#: Where infected IoT devices sit: residential and mobile ISPs in Asia, Latin America, Africa, Eastern Europe.
BOT_OCTETS: Final[tuple[int, ...]] = (
    1, 14, 27, 36, 39, 41, 42, 49, 58, 59, 60, 61, 101, 102, 105, 110, 111, 112, 113, 114, 115, 116,
    117, 118, 119, 120, 121, 122, 123, 124, 125, 171, 175, 177, 179, 180, 181, 182, 183, 186, 187, 189,
    190, 191, 196, 197, 200, 201, 210, 211, 218, 219, 220, 221, 222, 223,
)

#: Hosting, cloud and VPS providers (proxies, scanners, integrations, flooding servers).
HOSTING_OCTETS: Final[tuple[int, ...]] = (
    5, 23, 31, 37, 45, 46, 51, 62, 64, 65, 103, 104, 107, 138, 139, 141, 144, 146, 147, 149, 151, 159,
    161, 162, 164, 165, 167, 185, 193, 194, 195, 206, 207, 209,
)

#: /32 IPv6 prefixes of big eyeball ISPs (Vodafone DE, Free, DTAG, Comcast, AT&T, BT, Ziggo, Orange).
AUDIENCE_V6: Final[tuple[str, ...]] = (
    "2a02:8108", "2a01:e0a", "2003:e2", "2601:1c0", "2600:1700", "2a00:23c5", "2a02:a210", "2a01:cb00",
)

# --- Referers ---------------------------------------------------------------------------------

SEARCH_REFERERS: Final[tuple[tuple[str, float], ...]] = (
    ("https://www.google.com/", 60.0),
    ("https://www.bing.com/", 8.0),
    ("https://duckduckgo.com/", 5.0),
    ("https://www.google.de/", 4.0),
    ("https://www.google.co.uk/", 3.0),
    ("https://search.yahoo.com/", 1.0),
    ("https://t.co/", 3.0),
    ("https://www.facebook.com/", 3.0),
    ("https://www.linkedin.com/", 2.0),
    ("android-app://com.google.android.gm/", 1.0),
)

#: News sites / aggregators whose link causes a flash crowd.
NEWS_REFERERS: Final[tuple[str, ...]] = (
    "https://news.ycombinator.com/",
    "https://www.reddit.com/r/programming/comments/1cz7x1q/",
    "https://www.heise.de/news/",
    "https://www.theverge.com/",
    "https://slashdot.org/",
)

#: Fake referers cache-busting floods add so requests look like they came from somewhere.
FAKE_REFERERS: Final[tuple[str, ...]] = (
    "https://www.google.com/",
    "https://www.google.com/search?q={l7}",
    "https://www.bing.com/",
    "https://yandex.ru/",
)

# --- The site ---------------------------------------------------------------------------------

SITE_HOSTS: Final[tuple[str, ...]] = ("www.example.org", "shop.example.com", "www.example.net")

BLOG_SLUGS: Final[tuple[str, ...]] = (
    "how-we-cut-our-build-times-in-half", "postgres-index-tuning-notes", "a-year-of-remote-work",
    "why-we-moved-off-kubernetes", "debugging-a-memory-leak-in-production", "release-5-2",
    "designing-for-slow-networks", "our-incident-review-template", "rust-for-python-developers",
    "the-cost-of-a-cold-cache", "caching-strategies-that-work", "migrating-to-http2",
    "what-we-learned-from-a-bad-deploy", "building-an-offline-first-app", "dark-mode-done-right",
    "hiring-our-first-sre", "load-testing-on-a-budget", "api-versioning-lessons",
    "the-hidden-cost-of-retries", "small-team-on-call", "accessibility-audit-results",
    "image-compression-shootout", "release-5-1", "a-tour-of-our-stack",
)
PRODUCT_SLUGS: Final[tuple[str, ...]] = (
    "starter-plan", "team-plan", "enterprise-plan", "mobile-app", "desktop-sync", "api-access",
    "backup-addon", "analytics-addon", "sso-addon", "priority-support", "gift-card", "hardware-key",
)
DOC_SLUGS: Final[tuple[str, ...]] = (
    "getting-started", "installation", "configuration", "api-reference", "authentication", "webhooks",
    "rate-limits", "errors", "sdk-python", "sdk-javascript", "faq", "changelog", "migration-guide",
    "troubleshooting",
)
SEARCH_TERMS: Final[tuple[str, ...]] = (
    "pricing", "api", "export", "backup", "sso", "invoice", "android", "delete+account", "webhook",
    "dark+mode",
)

#: Pieces GoldenEye assembles a fresh User-Agent from for every request (jseidl/GoldenEye goldeneye.py).
GOLDENEYE_SYSINFO: Final[tuple[str, ...]] = (
    "Windows NT.6.2; Win64; x64", "Linux x86_64; X11", "Windows; U; MSIE 7.0; Linux x86_64; Trident/4.0; X11",
    "Windows NT 6.1; WOW64", "compatible; MSIE 10.0; Macintosh; .NET CLR 3.1.40767; Intel Mac OS X 10_7_4",
    "Windows; U; MSIE 8.0; Windows NT 6.1; .NET CLR 1.5.2643; Win64; x64", "X11; Linux i686",
    "Macintosh; Intel Mac OS X 10_8_2",
)
