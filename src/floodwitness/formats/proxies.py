"""Load balancer, CDN and proxy access logs, as declarative specs (see ``spec``).

Each maps the edge's own timing and status fields into the normalized schema: ``status`` is what the
client got, ``upstream_status``/``upstream_time`` what the backend did (null when no backend answered),
and ``edge_result`` says where the answer came from or failed (``schema.EDGE_RESULTS``): the evidence
of whether a failure was at the edge or behind it. Example lines are real (see docs/formats.md and
../shared/realdata/formats.md for their sources).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir

from floodwitness.formats.spec import Layout, Q, SpecFormat, addr, value_of

_COMMON = frozenset({"edge_result"})


def _sum_times(t: ir.Table, *roles: str) -> ir.Value:
    """Sum of AWS processing times in seconds; null when one is -1 (the request never reached a target)."""
    parts = [value_of(t, r).try_cast("float64") for r in roles]
    total = parts[0]
    ok = parts[0] >= 0
    for part in parts[1:]:
        total = total + part
        ok = ok & (part >= 0)
    return ibis.ifelse(ok, total, ibis.null("float64"))


def _aws_edge(status: ir.IntegerValue, target_status: ir.Value, actions: ir.StringValue | None) -> ir.Value:
    """Where an ALB/ELB answer came from: its own status vs the target's.

    460: the client closed the connection before the LB could answer. A target status: the target
    answered. No target status and 502/503/504: no healthy target, target refused, reset or timed out.
    Otherwise (400, 403 from WAF, redirects, fixed responses): the LB answered by itself.
    """
    cases = [(status == 460, "client_abort"), (target_status.notnull(), "backend")]
    if actions is not None:
        cases.append((actions.contains("waf") | actions.contains("redirect") | actions.contains("fixed-response"),
                      "edge"))
    cases.append((status.isin([502, 503, 504]), "backend_unreachable"))
    return ibis.cases(*cases, else_="edge")


@dataclass(frozen=True)
class AlbFormat(SpecFormat):
    derived: frozenset[str] = field(default=_COMMON | {"request_time"})

    def derive(self, t: ir.Table) -> dict[str, ir.Value]:
        error = value_of(t, "error_reason")
        actions = ibis.coalesce(value_of(t, "actions"), "")
        return {"request_time": _sum_times(t, "req_t", "target_t", "resp_t"),
                "edge_result": _aws_edge(t.status, t.upstream_status, actions),
                "edge_detail": ibis.ifelse(error.isnull() | (error == "-") | (error == ""),
                                           ibis.ifelse(actions == "", ibis.null("string"), actions), error)}


@dataclass(frozen=True)
class ElbFormat(SpecFormat):
    derived: frozenset[str] = field(default=_COMMON | {"request_time"})

    def derive(self, t: ir.Table) -> dict[str, ir.Value]:
        return {"request_time": _sum_times(t, "req_t", "target_t", "resp_t"),
                "edge_result": _aws_edge(t.status, t.upstream_status, None)}


@dataclass(frozen=True)
class S3Format(SpecFormat):
    def derive(self, t: ir.Table) -> dict[str, ir.Value]:
        return {"edge_result": ibis.ifelse(t.edge_detail == "SlowDown", "edge_overload", ibis.null("string"))}


@dataclass(frozen=True)
class HaproxyFormat(SpecFormat):
    derived: frozenset[str] = field(default=_COMMON)

    def derive(self, t: ir.Table) -> dict[str, ir.Value]:
        """From the termination state's first two characters (HAProxy manual, 8.5)."""
        state = ibis.coalesce(t.edge_detail, "----")
        first, second = state.substr(0, 1), state.substr(1, 1)
        nosrv = value_of(t, "server") == "<NOSRV>"
        return {"edge_result": ibis.cases(
            ((first == "C") | (first == "c"), "client_abort"),
            ((first == "s") & (second == "Q"), "edge_overload"),
            (first == "R", "edge_overload"),
            ((first == "S") | (first == "s") | (first == "D"), "backend_unreachable"),
            (first.isin(["P", "I", "K", "L", "U"]), "edge"),
            (nosrv & (t.status == 503), "backend_unreachable"),
            (nosrv, "edge"),
            else_="backend")}


