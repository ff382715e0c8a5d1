"""Engine conformance: the same ingest and the same analysis on DuckDB and on Spark (local mode) agree.

One small simulated incident (plus a folder of awkward inputs) goes through both engines. The stores must
hold the same rows; the accounting, verdict, incident windows, findings, top sources and blocklist must be
identical; only the approximate aggregates differ, within the tolerances stated here:

* distinct clients per minute (HyperLogLog on both engines, different implementations): each engine within
  ``CLIENTS_TOLERANCE`` of the exact count;
* request-time percentiles per minute (DuckDB's t-digest interpolates, Spark's approx_percentile returns a
  value of the data): within ``PERCENTILE_TOLERANCE`` of each other.

Spark needs PySpark (the ``spark`` and ``test`` extras install it) and Java 17; without them the Spark side
is skipped with the reason, and the error messages for a missing PySpark or Java are tested on their own.
"""

from __future__ import annotations

import bz2
import gzip
import json
import os
import re
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from floodwitness.analysis.dataset import open_dataset
from floodwitness.cli import main
from floodwitness.engine import EngineConfig, open_engine
from floodwitness.engine.spark import SparkUnavailableError, java_version, require_java, require_pyspark
from floodwitness.errors import InputError, UsageError
from floodwitness.formats import FORMATS
from floodwitness.ingest import ingest
from floodwitness.ingest.common import InternalError
from floodwitness.report import analyze
from floodwitness.simulate import simulate

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

#: relative, HyperLogLog on both engines: Spark's approx_count_distinct has a 5% relative standard deviation
#: (its default), DuckDB's about 1.6%; three standard deviations of Spark's
CLIENTS_TOLERANCE = 0.15
#: rank, not value: an approximate percentile p lies between the exact percentiles p - 0.03 and p + 0.03
#: (DuckDB's t-digest interpolates, Spark's approx_percentile returns a value of the data)
PERCENTILE_RANK_TOLERANCE = 0.03
#: Report fields that are approximate by design (compared below), or that name the run rather than the data.
APPROXIMATE = {".timeline.clients", ".timeline.p50_request_time", ".timeline.p95_request_time",
               ".sources.top[].distinct_paths"}
RUN_FIELDS = {".generated_at", ".parameters.store"}


def _spark_missing() -> str | None:
    try:
        require_pyspark()
        require_java()
    except SparkUnavailableError as exc:
        return str(exc)
    return None


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """One local[2] SparkSession for the module, tuned for tiny data (few partitions, quick JIT)."""
    reason = _spark_missing()
    if reason:
        pytest.skip(f"Spark is not available: {reason}")
    from floodwitness.engine.spark import spark_session

    session = spark_session("local[2]", {
        "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1", "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2", "spark.sql.adaptive.enabled": "false",
        "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1",
        # small splits, so a file is read by several tasks and line numbering across splits is exercised
        "spark.sql.files.maxPartitionBytes": str(1 << 20)})
    yield session
    session.stop()


def _awkward(folder: Path, sample: list[bytes]) -> None:
    """Inputs that test the line reader: compressed, CRLF, NUL, bad UTF-8, overlong, no final newline."""
    lines = list(sample[:600])
    lines[3] = b""
    lines[4] = b"# a comment"
    lines[5] += b"\r"
    lines[6] = lines[6][:40] + b"\x00\x00" + lines[6][40:]
    lines[7] = lines[7][:30] + b"\xff\xfe" + lines[7][30:]
    lines[8] = b"x" * 70_000
    lines[9] = b"not a request at all"
    lines[10] = lines[10].replace(b"/20", b"/Xx", 1)  # a bad timestamp
    folder.mkdir()
    (folder / "plain with space.log").write_bytes(b"\n".join(lines))  # no final newline
    (folder / "rotated.log.1.gz").write_bytes(gzip.compress(b"\n".join(sample[600:900]) + b"\n"))
    (folder / "rotated.log.2.bz2").write_bytes(bz2.compress(b"\n".join(sample[900:1200]) + b"\n"))
    (folder / "README.txt").write_bytes(b"these are the logs\nof the incident\n")  # found, not a log: skipped


