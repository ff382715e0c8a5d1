"""The Spark engine: the same ibis expressions as DuckDB, run as Spark jobs (local mode or a cluster).

Only the optional extra ``floodwitness[spark]`` (PySpark 4.0, which runs on Java 17) brings PySpark in;
this module imports it lazily and turns a missing PySpark or Java into an error that says how to fix it.

Three engine differences are closed here, in one place, so the analysis stays written once:

* ibis 12's PySpark compiler renders ``split`` as Spark's *regex* split and indexes arrays off by one for
  negative indexes (``[-1]`` becomes ``element_at(a, 0)``, an error): both are compiled as DuckDB means them;
* results come back through Arrow (``DataFrame.toArrow``), not pandas;
* the session runs in UTC, writes Parquet timestamps as ``TIMESTAMP_MICROS`` (readable by DuckDB) and
  with ANSI mode off, so a malformed value is a null as on DuckDB, never a failed job.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import TYPE_CHECKING, Any

from floodwitness.engine.core import Engine, EngineConfig
from floodwitness.errors import FloodwitnessError, UsageError

if TYPE_CHECKING:
    import pyarrow as pa

SPARK_EXTRA = "pip install 'floodwitness[spark]'"
#: The PySpark line the extra pins (ibis 12 supports PySpark 4.0).
PYSPARK_SERIES = "4.0"
JAVA_MAJOR = 17

#: Session settings floodwitness relies on (a user's ``--spark-conf`` may add to them, not override these).
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.ansi.enabled": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
#: Defaults for a session floodwitness creates itself (any of them may be changed with ``--spark-conf``).
DEFAULT_CONF = {
    "spark.app.name": "floodwitness",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.parquet.compression.codec": "zstd",
}


class SparkUnavailableError(UsageError):
    """``--engine spark`` without PySpark or without Java 17."""


def require_pyspark() -> Any:
    """The ``pyspark`` module, or an error naming the extra that installs it."""
    try:
        import pyspark  # noqa: PLC0415 - optional dependency
    except ImportError:
        raise SparkUnavailableError(
            "--engine spark needs PySpark, which is not installed",
            hint=f"Install the Spark extra: {SPARK_EXTRA} (PySpark {PYSPARK_SERIES}; it also needs Java "
                 f"{JAVA_MAJOR}).") from None
    version = str(getattr(pyspark, "__version__", ""))
    if not version.startswith(PYSPARK_SERIES + "."):
        raise SparkUnavailableError(
            f"--engine spark needs PySpark {PYSPARK_SERIES}.x, but {version or 'an unknown version'} is installed",
            hint=f"Install the pinned version: {SPARK_EXTRA}.")
    return pyspark


def java_version(java: str | None = None) -> int | None:
    """Major version of the ``java`` Spark would start (``$JAVA_HOME/bin/java``, else on PATH); None if none."""
    if java is None:
        home = os.environ.get("JAVA_HOME")
        java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.path.exists(java):
        return None
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30,  # noqa: S603 - the JVM Spark runs
                              check=False)
    except OSError:
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if not match:
        return None
    major = int(match[1])
    return int(match[2] or 0) if major == 1 else major  # "1.8.0" is Java 8


def require_java(java: str | None = None) -> None:
    version = java_version(java)
    hint = (f"Install a Java {JAVA_MAJOR} runtime (Debian/Ubuntu: apt-get install openjdk-{JAVA_MAJOR}-jre-headless) "
            f"or point JAVA_HOME at one.")
    if version is None:
        raise SparkUnavailableError(f"--engine spark needs Java {JAVA_MAJOR} (PySpark 4 runs on the JVM), "
                                    "and no java was found", hint=hint)
    if version < JAVA_MAJOR:
        raise SparkUnavailableError(f"--engine spark needs Java {JAVA_MAJOR} or newer, but java is version {version}",
                                    hint=hint)


def spark_session(master: str | None = None, conf: dict[str, str] | None = None) -> Any:
    """Start (or join) a SparkSession with floodwitness's settings."""
    require_pyspark()
    require_java()
    from pyspark.sql import SparkSession  # noqa: PLC0415 - optional dependency

    builder = SparkSession.builder
    if master:
        builder = builder.master(master)
    for key, value in {**DEFAULT_CONF, **(conf or {}), **SESSION_CONF}.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: a bad master URL, a bad conf, no memory
        raise FloodwitnessError(f"Spark did not start: {_first_line(exc)}",
                                hint="Check --spark-master and --spark-conf; run `java -version`.") from None
    session.sparkContext.setLogLevel("ERROR")
    return session


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _compiler() -> Any:
    """ibis's PySpark compiler with the two fixes described in the module docstring."""
    import sqlglot.expressions as sge  # noqa: PLC0415
    from ibis.backends.sql.compilers.pyspark import PySparkCompiler  # noqa: PLC0415

    class Compiler(PySparkCompiler):  # type: ignore[misc]
        def visit_StringSplit(self, op: Any, *, arg: Any, delimiter: Any) -> Any:  # noqa: N802 - ibis's name
            # Spark's split takes a regex: escape the delimiter so it splits on the literal text. A literal is
            # escaped here (a one-character delimiter then takes Java's split fast path, no regex at all).
            value = getattr(op.delimiter, "value", None)
            if isinstance(value, str):
                return self.f.split(arg, sge.convert(re.sub(r"([\\.$|()\[\]{}^?*+])", r"\\\1", value)), -1)
            return self.f.split(arg, self.f.concat(sge.convert("\\Q"), delimiter, sge.convert("\\E")), -1)

        def visit_ArrayIndex(self, op: Any, *, arg: Any, index: Any) -> Any:  # noqa: N802 - ibis's name
            # element_at is 1-based with negative indexes from the end, like DuckDB's are 0-based; out of
            # range is a null on DuckDB, so try_element_at.
            return self.f.try_element_at(arg, self.if_(index < 0, index, index + 1))

    return Compiler()