@dataclass(frozen=True)
class TraefikClfFormat(SpecFormat):
    derived: frozenset[str] = field(default=_COMMON)

    def derive(self, t: ir.Table) -> dict[str, ir.Value]:
        return {"edge_result": ibis.cases((t.status == 0, "client_abort"), (t.upstream_addr.isnull(), "edge"),
                                          else_="backend")}


@dataclass(frozen=True)
class TraefikJsonFormat(SpecFormat):
    derived: frozenset[str] = field(default=_COMMON | {"peer_ip", "xff"})

    def derive(self, t: ir.Table) -> dict[str, ir.Value]:
        # ClientHost is Traefik's own idea of the client (from X-Forwarded-For when its forwardedHeaders
        # trust the peer). A whole list there is not an address: then the peer is the client and the list
        # is kept as xff, for --trust-proxy to resolve.
        host = ibis.coalesce(value_of(t, "client"), "")
        peer = addr(ibis.coalesce(value_of(t, "peer"), ""))
        listed = host.contains(",")
        client = ibis.ifelse(listed, peer, t.client_ip)
        return {"client_ip": client, "xff": ibis.ifelse(listed, host, t.xff),
                "peer_ip": ibis.ifelse(~listed & peer.notnull() & (peer != client), peer, ibis.null("string")),
                "edge_result": ibis.cases(
            (t.status == 0, "client_abort"), (t.upstream_status.notnull(), "backend"),
            (t.upstream_addr.notnull() & (t.status >= 500), "backend_unreachable"), else_="edge")}


@dataclass(frozen=True)
class CaddyFormat(SpecFormat):
    derived: frozenset[str] = field(default=frozenset({"peer_ip"}))

    def derive(self, t: ir.Table) -> dict[str, ir.Value]:
        # Caddy resolves client_ip itself from its own trusted_proxies; keep the socket peer when they differ.
        peer = value_of(t, "peer")
        return {"peer_ip": ibis.ifelse(peer.notnull() & (peer != "") & (peer != t.client_ip), peer,
                                       ibis.null("string"))}


_ENVOY_UNREACHABLE = r"(^|,)(UH|UF|UT|UC|URX|UMSDR|UPE)(,|$)"
_ENVOY_EDGE = r"(^|,)(NR|RL|UAEX|RLSE|DI|FI|IH|SI|DPE|NC|OM|DF|DO)(,|$)"


@dataclass(frozen=True)
class EnvoyFormat(SpecFormat):
    derived: frozenset[str] = field(default=_COMMON | {"client_ip"})

    def derive(self, t: ir.Table) -> dict[str, ir.Value]:
        flags = ibis.coalesce(t.edge_detail, "")
        # The default text format has no peer address: the right-most X-Forwarded-For entry is the hop
        # Envoy itself appended (use_remote_address) or saw last; it is the best the line offers.
        last_hop = addr(ibis.coalesce(t.xff, "").split(",")[-1])
        return {
            "client_ip": ibis.coalesce(t.client_ip, last_hop),
            "edge_result": ibis.cases(
                (flags.re_search(r"(^|,)DC(,|$)"), "client_abort"),
                (flags.re_search(r"(^|,)UO(,|$)"), "edge_overload"),
                (flags.re_search(_ENVOY_UNREACHABLE), "backend_unreachable"),
                (flags.re_search(_ENVOY_EDGE), "edge"),
                (t.upstream_addr.notnull(), "backend"),
                else_="edge"),
        }


@dataclass(frozen=True)
class CloudflareFormat(SpecFormat):
    derived: frozenset[str] = field(default=_COMMON)

    def derive(self, t: ir.Table) -> dict[str, ir.Value]:
        action = ibis.coalesce(value_of(t, "security"), "").lower()
        cache = ibis.coalesce(value_of(t, "cache"), "").lower()
        cache = ibis.ifelse(cache == "unknown", "", cache)
        return {"edge_result": ibis.cases(
            (action.isin(["block", "challenge", "jschallenge", "managed_challenge", "challenge_failed",
                          "jschallenge_failed", "managed_challenge_failed", "drop"]), "edge"),
            (cache.isin(["hit", "stale", "updating", "revalidated"]), "cache"),
            (t.status.between(520, 527), "backend_unreachable"),  # Cloudflare's origin-error statuses
            (t.upstream_status.notnull(), "backend"),
            else_=ibis.null("string")),
            "edge_detail": ibis.ifelse((action == "") | (action == "unknown"),
                                       ibis.ifelse(cache == "", ibis.null("string"), "cache:" + cache),
                                       "security:" + action)}


