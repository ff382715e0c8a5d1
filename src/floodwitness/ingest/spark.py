"""Ingest on Spark: the lines are read, numbered and parsed on the cluster, with the same parse expression
as on DuckDB, and written to the same store layout (``requests/part-FFFFF-NNNNN.parquet`` + manifest).

Inputs are any path or glob Hadoop can list (local paths, ``file://``, ``hdfs://``, ``s3a://``, ``gs://``),
folders (recursively), plain or compressed (Hadoop picks the codec by the name: ``.gz``, ``.bz2``, ``.zst``;
a ``.gz`` is not splittable, so one gzip file is read by one task).

Line numbers: Spark reads a file in splits (byte ranges); each line belongs to exactly one split. A first
pass counts the lines of each split (one small row per split comes back to the driver); a line's number is
then the lines of the file's earlier splits plus its position in its split. The same pass counts what the
accounting needs (lines, bytes, repaired UTF-8, overlong lines), so ``read = parsed + rejected`` is checked
against Spark's own count, as on DuckDB.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import ibis

from floodwitness.errors import FloodwitnessError, FormatError, InputError, UsageError
from floodwitness.formats.detect import SAMPLE_LINES, detect
from floodwitness.formats.json_format import NginxJsonFormat
from floodwitness.ingest.common import (
    IngestOptions,
    InternalError,
    StoredCounts,
    check_accounting,
    compile_sql,
    stored_counts,
)
from floodwitness.ingest.store import REQUESTS, InputRecord, Manifest
from floodwitness.inputs.discover import STDIN, rotation_key
from floodwitness.inputs.lines import LINE_SCHEMA, LONG_LINE_SAMPLES
from floodwitness.inputs.opener import detect_compression
from floodwitness.schema import ARROW_SCHEMA, RAW_SAMPLE_CHARS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from floodwitness.engine.spark import SparkEngine
    from floodwitness.formats.base import LogFormat

#: Decompressed bytes read from the head of each file for format detection.
HEAD_BYTES = 1 << 20
_LINES_VIEW = "fw_lines"
_CODEC_NAMES = {".gz": "gzip", ".bz2": "bzip2", ".zst": "zstd", ".deflate": "deflate", ".lz4": "lz4",
                ".snappy": "snappy"}
_SCHEMES_LOCAL = ("", "file")


@dataclass
class _Input:
    uri: str  # fully qualified (file:/var/log/x.log, s3a://bucket/x.log.gz)
    explicit: bool
    size: int
    compression: str = "none"
    fmt: LogFormat | None = None
    confidence: float | None = None
    file_id: int = -1
    skip_reason: str = ""  # why a found (not named) file was left out

    @property
    def shown(self) -> str:
        """The path as the report shows it: a plain path for local files, the URI otherwise."""
        parsed = urlparse(self.uri)
        return unquote(parsed.path) if parsed.scheme in _SCHEMES_LOCAL else self.uri


@dataclass
class _Split:
    """Per (file, split) counts from the first pass."""

    first_id: int
    lines: int
    bytes: int
    repaired: int
    long: list[tuple[int, int]]  # (row id, length) of overlong lines, a few


def ingest_on_spark(engine: SparkEngine, specs: list[str], work: Path, manifest: Manifest,
                    fixed: LogFormat | None, options: IngestOptions) -> None:
    """Fill ``work`` (a new store folder with ``requests/``) and ``manifest`` from ``specs``, on Spark."""
    hadoop = _Hadoop(engine.session)
    inputs = _discover(hadoop, specs)
    kept: list[_Input] = []
    for item in inputs:
        if _choose_format(hadoop, item, fixed, options.max_line_bytes):
            item.file_id = len(kept)
            kept.append(item)
        else:
            manifest.skipped.append({"path": item.shown, "sha256": _sha256(item.uri), "bytes": item.size,
                                     "reason": item.skip_reason})
    groups: dict[Any, list[_Input]] = {}
    for item in kept:
        if item.fmt is not None:
            groups.setdefault(item.fmt, []).append(item)
    splits: dict[str, dict[int, _Split]] = {}
    parts: dict[int, list[str]] = {item.file_id: [] for item in kept}
    for number, (fmt, members) in enumerate(groups.items()):
        group_splits, group_parts = _parse_group(engine, hadoop, fmt, members, work, number, options)
        splits.update(group_splits)
        for file_id, names in group_parts.items():
            parts[file_id].extend(names)
    written = [str(work / REQUESTS / name) for names in parts.values() for name in names]
    counts = stored_counts(engine, written)
    for item in kept:
        manifest.inputs.append(_record(item, splits.get(item.uri, {}), counts.get(item.file_id, StoredCounts()),
                                       parts[item.file_id], options))


# --- listing and sampling through Hadoop's file systems ---------------------------------------------


class _Hadoop:
    """The few Hadoop FileSystem calls ingest needs, through the driver's JVM."""

    def __init__(self, session: Any) -> None:
        self.jvm = session.sparkContext._jvm
        self.conf = session.sparkContext._jsc.hadoopConfiguration()
        self.codecs = self.jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(self.conf)

    def path(self, uri: str) -> Any:
        return self.jvm.org.apache.hadoop.fs.Path(uri)

    def fs(self, path: Any) -> Any:
        return path.getFileSystem(self.conf)

    def glob(self, spec: str) -> list[Any]:
        path = self.path(spec)
        statuses = self.fs(path).globStatus(path)
        return list(statuses) if statuses is not None else []

    def files_under(self, status: Any) -> Iterator[Any]:
        listing = self.fs(status.getPath()).listFiles(status.getPath(), True)
        while listing.hasNext():
            found = listing.next()
            if not any(part.startswith((".", "_")) for part in found.getPath().toUri().getPath().split("/")):
                yield found

    def head(self, uri: str, size: int) -> tuple[bytes, bytes, str]:
        """(first raw bytes, first ``size`` decompressed bytes, codec name) of ``uri``."""
        path = self.path(uri)
        fs = self.fs(path)
        stream = fs.open(path)
        try:
            raw = _read(self.jvm, stream, 8)
        finally:
            stream.close()
        codec = self.codecs.getCodec(path)
        name = "none" if codec is None else _CODEC_NAMES.get(str(codec.getDefaultExtension()), "compressed")
        stream = fs.open(path)
        try:
            if codec is not None:
                stream = codec.createInputStream(stream)
            data = _read(self.jvm, stream, size)
        finally:
            stream.close()
        return raw, data, name


