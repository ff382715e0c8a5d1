"""The built-in formats. Each is a template plus a real example line (see docs/formats.md).

Apache ``LogFormat`` strings map to the same variables: ``%h``=$remote_addr, ``%l``=ident, ``%u``=$remote_user,
``%t``=[$time_local], ``%r``=$request, ``%>s``=$status, ``%b``/``%O``=bytes, ``%v``=$server_name, ``%p``=port.
"""

from __future__ import annotations

from floodwitness.formats.template import TemplateFormat

_COMBINED = ('$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
             '"$http_referer" "$http_user_agent"')

_TEMPLATES: tuple[TemplateFormat, ...] = (
    TemplateFormat(
        "combined", _COMBINED,
        "NCSA combined: nginx's default `combined` and Apache's `combined` LogFormat.",
        '83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/logstash-monitorama-2013/images/'
        'kibana-search.png HTTP/1.1" 200 203023 "http://semicomplete.com/presentations/logstash-monitorama-2013/" '
        '"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) '
        'Chrome/32.0.1700.77 Safari/537.36"'),
    TemplateFormat(
        "common", '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent',
        "NCSA common log format (CLF): Apache `common`, no referer or user agent.",
        '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326'),
    TemplateFormat(
        "vhost_combined",
        '$server_name:$server_port $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
        '"$http_referer" "$http_user_agent"',
        "Apache `vhost_combined` (`%v:%p %h %l %u %t ...`): virtual host and port first.",
        'www.example.com:443 203.0.113.9 - - [17/May/2015:10:05:03 +0000] "GET /index.html HTTP/1.1" 200 5120 '
        '"-" "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/126.0"'),
    TemplateFormat(
        "vhost_combined_noport",
        '$server_name $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
        '"$http_referer" "$http_user_agent"',
        "Combined with the virtual host first and no port (`%v %h %l %u %t ...`, common on shared hosting).",
        'www.example.com 203.0.113.9 - - [17/May/2015:10:05:03 +0000] "GET /index.html HTTP/1.1" 200 5120 '
        '"-" "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/126.0"'),
    TemplateFormat(
        "combined_xff", _COMBINED + ' "$http_x_forwarded_for"',
        "nginx's stock `main` format: combined plus X-Forwarded-For.",
        '198.51.100.4 - - [17/May/2024:10:05:03 +0200] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0" "203.0.113.50"'),
    TemplateFormat(
        "combined_timing", _COMBINED + " $request_time $upstream_response_time",
        "Combined plus `$request_time $upstream_response_time` (seconds; `-` when nginx answered itself).",
        '198.51.100.4 - - [17/May/2024:10:05:03 +0200] "GET /api/v1/items HTTP/1.1" 200 1234 "-" '
        '"okhttp/4.9.3" 0.012 0.010'),
    TemplateFormat(
        "combined_timing_xff", _COMBINED + ' $request_time $upstream_response_time "$http_x_forwarded_for"',
        "Combined plus request time, upstream time and X-Forwarded-For.",
        '198.51.100.4 - - [17/May/2024:10:05:03 +0200] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0" 0.004 0.003 "-"'),
    TemplateFormat(
        "combined_xff_timing", _COMBINED + ' "$http_x_forwarded_for" $request_time $upstream_response_time',
        "Combined plus X-Forwarded-For, request time and upstream time.",
        '198.51.100.4 - - [17/May/2024:10:05:03 +0200] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0" "-" 0.004 0.003'),
    TemplateFormat(
        "combined_request_time", _COMBINED + " $request_time",
        "Combined plus `$request_time` only.",
        '198.51.100.4 - - [17/May/2024:10:05:03 +0200] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0" 0.004'),
    TemplateFormat(
        "nginx_upstream_time",
        _COMBINED + ' rt=$request_time uct="$upstream_connect_time" uht="$upstream_header_time" '
        'urt="$upstream_response_time"',
        "The `upstream_time` format from nginx's documentation (rt= uct= uht= urt=).",
        '198.51.100.4 - - [17/May/2024:10:05:03 +0200] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0" rt=0.004 '
        'uct="0.000" uht="0.003" urt="0.003"'),
)

#: Every built-in is an NCSA-family format, so each reads stray lines of its siblings in a mixed file.
TEMPLATES: tuple[TemplateFormat, ...] = tuple(
    TemplateFormat(t.name, t.template, t.description, t.example, t.aliases, lenient=True) for t in _TEMPLATES)
