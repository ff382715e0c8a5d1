"""Auto-detection speed: score every format on a 1,000-line sample (target: under 50 ms).

    PYTHONPATH=src python -m benchmarks.formats [--repeat N]

Prints the median time per detection for samples of several formats (each the format's own example
line, its query varied so lines differ) and for a sample no format fits (the worst case: every format tries all).
"""

from __future__ import annotations

import argparse
import statistics
import time

from floodwitness.errors import FormatError
from floodwitness.formats import FORMATS
from floodwitness.formats.detect import SAMPLE_LINES, detect


def sample(name: str) -> list[str]:
    example = FORMATS[name].example
    return [example.replace(" HTTP/", f"?n={i} HTTP/", 1) for i in range(SAMPLE_LINES)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    cases = {name: sample(name) for name in ("combined", "aws_alb", "cloudfront", "caddy", "haproxy", "envoy")}
    cases["no format fits"] = [f"2024-05-17 something happened #{i}: nothing to see" for i in range(SAMPLE_LINES)]
    for label, lines in cases.items():
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            try:
                chosen = detect(lines).format.name
            except FormatError:
                chosen = "(refused)"
            times.append(time.perf_counter() - start)
        print(f"{label:>16}: {statistics.median(times) * 1000:6.1f} ms per 1,000 lines -> {chosen}")


if __name__ == "__main__":
    main()
