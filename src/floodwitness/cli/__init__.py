"""The command line: a thin shell that translates arguments into library calls and errors into messages.

Every error floodwitness raises on purpose is printed as ``Error: ...`` with how to fix it, exit code 1,
and no traceback. Progress goes to stderr, only when stderr is a terminal.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.text import Text

from floodwitness import __version__
from floodwitness.cli.options import (
    _engine_options,
    _flow_options,
    _memory_limit,
    _open_engine,
    _parse_range,
    _parse_time,
    _progress,
    _resource_options,
    _source,
    _source_options,
    _stages,
    _stdout,
    _write,
    _write_json,
)
from floodwitness.cli.sources import _enrichment_options, _mitigation_source, _network_source
from floodwitness.errors import FloodwitnessError, UsageError
from floodwitness.formats import FORMATS, aliases_of, format_names
from floodwitness.ingest import IngestOptions, ingest
from floodwitness.ingest.checks import require_parsed
from floodwitness.ingest.flows.run import flow_summary
from floodwitness.inputs.lines import DEFAULT_MAX_LINE_BYTES
from floodwitness.mitigation.exports import EXPORTERS, blocklist_text, targets_text
from floodwitness.mitigation.network_export import NETWORK_EXPORTERS
from floodwitness.render.ingest_report import ingest_summary, print_ingest
from floodwitness.schema import column_doc_table

if TYPE_CHECKING:
    from floodwitness.engine import Engine

EXIT_ERROR = 1


class _Group(click.Group):
    """Turns floodwitness errors into `Error: ...` plus the fix, without a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FloodwitnessError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(EXIT_ERROR)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="floodwitness")
def main() -> None:
    """floodwitness: was it an attack? Evidence-based DDoS forensics from the access logs of the
    servers that were hit.

    Start with `floodwitness demo`, then `floodwitness analyze /var/log/nginx/access.log*`.
    """


@main.command("ingest")
@click.argument("logs", nargs=-1)
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False),
              help="Folder for the Parquet store (created; must be new or empty unless --overwrite).")
@click.option("--format", "fmt", default="auto", show_default=True,
              help="Log format name (see `floodwitness formats`), or auto to detect it per file.")
@click.option("--max-line-bytes", default=DEFAULT_MAX_LINE_BYTES, show_default=True, type=click.IntRange(16),
              help="Longer lines are rejected as line_too_long (counted with their length, not loaded whole).")
@click.option("--json", "json_out", metavar="FILE", help="Also write the ingest summary as JSON (- for stdout).")
@click.option("--overwrite", is_flag=True, help="Replace an existing store at --out.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no terminal summary.")
@_flow_options
@_source_options
@_engine_options
def ingest_command(logs: tuple[str, ...], out: str, fmt: str, max_line_bytes: int, json_out: str | None,
                   overwrite: bool, quiet: bool, flows: tuple[str, ...], flow_sampling: int | None,
                   log_formats: tuple[str, ...], trust_proxy: tuple[str, ...],
                   trust_cdn: tuple[str, ...], engine: str, spark_master: str | None,
                   spark_conf: tuple[str, ...], memory_limit: str | None, threads: int | None) -> None:
    """Read LOGS (files, globs, folders, or - for stdin; plain, .gz, .zst, .bz2) into a Parquet store.

    Every line is accounted for: read = parsed + rejected, per file, with the reasons and sample lines.
    Analyze the store later with `floodwitness analyze DIR` without parsing the logs again. When no line
    parses (a wrong --format, a file that is not an access log), the store and its accounting are still
    written, and the command ends with an error saying why (exit 1).
    """
    if not logs and not flows:
        raise UsageError("no input given", hint="Name log files, or give --flows FILE_OR_DIR (or both).")
    options = _source(fmt, log_formats, trust_proxy, trust_cdn, max_line_bytes=max_line_bytes, flows=flows,
                      flow_sampling=flow_sampling)
    runner = _open_engine(engine, spark_master, spark_conf, memory_limit, threads)
    try:
        with _progress(quiet) as progress:
            manifest = ingest(list(logs), out, options=options, progress=progress, overwrite=overwrite, engine=runner)
    finally:
        if runner is not None:
            runner.close()
    if json_out:
        _write_json(json_out, ingest_summary(manifest, out), quiet=quiet, what="the ingest summary")
    if not quiet and json_out != "-":
        print_ingest(_stdout(), manifest, out)
        for line in flow_summary(manifest):
            _stdout().print(Text(line))
    # The store is kept (its accounting says what was rejected and why), but a store of nothing is no success.
    require_parsed(manifest)


