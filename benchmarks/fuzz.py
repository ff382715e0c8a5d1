"""Coverage-guided fuzzing of the line parser: the line reader, format detection and the engine's parse of a batch.

Each input is a byte string cut into blocks (as the reader gets them from a file) and read into line batches;
the clean lines are handed to auto-detection, and the batch is parsed by the engine with the detected format
(or a format the fuzzer picks when none fits). A crash is any exception but a floodwitness error, or a broken
invariant: one output row per line read, numbered 1..n, every row parsed or rejected with a reason.

Run: python benchmarks/fuzz.py [--seconds 300] [--corpus DIR]   (needs `pip install -e '.[fuzz]'`: atheris)
Without atheris (no wheel for the interpreter), it falls back to hypothesis with the same target and time budget.
A crash prints the input; turn it into a case in tests/test_hostile.py (test_fuzz_regressions).
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import nullcontext
from pathlib import Path

try:
    import atheris
except ImportError:
    atheris = None

sys.path[0] = str(Path(__file__).resolve().parents[1])  # tests.hostile_corpus; not benchmarks/html.py as `html`
with atheris.instrument_imports(include=["floodwitness"]) if atheris else nullcontext():
    from tests.hostile_corpus import parse_check

    from floodwitness.engine import Engine
    from floodwitness.formats import FORMATS

NAMES = sorted(FORMATS)
_ENGINES: list[Engine] = []  # one engine for every input (starting DuckDB costs more than a parse)


def check(data: bytes, block: int, cap: int, pick: int) -> None:
    """The fuzz target (tests.hostile_corpus.parse_check on one shared engine)."""
    if not _ENGINES:
        _ENGINES.append(Engine())
    parse_check(_ENGINES[0], data, block=block, cap=cap, fallback=NAMES[pick % len(NAMES)])


def _split(raw: bytes) -> tuple[bytes, int, int, int]:
    """Fuzzer bytes -> (data, block size, line cap, format pick): the first 4 bytes steer, the rest is the data."""
    head = raw[:4].ljust(4, b"\0")
    return raw[4:], 1 + head[0] * 7, 16 + head[1] * 4 + head[2], head[3]


def run_atheris(seconds: int, corpus: list[str]) -> None:
    def target(raw: bytes) -> None:
        check(*_split(raw))

    for folder in corpus:  # seed an empty corpus with every format's example, two lines of it, and a near miss
        if Path(folder).is_dir() and not any(Path(folder).iterdir()):
            for name, fmt in FORMATS.items():
                line = fmt.example.encode()
                (Path(folder) / f"seed-{name}").write_bytes(b"\x10\x40\x00\x00" + line + b"\n" + line + b"\n")
                (Path(folder) / f"near-{name}").write_bytes(b"\x03\x02\x01\x00" + line[: len(line) // 2] + b'"\n')
    atheris.Setup([sys.argv[0], f"-max_total_time={seconds}", "-max_len=4096", "-rss_limit_mb=4096", *corpus], target)
    atheris.Fuzz()


def run_hypothesis(seconds: int) -> None:
    from hypothesis import HealthCheck, given, settings  # noqa: PLC0415 - only without atheris
    from hypothesis import strategies as st  # noqa: PLC0415

    lines = st.lists(st.one_of(st.binary(max_size=200), st.sampled_from([f.example.encode() for f in FORMATS.values()]),
                               st.text(max_size=200).map(str.encode)), max_size=40).map(b"\n".join)
    deadline = time.monotonic() + seconds
    examples = 0
    while time.monotonic() < deadline:
        @settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(data=lines, block=st.integers(1, 2000), cap=st.integers(16, 1200), pick=st.integers(0, 255))
        def target(data: bytes, block: int, cap: int, pick: int) -> None:
            check(data, block, cap, pick)

        target()
        examples += 200
    print(f"hypothesis: {examples} examples in {seconds} s, no crash")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--hypothesis", action="store_true", help="Use hypothesis even when atheris is installed.")
    parser.add_argument("corpus", nargs="*", help="libFuzzer corpus folders (atheris only).")
    args = parser.parse_args()
    if atheris is None:
        args.hypothesis = True
        print("atheris is not installed (pip install -e '.[fuzz]'): fuzzing with hypothesis instead", file=sys.stderr)
    if args.hypothesis:
        run_hypothesis(args.seconds)
    else:
        run_atheris(args.seconds, args.corpus)


if __name__ == "__main__":
    main()
