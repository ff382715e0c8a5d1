"""The Parquet store: ``manifest.json`` (inputs, accounting, options) beside ``requests/*.parquet``.

Parquet parts per input file (``part-00000-00000.parquet``, ``part-00000-00001.parquet`` ... for input 0,
one per ~64 MB of log text), zstd-compressed, in log order, so time-range queries prune row groups by
their min/max statistics and a re-analysis never re-parses. The manifest is written last and atomically:
a store without one is incomplete and refused.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from floodwitness import __version__
from floodwitness.errors import StoreError
from floodwitness.schema import SCHEMA_VERSION

MANIFEST = "manifest.json"
REQUESTS = "requests"
#: Flow parts (#21): ``flows/part-<file_id:05d>-<n:05d>.parquet`` in :data:`floodwitness.schema.FLOW_ARROW_SCHEMA`.
FLOWS = "flows"


@dataclass
class RejectSample:
    line: int
    reason: str
    raw: str


@dataclass
class InputRecord:
    """Accounting for one input file: ``lines_read == lines_parsed + lines_rejected`` always."""

    file_id: int
    path: str
    sha256: str
    bytes: int
    bytes_decompressed: int
    compression: str
    format: str | None
    format_confidence: float | None
    lines_read: int
    lines_parsed: int
    lines_rejected: int
    rejected_by_reason: dict[str, int]
    reject_samples: list[RejectSample]
    utf8_repaired: int
    long_lines: list[tuple[int, int]]
    complete: bool
    damage: str | None
    first_ts: str | None
    last_ts: str | None
    parts: list[str]


@dataclass
class FlowInputRecord:
    """Accounting for one flow input (#21): ``records_read == records_parsed + records_rejected`` always; for a
    packet capture also ``packets_read == packets_in_flows + sum(packets_outside_flows.values())`` when the
    packets could be counted (``packets_read`` None: no packet counter was available)."""

    file_id: int
    path: str
    sha256: str
    bytes: int
    #: "pcap" | "nfcapd" | "nfdump_csv" | "nfdump_json" | "netflow" | "ipfix"
    kind: str
    #: what read it, with its version, e.g. "nfstream 6.6.0", "nfdump 1.7.1"
    reader: str
    records_read: int
    records_parsed: int
    records_rejected: int
    rejected_by_reason: dict[str, int]
    reject_samples: list[RejectSample]
    packets_read: int | None = None
    packets_in_flows: int | None = None
    #: packets of a capture in no flow row, by reason (e.g. "non_ip": ARP frames)
    packets_outside_flows: dict[str, int] = field(default_factory=dict)
    #: the 1:N sampling rates seen, as {"N": flow records}; counts in the flow table are already scaled
    sampling: dict[str, int] = field(default_factory=dict)
    first_ts: str | None = None
    last_ts: str | None = None
    parts: list[str] = field(default_factory=list)
    #: what the reader says about the input beyond the counts (a truncated capture, fragments added, ...)
    notes: list[str] = field(default_factory=list)


@dataclass
class Manifest:
    schema: str
    tool_version: str
    created: str
    options: dict[str, Any]
    inputs: list[InputRecord] = field(default_factory=list)
    #: Files found by expanding a folder or glob that are not access logs: {path, sha256, bytes, reason}.
    skipped: list[dict[str, Any]] = field(default_factory=list)
    #: Flow inputs (#21): packet captures, nfdump files and exports, NetFlow/IPFIX; [] in stores made before.
    flow_inputs: list[FlowInputRecord] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, int]:
        return {
            "lines_read": sum(i.lines_read for i in self.inputs),
            "lines_parsed": sum(i.lines_parsed for i in self.inputs),
            "lines_rejected": sum(i.lines_rejected for i in self.inputs),
            "bytes": sum(i.bytes for i in self.inputs),
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        inputs = []
        for raw in data.get("inputs", []):
            item = dict(raw)
            item["reject_samples"] = [RejectSample(**s) for s in item.get("reject_samples", [])]
            item["long_lines"] = [tuple(x) for x in item.get("long_lines", [])]
            inputs.append(InputRecord(**item))
        flows = []
        for raw in data.get("flow_inputs", []):
            item = dict(raw)
            item["reject_samples"] = [RejectSample(**s) for s in item.get("reject_samples", [])]
            flows.append(FlowInputRecord(**item))
        return cls(schema=data["schema"], tool_version=data["tool_version"], created=data["created"],
                   options=data.get("options", {}), inputs=inputs, skipped=data.get("skipped", []),
                   flow_inputs=flows)


@dataclass(frozen=True)
class Store:
    root: Path
    manifest: Manifest

    @property
    def parts(self) -> list[str]:
        return [str(self.root / REQUESTS / part) for i in self.manifest.inputs for part in i.parts]

    @property
    def flow_parts(self) -> list[str]:
        """The store's flow Parquet files (FLOW_ARROW_SCHEMA), in input order; [] without flow inputs."""
        return flow_paths(self.root, self.manifest)


def flow_paths(root: str | Path, manifest: Manifest | None = None) -> list[str]:
    """The flow Parquet parts of the store at ``root`` (``manifest``: its already loaded manifest), in input
    order, for the analysis to read (e.g. ``engine.parquet(flow_paths(store))``); [] when it holds no flows."""
    manifest = manifest if manifest is not None else open_store(root).manifest
    return [str(Path(root) / FLOWS / part) for i in manifest.flow_inputs for part in i.parts]


def new_manifest(options: dict[str, Any], created: str) -> Manifest:
    return Manifest(schema=SCHEMA_VERSION, tool_version=__version__, created=created, options=options)


def write_manifest(root: Path, manifest: Manifest) -> None:
    """Write atomically (temp file + rename), so a crash never leaves a half-written manifest."""
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", dir=root)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(manifest.to_dict(), out, indent=1, ensure_ascii=False)
    os.replace(tmp, root / MANIFEST)


def is_store(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def open_store(path: str | Path) -> Store:
    root = Path(path)
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise StoreError("not a floodwitness store (no manifest.json)", path=str(root),
                         hint="Create one with `floodwitness ingest LOGS --out DIR`, or pass the log files.")
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
        manifest = Manifest.from_dict(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"manifest.json is unreadable ({exc})", path=str(root),
                         hint="Re-create the store with `floodwitness ingest`.") from None
    if manifest.schema != SCHEMA_VERSION:
        raise StoreError(f"store schema {manifest.schema!r} is not {SCHEMA_VERSION!r}", path=str(root),
                         hint="Re-create the store with this version's `floodwitness ingest`.")
    missing = [p for i in manifest.inputs for p in i.parts if not (root / REQUESTS / p).is_file()]
    missing += [p for i in manifest.flow_inputs for p in i.parts if not (root / FLOWS / p).is_file()]
    if missing:
        raise StoreError(f"store is missing {len(missing)} part file(s), e.g. {missing[0]}", path=str(root),
                         hint="Re-create the store with `floodwitness ingest`.")
    return Store(root, manifest)