@main.command("formats")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def formats_command(as_json: bool) -> None:
    """List the log formats floodwitness reads, with an example line and the fields each provides."""
    rows: list[dict[str, Any]] = [
        {"name": name, "aliases": aliases_of(name), "description": fmt.description, "example": fmt.example,
         "fields": sorted(fmt.provides)} for name, fmt in sorted(FORMATS.items())]
    if as_json:
        click.echo(json.dumps({"formats": rows, "schema": [
            {"name": name, "type": kind, "doc": doc} for name, kind, doc in column_doc_table()]}, indent=1))
        return
    console = _stdout()
    width = max(40, console.width)
    for row in rows:
        also = f" (also: {', '.join(row['aliases'])})" if row["aliases"] else ""
        head = textwrap.wrap(f"{row['name']}{also}  {row['description']}", width, subsequent_indent=" " * 4)
        console.print(Text.assemble((row["name"], "bold"), head[0][len(row["name"]):], *(f"\n{t}" for t in head[1:])))
        for label, value in (("example:", row["example"]), ("fields: ", ", ".join(row["fields"]))):
            # wrapped lines continue under their text, not at the margin
            lines = textwrap.wrap(value, width, initial_indent=f"  {label} ", subsequent_indent=" " * 11,
                                  break_on_hyphens=False)
            console.print("\n".join(lines), markup=False, highlight=False)
        console.print()


@main.command("simulate")
@click.argument("kind")
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0),
              help="Random seed (same seed, same bytes).")
@click.option("--scale", default=1.0, show_default=True, type=float, help="Multiplies every population and rate.")
@click.option("--hours", default=3.0, show_default=True, type=float, help="Length of the log (0.5 to 48).")
def simulate_command(kind: str, outdir: str, seed: int, scale: float, hours: float) -> None:
    """Write a realistic labelled log of scenario KIND into OUTDIR (access.log and truth.json).

    KIND is one of: mirai, cachebust, pulse, dos, flash_crowd, internal_failure, mixed, quiet.
    """
    from floodwitness.simulate import SCENARIOS, simulate  # noqa: PLC0415 - only this command needs it

    if kind not in SCENARIOS:  # before creating anything
        raise UsageError(f"unknown scenario {kind!r}", hint="valid scenarios: " + ", ".join(sorted(SCENARIOS)))
    Path(outdir).mkdir(parents=True, exist_ok=True)
    truth = simulate(kind, Path(outdir), seed=seed, scale=scale, hours=hours)
    info = SCENARIOS[kind]
    click.echo(f"wrote {Path(outdir) / 'access.log'} ({truth.lines:,} lines) and truth.json: {info.name}, "
               f"expected verdict {info.expected_verdict}")


def _write_documents(report: dict[str, Any], html_out: str | None, markdown_out: str | None,
                     protect: frozenset[str] = frozenset(), *, quiet: bool = False) -> None:
    """The HTML and Markdown reports (`--html`, `--markdown`)."""
    if html_out:
        from floodwitness.render.html import render_html  # noqa: PLC0415 - loads the chart library

        _write(html_out, render_html(report), protect=protect, what="the HTML report", quiet=quiet)
    if markdown_out:
        from floodwitness.render.markdown import render_markdown  # noqa: PLC0415

        _write(markdown_out, render_markdown(report), protect=protect, what="the Markdown report", quiet=quiet)


def _run_analysis(logs: list[str], *, json_out: str | None, blocklist_out: str | None, since: str | None,
                  until: str | None, baseline: str | None, fmt: str, keep_store: str | None,
                  quiet: bool, html_out: str | None = None, markdown_out: str | None = None,
                  rate_limits: bool = False, source: IngestOptions | None = None,
                  sources: dict[str, Any] | None = None, engine: Engine | None = None) -> dict[str, Any]:
    from floodwitness.analysis.dataset import open_dataset  # noqa: PLC0415 - keeps `--help` fast
    from floodwitness.render.terminal import print_report  # noqa: PLC0415
    from floodwitness.report import AnalyzeOptions, analyze  # noqa: PLC0415

    options = AnalyzeOptions(since=_parse_time(since, "--since"), until=_parse_time(until, "--until"),
                             baseline=_parse_range(baseline), rate_limits=rate_limits,
                             **_enrichment_options(sources or {}))
    source = source or _source(fmt, (), (), ())
    with _progress(quiet) as progress:
        data = open_dataset(logs, options=source, keep_store=keep_store, progress=progress, engine=engine)
    try:
        with _stages(quiet) as stage:
            report = analyze(data, options, stage=stage)
    finally:
        data.close()
    inputs = frozenset(i["path"] for i in report["inputs"])
    if json_out:
        _write_json(json_out, report, protect=inputs, quiet=quiet)
    if blocklist_out:
        _write(blocklist_out, blocklist_text(report["mitigation"]), protect=inputs, what="the blocklist", quiet=quiet)
    _write_documents(report, html_out, markdown_out, protect=inputs, quiet=quiet)
    if not quiet and json_out != "-":
        print_report(_stdout(), report)
    return report


