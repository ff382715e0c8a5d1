"""The analysis's inputs besides the logs, checked before any reading (--geoip, --asn, --fingerprints, --victim),
and the sections ``mitigate`` reads: a report's, or one analysed from logs or a store (with its flows)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from floodwitness.cli.options import _progress, _stages
from floodwitness.errors import UsageError

if TYPE_CHECKING:
    from floodwitness.engine import Engine
    from floodwitness.ingest import IngestOptions


def _enrichment_options(sources: dict[str, Any]) -> dict[str, Any]:
    """--geoip, --asn, --fingerprints: checked before any log is read (a bad file fails at once)."""
    from floodwitness.detectors.fingerprints import load_rules  # noqa: PLC0415
    from floodwitness.enrich import Enricher  # noqa: PLC0415

    fingerprints = tuple(sources.get("fingerprints") or ())
    load_rules(fingerprints)
    Enricher(sources.get("geoip"), sources.get("asn")).close()
    return {"geoip": sources.get("geoip"), "asn": sources.get("asn"), "fingerprints": fingerprints,
            "victims": _victims(sources.get("victims") or ())}


def _victims(values: tuple[str, ...]) -> tuple[str, ...]:
    """--victim values checked before any reading: addresses or prefixes, as CIDRs."""
    import ipaddress  # noqa: PLC0415

    out = []
    for value in values:
        try:
            out.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError:
            raise UsageError(f"--victim {value!r} is not an address or prefix",
                             hint="Give an IP address or a CIDR prefix, e.g. --victim 203.0.113.10 or "
                                  "--victim 198.51.100.0/24.") from None
    return tuple(out)


def _mitigation_source(inputs: list[str], allow: tuple[str, ...], quiet: bool, source: IngestOptions,
                       engine: Engine | None) -> tuple[dict[str, Any], frozenset[str]]:
    """The report's mitigation section: read from REPORT.json, or from analysing LOGS (with ``allow``, and the
    same input and engine options as `analyze`)."""
    if len(inputs) == 1 and inputs[0].endswith(".json") and Path(inputs[0]).is_file():
        from floodwitness.report.contract import load_report  # noqa: PLC0415

        # a report's schema and its mitigation section are all `mitigate` needs (a hand-edited section will do)
        return load_report(inputs[0], required=()).get("mitigation") or {}, frozenset(inputs)
    from floodwitness.analysis.dataset import open_dataset  # noqa: PLC0415 - keeps `--help` fast
    from floodwitness.mitigation import BlocklistPolicy  # noqa: PLC0415
    from floodwitness.report import AnalyzeOptions, analyze  # noqa: PLC0415

    with _progress(quiet) as progress:
        data = open_dataset(inputs, options=source, progress=progress, engine=engine)
    try:
        with _stages(quiet) as stage:
            report = analyze(data, AnalyzeOptions(blocklist_policy=BlocklistPolicy(allow=allow), rate_limits=True),
                             stage=stage)
    finally:
        data.close()
    return report.get("mitigation") or {}, frozenset(i["path"] for i in report["inputs"])


def _network_source(inputs: list[str], quiet: bool, source: IngestOptions, engine: Engine | None
                    ) -> tuple[dict[str, Any] | None, Any, frozenset[str]]:
    """The report's network section and the flows its rules are measured on: from REPORT.json (no flows: the rules
    say their cost was not measured), or from analysing a store or logs with their flows."""
    if len(inputs) == 1 and inputs[0].endswith(".json") and Path(inputs[0]).is_file():
        from floodwitness.report.contract import load_report  # noqa: PLC0415

        return load_report(inputs[0], required=()).get("network"), None, frozenset(inputs)
    from floodwitness.analysis.dataset import open_dataset  # noqa: PLC0415 - keeps `--help` fast
    from floodwitness.report import analyze  # noqa: PLC0415
    from floodwitness.report.flows import flows_toward  # noqa: PLC0415

    with _progress(quiet) as progress:
        data = open_dataset(inputs, options=source, progress=progress, engine=engine)
    try:
        with _stages(quiet) as stage:
            report = analyze(data, stage=stage)
        network = report.get("network")
        flows = flows_toward(data.flow_parts, network)
    finally:
        data.close()
    return network, flows, frozenset(i["path"] for i in report["inputs"])