def _read(jvm: Any, stream: Any, size: int) -> bytes:
    out = jvm.java.io.ByteArrayOutputStream()
    jvm.org.apache.commons.io.IOUtils.copyLarge(stream, out, 0, size)
    return bytes(out.toByteArray())


def _is_uri(spec: str) -> bool:
    scheme = urlparse(spec).scheme
    return len(scheme) > 1  # not a Windows drive letter


def _discover(hadoop: _Hadoop, specs: list[str]) -> list[_Input]:
    """Expand files, globs and folders into fully qualified URIs, rotated series oldest first."""
    if not specs:
        raise InputError("no input given", hint="Name one or more log files, globs, directories or URIs.")
    found: list[_Input] = []
    seen: set[str] = set()
    for spec in specs:
        if spec == STDIN:
            raise UsageError("the Spark engine cannot read standard input (-)",
                             hint="Save the log to a file the cluster can read, or use --engine duckdb.")
        # A plain path is the driver's local file (not the cluster's default file system).
        target = spec if _is_uri(spec) else Path(spec).absolute().as_uri()
        try:
            statuses = hadoop.glob(target)
        except Exception as exc:  # no file system for the scheme, no credentials, unreachable
            raise InputError(f"cannot list: {_java_message(exc)}", path=spec,
                             hint="Check the URI, and that the cluster has the connector and credentials.") from None
        magic = any(ch in spec for ch in "*?[{")
        if not statuses:
            raise InputError("no file matches this pattern" if magic else "no such file", path=spec,
                             hint="Check the path and spelling; quote a pattern so the shell leaves it alone.")
        matches: list[tuple[Any, bool]] = []
        for status in statuses:
            if status.isDirectory():
                inner = list(hadoop.files_under(status))
                if not inner and not magic:
                    raise InputError("directory holds no files", path=spec,
                                     hint="Point at the folder that holds the access logs.")
                matches.extend((f, False) for f in inner)
            else:
                matches.append((status, not magic))
        for status, explicit in sorted(matches, key=lambda m: rotation_key(str(m[0].getPath().toString()))):
            uri = str(status.getPath().toString())
            if uri not in seen:
                seen.add(uri)
                found.append(_Input(uri, explicit, int(status.getLen())))
    return found