@pytest.fixture(scope="module")
def runs(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("conformance")
    truth = simulate("mirai", folder, seed=3, hours=1.0, scale=0.2)
    log = folder / "access.log"
    _awkward(folder / "awkward", log.read_bytes().split(b"\n")[:1200])
    out: dict[str, Any] = {"truth": truth, "folder": folder}
    engine = open_engine(session=spark)
    try:
        for name, runner in (("duckdb", None), ("spark", engine)):
            out[f"{name}_awkward"] = ingest([str(folder / "awkward")], folder / f"awkward-{name}", engine=runner)
            ingest([str(log)], folder / f"store-{name}", engine=runner)
        data = open_dataset([str(folder / "store-duckdb")])
        try:
            out["duckdb"] = analyze(data)
        finally:
            data.close()
        data = open_dataset([str(folder / "store-spark")], engine=engine)
        out["spark"] = analyze(data)  # closing the engine leaves the test's session running
    finally:
        engine.close()
    return out


def _rows(store: Path) -> pa.Table:
    table = pa.concat_tables(pq.read_table(p) for p in sorted((store / "requests").glob("*.parquet")))
    return table.replace_schema_metadata(None).sort_by([("file_id", "ascending"), ("line", "ascending")])


def _manifest(store: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((store / "manifest.json").read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("name", ["store", "awkward"])
def test_both_engines_store_the_same_rows(runs: dict[str, Any], name: str) -> None:
    duck, spark = _rows(runs["folder"] / f"{name}-duckdb"), _rows(runs["folder"] / f"{name}-spark")
    assert spark.schema == duck.schema
    assert spark.num_rows == duck.num_rows > 0
    for column in duck.column_names:
        assert spark.column(column).equals(duck.column(column)), column


@pytest.mark.parametrize("name", ["store", "awkward"])
def test_both_engines_account_for_every_line_the_same_way(runs: dict[str, Any], name: str) -> None:
    duck, spark = _manifest(runs["folder"] / f"{name}-duckdb"), _manifest(runs["folder"] / f"{name}-spark")
    assert spark["skipped"] == duck["skipped"]
    assert len(spark["inputs"]) == len(duck["inputs"])
    for mine, theirs in zip(spark["inputs"], duck["inputs"], strict=True):
        for key in theirs:
            if key == "parts":  # Spark writes a part per task, DuckDB one per 64 MB of text
                continue
            if key == "bytes_decompressed" and theirs["compression"] != "none":
                # Spark counts lines and their newlines: one byte more when the last line has none
                assert 0 <= mine[key] - theirs[key] <= 1
                continue
            assert mine[key] == theirs[key], (theirs["path"], key)


def test_the_awkward_inputs_are_really_awkward(runs: dict[str, Any]) -> None:
    """The conformance above means something: every kind of rejection and repair is in the awkward set."""
    manifest = runs["spark_awkward"]
    plain = next(i for i in manifest.inputs if i.path.endswith("plain with space.log"))
    assert {"empty_line", "comment", "nul_byte", "line_too_long", "format_mismatch", "bad_timestamp"} <= set(
        plain.rejected_by_reason)
    assert plain.utf8_repaired == 1 and plain.long_lines == [(9, 70_000)]
    assert plain.lines_read == plain.lines_parsed + plain.lines_rejected == 600
    assert {i.compression for i in manifest.inputs} == {"none", "gzip", "bzip2"}
    assert [os.path.basename(i.path) for i in manifest.inputs] == [
        "plain with space.log", "rotated.log.2.bz2", "rotated.log.1.gz"]  # oldest rotation first
    assert [os.path.basename(s["path"]) for s in manifest.skipped] == ["README.txt"]


def _differences(a: Any, b: Any, path: str = "") -> Iterator[str]:
    if re.sub(r"\[\d+\]", "[]", path) in APPROXIMATE or path in RUN_FIELDS:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            yield from _differences(a.get(key), b.get(key), f"{path}.{key}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _differences(x, y, f"{path}[{i}]")
    elif a != b:
        yield f"{path}: {a!r:.80} != {b!r:.80}"


def _same_store(report: dict[str, Any], store: Path) -> Any:
    """The report with its store's folder written as <store> (the evidence queries name it)."""
    return json.loads(json.dumps(report, default=str).replace(str(store), "<store>"))


def test_the_analysis_is_identical_on_both_engines(runs: dict[str, Any]) -> None:
    """Verdict, incidents, findings with their evidence, sources, targets, blocklist, rate limits: all of it."""
    duck = _same_store(runs["duckdb"], runs["folder"] / "store-duckdb")
    spark = _same_store(runs["spark"], runs["folder"] / "store-spark")
    assert duck["verdict"]["kind"] == runs["truth"].expected_verdict
    assert duck["mitigation"]["blocklist"], "the incident must produce a blocklist for the comparison to bite"
    assert list(_differences(duck, spark)) == []


def test_approximate_aggregates_are_within_the_stated_tolerance(runs: dict[str, Any]) -> None:
    import duckdb

    duck, spark = runs["duckdb"]["timeline"], runs["spark"]["timeline"]
    parts = str(runs["folder"] / "store-duckdb" / "requests" / "*.parquet")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    r = PERCENTILE_RANK_TOLERANCE
    exact = con.execute(
        f"SELECT count(DISTINCT client_ip), quantile_cont(request_time, [{0.5 - r}, {0.5 + r}, {0.95 - r}, "
        f"{0.95 + r}]) FROM read_parquet('{parts}') WHERE reject_reason IS NULL "
        "GROUP BY date_trunc('minute', ts) ORDER BY date_trunc('minute', ts)").fetchall()
    assert len(exact) == len(duck["clients"]) == len(spark["clients"])
    for engine in (duck, spark):
        for minute, (clients, (p50_lo, p50_hi, p95_lo, p95_hi)) in enumerate(exact):
            assert abs(engine["clients"][minute] - clients) <= CLIENTS_TOLERANCE * clients + 1, (minute, clients)
            assert p50_lo - 1e-3 <= engine["p50_request_time"][minute] <= p50_hi + 1e-3, minute
            assert p95_lo - 1e-3 <= engine["p95_request_time"][minute] <= p95_hi + 1e-3, minute
    for mine, theirs in zip(runs["spark"]["sources"]["top"], runs["duckdb"]["sources"]["top"], strict=True):
        # distinct paths per client: HyperLogLog on both engines
        assert abs(mine["distinct_paths"] - theirs["distinct_paths"]) <= CLIENTS_TOLERANCE * theirs["distinct_paths"] + 1


def test_cli_analyze_on_spark(spark: Any, runs: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """`--engine spark --spark-conf` reach the engine (the test's session is reused: getOrCreate)."""
    monkeypatch.setattr(spark, "stop", lambda: None)  # the CLI stops its session; this one serves the module
    store = runs["folder"] / "store-spark"
    result = CliRunner().invoke(main, ["analyze", str(store), "--engine", "spark", "--spark-master", "local[2]",
                                       "--spark-conf", "spark.sql.shuffle.partitions=2", "--json", "-", "--quiet",
                                       "--since", runs["duckdb"]["incidents"][0]["start"]])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["verdict"]["kind"] == runs["duckdb"]["verdict"]["kind"]


#: nginx JSON (ISO 8601 times: offsets, fractions, Z, a bad one) and a $msec format (epoch seconds)
_ISO_LINES = [
    {"time_iso8601": "2024-05-17T10:05:03+02:00", "remote_addr": "203.0.113.7", "request": "GET /?q=1 HTTP/1.1",
     "status": "200", "body_bytes_sent": "612", "request_time": "0.004", "http_user_agent": "curl/8"},
    {"time_iso8601": "2024-05-17T08:05:03.250Z", "remote_addr": "2001:db8::1", "request": "GET /a HTTP/2.0",
     "status": "404", "body_bytes_sent": "0"},
    {"time_iso8601": "2024-02-29T23:59:59.999999-05:30", "remote_addr": "198.51.100.2", "request": "POST /l",
     "status": "502", "body_bytes_sent": "-"},
    {"time_iso8601": "2024-13-01T00:00:00+00:00", "remote_addr": "198.51.100.3", "request": "GET / HTTP/1.1",
     "status": "200", "body_bytes_sent": "1"},
]
_MSEC_FORMAT = 'nginx:$remote_addr [$msec] "$request" $status $body_bytes_sent'
_MSEC_LINES = ['203.0.113.9 [1715933103.123] "GET / HTTP/1.1" 200 5', '203.0.113.9 [1715933104] "GET /b HTTP/1.1" 503 0',
               '203.0.113.9 [soon] "GET / HTTP/1.1" 200 5']


@pytest.mark.parametrize("kind", ["iso", "msec"])
def test_both_engines_read_iso_and_epoch_times(spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               kind: str) -> None:
    """Every time converter compiles for Spark too (only CLF times are in the conformance run above), and a
    relative store path works on both engines."""
    from floodwitness.ingest import IngestOptions

    monkeypatch.chdir(tmp_path)
    if kind == "iso":
        text, options = "\n".join(json.dumps(line) for line in _ISO_LINES), IngestOptions()
    else:
        text, options = "\n".join(_MSEC_LINES), IngestOptions(log_formats=(_MSEC_FORMAT,))
    (tmp_path / "access.log").write_text(text + "\n", encoding="utf-8")
    engine = open_engine(session=spark)
    try:
        for name, runner in (("duckdb", None), ("spark", engine)):
            ingest(["access.log"], f"store-{name}", engine=runner, options=options)
    finally:
        engine.close()
    duck, spark_rows = _rows(tmp_path / "store-duckdb"), _rows(tmp_path / "store-spark")
    assert spark_rows.equals(duck)
    times = [t.isoformat() if t else None for t in duck.column("ts").to_pylist()]
    if kind == "iso":
        assert times == ["2024-05-17T08:05:03+00:00", "2024-05-17T08:05:03.250000+00:00",
                         "2024-03-01T05:29:59.999999+00:00", None]
    else:
        assert times == ["2024-05-17T08:05:03.123000+00:00", "2024-05-17T08:05:04+00:00", None]
    assert duck.column("reject_reason").to_pylist()[-1] == "bad_timestamp"


def test_every_format_parses_the_same_on_both_engines(spark: Any, tmp_path: Path) -> None:
    """Each built-in format's example line, and that line cut short (a mismatch), in a file of its own: both
    engines detect the format and store the same rows, so the parse of every format compiles for Spark (its
    regex dialect, its integer types)."""
    folder = tmp_path / "logs"
    folder.mkdir()
    for name, fmt in FORMATS.items():
        lines = [fmt.example, fmt.example[: len(fmt.example) // 2]]
        (folder / f"{name}.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    engine = open_engine(session=spark)
    try:
        manifests = {engine_name: ingest([str(folder)], tmp_path / f"store-{engine_name}", engine=runner)
                     for engine_name, runner in (("duckdb", None), ("spark", engine))}
    finally:
        engine.close()
    for manifest in manifests.values():
        assert sorted((os.path.basename(i.path), i.format) for i in manifest.inputs) == sorted(
            (f"{name}.log", name) for name in FORMATS)
        assert all(i.lines_parsed >= 1 for i in manifest.inputs)
    duck, spark_rows = _rows(tmp_path / "store-duckdb"), _rows(tmp_path / "store-spark")
    assert spark_rows.num_rows == duck.num_rows == 2 * len(FORMATS)
    for column in duck.column_names:
        assert spark_rows.column(column).equals(duck.column(column)), column


# --- without Spark: the errors that say what to install ------------------------------------------------


def test_engine_spark_without_pyspark_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import builtins

    real_import = builtins.__import__

    def no_pyspark(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "pyspark" or name.startswith("pyspark."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyspark)
    log = tmp_path / "a.log"
    log.write_text('1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2326\n')
    result = CliRunner().invoke(main, ["ingest", str(log), "--out", str(tmp_path / "s"), "--engine", "spark"])
    assert result.exit_code == 1
    assert result.output == ("Error: --engine spark needs PySpark, which is not installed\n"
                             "Install the Spark extra: pip install 'floodwitness[spark]' (PySpark 4.0; it also "
                             "needs Java 17).\n")


def test_engine_spark_without_java_says_java_17(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    with pytest.raises(SparkUnavailableError) as caught:
        require_java()
    assert str(caught.value) == (
        "--engine spark needs Java 17 (PySpark 4 runs on the JVM), and no java was found\n"
        "Install a Java 17 runtime (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) or point JAVA_HOME at one.")
    old = tmp_path / "old-jdk" / "bin"
    old.mkdir(parents=True)
    fake = old / "java"
    fake.write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    fake.chmod(0o755)
    assert java_version(str(fake)) == 11
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "old-jdk"))
    with pytest.raises(SparkUnavailableError, match="needs Java 17 or newer, but java is version 11"):
        require_java()


def test_spark_options_need_the_spark_engine(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["analyze", str(tmp_path), "--spark-master", "local[2]"])
    assert result.exit_code == 1
    assert result.output == ("Error: --spark-master and --spark-conf apply to the Spark engine only\n"
                             "Add --engine spark, or drop them.\n")
    result = CliRunner().invoke(main, ["ingest", str(tmp_path), "-o", str(tmp_path / "s"), "--engine", "spark",
                                       "--spark-conf", "novalue"])
    assert result.exit_code == 1
    assert "Error: --spark-conf 'novalue' is not KEY=VALUE" in result.output


@pytest.mark.parametrize(("text", "kind", "shown"), [
    ("An error occurred while calling o12.parquet.\n: org.apache.spark.SparkException: Job aborted\n\tat x.y(Z)\n"
     "Caused by: java.io.EOFException: Unexpected end of input stream\n\tat a.b(C)", InputError,
     "java.io.EOFException: Unexpected end of input stream"),
    ("An error occurred while calling z:org.apache.commons.io.IOUtils.copyLarge.\n"
     ": java.io.EOFException: Unexpected end of input stream\n\tat a.b(C)", InputError,
     "java.io.EOFException: Unexpected end of input stream"),
    ("An error occurred while calling o4.parquet.\n: org.apache.spark.SparkException: Job aborted\n"
     "Caused by: java.util.regex.PatternSyntaxException: Unknown inline modifier near index 3", InternalError,
     "java.util.regex.PatternSyntaxException: Unknown inline modifier near index 3"),
])
def test_spark_errors_name_their_root_cause(text: str, kind: type, shown: str) -> None:
    """A damaged file is the input's fault; any other failure of the parse job is reported as a bug, with the
    Java root cause in the message (Py4J's first line names only the call)."""
    from floodwitness.ingest.spark import _read_error

    error = _read_error(RuntimeError(text), [])
    assert type(error) is kind
    assert error.message.endswith(shown)


def test_engine_names() -> None:
    with pytest.raises(UsageError, match="unknown engine 'polars'"):
        open_engine(EngineConfig(name="polars"))


def test_store_written_by_spark_is_read_by_duckdb(runs: dict[str, Any]) -> None:
    """The Spark store is an ordinary store: DuckDB analyses it to the same report."""
    data = open_dataset([str(runs["folder"] / "store-spark")])
    try:
        report = analyze(data)
    finally:
        data.close()
    assert list(_differences(_same_store(runs["duckdb"], runs["folder"] / "store-duckdb"),
                             _same_store(report, runs["folder"] / "store-spark"))) == []