@dataclass(frozen=True)
class GcpLbFormat(SpecFormat):
    derived: frozenset[str] = field(default=_COMMON)

    def derive(self, t: ir.Table) -> dict[str, ir.Value]:
        d = ibis.coalesce(t.edge_detail, "")
        hit = ibis.coalesce(value_of(t, "cache_hit"), "") == "true"
        return {"edge_result": ibis.cases(
            (d.contains("client_disconnected") | d.contains("client_timed_out"), "client_abort"),
            (hit | d.contains("response_from_cache"), "cache"),
            (d.contains("failed_to_connect") | d.contains("backend_timeout") | d.contains("failed_to_pick")
             | d.contains("backend_connection_closed") | d.contains("backend_early_response")
             | d.contains("backend_reset") | d.contains("invalid_backend_response"), "backend_unreachable"),
            (d.contains("response_sent_by_backend"), "backend"),
            (d.contains("denied_by_security_policy") | d.contains("redirected_by") | d.contains("rate_limit")
             | d.contains("throttled"), "edge"),
            else_=ibis.null("string"))}


@dataclass(frozen=True)
class SquidFormat(SpecFormat):
    derived: frozenset[str] = field(default=_COMMON)

    def derive(self, t: ir.Table) -> dict[str, ir.Value]:
        code = ibis.coalesce(t.edge_detail, "")
        return {"edge_result": ibis.cases(
            (code.contains("ABORTED"), "client_abort"), (code.contains("HIT"), "cache"),
            (code.contains("DENIED"), "edge"), (t.status >= 500, "backend_unreachable"),
            (code.contains("MISS") | code.contains("TUNNEL"), "backend"), else_=ibis.null("string"))}


_HTTP_TYPES = r"(?:http|https|h2|grpcs|ws|wss)"
_ISO = r"\d{4}-\d{2}-\d{2}T[0-9:.]+Z?"
_AWS_TIMES = r"(?P<req_t>-?[0-9.]+) (?P<target_t>-?[0-9.]+) (?P<resp_t>-?[0-9.]+)"
_AWS_TIMING_COLUMNS = (("client_ip", "addr", "client"), ("upstream_addr", "text", "target"),
                       ("status", "status0", "status"), ("upstream_status", "upstream_status", "target_status"),
                       ("bytes", "bytes", "sent"), ("user_agent", "text", "ua"),
                       ("upstream_time", "seconds", "target_t"))

ALB = AlbFormat(
    "aws_alb",
    "AWS Application Load Balancer access log (elb_status_code vs target_status_code, -1 processing times).",
    'http 2023-04-26T12:22:55.463821Z app/546213e5-apiexamplecom-api-94aa/490d68edf04676fe 192.168.1.10:44740 '
    '10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - '
    'arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 '
    '"Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" '
    '"10.0.0.1:80" "200" "-" "-"',
    (Layout(rf'^{_HTTP_TYPES} (?P<time>{_ISO}) \S+ (?P<client>\S+) (?P<target>\S+) {_AWS_TIMES} '
            rf'(?P<status>\d{{3}}|-) (?P<target_status>\d{{3}}|-) (?:\d+|-) (?P<sent>\d+|-) "(?P<request>{Q[1:-1]})" '
            rf'"(?P<ua>{Q[1:-1]})" \S+ \S+ \S+ "[^"]*"'
            rf'(?: "(?P<domain>[^"]*)" "[^"]*"(?: \S+ \S+ "(?P<actions>[^"]*)"(?: "[^"]*"'
            rf'(?: "(?P<error_reason>[^"]*)")?)?)?)?(?: .*)?$'),),
    ("iso", "time"),
    (*_AWS_TIMING_COLUMNS, ("host", "text", "domain")),
)

