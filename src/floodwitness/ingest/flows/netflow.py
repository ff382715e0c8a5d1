"""NetFlow v5/v9 and IPFIX export datagrams, as captured in a pcap/pcapng file (e.g. ``tcpdump -w exports.pcap udp
port 2055``), decoded by the ``netflow`` library (bitkeks/python-netflow-v9-softflowd).

The decoder works per export packet in Python (each holds ~20-30 flows); the flows are gathered into columns and
become Arrow tables of 65,536 rows. v9/IPFIX templates are kept per exporter across packets; a data set that
arrives before its template waits for it, and is rejected as ``unknown_template`` if it never comes. Sampling is
read from the v5 header or the v9/IPFIX options (SAMPLING_INTERVAL, samplingInterval, samplingPacketInterval,
samplerRandomInterval) and the counts are multiplied by it. sFlow is not read (its samples are packet headers,
not flows: a different reader).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from importlib.metadata import version as package_version
from typing import TYPE_CHECKING, Any

import dpkt
import pyarrow as pa

from floodwitness.errors import FormatError
from floodwitness.ingest.flows.base import FlowAccount, FlowOptions, file_sha256
from floodwitness.schema import FLOW_ARROW_SCHEMA, RAW_SAMPLE_CHARS

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

EXPORT_VERSIONS = (5, 9, 10)
SNIFF_PACKETS = 16
CHUNK = 65536
_SAMPLING_KEYS = ("SAMPLING_INTERVAL", "FLOW_SAMPLER_RANDOM_INTERVAL", "samplingInterval", "samplingPacketInterval",
                  "samplerRandomInterval")
# field names per version: (v5, v9, IPFIX)
_NAMES = {
    "src": ("IPV4_SRC_ADDR", "IPV4_SRC_ADDR", "sourceIPv4Address"),
    "dst": ("IPV4_DST_ADDR", "IPV4_DST_ADDR", "destinationIPv4Address"),
    "src6": ("", "IPV6_SRC_ADDR", "sourceIPv6Address"),
    "dst6": ("", "IPV6_DST_ADDR", "destinationIPv6Address"),
    "sport": ("SRC_PORT", "L4_SRC_PORT", "sourceTransportPort"),
    "dport": ("DST_PORT", "L4_DST_PORT", "destinationTransportPort"),
    "proto": ("PROTO", "PROTOCOL", "protocolIdentifier"),
    "flags": ("TCP_FLAGS", "TCP_FLAGS", "tcpControlBits"),
    "packets": ("IN_PACKETS", "IN_PKTS", "packetDeltaCount"),
    "bytes": ("IN_OCTETS", "IN_BYTES", "octetDeltaCount"),
}


def _udp_payloads(path: Path) -> Iterator[tuple[float, str, bytes | None]]:
    """(time, exporter address, UDP payload or None for a packet that is not UDP over IP) per captured packet."""
    with path.open("rb") as stream:
        try:
            reader: Any = dpkt.pcap.UniversalReader(stream)
        except (ValueError, dpkt.dpkt.Error) as exc:
            raise FormatError(f"not a readable packet capture ({exc})", path=str(path)) from None
        link = reader.datalink()
        for ts, buf in reader:
            yield float(ts), *_payload(link, buf)


def _payload(link: int, buf: bytes) -> tuple[str, bytes | None]:
    try:
        if link == dpkt.pcap.DLT_EN10MB:
            ip = dpkt.ethernet.Ethernet(buf).data
        elif link in (dpkt.pcap.DLT_RAW, 101, 228, 229):
            ip = dpkt.ip6.IP6(buf) if buf[:1] and buf[0] >> 4 == 6 else dpkt.ip.IP(buf)
        elif link in (dpkt.pcap.DLT_NULL, dpkt.pcap.DLT_LOOP):
            ip = dpkt.loopback.Loopback(buf).data
        elif link == dpkt.pcap.DLT_LINUX_SLL:
            ip = dpkt.sll.SLL(buf).data
        else:
            return "", None
    except (dpkt.dpkt.UnpackError, struct.error, IndexError):
        return "", None
    udp = getattr(ip, "data", None)
    if not isinstance(udp, dpkt.udp.UDP):
        return "", None
    family = socket.AF_INET6 if isinstance(ip, dpkt.ip6.IP6) else socket.AF_INET
    return socket.inet_ntop(family, ip.src), bytes(udp.data)


def looks_like_exports(path: Path) -> bool:
    """A capture whose first packets are all UDP carrying a NetFlow v5/v9 or IPFIX header."""
    seen = 0
    try:
        for _ts, _exporter, payload in _udp_payloads(path):
            if payload is None or len(payload) < 4 or struct.unpack("!H", payload[:2])[0] not in EXPORT_VERSIONS:
                return False
            seen += 1
            if seen >= SNIFF_PACKETS:
                break
    except (FormatError, dpkt.dpkt.NeedData, ValueError):
        return False
    return seen > 0


def read_exports(path: Path, file_id: int, options: FlowOptions) -> tuple[FlowAccount, Iterator[pa.Table]]:
    account = FlowAccount(path=str(path), kind="netflow", reader=f"netflow {package_version('netflow')} (Python)")
    account.sha256, account.bytes = file_sha256(path)
    return account, _Decoder(path, file_id, options, account).tables()


class _Decoder:
    def __init__(self, path: Path, file_id: int, options: FlowOptions, account: FlowAccount) -> None:
        self.path, self.file_id, self.options, self.account = path, file_id, options, account
        self.templates: dict[str, dict[str, Any]] = {}
        self.rate: dict[str, int] = {}
        self.init_ms: dict[str, int] = {}
        self.waiting: dict[str, list[tuple[bytes, int]]] = {}
        self.rows: dict[str, list[Any]] = {c: [] for c in FLOW_ARROW_SCHEMA.names}
        self.versions: set[int] = set()
        self.packets = 0

    def tables(self) -> Iterator[pa.Table]:
        from netflow.utils import parse_packet  # noqa: PLC0415 - only for export captures

        for _ts, exporter, payload in _udp_payloads(self.path):
            self.packets += 1
            if payload is None:
                self._reject("undecodable_export", b"(not a UDP packet)")
                continue
            self._decode(parse_packet, exporter, payload, retry=False)
            if len(self.rows["record"]) >= CHUNK:
                yield self._flush()
        for waiting in self.waiting.values():
            for payload, _ in waiting:
                self._reject("unknown_template", payload)
        kinds = {5: "NetFlow v5", 9: "NetFlow v9", 10: "IPFIX"}
        self.account.kind = "ipfix" if self.versions == {10} else "netflow"
        names = ", ".join(kinds[v] for v in sorted(self.versions))
        self.account.notes.append(f"{self.packets:,} export packets ({names})")
        yield self._flush()

    def _decode(self, parse: Any, exporter: str, payload: bytes, *, retry: bool) -> None:
        version = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 0
        templates = self.templates.setdefault(exporter, {"netflow": {}, "ipfix": {}})
        try:
            packet = parse(payload, templates)
        except KeyError:  # V9TemplateNotRecognized / IPFIXTemplateNotRecognized: wait for the template
            if retry:
                raise
            self.waiting.setdefault(exporter, []).append((payload, self.packets))
            return
        except Exception:
            self._reject("undecodable_export", payload)
            return
        self.versions.add(version)
        self._take(packet, exporter, version)
        if getattr(packet, "contains_new_templates", False) and self.waiting.get(exporter):
            pending, self.waiting[exporter] = self.waiting[exporter], []
            for old, _ in pending:
                try:
                    self._decode(parse, exporter, old, retry=True)
                except KeyError:
                    self.waiting[exporter].append((old, 0))

    def _take(self, packet: Any, exporter: str, version: int) -> None:
        header = packet.header
        if version == 5 and header.sampling_interval & 0x3FFF > 1:
            self.rate[exporter] = header.sampling_interval & 0x3FFF
        for option in getattr(packet, "options", []) or []:
            self._option(getattr(option, "data", {}), exporter)
        for flow in packet.flows:
            data = flow.data
            if "systemInitTimeMilliseconds" in data or not _has_addresses(data):
                self._option(data, exporter)
                continue
            self._row(data, exporter, version, header)

    def _option(self, data: dict[str, Any], exporter: str) -> None:
        for key in _SAMPLING_KEYS:
            if int(data.get(key) or 0) > 1:
                self.rate[exporter] = int(data[key])
        if "systemInitTimeMilliseconds" in data:
            self.init_ms[exporter] = int(data["systemInitTimeMilliseconds"])

    def _row(self, data: dict[str, Any], exporter: str, version: int, header: Any) -> None:
        col = 0 if version == 5 else 1 if version == 9 else 2
        start, end = self._times(data, exporter, version, header)
        src = data.get(_NAMES["src"][col]) or data.get(_NAMES["src6"][col])
        dst = data.get(_NAMES["dst"][col]) or data.get(_NAMES["dst6"][col])
        proto = int(data.get(_NAMES["proto"][col]) or 0)
        rate = self.options.sampling or self.rate.get(exporter, 1)
        ported = proto in (6, 17, 132)
        self.account.records_read += 1
        row = {"start": start, "end": end, "src_ip": _address(src), "dst_ip": _address(dst),
               "ip_family": 6 if ":" in _address(src) else 4, "proto": proto,
               "src_port": int(data.get(_NAMES["sport"][col]) or 0) if ported else None,
               "dst_port": int(data.get(_NAMES["dport"][col]) or 0) if ported else None,
               "tcp_flags": int(data.get(_NAMES["flags"][col]) or 0) if proto == 6 else None,
               "packets": int(data.get(_NAMES["packets"][col]) or 0) * rate,
               "bytes": int(data.get(_NAMES["bytes"][col]) or 0) * rate, "sampling": rate, "fragments": None,
               "exporter": exporter, "file_id": self.file_id, "record": self.account.records_read,
               "reject_reason": None, "raw": None}
        for key, value in row.items():
            self.rows[key].append(value)

    def _times(self, data: dict[str, Any], exporter: str, version: int, header: Any) -> tuple[int, int]:
        """Start and end in microseconds since the epoch."""
        if version == 10:
            for unit, scale in (("Milliseconds", 1000), ("Microseconds", 1), ("Seconds", 1_000_000)):
                if f"flowStart{unit}" in data:
                    first = int(data[f"flowStart{unit}"]) * scale
                    return first, int(data.get(f"flowEnd{unit}", data[f"flowStart{unit}"])) * scale
            base = self.init_ms.get(exporter, header.export_uptime * 1000 - int(data.get("flowEndSysUpTime", 0)))
            return ((base + int(data.get("flowStartSysUpTime", 0))) * 1000,
                    (base + int(data.get("flowEndSysUpTime", 0))) * 1000)
        boot_ms = header.timestamp * 1000 + getattr(header, "timestamp_nano", 0) // 1_000_000 - header.uptime
        return ((boot_ms + int(data.get("FIRST_SWITCHED", 0))) * 1000,
                (boot_ms + int(data.get("LAST_SWITCHED", 0))) * 1000)

    def _reject(self, reason: str, payload: bytes) -> None:
        self.account.records_read += 1
        for key in self.rows:
            self.rows[key].append(None)
        self.rows["file_id"][-1] = self.file_id
        self.rows["record"][-1] = self.account.records_read
        self.rows["reject_reason"][-1] = reason
        self.rows["raw"][-1] = payload[: RAW_SAMPLE_CHARS // 2].hex()

    def _flush(self) -> pa.Table:
        columns = dict(self.rows)
        self.rows = {c: [] for c in FLOW_ARROW_SCHEMA.names}
        arrays = {k: pa.array(v, pa.int64()) for k, v in columns.items() if k in ("start", "end")}
        table = pa.table({k: arrays.get(k, v) for k, v in columns.items()})
        for name in ("start", "end"):
            table = table.set_column(table.schema.get_field_index(name), name,
                                     table[name].cast(pa.timestamp("us", tz="UTC")))
        return table.cast(FLOW_ARROW_SCHEMA)


def _has_addresses(data: dict[str, Any]) -> bool:
    return any(k in data for k in ("IPV4_SRC_ADDR", "IPV6_SRC_ADDR", "sourceIPv4Address", "sourceIPv6Address"))


def _address(value: Any) -> str:
    if isinstance(value, int):
        return str(ipaddress.ip_address(value))
    return str(value) if value is not None else ""