def _choose_format(hadoop: _Hadoop, item: _Input, fixed: LogFormat | None, max_line_bytes: int) -> bool:
    """Sample the head of ``item`` and set its format; False when a found (not named) file is not a log."""
    try:
        raw, head, item.compression = hadoop.head(item.uri, HEAD_BYTES)
    except Exception as exc:
        raise InputError(f"cannot open: {_java_message(exc)}", path=item.shown,
                         hint="Check that the file exists and is readable by the cluster.") from None
    magic = detect_compression(raw)
    if magic != "none" and item.compression == "none":
        raise InputError(f"the file is {magic}-compressed but its name does not say so",
                         path=item.shown, hint="Spark picks the decompressor by the file name: rename it with its "
                                               "suffix (.gz, .bz2, .zst), or use --engine duckdb.")
    lines = head.split(b"\n")
    if len(lines) > 1:
        lines = lines[:-1]  # whole lines only (the last piece is empty, cut by the head's size, or unterminated)
    # as the DuckDB engine samples: lines it would reject before parsing (overlong, NUL bytes) left out
    kept = [line for line in lines if len(line) <= max_line_bytes and b"\x00" not in line][:SAMPLE_LINES]
    sample = [line.decode("utf-8", "replace").rstrip("\r") for line in kept]
    if not head:
        item.fmt = None
        return True
    if fixed is not None and not isinstance(fixed, NginxJsonFormat):
        item.fmt = fixed
        return True
    if fixed is not None:
        item.fmt = fixed.bind(sample)
        return True
    try:
        detection = detect(sample, source=item.shown)
    except FormatError as exc:
        if item.explicit:
            raise
        item.skip_reason = exc.message
        return False
    item.fmt, item.confidence = detection.format, detection.confidence
    if isinstance(item.fmt, NginxJsonFormat):
        item.fmt = item.fmt.bind(sample)
    return True


# --- read, number, parse and write one group of files of the same format ----------------------------