ELB = ElbFormat(
    "aws_elb",
    "AWS Classic Load Balancer (ELB) access log.",
    '2017-08-10T18:25:56 stag-www-lb 137.190.87.41:52888 10.168.203.134:23667 0.000803 0.048702 0.002085 200 200 '
    '2836 1169667 "POST https://dinihou.bounceme.net:443/api...7F6F78E33C7C00 HTTP/1.1" "Mozilla/5.0 (Macintosh; '
    'Intel Mac OS X 10_6_8) AppleWebKit/537.13+ (KHTML, like Gecko) Version/5.1.7 Safari/534.57.2" '
    'DHE-RSA-DES-CBC3-SHA SSLv3.0',
    (Layout(rf'^(?P<time>{_ISO}) \S+ (?P<client>\S+) (?P<target>\S+) {_AWS_TIMES} (?P<status>\d{{3}}|-) '
            rf'(?P<target_status>\d{{1,3}}|-) (?:\d+|-) (?P<sent>\d+|-) "(?P<request>{Q[1:-1]})"'
            rf'(?: "(?P<ua>{Q[1:-1]})" \S+ \S+)?$'),),
    ("iso", "time"),
    _AWS_TIMING_COLUMNS,
)

S3 = S3Format(
    "aws_s3",
    "Amazon S3 server access log (total_time and turn_around_time in ms; error_code kept as edge_detail).",
    '79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be awsexamplebucket1 [06/Feb/2019:00:00:38 '
    '+0000] 192.0.2.3 79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be 3E57427F3EXAMPLE '
    'REST.GET.VERSIONING - "GET /awsexamplebucket1?versioning HTTP/1.1" 200 - 113 - 7 - "-" "S3Console/0.4" - '
    's9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV2 '
    'ECDHE-RSA-AES128-GCM-SHA256 AuthHeader awsexamplebucket1.s3.us-west-1.amazonaws.com TLSV1.2 - -',
    (Layout(rf'^\S+ \S+ \[(?P<time>[^\]]+)\] (?P<client>\S+) \S+ \S+ [A-Z]+\.\S+ \S+ "(?P<request>{Q[1:-1]})" '
            rf'(?P<status>\d{{3}}|-) (?P<error>\S+) (?P<sent>\d+|-) (?:\d+|-) (?P<total_t>\d+|-) (?P<turn_t>\d+|-) '
            rf'"(?P<referer>{Q[1:-1]})" "(?P<ua>{Q[1:-1]})" \S+'
            r'(?: \S+ \S+ \S+ \S+ (?P<host>\S+)(?: .*)?)?$'),),
    ("clf", "time"),
    (("client_ip", "addr", "client"), ("status", "status0", "status"), ("bytes", "bytes", "sent"),
     ("request_time", "ms", "total_t"), ("upstream_time", "ms", "turn_t"), ("referer", "text", "referer"),
     ("user_agent", "text", "ua"), ("host", "text", "host")),
    detail="error",
    derived=_COMMON,
)

HAPROXY = HaproxyFormat(
    "haproxy",
    "HAProxy `option httplog` lines, bare or syslog-prefixed (accept date read as UTC; Tr as upstream_time, "
    "Tt as request_time, termination state as edge_detail).",
    'Feb  6 12:14:14 localhost haproxy[14389]: 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 '
    '10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} "GET /index.html HTTP/1.1"',
    (Layout(r'^(?:.*?: )?(?P<client>\S+):\d+ \[(?P<time>\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2}\.\d{3})\] \S+ '
            r'[^/ ]+/(?P<server>\S+) -?\d+/-?\d+/-?\d+/(?P<tr>-?\d+)/(?P<tt>\+?-?\d+) (?P<status>-?\d+) '
            r'(?P<bytes>\+?\d+) \S+ \S+ (?P<state>\S{4}) \d+/\d+/\d+/\d+/\+?\d+ \d+/\d+'
            r'(?: \{[^}]*\})?(?: \{[^}]*\})? "(?P<request>(?:[^"\\]|\\.)*)"?$'),
     # A connection that never became a request: "frontend/bind: SSL handshake failure".
     Layout(r'^(?:.*?: )?\S+:\d+ \[(?P<time>\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2}\.\d{3})\] \S+: .*$', request=False)),
    ("clf_ms", "time"),
    (("client_ip", "addr", "client"), ("status", "status0", "status"), ("bytes", "bytes", "bytes"),
     ("upstream_time", "ms", "tr"), ("request_time", "ms", "tt"), ("upstream_addr", "text", "server")),
    detail="state",
)

