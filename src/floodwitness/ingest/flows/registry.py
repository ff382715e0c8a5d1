"""Which reader reads a flow input: chosen by its content (magic bytes, a header), never by its name alone.

Each entry of :data:`READERS` says how to recognise its kind from the first bytes of the file; the first that fits
reads it. A packet capture of NetFlow/IPFIX export datagrams is told from one of ordinary traffic by looking at
its first packets (all UDP, each payload starting with version 5, 9 or 10).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from floodwitness.errors import FormatError
from floodwitness.ingest.flows import capture, netflow, nfdump
from floodwitness.inputs import InputFile
from floodwitness.inputs.opener import RawStats, detect_compression, open_blocks

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from floodwitness.ingest.flows.base import Reader

PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
NFCAPD_MAGIC = b"\x0c\xa5"  # nfdump's file magic 0xA50C, little-endian, then the layout version (1 or 2)
HEAD_BYTES = 4096


def is_capture(head: bytes) -> bool:
    return head[:4] in PCAP_MAGICS or head[:4] == PCAPNG_MAGIC


def _is_nfcapd(head: bytes, _path: Path) -> bool:
    return head[:2] == NFCAPD_MAGIC and len(head) >= 4 and struct.unpack("<H", head[2:4])[0] in (1, 2)


def _is_csv(head: bytes, _path: Path) -> bool:
    first = head.split(b"\n", 1)[0].strip()
    return first.startswith(b"ts,te,")


def _is_json(head: bytes, _path: Path) -> bool:
    text = head.lstrip()
    return text[:1] == b"[" and (len(text) < 2 or text[1:].lstrip()[:1] in (b"{", b"]", b""))


def _is_export_capture(head: bytes, path: Path) -> bool:
    return is_capture(head) and netflow.looks_like_exports(path)


def _is_capture(head: bytes, _path: Path) -> bool:
    return is_capture(head)


@dataclass(frozen=True)
class FlowKind:
    name: str
    description: str
    sniff: Callable[[bytes, Path], bool]
    read: Reader


#: In the order they are tried (export captures before ordinary captures).
READERS: tuple[FlowKind, ...] = (
    FlowKind("nfcapd", "nfdump/nfcapd binary flow file (read by the nfdump program)", _is_nfcapd, nfdump.read_nfcapd),
    FlowKind("netflow", "packet capture of NetFlow v5/v9 or IPFIX export datagrams", _is_export_capture,
             netflow.read_exports),
    FlowKind("pcap", "packet capture (pcap, pcapng), metered into flows by nfstream", _is_capture,
             capture.read_capture),
    FlowKind("nfdump_csv", "nfdump CSV export (nfdump -o csv)", _is_csv, nfdump.read_nfdump_csv),
    FlowKind("nfdump_json", "nfdump JSON export (nfdump -o json)", _is_json, nfdump.read_nfdump_json),
)


def sniff(path: Path) -> FlowKind:
    """The reader for ``path`` by its content, or a FormatError naming what flow inputs are read."""
    with path.open("rb") as stream:
        head = stream.read(HEAD_BYTES)
    if detect_compression(head) != "none":  # a compressed CSV/JSON export: sniff its decompressed start
        head = next(open_blocks(InputFile(str(path)), RawStats()), b"")[:HEAD_BYTES]
    for kind in READERS:
        if kind.sniff(head, path):
            return kind
    known = "; ".join(k.description for k in READERS)
    what = "the file is empty" if not head else "no flow reader recognises its content"
    raise FormatError(f"not a flow input: {what}", path=str(path), hint=f"--flows reads: {known}.")