@main.command("analyze")
@click.argument("logs", nargs=-1)
@click.option("--json", "json_out", metavar="FILE", help="Write the JSON report (floodwitness.report/1); - for stdout.")
@click.option("--blocklist", "blocklist_out", metavar="FILE", help="Write the blocklist as plain CIDR lines.")
@click.option("--html", "html_out", metavar="FILE",
              help="Write the report as one self-contained HTML file (charts, evidence; opens offline).")
@click.option("--markdown", "markdown_out", metavar="FILE", help="Write the report as Markdown (for a ticket).")
@click.option("--since", metavar="TIME", help="Analyse only requests at or after TIME (ISO 8601; UTC if no offset).")
@click.option("--until", metavar="TIME", help="Analyse only requests before TIME.")
@click.option("--baseline", metavar="T1..T2", help="Use this range as normal traffic instead of choosing it.")
@click.option("--format", "fmt", default="auto", show_default=True, help="Log format (see `floodwitness formats`).")
@click.option("--store", "keep_store", metavar="DIR",
              help="Keep the parsed logs as a store in DIR (the evidence queries then run on it later).")
@click.option("--rate-limits", "rate_limits", is_flag=True,
              help="Also propose rate limits and replay the incident through them (attacks only; costs time on "
                   "big logs). `floodwitness mitigate LOGS` always does.")
@click.option("--geoip", metavar="FILE", help="Countries from this .mmdb (GeoLite2/GeoIP2, DB-IP, IPinfo) instead of "
              "the bundled database.")
@click.option("--asn", metavar="FILE", help="AS numbers and names from this .mmdb (GeoLite2-ASN, DB-IP, IPinfo) "
              "instead of the bundled database (which has AS names only).")
@click.option("--fingerprints", metavar="FILE", multiple=True,
              help="Add the tool/botnet rules of this JSON file to the bundled ones (docs/fingerprints.md); "
              "repeatable.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no terminal report.")
@_flow_options
@click.option("--victim", "victims", multiple=True, metavar="CIDR",
              help="Watch the flows toward this address or prefix (repeatable; e.g. the servers of the access "
                   "logs). Default: the destinations the flows show under attack.")
@_source_options
@_engine_options
def analyze_command(logs: tuple[str, ...], json_out: str | None, blocklist_out: str | None, html_out: str | None,
                    markdown_out: str | None, since: str | None, until: str | None, baseline: str | None, fmt: str,
                    keep_store: str | None, rate_limits: bool, geoip: str | None, asn: str | None,
                    fingerprints: tuple[str, ...], quiet: bool, flows: tuple[str, ...], flow_sampling: int | None,
                    victims: tuple[str, ...], log_formats: tuple[str, ...],
                    trust_proxy: tuple[str, ...], trust_cdn: tuple[str, ...], engine: str, spark_master: str | None,
                    spark_conf: tuple[str, ...], memory_limit: str | None, threads: int | None) -> None:
    """Was it an attack? Analyse LOGS (log files, or one store from `ingest`) and print the verdict with its
    evidence: incident windows, sources, targets, impact, and a blocklist when blocking would help."""
    if not logs and not flows:
        raise UsageError("no input given", hint="Name log files or a store, or give --flows FILE_OR_DIR (or both).")
    _run_analysis(list(logs), json_out=json_out, blocklist_out=blocklist_out, since=since, until=until,
                  baseline=baseline, fmt=fmt, keep_store=keep_store, quiet=quiet, html_out=html_out,
                  markdown_out=markdown_out, rate_limits=rate_limits,
                  source=_source(fmt, log_formats, trust_proxy, trust_cdn, flows=flows, flow_sampling=flow_sampling),
                  sources={"geoip": geoip, "asn": asn, "fingerprints": fingerprints, "victims": victims},
                  engine=_open_engine(engine, spark_master, spark_conf, memory_limit, threads))


