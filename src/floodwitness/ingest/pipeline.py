"""Read inputs, detect or apply their format, and write the normalized table to a Parquet store.

Per input: the first batch of lines is sampled for format detection, then the whole stream goes
through the engine once (parse + write). The accounting is read back from what was written and
checked against the reader's own line count, so ``read = parsed + rejected`` is verified, not assumed.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import sqlglot

from floodwitness.engine import Engine, is_out_of_memory, memory_guard, out_of_memory
from floodwitness.errors import FloodwitnessError, FormatError, StoreError, UsageError
from floodwitness.formats import LogFormat, get_format
from floodwitness.formats.clientip import TrustedProxies, with_trusted_proxies
from floodwitness.formats.custom import compile_formats
from floodwitness.formats.detect import SAMPLE_LINES, detect
from floodwitness.ingest.common import (
    IngestOptions,
    InternalError,
    StoredCounts,
    check_accounting,
    compile_sql,
    prefetched,
    stored_counts,
)
from floodwitness.ingest.store import (
    MANIFEST,
    REQUESTS,
    InputRecord,
    Manifest,
    new_manifest,
    write_manifest,
)
from floodwitness.inputs import FileAccount, InputFile, discover, iter_line_batches
from floodwitness.inputs.lines import LINE_SCHEMA
from floodwitness.schema import ARROW_SCHEMA

#: progress(path, bytes_read_so_far, total_bytes_or_None)
Progress = Callable[[str, int, int | None], None]


class _NotALogError(Exception):
    """A file found by expanding a folder or glob fits no format: skipped, and recorded as skipped."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__(record["reason"])
        self.record = record


@memory_guard
def ingest(specs: list[str], out: str | Path, *, options: IngestOptions | None = None,
           engine: Engine | None = None, progress: Progress | None = None, overwrite: bool = False) -> Manifest:
    """Ingest ``specs`` (files, globs, directories, ``-``) into a new store at ``out``; with ``options.flows`` also
    the flow inputs into ``out/flows/`` (then ``specs`` may be empty: a store of flows only)."""
    options = options or IngestOptions()
    root = Path(out)
    own = compile_formats(options.log_formats)  # the options first: a bad one fails before any reading
    trust = TrustedProxies.parse(options.trust_proxy)
    fixed = None if options.format == "auto" else get_format(options.format, own)
    if fixed is None and len(own) == 1:
        fixed = own[0]  # one format of the user's own: the logs are in it
    on_spark = engine is not None and engine.name == "spark"
    # Spark lists its inputs itself (any Hadoop file system); with --flows the access logs are optional
    inputs = [] if on_spark or (options.flows and not specs) else discover(specs)
    _check_out(root, overwrite)
    root = root.absolute()  # an engine in another process (Spark's JVM) resolves paths against its own folder
    # Built beside the target and swapped in at the end: a failed run (or an interrupted one) leaves any
    # previous store untouched and no half-written one behind.
    root.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))
    own_engine = engine is None
    engine = engine or Engine()
    manifest = new_manifest(options.to_dict(), datetime.now(UTC).isoformat(timespec="seconds"))
    try:
        (work / REQUESTS).mkdir(parents=True)
        if on_spark:
            from floodwitness.engine.spark import SparkEngine  # noqa: PLC0415 - optional engine
            from floodwitness.ingest.spark import ingest_on_spark  # noqa: PLC0415

            assert isinstance(engine, SparkEngine)
            ingest_on_spark(engine, specs, work, manifest, fixed, options)
        for source in inputs:
            try:
                record = _ingest_one(engine, source, len(manifest.inputs), work, fixed, options, progress,
                                     own=own, trust=trust)
            except _NotALogError as skip:
                manifest.skipped.append(skip.record)
                continue
            manifest.inputs.append(record)
        if options.flows:
            from floodwitness.ingest.flows.base import FlowOptions  # noqa: PLC0415 - flows only when asked
            from floodwitness.ingest.flows.run import ingest_flows  # noqa: PLC0415

            ingest_flows(list(options.flows), work, manifest, FlowOptions(sampling=options.flow_sampling))
        if not manifest.inputs and not manifest.flow_inputs and manifest.skipped:
            first = manifest.skipped[0]
            raise FormatError(f"none of the {len(manifest.skipped)} file(s) found is an access log in a known "
                              f"format (first: {first['path']}: {first['reason']})",
                              hint="Name the log files directly, or give --format (see `floodwitness formats`).")
        write_manifest(work, manifest)
        _swap_in(work, root)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        if own_engine:
            engine.close()
    return manifest