TRAEFIK_CLF = TraefikClfFormat(
    "traefik_clf",
    "Traefik access log, CLF flavour (combined plus request count, router, backend URL, duration in ms).",
    '172.17.0.1 - - [08/Dec/2021:13:59:39 +0000] "GET /cgi.cgi/ HTTP/1.1" 200 352 "-" "Nikto" 240 "test@docker" '
    '"http://172.17.0.3:80" 0ms',
    (Layout(rf'^(?P<client>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<request>{Q[1:-1]})" (?P<status>\d{{3}}|-) '
            rf'(?P<bytes>\d+|-) "(?P<referer>{Q[1:-1]})" "(?P<ua>{Q[1:-1]})" (?:\d+|-) "(?P<router>{Q[1:-1]})" '
            rf'"(?P<backend>{Q[1:-1]})" (?P<duration>\d+)ms$'),),
    ("clf", "time"),
    (("client_ip", "addr", "client"), ("status", "status0", "status"), ("bytes", "bytes", "bytes"),
     ("referer", "text", "referer"), ("user_agent", "text", "ua"), ("upstream_addr", "text", "backend"),
     ("request_time", "ms", "duration")),
)

TRAEFIK_JSON = TraefikJsonFormat(
    "traefik_json",
    "Traefik access log, JSON flavour (Duration/OriginDuration in ns; OriginStatus 0: no backend answer).",
    '{"ClientAddr":"172.17.0.1:39496","ClientHost":"172.17.0.1","DownstreamContentSize":357,"DownstreamStatus":200,'
    '"Duration":357313,"OriginDuration":324669,"OriginStatus":200,"RequestHost":"test.docker.localhost",'
    '"RequestMethod":"GET","RequestPath":"/594VAEoi.save","RequestProtocol":"HTTP/1.1","RetryAttempts":0,'
    '"ServiceAddr":"172.17.0.3:80","StartUTC":"2021-12-08T14:02:43.587782192Z","request_User-Agent":"Nikto"}',
    (Layout(keys=(("time", "StartUTC"), ("client", "ClientHost"), ("peer", "ClientAddr"), ("method", "RequestMethod"),
                  ("uri", "RequestPath"), ("protocol", "RequestProtocol"), ("host", "RequestHost"),
                  ("status", "DownstreamStatus"), ("bytes", "DownstreamContentSize"), ("duration", "Duration"),
                  ("origin_status", "OriginStatus"), ("origin_t", "OriginDuration"), ("service", "ServiceAddr"),
                  ("ua", "request_User-Agent"), ("referer", "request_Referer"),
                  ("xff", "request_X-Forwarded-For"), ("retries", "RetryAttempts")),
            require=('"ClientHost"', '"DownstreamStatus"')),),
    ("iso", "time"),
    (("client_ip", "addr", "client"), ("method", "text", "method"), ("protocol", "text", "protocol"),
     ("host", "text", "host"), ("status", "status0", "status"), ("bytes", "bytes", "bytes"),
     ("request_time", "ns", "duration"), ("upstream_status", "upstream_status", "origin_status"),
     ("upstream_time", "ns", "origin_t"), ("upstream_addr", "text", "service"), ("user_agent", "text", "ua"),
     ("referer", "text", "referer"), ("xff", "text", "xff")),
)

