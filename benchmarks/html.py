"""How big is the HTML report, and how fast does it open? Renders the report of the demo incident (the
simulated Mirai flood of `floodwitness demo`, or any saved JSON report with --report) and opens it in
headless Chromium several times, each a fresh page load.

Run: python benchmarks/html.py [--report REPORT.json] [--repeat 5] [--screenshot docs/report-screenshot.png]
Targets (HTML report issue): under 5 MB, charts drawn under 2 s after navigation starts.
Needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver) and selenium.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

OUT = Path(__file__).parent / "out"
CLI = [sys.executable, "-m", "floodwitness.cli"]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def demo_report() -> Path:
    """The demo incident (`floodwitness demo`: mirai, seed 1, 2 hours), analysed once and cached."""
    folder = OUT / "html-demo"
    report = folder / "report.json"
    if not report.exists():
        print("simulating and analysing the demo incident ...", file=sys.stderr)
        subprocess.run([*CLI, "simulate", "mirai", str(folder), "--seed", "1", "--hours", "2"], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run([*CLI, "analyze", str(folder / "access.log"), "-q", "--json", str(report)], check=True)
    return report


def browser(width: int, height: int) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def open_once(driver: webdriver.Chrome, url: str) -> dict[str, float]:
    driver.get("about:blank")
    started = time.perf_counter()
    driver.get(url)
    while driver.execute_script("return document.body.getAttribute('data-charts')") is None:
        if time.perf_counter() - started > 30:
            raise SystemExit("the charts were not drawn within 30 s")
        time.sleep(0.01)
    wall = time.perf_counter() - started
    marks = driver.execute_script(
        "var n = performance.getEntriesByType('navigation')[0];"
        "return [n.domContentLoadedEventEnd, n.loadEventEnd, "
        "parseFloat(document.body.getAttribute('data-charts-ms')), document.body.getAttribute('data-charts')]")
    if marks[3] != "ok":
        raise SystemExit(f"the charts failed: {driver.get_log('browser')}")
    return {"dom_ready_s": marks[0] / 1000, "load_s": marks[1] / 1000, "charts_s": marks[2] / 1000, "wall_s": wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", type=Path, help="a saved JSON report (default: the demo incident)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--screenshot", type=Path, help="also save a screenshot of the top of the report here")
    args = parser.parse_args()
    report = args.report or demo_report()
    html = OUT / f"{report.parent.name}-report.html"
    OUT.mkdir(exist_ok=True)
    started = time.perf_counter()
    subprocess.run([*CLI, "report", str(report), "--html", str(html)], check=True)
    render_s = time.perf_counter() - started
    data = json.loads(report.read_text(encoding="utf-8"))
    lines = sum(i["lines_read"] for i in data["inputs"])
    size_mb = html.stat().st_size / 1e6
    print(f"report of {lines:,} lines ({report}); {len(data['mitigation'].get('blocklist', [])):,} blocklist entries")
    print(f"`floodwitness report --html`: {render_s:.2f} s (process incl. start-up); HTML {size_mb:.2f} MB "
          f"(JSON {report.stat().st_size / 1e6:.2f} MB)")
    driver = browser(1280, 1500)
    try:
        runs = [open_once(driver, html.resolve().as_uri()) for _ in range(args.repeat)]
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        if args.screenshot:
            driver.execute_script("window.scrollTo(0, 0)")
            driver.save_screenshot(str(args.screenshot))
            print(f"screenshot: {args.screenshot}")
    finally:
        driver.quit()
    version = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"{version}, {os.cpu_count()} cores, {args.repeat} fresh loads")
    print("| load | DOM ready s | load event s | charts drawn s | wall s (driver) |")
    print("|---|---|---|---|---|")
    for i, r in enumerate(runs, 1):
        print(f"| {i} | {r['dom_ready_s']:.3f} | {r['load_s']:.3f} | {r['charts_s']:.3f} | {r['wall_s']:.3f} |")
    worst = max(r["charts_s"] for r in runs)
    print(f"size {size_mb:.2f} MB (target < 5): {'met' if size_mb < 5 else 'NOT met'}; slowest charts drawn "
          f"{worst:.2f} s (target < 2): {'met' if worst < 2 else 'NOT met'}; console errors: {len(errors)}")
    return 0 if size_mb < 5 and worst < 2 and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