def _check_out(root: Path, overwrite: bool) -> None:
    """Refuse an --out that is a file, or a non-empty folder that is not a store we may replace, or a URI."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:/", str(root)):  # a Path keeps "s3a:/bucket": it would be a local folder
        raise UsageError("the store must be a folder on a local or mounted file system, not a URI", path=str(root),
                         hint="Write it to a mounted shared folder (for Spark: one every executor sees), or copy it "
                              "to object storage afterwards; the logs themselves may be read from any Hadoop URI.")
    if root.exists():
        if not root.is_dir():
            raise StoreError("output exists and is not a directory", path=str(root),
                             hint="Choose a new folder for --out.")
        if any(root.iterdir()) and not (overwrite and (root / MANIFEST).is_file()):
            if overwrite:  # a folder of anything else is never deleted
                raise StoreError("output folder is not a floodwitness store (it has no manifest.json): --overwrite "
                                 "replaces only a store", path=str(root),
                                 hint="Choose a new folder for --out, or empty this one yourself.")
            raise StoreError("output folder is not empty", path=str(root),
                             hint="Choose a new folder, or pass --overwrite to replace an existing store.")


def _swap_in(work: Path, root: Path) -> None:
    """Put the finished store ``work`` at ``root``, replacing an empty folder or an old store."""
    old = None
    if root.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
        os.replace(root, old / "store")
    os.replace(work, root)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _sample(batch: pa.RecordBatch | None) -> list[str]:
    if batch is None:
        return []
    clean = batch.filter(batch.column("pre_reject").is_null()) if batch.num_rows else batch
    texts = clean.column("text").slice(0, SAMPLE_LINES).to_pylist()
    return [t.rstrip("\r\n") for t in texts]


def _with_progress(batches: Iterator[pa.RecordBatch], account: FileAccount, total: int | None,
                   progress: Progress | None) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        if progress is not None:
            progress(account.path, account.raw.bytes_read, total)
        yield batch


def _ingest_one(engine: Engine, source: InputFile, file_id: int, root: Path, fixed: LogFormat | None,
                options: IngestOptions, progress: Progress | None, *, own: tuple[LogFormat, ...] = (),
                trust: TrustedProxies | None = None) -> InputRecord:
    account, batches = iter_line_batches(source, file_id, max_line_bytes=options.max_line_bytes,
                                         batch_bytes=options.batch_bytes)
    total = None if source.is_stdin else Path(source.path).stat().st_size
    batches = _with_progress(batches, account, total, progress)
    first = next(batches, None)
    fmt: LogFormat | None = fixed
    confidence: float | None = None
    if first is None or first.num_rows == 0:
        fmt = None
    else:
        sample = _sample(first)
        if fixed is not None:
            fmt = fixed.bind(sample)
        else:
            try:
                detection = detect(sample, source=source.path, extra=own)
            except FormatError as exc:
                if source.explicit:
                    raise
                for _ in batches:  # read to the end so the hash and size cover the whole file
                    pass
                raise _NotALogError({"path": source.path, "sha256": account.raw.sha256, "bytes": account.raw.bytes_read,
                                "reason": exc.message}) from None
            fmt, confidence = detection.format, detection.confidence
    parts: list[str] = []
    if fmt is not None and first is not None:
        if trust is not None and trust:
            fmt = with_trusted_proxies(fmt, trust)
        parts = _parse_to_parquet(engine, fmt, itertools.chain([first], batches), source, file_id, root, options)
    return _record(engine, account, fmt, confidence, root, parts)


LINES_TABLE = "fw_lines"


@functools.lru_cache(maxsize=64)
def parse_sql(fmt: LogFormat) -> str:
    """The engine SQL that parses table ``fw_lines`` with ``fmt``: compiled once per format.

    ibis takes the better part of a second to compile a parse, far more than a small file takes to
    parse, so the SQL is also kept on disk (see ``_sql_cache_path``) and reused by later runs.
    """
    path = _sql_cache_path(fmt)
    if path is not None:
        try:
            return path.read_bytes().decode("utf-8")  # bytes: text mode would turn a CR literal into LF
        except OSError:
            pass
    lines = ibis.table(ibis.Schema.from_pyarrow(LINE_SCHEMA), name=LINES_TABLE)
    sql = compile_sql(fmt.parse(lines), "duckdb")
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(sql.encode("utf-8"))
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only or full cache folder only costs the compile next time
    return sql


def _sql_cache_path(fmt: LogFormat) -> Path | None:
    """Where the compiled parse of ``fmt`` is cached: ``$FLOODWITNESS_CACHE_DIR`` (empty: no cache), else
    ``$XDG_CACHE_HOME/floodwitness`` or ``~/.cache/floodwitness``. The name hashes everything the SQL
    depends on: the format (and its fast-path layout), the parser's source and the ibis/sqlglot versions."""
    root = os.environ.get("FLOODWITNESS_CACHE_DIR")
    if root is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "floodwitness")
    if not root:
        return None
    key = hashlib.sha256()
    for part in (repr(fmt), repr(getattr(fmt, "pieces", None)), _parser_fingerprint(), ibis.__version__,
                 str(getattr(sqlglot, "__version__", ""))):
        key.update(part.encode("utf-8", "replace") + b"\0")
    return Path(root) / "sql" / f"parse-{key.hexdigest()[:32]}.sql"