CADDY = CaddyFormat(
    "caddy",
    "Caddy v2 JSON access log (`http.log.access`): client_ip as Caddy resolved it, the socket peer kept as "
    "peer_ip when different; status 0 means no response was written.",
    '{"level":"info","ts":1693840791.7564995,"logger":"http.log.access","msg":"handled request","request":'
    '{"remote_ip":"172.17.0.1","remote_port":"44790","client_ip":"127.0.0.1","proto":"HTTP/1.0","method":"GET",'
    '"host":"127.0.0.1:8080","uri":"/","headers":{"User-Agent":["curl/7.74.0"],"X-Forwarded-For":["127.0.0.1"]}},'
    '"bytes_read":0,"user_id":"","duration":0.000002701,"size":0,"status":0,"resp_headers":{"Server":["Caddy"]}}',
    (Layout(keys=(("time", "ts"), ("client", "client_ip|remote_ip"), ("peer", "remote_ip"), ("method", "method"),
                  ("uri", "uri"), ("protocol", "proto"), ("host", "host"), ("status", "status"), ("bytes", "size"),
                  ("duration", "duration"), ("ua", "User-Agent[]"), ("referer", "Referer[]"),
                  ("xff", "X-Forwarded-For[]")),
            require=('"logger":"http.log.access', '"request":{')),
     Layout(keys=(("time", "ts"),), require=('"logger":"http.', '"ts":'), request=False)),
    ("epoch", "time"),
    (("client_ip", "addr", "client"), ("method", "text", "method"), ("protocol", "text", "protocol"),
     ("host", "text", "host"), ("status", "status0", "status"), ("bytes", "bytes", "bytes"),
     ("request_time", "seconds", "duration"), ("user_agent", "text", "ua"), ("referer", "text", "referer"),
     ("xff", "text", "xff")),
)

_CRI = r"(?:\S+ (?:stdout|stderr) [FP] )?"
ENVOY = EnvoyFormat(
    "envoy",
    "Envoy access log: the default text format and JSON (with or without a container-runtime prefix), "
    "response flags as edge_detail.",
    '[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "nsq2http" '
    '"cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" "tcp://10.0.2.1:80"',
    (Layout(rf'^{_CRI}\[(?P<time>{_ISO})\] "(?P<request>{Q[1:-1]})" (?P<status>\d{{1,3}}) (?P<flags>\S+) '
            rf'(?:\d+|-) (?P<bytes>\d+|-) (?P<duration>\d+|-) (?P<upstream_t>\d+|-) "(?P<xff>{Q[1:-1]})" '
            rf'"(?P<ua>{Q[1:-1]})" "{Q[1:-1]}" "(?P<authority>{Q[1:-1]})" "(?P<upstream>{Q[1:-1]})"(?: .*)?$'),
     Layout(keys=(("time", "start_time"), ("client", "downstream_remote_address"), ("method", "method"),
                  ("uri", "x-envoy-origin-path|path"), ("protocol", "protocol"), ("status", "response_code"),
                  ("bytes", "bytes_sent"), ("duration", "duration"), ("upstream_t", "x-envoy-upstream-service-time"),
                  ("xff", "x-forwarded-for"), ("ua", "user-agent"), ("authority", ":authority"),
                  ("upstream", "upstream_host"), ("flags", "response_flags")),
            require=('"response_code"', '"start_time"'))),
    ("iso", "time"),
    (("client_ip", "addr", "client"), ("method", "text", "method"), ("protocol", "text", "protocol"),
     ("status", "status0", "status"), ("bytes", "bytes", "bytes"), ("request_time", "ms", "duration"),
     ("upstream_time", "ms", "upstream_t"), ("xff", "text", "xff"), ("user_agent", "text", "ua"),
     ("host", "text", "authority"), ("upstream_addr", "text", "upstream")),
    detail="flags",
)

CLOUDFLARE = CloudflareFormat(
    "cloudflare",
    "Cloudflare Logpush `http_requests` (NDJSON; EdgeStartTimestamp as RFC 3339 or Unix s/ms/ns).",
    '{"ClientIP":"10.0.0.1","ClientRequestHost":"host.domain.test","ClientRequestMethod":"GET","ClientRequestURI":'
    '"/cdn-cgi/images/cf-icon-cloud.png","EdgeEndTimestamp":"2020-10-13T19:49:36Z","EdgeResponseBytes":1895,'
    '"EdgeResponseStatus":200,"EdgeStartTimestamp":"2020-10-13T19:49:36Z","RayID":"5e1b95b9ea390cc5",'
    '"SecurityAction":"unknown","CacheCacheStatus":"unknown","ClientRequestProtocol":"HTTP/1.1",'
    '"ClientRequestReferer":"http://host.domain.test/cdn-cgi/styles/main.css","ClientRequestUserAgent":'
    '"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)"}',
    (Layout(keys=(("time", "EdgeStartTimestamp"), ("client", "ClientIP"), ("method", "ClientRequestMethod"),
                  ("uri", "ClientRequestURI"), ("protocol", "ClientRequestProtocol"), ("host", "ClientRequestHost"),
                  ("status", "EdgeResponseStatus"), ("bytes", "EdgeResponseBytes"),
                  ("referer", "ClientRequestReferer"), ("ua", "ClientRequestUserAgent"),
                  ("origin_status", "OriginResponseStatus"), ("origin_t", "OriginResponseTime"),
                  ("origin", "OriginIP"), ("cache", "CacheCacheStatus"), ("security", "SecurityAction|WAFAction")),
            require=('"ClientIP"', '"RayID"')),),
    ("epoch_auto", "time"),
    (("client_ip", "addr", "client"), ("method", "text", "method"), ("protocol", "text", "protocol"),
     ("host", "text", "host"), ("status", "status0", "status"), ("bytes", "bytes", "bytes"),
     ("referer", "text", "referer"), ("user_agent", "text", "ua"),
     ("upstream_status", "upstream_status", "origin_status"), ("upstream_time", "ns", "origin_t"),
     ("upstream_addr", "text", "origin")),
)