def _parse_group(engine: SparkEngine, hadoop: _Hadoop, fmt: LogFormat, members: list[_Input], work: Path,
                 number: int, options: IngestOptions) -> tuple[dict[str, dict[int, _Split]], dict[int, list[str]]]:
    from pyspark.sql import functions as F  # noqa: N812, PLC0415 - optional dependency

    session = engine.session
    by_path = {_canonical(m.uri): m for m in members}
    lines = (session.read.option("lineSep", "\n").text([m.uri for m in members])
             .select(F.col("value"), F.col("_metadata.file_path").alias("fp"),
                     F.col("_metadata.file_block_start").alias("bs"), F.monotonically_increasing_id().alias("rid")))
    length = F.octet_length("value")
    too_long = length > F.lit(options.max_line_bytes)
    try:
        rows = lines.groupBy("fp", "bs").agg(
            F.min("rid").alias("first"), F.count(F.lit(1)).alias("n"), F.sum(length + 1).alias("bytes"),
            F.sum((~F.is_valid_utf8("value")).cast("int")).alias("repaired"),
            F.slice(F.collect_list(F.when(too_long, F.struct("rid", length.alias("len")))), 1,
                    LONG_LINE_SAMPLES).alias("long")).collect()
    except Exception as exc:
        raise _read_error(exc, members) from None
    splits: dict[str, dict[int, _Split]] = {}
    for row in rows:
        member = by_path.get(_canonical(row["fp"]))
        if member is None:
            raise InternalError(f"Spark read a file that was not listed: {row['fp']}",
                                hint="This is a bug in floodwitness; please report it.")
        splits.setdefault(member.uri, {})[int(row["bs"])] = _Split(
            int(row["first"]), int(row["n"]), int(row["bytes"] or 0), int(row["repaired"] or 0),
            [(int(x["rid"]), int(x["len"])) for x in row["long"] or []])
    offsets = []  # (file path as Spark names it, split start, first row id, lines before the split, file id)
    for uri, per_split in splits.items():
        before = 0
        for start in sorted(per_split):
            offsets.append((uri, start, per_split[start].first_id, before, by_path[_canonical(uri)].file_id))
            before += per_split[start].lines
    uri_of = {_canonical(row["fp"]): row["fp"] for row in rows}
    table = session.createDataFrame(
        [(uri_of[_canonical(uri)], start, first, before, file_id) for uri, start, first, before, file_id in offsets],
        "fp string, bs long, first long, before long, file_id int")
    numbered = lines.join(F.broadcast(table), ["fp", "bs"]).select(
        F.col("file_id"), (F.col("rid") - F.col("first") + F.col("before") + 1).alias("line"),
        F.col("value"), length.alias("len"))
    value = F.make_valid_utf8("value")
    nul = F.instr(value, "\u0000") > 0
    view = numbered.select(
        "file_id", "line",
        F.concat(F.when(F.col("len") > options.max_line_bytes, F.substring(value, 1, RAW_SAMPLE_CHARS))
                 .when(nul, F.regexp_replace(value, "\u0000", "?")).otherwise(value), F.lit("\n")).alias("text"),
        F.when(F.col("len") > options.max_line_bytes, F.lit("line_too_long"))
        .when(nul, F.lit("nul_byte")).otherwise(F.lit(None).cast("string")).alias("pre_reject"))
    name = f"{_LINES_VIEW}_{number}_{os.getpid()}"
    view.createOrReplaceTempView(name)
    try:
        source = ibis.table(ibis.Schema.from_pyarrow(LINE_SCHEMA), name=name)
        parsed = session.sql(compile_sql(fmt.parse(source), engine.ibis.compiler))
        # exactly the store's column types (Spark's SQL widens some small integers on the way)
        parsed = parsed.select(*[F.col(f.name).cast(f.dataType) for f in _store_schema().fields])
        staging = work / f".spark-{number}"
        try:
            (parsed.withColumn("_fid", F.col("file_id")).sortWithinPartitions("_fid", "line")
             .write.partitionBy("_fid").option("compression", "none" if options.throwaway else "zstd")
             .parquet(staging.as_uri()))
        except Exception as exc:
            raise _read_error(exc, members) from None
    finally:
        session.catalog.dropTempView(name)
    return splits, _move_parts(staging, work / REQUESTS)


def _store_schema() -> Any:
    from ibis.backends.pyspark.datatypes import PySparkSchema  # noqa: PLC0415 - optional dependency

    return PySparkSchema.from_ibis(ibis.Schema.from_pyarrow(ARROW_SCHEMA))


def _move_parts(staging: Path, requests: Path) -> dict[int, list[str]]:
    """``staging/_fid=K/part-TTTTT-*.parquet`` to ``requests/part-KKKKK-NNNNN.parquet`` in task order (tasks
    read a file's splits in order, so the parts of a file stay in line order)."""
    out: dict[int, list[str]] = {}
    for folder in sorted(staging.glob("_fid=*")):
        file_id = int(folder.name.split("=", 1)[1])
        names = out.setdefault(file_id, [])
        for index, part in enumerate(sorted(folder.glob("part-*.parquet"))):
            name = f"part-{file_id:05d}-{index:05d}.parquet"
            os.replace(part, requests / name)
            names.append(name)
    for leftover in sorted(staging.rglob("*"), reverse=True):
        if leftover.is_dir():
            leftover.rmdir()
        else:
            leftover.unlink()
    staging.rmdir()
    return out