@functools.cache
def _parser_fingerprint() -> str:
    """Hash of the source that shapes the parse SQL (so an edited parser never reuses a stale cache)."""
    import floodwitness.formats as formats_pkg  # noqa: PLC0415 - only its location is needed
    import floodwitness.schema as schema_mod  # noqa: PLC0415

    files = [*sorted(Path(formats_pkg.__file__).parent.glob("*.py")), Path(schema_mod.__file__), Path(__file__),
             Path(__file__).with_name("common.py")]  # compile_sql
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _groups(batches: Iterator[pa.RecordBatch], group_bytes: int) -> Iterator[pa.Table]:
    """Gather batches into tables of about ``group_bytes`` of text: the unit the engine parses in parallel."""
    pending: list[pa.RecordBatch] = []
    size = 0
    for batch in batches:
        pending.append(batch)
        size += batch.nbytes
        if size >= group_bytes:
            yield engine_table(pending)
            pending, size = [], 0
    if pending:
        yield engine_table(pending)


#: Rows per Arrow batch handed to the engine: DuckDB scans an Arrow table a batch per task.
ENGINE_BATCH_ROWS = 8192


def engine_table(batches: list[pa.RecordBatch]) -> pa.Table:
    """``batches`` as a table of small batches (views, no copy), so the engine spreads them over its threads."""
    table = pa.Table.from_batches(batches, schema=LINE_SCHEMA)
    return pa.Table.from_batches(table.to_batches(ENGINE_BATCH_ROWS), schema=LINE_SCHEMA)


def _parse_to_parquet(engine: Engine, fmt: LogFormat, batches: Iterator[pa.RecordBatch], source: InputFile,
                      file_id: int, root: Path, options: IngestOptions) -> list[str]:
    """Parse every batch with ``fmt`` and write one Parquet part per group of batches."""
    table_name = LINES_TABLE
    parts: list[str] = []
    try:
        with engine.parquet_sink(throwaway=options.throwaway) as sink:
            for index, group in enumerate(prefetched(_groups(batches, options.group_bytes))):
                sql = parse_sql(fmt)  # compiled once per format (cached); a W3C header change gives a new one
                engine.register_table(table_name, group)
                try:
                    part = f"part-{file_id:05d}-{index:05d}.parquet"
                    sink.write(sql, str(root / REQUESTS / part), ARROW_SCHEMA)
                    parts.append(part)
                finally:
                    engine.unregister(table_name)
                fmt = fmt.after(group)
    except FloodwitnessError:
        raise
    except Exception as exc:  # an engine failure is a bug: report it naming the file, not a traceback
        if is_out_of_memory(exc):  # ... except running out of the memory it was allowed
            raise out_of_memory(exc) from None
        raise InternalError(f"parsing failed: {exc}", path=source.path,
                            hint="This is a bug in floodwitness; please report it with the file.") from exc
    return parts


def _record(engine: Engine, account: FileAccount, fmt: LogFormat | None, confidence: float | None,
            root: Path, parts: list[str]) -> InputRecord:
    counts = StoredCounts()
    if parts:
        counts = stored_counts(engine, [str(root / REQUESTS / part) for part in parts]).get(account.file_id, counts)
    elif account.lines_read:
        # Lines were read but none could go to a format (e.g. a file of only overlong lines).
        counts.by_reason["format_mismatch"] = account.lines_read
    check_accounting(account.path, account.lines_read, counts)
    return InputRecord(
        file_id=account.file_id, path=account.path, sha256=account.raw.sha256, bytes=account.raw.bytes_read,
        bytes_decompressed=account.bytes_decompressed, compression=account.raw.compression,
        format=fmt.name if fmt else None, format_confidence=confidence, lines_read=account.lines_read,
        lines_parsed=counts.parsed, lines_rejected=counts.rejected,
        rejected_by_reason=dict(sorted(counts.by_reason.items())), reject_samples=counts.samples,
        utf8_repaired=account.utf8_repaired, long_lines=list(account.long_lines), complete=account.complete,
        damage=account.raw.damage, first_ts=counts.first_ts, last_ts=counts.last_ts, parts=parts)