GCP_LB = GcpLbFormat(
    "gcp_lb",
    "Google Cloud HTTP(S) load balancer, Cloud Logging JSON (httpRequest; statusDetails as edge_detail).",
    '{"httpRequest":{"latency":"0.058927s","referer":"http://dummy_referer/console/","remoteIp":"198.51.100.1",'
    '"requestMethod":"GET","requestSize":"257","requestUrl":"https://34.1.0.35/console/","responseSize":"1467",'
    '"status":302,"userAgent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64)"},"insertId":"1vzs264g1u90hp5",'
    '"jsonPayload":{"@type":"type.googleapis.com/google.cloud.loadbalancing.type.LoadBalancerLogEntry",'
    '"statusDetails":"response_sent_by_backend"},"resource":{"type":"http_load_balancer"},'
    '"timestamp":"2023-03-01T10:00:00.123456Z"}',
    (Layout(keys=(("time", "timestamp"), ("client", "remoteIp"), ("method", "requestMethod"), ("uri", "requestUrl"),
                  ("protocol", "protocol"), ("status", "status"), ("bytes", "responseSize"), ("referer", "referer"),
                  ("ua", "userAgent"), ("latency", "latency"), ("backend", "serverIp"), ("details", "statusDetails"),
                  ("cache_hit", "cacheHit")),
            require=('"httpRequest"', '"remoteIp"')),),
    ("iso", "time"),
    (("client_ip", "addr", "client"), ("method", "text", "method"), ("protocol", "text", "protocol"),
     ("status", "status0", "status"), ("bytes", "bytes", "bytes"), ("referer", "text", "referer"),
     ("user_agent", "text", "ua"), ("request_time", "seconds", "latency"), ("upstream_addr", "text", "backend")),
    detail="details",
)

SQUID = SquidFormat(
    "squid",
    "Squid native access.log (elapsed ms as request_time, result code/hierarchy as edge_detail).",
    '1286536309.585    921 192.168.0.68 TCP_MISS/200 507 POST http://rcv.example.com/ - DIRECT/203.0.113.1 '
    'application/x-www-form-urlencoded',
    (Layout(r'^(?P<time>\d{9,11}(?:\.\d+)?) +(?P<elapsed>-?\d+) (?P<client>\S+) '
            r'(?P<result>[A-Za-z_]+)/(?P<status>\d{3}) '
            r'(?P<bytes>\d+) (?P<method>[A-Za-z_-]+) (?P<uri>\S+) \S+ [A-Za-z_]+/(?P<peer>\S+) \S+(?: .*)?$'),),
    ("epoch", "time"),
    (("client_ip", "addr", "client"), ("status", "status0", "status"), ("bytes", "bytes", "bytes"),
     ("method", "text", "method"), ("request_time", "ms", "elapsed"), ("upstream_addr", "text", "peer")),
    detail="result",
)

FORMATS: tuple[SpecFormat, ...] = (ALB, ELB, S3, HAPROXY, TRAEFIK_CLF, TRAEFIK_JSON, CADDY, ENVOY, CLOUDFLARE, GCP_LB,
                                   SQUID)
