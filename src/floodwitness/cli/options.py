"""The command line's shared pieces: the options several commands take (input, engine, resources), progress on
stderr, writing files, and reading times. The commands themselves are in :mod:`floodwitness.cli`."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from floodwitness.engine import ENGINES, MIN_MEMORY_LIMIT, Engine, EngineConfig, memory_bytes, open_engine
from floodwitness.errors import UsageError
from floodwitness.formats import ALIASES, FORMATS, format_names
from floodwitness.ingest import IngestOptions
from floodwitness.render.files import write_atomic
from floodwitness.safe import json_text, terminal_safe

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


def _stdout() -> Console:
    return Console(highlight=False, soft_wrap=False)



@contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[str, int, int | None], None] | None]:
    """A progress bar on stderr, only when stderr is a terminal and not --quiet."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(path: str, done: int, total: int | None) -> None:
            if path not in tasks:
                tasks[path] = bar.add_task(terminal_safe(os.path.basename(path), 40), total=total)
            bar.update(tasks[path], completed=done)

        yield update



@contextmanager
def _stages(quiet: bool) -> Iterator[Callable[[str], None] | None]:
    """A status line on stderr naming the analysis stage under way (timeline, incident i/n, report), only when
    stderr is a terminal and not --quiet: the analysis calls it a few times per run, never per row."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    with Console(stderr=True).status("analysing: timeline") as status:

        def update(name: str) -> None:
            status.update(f"analysing: {name}")

        yield update



def _size(count: int) -> str:
    if count < 1000:
        return f"{count} bytes"
    value = float(count)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 999.95 or unit == "TB":
            break
    return f"{value:.1f} {unit}"



def _write(path: str, text: str, *, protect: frozenset[str] = frozenset(), what: str, quiet: bool) -> None:
    """Write an output file (atomically; never over an input) and, unless ``quiet``, say so on stderr."""
    write_atomic(path, text, protect=protect, what=what)
    if not quiet:
        click.echo(f"wrote {terminal_safe(path, None)} ({_size(os.path.getsize(path))})", err=True)



def _write_json(target: str, data: Any, protect: frozenset[str] = frozenset(), *, quiet: bool = False,
                what: str = "the JSON report") -> None:
    text = json_text(data)
    if target == "-":
        click.echo(text)
        return
    _write(target, text + "\n", protect=protect, what=what, quiet=quiet)



def _source_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--log-format, --trust-proxy and --trust-cdn: how to read the logs, shared by ingest and analyze."""
    for option in reversed((
        click.option("--log-format", "log_formats", multiple=True, metavar="SPEC",
                     help="Your own format: nginx:'<log_format string>' or apache:'<LogFormat string>', or @FILE "
                          "(TOML, [formats.NAME] tables with nginx = or apache =). Repeatable."),
        click.option("--trust-proxy", "trust_proxy", multiple=True, metavar="CIDR",
                     help="A proxy you run: from these peers the client is the right-most X-Forwarded-For "
                          "entry not in a trusted range. Repeatable. From any other peer the header is ignored."),
        click.option("--trust-cdn", "trust_cdn", multiple=True, metavar="NAME",
                     help="Trust a CDN's bundled, dated range list like --trust-proxy (cloudflare)."),
    )):
        command = option(command)
    return command