@main.command("report")
@click.argument("report_json", metavar="REPORT.json", type=click.Path(dir_okay=False))
@click.option("--html", "html_out", metavar="FILE", help="Write the self-contained HTML report.")
@click.option("--markdown", "markdown_out", metavar="FILE", help="Write the Markdown report (- for stdout).")
@click.option("--quiet", "-q", is_flag=True, help="Do not confirm the files written on stderr.")
def report_command(report_json: str, html_out: str | None, markdown_out: str | None, quiet: bool) -> None:
    """Render a saved JSON report (from `analyze --json`) as HTML or Markdown, without the logs; with neither
    option, print it as `analyze` does on the terminal."""
    from floodwitness.report.contract import load_report  # noqa: PLC0415

    report = load_report(report_json)
    try:
        if not html_out and not markdown_out:
            from floodwitness.render.terminal import print_report  # noqa: PLC0415

            print_report(_stdout(), report)
            return
        if markdown_out == "-":
            from floodwitness.render.markdown import render_markdown  # noqa: PLC0415

            click.echo(render_markdown(report), nl=False)
            markdown_out = None
        _write_documents(report, html_out, markdown_out, protect=frozenset({report_json}), quiet=quiet)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"{report_json}: a field is missing or malformed ({type(exc).__name__}: {exc})",
                         hint="Write it again with `floodwitness analyze LOGS --json FILE`.") from None


@main.command("mitigate")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--to", "target", required=True, metavar="TARGET",
              type=click.Choice(list(EXPORTERS)), help=f"Enforcement point: {targets_text()}.")
@click.option("--out", "-o", "out", default="-", show_default=True, metavar="FILE", help="Output file (- for stdout).")
@click.option("--allow", multiple=True, metavar="CIDR|FILE",
              help="Never block or limit this network (repeatable; a file holds one per line). Always wins.")
@click.option("--expire", default="24h", show_default=True, help="Expiry of every rule (90m, 24h, 7d).")
@click.option("--max-rules", default=10_000, show_default=True, type=click.IntRange(1),
              help="Keep at most this many rules (busiest first).")
@click.option("--min-prefix-v4", default=16, show_default=True, type=click.IntRange(8, 32),
              help="Leave out IPv4 entries broader than this prefix.")
@click.option("--min-prefix-v6", default=32, show_default=True, type=click.IntRange(16, 128),
              help="Leave out IPv6 entries broader than this prefix.")
@click.option("--rate-limits", "setting", default="recommended", show_default=True,
              help="Rate-limit setting to emit (nginx, *-ratelimit, json): recommended, gentle, balanced, firm, none.")
@click.option("--dry-run", is_flag=True, help="Only print what the rules would have stopped; write nothing.")
@click.option("--format", "fmt", default="auto", show_default=True, help="Log format, when LOGS are given.")
@click.option("--quiet", "-q", is_flag=True, help="No summary on stderr.")
@_source_options
@_engine_options
def mitigate_command(inputs: tuple[str, ...], target: str, out: str, allow: tuple[str, ...], expire: str,
                     max_rules: int, min_prefix_v4: int, min_prefix_v6: int, setting: str, dry_run: bool, fmt: str,
                     quiet: bool, log_formats: tuple[str, ...], trust_proxy: tuple[str, ...],
                     trust_cdn: tuple[str, ...], engine: str, spark_master: str | None, spark_conf: tuple[str, ...],
                     memory_limit: str | None, threads: int | None) -> None:
    """Turn a report's blocklist and rate limits into rules for an enforcement point.

    INPUTS is one REPORT.json from `analyze --json`, or the LOGS (or a store) to analyse. Every rule carries
    its evidence and expiry; the allowlist, verified crawlers and special-purpose ranges are cut out of every
    rule. A summary of what each rule set would have stopped goes to stderr.
    """
    from floodwitness.mitigation.apply import MitigateOptions, mitigate  # noqa: PLC0415
    from floodwitness.mitigation.protected import read_allow_specs  # noqa: PLC0415
    from floodwitness.mitigation.rules import parse_duration  # noqa: PLC0415

    options = MitigateOptions(target, read_allow_specs(allow), parse_duration(expire), max_rules, min_prefix_v4,
                              min_prefix_v6, setting)
    is_report = len(inputs) == 1 and inputs[0].endswith(".json") and Path(inputs[0]).is_file()
    source = _source(fmt, log_formats, trust_proxy, trust_cdn)
    runner = None if is_report else _open_engine(engine, spark_master, spark_conf, memory_limit, threads)
    if target in NETWORK_EXPORTERS:  # the network layer's rules: from the report's network episodes and the flows
        from floodwitness.mitigation.apply import mitigate_network  # noqa: PLC0415

        network, flows, inputs_used = _network_source(list(inputs), quiet, source, runner)
        done = mitigate_network(network, flows, options)
    else:
        mitigation, inputs_used = _mitigation_source(list(inputs), options.allow, quiet, source, runner)
        done = mitigate(mitigation, options)
    if not quiet or dry_run:
        for line in done.summary:
            click.echo(line, err=True)
    if dry_run:
        return
    if out == "-":
        click.echo(done.text, nl=False)
    else:
        _write(out, done.text, protect=inputs_used, what=f"the {target} rules", quiet=quiet)


