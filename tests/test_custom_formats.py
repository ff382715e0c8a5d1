"""The user's own formats (--log-format) and the real client behind trusted proxies (--trust-proxy)."""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from floodwitness.cli import main
from floodwitness.errors import FormatError, UsageError
from floodwitness.formats.clientip import TrustedProxies, cdn_ranges
from floodwitness.formats.custom import apache_to_nginx, compile_formats

from .conftest import parsed_rows, run_ingest

if TYPE_CHECKING:
    from pathlib import Path

NGINX_DIRECTIVE = ("log_format edge escape=default '$remote_addr [$time_iso8601] $host \"$request\" '\n"
                   "    '$status $body_bytes_sent rt=$request_time \"$http_user_agent\" xff=\"$http_x_forwarded_for\"';")


def nginx_line(i: int) -> str:
    """A line as nginx writes it with NGINX_DIRECTIVE (what this test's server would log)."""
    return (f'203.0.113.{i} [2024-05-17T10:05:{i:02d}+02:00] shop.example.com "GET /item/{i}?ref=x HTTP/2.0" '
            f'{200 + i % 3} {1000 + i} rt=0.{i:03d} "Mozilla/5.0 (X11; Linux x86_64)" xff="-"')


def test_custom_nginx_log_format_parses(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("".join(nginx_line(i) + "\n" for i in range(30)), encoding="utf-8")
    manifest, table = run_ingest([str(log)], tmp_path / "store", log_formats=("nginx:" + NGINX_DIRECTIVE,))
    record = manifest.inputs[0]
    assert record.format is not None and record.format.startswith("custom_nginx_")
    assert (record.lines_read, record.lines_parsed) == (30, 30)
    rows = parsed_rows(table)
    assert [(r["client_ip"], r["host"], r["path"], r["query"], r["status"], r["bytes"], r["request_time"], r["xff"])
            for r in rows[:2]] == [("203.0.113.0", "shop.example.com", "/item/0", "ref=x", 200, 1000, 0.0, None),
                                   ("203.0.113.1", "shop.example.com", "/item/1", "ref=x", 201, 1001, 0.001, None)]
    assert rows[5]["ts"] == datetime(2024, 5, 17, 8, 5, 5, tzinfo=UTC)


def test_custom_format_through_the_cli(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("".join(nginx_line(i) + "\n" for i in range(5)), encoding="utf-8")
    result = CliRunner().invoke(main, ["ingest", str(log), "--out", str(tmp_path / "s"), "--quiet",
                                       "--log-format", "nginx:" + NGINX_DIRECTIVE, "--json", "-"])
    assert result.exit_code == 0, result.output
    assert '"lines_parsed": 5' in result.output


APACHE = r'%v %h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\" %D \"%{X-Forwarded-For}i\"'


def test_apache_logformat_translates_to_a_template() -> None:
    assert apache_to_nginx(APACHE) == (
        '$server_name $remote_addr $remote_ident $remote_user [$time_local] "$request" $status $bytes_sent '
        '"$http_referer" "$http_user_agent" $request_time_usec "$http_x_forwarded_for"')
    assert apache_to_nginx('"%h %{ms}T %T %{Host}i %{X-Real-IP}i %%"') == (
        "$remote_addr $request_time_msec $request_time_sec $http_host $http_x_real_ip %")


def test_custom_apache_format_parses(tmp_path: Path) -> None:
    log = tmp_path / "other_vhosts_access.log"
    log.write_text('www.example.org 198.51.100.7 - - [17/May/2024:10:05:03 +0000] "POST /login HTTP/1.1" 403 512 '
                   '"-" "python-requests/2.31" 250000 "203.0.113.9, 10.0.0.2"\n', encoding="utf-8")
    manifest, table = run_ingest([str(log)], tmp_path / "store", log_formats=("apache:" + APACHE,))
    row = parsed_rows(table)[0]
    assert manifest.inputs[0].format is not None and manifest.inputs[0].format.startswith("custom_apache_")
    assert (row["host"], row["client_ip"], row["status"], row["bytes"], row["request_time"], row["xff"]) == (
        "www.example.org", "198.51.100.7", 403, 512, 0.25, "203.0.113.9, 10.0.0.2")


def test_formats_file_names_several_and_detection_picks_per_file(tmp_path: Path) -> None:
    (tmp_path / "formats.toml").write_text(
        "[formats.shop]\nnginx = '''" + NGINX_DIRECTIVE + "'''\n\n"
        "[formats.legacy]\napache = '" + APACHE.replace("\\", "") + "'\n", encoding="utf-8")
    specs = ("@" + str(tmp_path / "formats.toml"),)
    assert [f.name for f in compile_formats(specs)] == ["shop", "legacy"]
    (tmp_path / "a.log").write_text(nginx_line(1) + "\n", encoding="utf-8")
    (tmp_path / "b.log").write_text('www.example.org 198.51.100.7 - - [17/May/2024:10:05:03 +0000] "GET / HTTP/1.1" '
                                    '200 5 "-" "curl/8" 10 "-"\n', encoding="utf-8")
    manifest, _ = run_ingest([str(tmp_path / "a.log"), str(tmp_path / "b.log")], tmp_path / "s", log_formats=specs)
    assert [i.format for i in manifest.inputs] == ["shop", "legacy"]
    manifest, _ = run_ingest([str(tmp_path / "a.log")], tmp_path / "s2", log_formats=specs, format="shop")
    assert manifest.inputs[0].format == "shop"


@pytest.mark.parametrize(("spec", "message"), [
    ("apache:%h %{%d/%b/%Y}t %r", "the Apache directive %{%d/%b/%Y}t is not supported"),
    ("apache:%h %t %r %Z", "the Apache directive %Z is not supported"),
    ("lighttpd:%h", "say which server's syntax it is"),
    ("nginx:$remote_addr $status", "has no time variable"),
])
def test_bad_custom_formats_say_why(spec: str, message: str) -> None:
    with pytest.raises(FormatError, match=re.escape(message)):
        compile_formats((spec,))


# -- --trust-proxy: the client behind proxies we run, never a forged header -----------------------------------

TRUSTED = ("10.0.0.0/8", "2001:db8:1::/48", "192.0.2.7", "cdn:cloudflare")
_NETS = [ipaddress.ip_network(n) for n in (*TRUSTED[:3], *cdn_ranges()["cloudflare"]["ranges"])]


def _trusted(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return any(address.version == n.version and address in n for n in _NETS)


def reference_client(peer: str, xff: str | None) -> str:
    """The rule, written independently: right-most untrusted hop, and only when the peer is trusted."""
    if xff is None or not _trusted(peer):
        return peer
    chain = [e.strip() for e in xff.split(",")] + [peer]
    untrusted = [e for e in chain if not _trusted(e)]
    candidate = untrusted[-1] if untrusted else chain[0]
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return peer
    return candidate


_v4 = st.one_of(st.builds(lambda a, b: f"10.{a}.{b}.1", st.integers(0, 255), st.integers(0, 255)),
                st.just("192.0.2.7"), st.just("192.0.2.8"), st.just("104.16.5.5"), st.just("172.63.255.1"),
                st.builds(lambda a: f"203.0.113.{a}", st.integers(0, 255)))
_v6 = st.one_of(st.builds(lambda a: f"2001:db8:1::{a:x}", st.integers(0, 65535)),
                st.builds(lambda a: f"2001:db8:2::{a:x}", st.integers(0, 65535)),
                st.just("2606:4700::6810:85e5"), st.just("::1"), st.just("2001:db8:1:0:0:0:0:0"))
_hop = st.one_of(_v4, _v6, st.just("unknown"), st.just("1.2.3"))
_xff = st.one_of(st.none(), st.lists(_hop, min_size=1, max_size=4).map(", ".join))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(cases=st.lists(st.tuples(st.one_of(_v4, _v6), _xff), min_size=1, max_size=40))
def test_untrusted_forwarded_for_never_changes_the_client(tmp_path_factory: pytest.TempPathFactory,
                                                          cases: list[tuple[str, str | None]]) -> None:
    tmp = tmp_path_factory.mktemp("xff")
    log = tmp / "access.log"
    log.write_text("".join(f'{peer} - - [17/May/2024:10:05:03 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8" '
                           f'"{xff if xff is not None else "-"}"\n' for peer, xff in cases), encoding="utf-8")
    manifest, table = run_ingest([str(log)], tmp / "store", format="combined_xff", trust_proxy=TRUSTED)
    rows = table.to_pylist()
    assert manifest.inputs[0].lines_parsed == len(cases)
    for (peer, xff), row in zip(cases, rows, strict=True):
        expected = reference_client(peer, xff)
        assert row["client_ip"] == expected, (peer, xff)
        if not _trusted(peer):
            assert row["client_ip"] == peer and row["peer_ip"] is None
        assert row["peer_ip"] == (peer if expected != peer else None)
        assert row["ip_family"] == (6 if ":" in expected else 4)


def test_without_trust_the_header_is_only_kept(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text('10.0.0.5 - - [17/May/2024:10:05:03 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8" "198.51.100.1"\n',
                   encoding="utf-8")
    _, table = run_ingest([str(log)], tmp_path / "store")
    row = parsed_rows(table)[0]
    assert (row["client_ip"], row["xff"], row["peer_ip"]) == ("10.0.0.5", "198.51.100.1", None)
    _, table = run_ingest([str(log)], tmp_path / "store2", trust_proxy=("10.0.0.0/8",))
    row = parsed_rows(table)[0]
    assert (row["client_ip"], row["peer_ip"]) == ("198.51.100.1", "10.0.0.5")


def test_bad_trust_specs_are_usage_errors() -> None:
    with pytest.raises(UsageError, match=re.escape("'10.0.0.0/33' is not an IP address or CIDR range")):
        TrustedProxies.parse(["10.0.0.0/33"])
    with pytest.raises(UsageError, match="no bundled range list for 'akamai'"):
        TrustedProxies.parse(["cdn:akamai"])
    runner = CliRunner()
    result = runner.invoke(main, ["ingest", "x.log", "--out", "o", "--trust-proxy", "nope"])
    assert result.exit_code == 1 and "Error: --trust-proxy: 'nope' is not an IP address" in result.output


def test_bundled_cdn_list_is_dated_and_valid() -> None:
    for name, cdn in cdn_ranges().items():
        assert cdn["as_of"] and cdn["source"].startswith("https://"), name
        assert all(ipaddress.ip_network(r) for r in cdn["ranges"])