def _flow_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--flows and --flow-sampling: the flow records and packet captures read beside the logs (ingest, analyze)."""
    for option in reversed((
        click.option("--flows", "flows", multiple=True, metavar="FILE_OR_DIR",
                     help="Flow records or packets beside the logs, on one timeline (repeatable; LOGS become "
                          "optional): packet captures (pcap, pcapng), nfcapd files or folders of them (needs nfdump), "
                          "nfdump CSV/JSON exports, captures of NetFlow v5/v9/IPFIX export datagrams; recognised by "
                          "content. Stored in the store's flows/ folder."),
        click.option("--flow-sampling", type=click.IntRange(1), metavar="N",
                     help="The flow exports are 1:N packet-sampled with counts not yet scaled: multiply them by N (a "
                          "rate the input announces itself is always used)."),
    )):
        command = option(command)
    return command


def _check_format(fmt: str, log_formats: tuple[str, ...] = ()) -> None:
    if fmt != "auto" and fmt not in FORMATS and fmt not in ALIASES and not log_formats:
        raise UsageError(f"unknown format {fmt!r}", hint="Choose auto or one of: " + ", ".join(format_names()))



def _source(fmt: str, log_formats: tuple[str, ...], trust_proxy: tuple[str, ...],
            trust_cdn: tuple[str, ...], **extra: Any) -> IngestOptions:
    _check_format(fmt, log_formats)
    return IngestOptions(format=fmt, log_formats=log_formats,
                         trust_proxy=(*trust_proxy, *(f"cdn:{name}" for name in trust_cdn)), **extra)



def _memory_limit(value: str | None) -> str | None:
    """``--memory-limit``, checked before any work so a typo or a limit below the floor is a clear error."""
    if value is not None:
        memory_bytes(value)
    return value



def _resource_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--memory-limit`` and ``--threads``: how much of a busy server the engine may take."""
    command = click.option("--threads", type=click.IntRange(1), metavar="N",
                           help="Engine threads (DuckDB; default: one per core).")(command)
    return click.option("--memory-limit", metavar="SIZE",
                        help="Most memory the engine may hold, e.g. 2GB (DuckDB; default 80% of RAM; at least "
                             f"{MIN_MEMORY_LIMIT // 10**6}MB); beyond it, it spills to a temporary folder where it "
                             "can.")(command)



def _engine_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--engine``, ``--spark-master``, ``--spark-conf``, ``--memory-limit``, ``--threads``: the same on every
    command that reads logs."""
    command = _resource_options(command)
    command = click.option("--spark-conf", "spark_conf", multiple=True, metavar="KEY=VALUE",
                           help="A Spark setting (repeatable), e.g. spark.executor.memory=8g.")(command)
    command = click.option("--spark-master", metavar="URL",
                           help="Spark master (local[4], spark://host:7077, yarn...); default: spark-submit's, "
                                "else local[*].")(command)
    return click.option("--engine", type=click.Choice(ENGINES), default="duckdb", show_default=True,
                        help="Where the parse and the aggregations run: DuckDB in this process, or Spark "
                             "(needs floodwitness[spark] and Java 17).")(command)



def _open_engine(engine: str, spark_master: str | None, spark_conf: tuple[str, ...], memory_limit: str | None,
                 threads: int | None) -> Engine | None:
    """The engine the options name; None for the default (the library opens DuckDB itself)."""
    if engine == "duckdb":
        if spark_master or spark_conf:
            raise UsageError("--spark-master and --spark-conf apply to the Spark engine only",
                             hint="Add --engine spark, or drop them.")
        if memory_limit is None and threads is None:
            return None
        return Engine(EngineConfig(memory_limit=_memory_limit(memory_limit), threads=threads))
    if memory_limit is not None or threads is not None:
        raise UsageError("--memory-limit and --threads apply to the DuckDB engine",
                         hint="On Spark, set e.g. --spark-conf spark.driver.memory=4g --spark-conf "
                              "spark.executor.cores=4.")
    pairs = []
    for item in spark_conf:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--spark-conf {item!r} is not KEY=VALUE",
                             hint="Write e.g. --spark-conf spark.executor.memory=8g.")
        pairs.append((key.strip(), value))
    return open_engine(EngineConfig(name=engine, spark_master=spark_master, spark_conf=tuple(pairs)))



def _parse_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{option}: {value!r} is not a time",
                         hint="Use ISO 8601, e.g. 2024-05-17T10:05:00Z or 2024-05-17 10:05+02:00.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).replace(tzinfo=None)



def _parse_range(value: str | None) -> tuple[datetime, datetime] | None:
    if value is None:
        return None
    if ".." not in value:
        raise UsageError(f"--baseline: {value!r} is not a range", hint="Use --baseline START..END (ISO 8601 times).")
    start, end = value.split("..", 1)
    first, last = _parse_time(start, "--baseline"), _parse_time(end, "--baseline")
    assert first is not None and last is not None
    return first, last