def _record(item: _Input, splits: dict[int, _Split], counts: StoredCounts, parts: list[str],
            options: IngestOptions) -> InputRecord:
    lines_read = sum(s.lines for s in splits.values())
    if not parts and lines_read:
        counts.by_reason["format_mismatch"] = lines_read
    check_accounting(item.shown, lines_read, counts)
    long_lines: list[tuple[int, int]] = []
    before = 0
    for start in sorted(splits):
        split = splits[start]
        long_lines.extend((rid - split.first_id + before + 1, size) for rid, size in split.long)
        before += split.lines
    return InputRecord(
        file_id=item.file_id, path=item.shown, sha256=_sha256(item.uri), bytes=item.size,
        # lines plus their newlines: exact for a plain file, one byte more for a last line without a newline
        bytes_decompressed=item.size if item.compression == "none" else sum(s.bytes for s in splits.values()),
        compression=item.compression,
        format=item.fmt.name if item.fmt else None, format_confidence=item.confidence, lines_read=lines_read,
        lines_parsed=counts.parsed, lines_rejected=counts.rejected,
        rejected_by_reason=dict(sorted(counts.by_reason.items())), reject_samples=counts.samples,
        utf8_repaired=sum(s.repaired for s in splits.values()), long_lines=sorted(long_lines)[:LONG_LINE_SAMPLES],
        complete=True, damage=None, first_ts=counts.first_ts, last_ts=counts.last_ts, parts=parts)


def _canonical(uri: str) -> str:
    """One spelling per file: Spark names files ``file:/a%20b``, Hadoop listings ``file:/a b``."""
    parsed = urlparse(uri)
    scheme = parsed.scheme or "file"
    return f"{scheme}://{parsed.netloc}{unquote(parsed.path)}"


def _sha256(uri: str) -> str:
    """SHA-256 of a local input (read once more on the driver); empty for remote ones, which Spark reads
    where they are and which the driver does not copy."""
    parsed = urlparse(uri)
    if parsed.scheme not in _SCHEMES_LOCAL:
        return ""
    digest = hashlib.sha256()
    with open(unquote(parsed.path), "rb") as stream:
        while block := stream.read(16 << 20):
            digest.update(block)
    return digest.hexdigest()


def _java_message(exc: BaseException) -> str:
    """The line of a Java error that says what went wrong: its root cause (the last ``Caused by:``) when it
    has one, else its first line that is neither a stack frame nor Py4J's (which names only the call)."""
    text = str(getattr(exc, "desc", None) or exc).strip()
    causes = [line.strip()[len("Caused by:"):].strip() for line in text.splitlines()
              if line.strip().startswith("Caused by:")]
    if causes:
        return causes[-1][:300]
    for raw in text.splitlines():
        line = raw.strip().removeprefix(": ")
        if line and not line.startswith(("at ", "Traceback", "JVM stacktrace", "An error occurred while calling")):
            return line[:300]
    return type(exc).__name__


#: Root causes that are the input's fault (damaged or vanished files), not the parse's.
_INPUT_CAUSES = ("EOFException", "IOException", "ZipException", "FileNotFound", "end of input", "GZIP",
                 "BZip2", "codec", "Corrupt", "truncated", "No such file")


def _read_error(exc: BaseException, members: list[_Input]) -> FloodwitnessError:
    """A Spark job over the inputs failed: most often a damaged compressed file (Spark cannot read past the
    damage as the DuckDB engine does), or a file that went away; anything else is a bug in the parse."""
    message = _java_message(exc)
    named = next((m for m in members if m.uri in message or m.shown in message), None)
    if not any(cause.lower() in message.lower() for cause in _INPUT_CAUSES):
        return InternalError(f"Spark failed to parse the input: {message}", path=named.shown if named else None,
                             hint="This is a bug in floodwitness; please report it with the file. The DuckDB "
                                  "engine may read it meanwhile: --engine duckdb.")
    return InputError(f"Spark could not read the input: {message}", path=named.shown if named else None,
                      hint="A damaged compressed file stops Spark (check it with gzip -t / bzip2 -t); the DuckDB "
                           "engine reads such a file up to the damage: --engine duckdb.")
