"""The network vectors as data (``data/vectors.json``): direct floods by flow signature, reflection services by
their answers' source port with amplification factors and where the figures come from, bogon ranges."""

from __future__ import annotations

import functools
import ipaddress
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

REFLECTION_TECHNIQUE = "T1498.002"


@dataclass(frozen=True)
class Thresholds:
    """When a vector is named for a target: its packets and sources over the data, its busiest second, and its
    share of the target's packets while it was active."""

    min_packets: int
    min_peak_pps: float
    min_sources: int
    min_share: float


@dataclass(frozen=True)
class VectorSpec:
    key: str
    name: str
    technique: str
    signature: str
    thresholds: Thresholds
    proto: tuple[int, ...] = ()
    flags_all: int = 0
    flags_none: int = 0
    connection: str = "any"  # none (no TCP connection in the pair) | unanswered (no UDP back) | any
    port_side: str | None = None
    # reflection services only
    service: str | None = None
    port: int | None = None
    factor: float | None = None
    factor_range: tuple[float, float] | None = None
    reference: str | None = None

    @property
    def reflection(self) -> bool:
        return self.port is not None

    def amplification(self) -> dict[str, Any] | None:
        if not self.reflection:
            return None
        return {"service": self.service, "factor": self.factor, "reference": self.reference}


@dataclass(frozen=True)
class Carpet:
    name: str
    technique: str
    prefix_v4: int
    min_hosts: int
    max_host_share: float
    signature: str


@dataclass(frozen=True)
class Vectors:
    """Everything ``data/vectors.json`` holds, parsed."""

    direct: dict[str, VectorSpec]
    reflection: dict[str, VectorSpec]
    carpet: Carpet
    merge_gap_s: int
    min_records: int
    min_records_per_minute: float
    edge_share: float
    min_baseline_s: int
    series_max_points: int
    one_packet_share: float
    spoofed_min_sources: int
    bogon_share: float
    nat_min_port: int
    nat_size_ratio: float
    nat_how: str
    speaker_share: float
    bogons: tuple[tuple[int, int], ...]  # IPv4 [low, high] ranges
    private: tuple[tuple[int, int], ...]

    @property
    def all(self) -> dict[str, VectorSpec]:
        return {**self.direct, **self.reflection}

    def by_port(self) -> dict[int, str]:
        return {spec.port: key for key, spec in self.reflection.items() if spec.port is not None}


def _thresholds(raw: dict[str, Any]) -> Thresholds:
    return Thresholds(int(raw["min_packets"]), float(raw["min_peak_pps"]), int(raw["min_sources"]),
                      float(raw["min_share"]))


def _ranges(cidrs: list[str]) -> tuple[tuple[int, int], ...]:
    nets = [ipaddress.IPv4Network(c) for c in cidrs]
    return tuple((int(n.network_address), int(n.broadcast_address)) for n in nets)


def _reflection(key: str, raw: dict[str, Any], refl: dict[str, Any]) -> VectorSpec:
    span = raw["factor_range"]
    return VectorSpec(key, f"{raw['service']} reflection/amplification", refl["technique"], refl["signature"],
                      _thresholds(refl["thresholds"]), proto=(17,), port_side="src", service=raw["service"],
                      port=int(raw["port"]), factor=raw["factor"],
                      factor_range=(float(span[0]), float(span[1])) if span else None, reference=raw["reference"])


@functools.cache
def load_vectors() -> Vectors:
    """The bundled vectors (read once)."""
    text = resources.files("floodwitness").joinpath("data/vectors.json").read_text(encoding="utf-8")
    return parse_vectors(json.loads(text))


def parse_vectors(raw: dict[str, Any]) -> Vectors:
    direct = {key: VectorSpec(key, v["name"], v["technique"], v["signature"], _thresholds(v["thresholds"]),
                              proto=tuple(v["proto"]), flags_all=int(v["flags_all"]), flags_none=int(v["flags_none"]),
                              connection=v["connection"], port_side=v["port_side"])
              for key, v in raw["direct"].items()}
    refl = raw["reflection"]
    reflection = {key: _reflection(key, v, refl) for key, v in refl["services"].items()}
    c = raw["carpet_bombing"]
    carpet = Carpet(c["name"], c["technique"], int(c["prefix_v4"]), int(c["min_hosts"]), float(c["max_host_share"]),
                    c["signature"])
    nat = refl["nat_ports"]
    return Vectors(direct, reflection, carpet, int(raw["episode"]["merge_gap_s"]), int(raw["episode"]["min_records"]),
                   float(raw["episode"]["min_records_per_minute"]), float(raw["episode"]["edge_share"]),
                   int(raw["episode"]["min_baseline_s"]),
                   int(raw["episode"]["series_max_points"]), float(raw["spoofing"]["one_packet_share"]),
                   int(raw["spoofing"]["min_sources"]), float(raw["spoofing"]["bogon_share"]),
                   int(nat["min_port"]), float(nat["size_ratio"]), nat["how"], float(refl["speaker_share"]),
                   _ranges(raw["bogons"]),
                   _ranges(raw["private"]))