@main.command("demo")
@click.option("--kind", default="mirai", show_default=True, help="Scenario to simulate (see `simulate --help`).")
@click.option("--seed", default=1, show_default=True, type=click.IntRange(0),
              help="Random seed of the simulation (same seed, same log).")
@click.option("--json", "json_out", metavar="FILE", help="Also write the JSON report.")
@click.option("--html", "html_out", metavar="FILE", help="Also write the HTML report.")
def demo_command(kind: str, seed: int, json_out: str | None, html_out: str | None) -> None:
    """Simulate a labelled incident (a Mirai-style HTTP flood by default) in a temporary folder, analyse it,
    and compare the verdict with the truth. Works offline."""
    import tempfile  # noqa: PLC0415

    from floodwitness.simulate import simulate  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="floodwitness-demo-") as tmp:
        truth = simulate(kind, Path(tmp), seed=seed, hours=2.0)
        click.echo(f"Simulated {kind} (seed {seed}): {truth.lines:,} lines in {Path(tmp) / 'access.log'}\n")
        report = _run_analysis([str(Path(tmp) / "access.log")], json_out=json_out, blocklist_out=None, since=None,
                               until=None, baseline=None, fmt="auto", keep_store=None, quiet=False,
                               html_out=html_out)
        expected = truth.expected_verdict
        got = report["verdict"]["kind"]
        click.echo(f"\nTruth: {expected}; floodwitness said: {got} ({'right' if got == expected else 'WRONG'}).")


@main.command("watch")
@click.argument("logs", nargs=-1)
@click.option("--flows", "flow_sources", multiple=True, metavar="SOURCE",
              help="Also (or only) watch flows for network-level floods: nfcapd's output DIRECTORY (each completed "
                   "nfcapd.YYYYMMDDhhmm file read once, in order; needs the nfdump program) or an nfdump CSV FILE "
                   "(nfdump -o csv) that grows, tailed. Raises network_alert records. Repeatable.")
@click.option("--victim", "victims", multiple=True, metavar="CIDR",
              help="With --flows: a destination prefix to watch (e.g. 203.0.113.0/24); repeatable. Without it the "
                   "targets are chosen from the flows, as analyze does.")
@click.option("--alerts", "alerts_out", default="-", show_default=True, metavar="FILE",
              help="Append alerts as NDJSON to FILE (- for stdout).")
@click.option("--webhook", metavar="URL", help="Also POST each alert as JSON to URL (retried, never blocking).")
@click.option("--metrics-port", type=click.IntRange(1, 65535), metavar="N",
              help="Serve Prometheus metrics on 127.0.0.1:N (needs the `watch` extra).")
@click.option("--state", "state_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Checkpoint offsets and window state in DIR; a restart resumes where it stopped (logs only).")
@click.option("--replay", is_flag=True, help="Read finished logs (and flows) to their end as if live, as fast as "
              "possible, with their own timestamps as the clock.")
@click.option("--from-start", is_flag=True, help="Live: read existing files from their first line, not their end.")
@click.option("--format", "fmt", default="auto", show_default=True, metavar="NAME",
              type=click.Choice(["auto", *format_names()]),
              help="Log format: auto to detect it per file, or a name from `floodwitness formats`.")