def _backend_class() -> Any:
    import ibis  # noqa: PLC0415
    from ibis.backends.pyspark import Backend  # noqa: PLC0415
    from ibis.formats.pyarrow import PyArrowData  # noqa: PLC0415

    _ = ibis.pyspark  # loading it through ibis's registry sets up `ibis.options.pyspark`, which the compiler reads
    compiler = _compiler()

    class SparkBackend(Backend):  # type: ignore[misc]
        """ibis's PySpark backend, results through Arrow and in-memory tables from Arrow (no pandas)."""

        def to_pyarrow(self, expr: Any, /, *, params: Any = None, limit: Any = None, **kwargs: Any) -> pa.Table:
            self._run_pre_execute_hooks(expr)
            table_expr = expr.as_table()
            frame = self._session.sql(self.compile(table_expr, params=params, limit=limit, **kwargs))
            # Spark's TIMESTAMP is an instant shown in the session's zone (UTC): say so, as DuckDB does.
            schema = ibis.schema({name: kind.copy(timezone="UTC") if kind.is_timestamp() and kind.timezone is None
                                  else kind for name, kind in table_expr.schema().items()})
            table = PyArrowData.convert_table(frame.toArrow(), schema)
            return expr.__pyarrow_result__(table, schema=schema)

        def _register_in_memory_table(self, op: Any) -> None:
            from ibis.backends.pyspark.datatypes import PySparkSchema  # noqa: PLC0415

            data = op.data.to_pyarrow(op.schema)
            frame = self._session.createDataFrame(data, schema=PySparkSchema.from_ibis(op.schema))
            frame.createOrReplaceTempView(op.name)

    SparkBackend.compiler = compiler
    return SparkBackend


class SparkEngine(Engine):
    """The ibis PySpark backend over a SparkSession: one given by the caller (left running at close), or
    one started from ``EngineConfig.spark_master`` / ``spark_conf`` (stopped at close)."""

    name = "spark"

    def __init__(self, config: EngineConfig | None = None, *, session: Any = None) -> None:
        self.config = config or EngineConfig(name="spark")
        require_pyspark()
        self._own_session = session is None
        if session is None:
            session = spark_session(self.config.spark_master, dict(self.config.spark_conf))
        else:
            for key, value in SESSION_CONF.items():
                session.conf.set(key, value)
        self.session = session
        self.raw = None  # no DuckDB connection: every query goes through ibis
        self.ibis = _backend_class()().connect(session)
        self._tables: dict[tuple[str, ...], Any] = {}

    def compile(self, expr: Any) -> str:
        """Spark SQL for an ibis expression (same try-parse rules as the DuckDB compile)."""
        return str(self.ibis.compile(expr))

    def parquet(self, paths: list[str]) -> Any:
        """An ibis table over Parquet files (a temporary view, made once per set of files)."""
        key = tuple(paths)
        if key not in self._tables:
            frame = self.session.read.parquet(*paths)
            name = f"fw_parquet_{len(self._tables)}_{os.getpid()}_{id(self)}"
            frame.createOrReplaceTempView(name)
            self._tables[key] = self.ibis.table(name)
        return self._tables[key]

    def close(self) -> None:
        for table in self._tables.values():
            self.session.catalog.dropTempView(table.get_name())
        self._tables.clear()
        if self._own_session:
            self.session.stop()