@click.option("--idle-exit", type=float, metavar="SECONDS", help="Live: stop after SECONDS without a new line.")
@click.option("--quiet", "-q", is_flag=True, help="No summary on stderr at the end.")
@_resource_options
def watch_command(logs: tuple[str, ...], flow_sources: tuple[str, ...], victims: tuple[str, ...], alerts_out: str,
                  webhook: str | None, metrics_port: int | None, state_dir: str | None, replay: bool,
                  from_start: bool, fmt: str, idle_exit: float | None, quiet: bool, memory_limit: str | None,
                  threads: int | None) -> None:
    """Follow LOGS (files or globs, like `tail -F`, or - for stdin) and raise alerts as NDJSON lines
    ({"type": "alert"|"update"|"resolved", "kind", "log_time", "detected_at", "window", "summary",
    "top_sources", "blocklist", "blocklist_size"}; an update carries the blocklist's changes,
    "blocklist_added" and "blocklist_removed") when the traffic or the server errors break from the
    rolling baseline. A log that does not exist yet is waited for; with --replay it is an error.

    With --flows, network floods found in flow records raise {"type": "network_alert", "event":
    "open"|"update"|"close", "episode", "target", "vectors", "start", "peak", "peak_pps", "peak_bps",
    "sources", "source_role", "log_time", "detected_at"}, beside the logs' alerts or alone (LOGS optional)."""
    from floodwitness.watch import Watcher, WatchOptions  # noqa: PLC0415
    from floodwitness.watch.alerts import Metrics, NdjsonSink, WebhookSender  # noqa: PLC0415
    from floodwitness.watch.flowwatch import FlowWatcher, FlowWatchOptions  # noqa: PLC0415
    from floodwitness.watch.together import SharedSink, run_together  # noqa: PLC0415

    if not logs and not flow_sources:
        raise UsageError("nothing to watch", hint="Name log files (or - for stdin), or give --flows SOURCE.")
    if victims and not flow_sources:
        raise UsageError("--victim needs --flows", hint="Give the flows to watch with --flows DIR|FILE.")
    sinks: list[Any] = [NdjsonSink(alerts_out, protect=frozenset(logs + flow_sources))]
    hook = WebhookSender(webhook) if webhook else None
    sinks += [hook] if hook else []
    shared = SharedSink(sinks)
    metrics = Metrics(metrics_port) if metrics_port else None
    limit = _memory_limit(memory_limit)
    options = WatchOptions(format=fmt, replay=replay, from_start=from_start, state=state_dir, idle_exit=idle_exit,
                           memory_limit=limit, threads=threads)
    flow_options = FlowWatchOptions(victims=victims or None, replay=replay, from_start=from_start,
                                    idle_exit=idle_exit, memory_limit=limit)
    flow_watcher = None
    try:
        flow_watcher = FlowWatcher(list(flow_sources), flow_options, [shared],
                                   metrics.update if metrics else None) if flow_sources else None
        watcher = Watcher(list(logs), options, [shared], metrics.update if metrics else None) if logs else None
        for spec in [] if quiet or watcher is None else watcher.waiting:
            click.echo(f"{spec}: matches no file yet; waiting for it to appear (like tail -F)", err=True)
        summary, flow_summary = run_together(watcher, flow_watcher)
    finally:
        if flow_watcher is not None:  # also when the logs' watcher could not start
            flow_watcher.close()
        for sink in sinks:
            sink.close()
        if metrics is not None:
            metrics.close()
    if not quiet:
        _watch_summary(summary, flow_summary)


def _watch_summary(summary: Any, flows: Any) -> None:
    if summary is not None:
        rejected = sum(summary.rejected.values())
        click.echo(f"watched {summary.lines:,} lines ({summary.parsed:,} parsed, {rejected:,} rejected) in "
                   f"{summary.seconds:.1f} s: {summary.alerts} alert(s), {summary.events} event(s)", err=True)
        if summary.gaps:
            click.echo(f"the logs' time jumped {summary.gaps} time(s) by more than the baseline's history: "
                       "detection restarted (warm-up included) after each jump", err=True)
    if flows is not None:
        rejected = sum(flows.rejected.values())
        click.echo(f"watched {flows.flows:,} flows ({rejected:,} records rejected) in {flows.seconds:.1f} s: "
                   f"{flows.detections:,} detection(s), {flows.alerts} network episode(s) opened, "
                   f"{flows.events} event(s)", err=True)
        for what, n in (("flows dated implausibly far ahead left out", flows.future_flows),
                        ("flows dropped over the window's cap", flows.dropped_flows),
                        ("nfcapd files nfdump could not read", flows.failed_files)):
            if n:
                click.echo(f"{what}: {n:,}", err=True)


if __name__ == "__main__":
    main()
