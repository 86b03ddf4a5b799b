"""The console's speed and weight on the local stack, in Debian's headless Chromium.

Boots a local stack, prepares the demo's firm (connected, a month of work pushed), then opens each
screen ``--runs`` times in a fresh browser context (an empty cache: a first visit) and prints, per
screen, the median first contentful paint, the time until the screen's data is on it
(``main[data-rendered]``), and the bytes of script, style and document the page loaded (decoded).

    .venv/bin/python scripts/bench_console.py [--runs 7]

Figures in docs/console.md ("Speed and weight").  A benchmark, not a test: timings depend on the
machine; compare them as ratios within one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SCREENS = ("/connection", "/match/client", "/attention", "/postings", "/report", "/exchanges", "/settings")
TENANT = "bench-console"
_WEIGHT = """() => {
  const sum = (test) => performance.getEntriesByType('resource').filter(test)
      .reduce((total, e) => total + e.decodedBodySize, 0);
  const nav = performance.getEntriesByType('navigation')[0];
  const paint = performance.getEntriesByName('first-contentful-paint')[0];
  return {
    fcp: paint ? paint.startTime : null,
    script: sum(e => e.name.endsWith('.js')),
    style: sum(e => e.name.endsWith('.css')),
    document: nav ? nav.decodedBodySize : 0,
    data: sum(e => e.name.includes('/console/v1/')),
  };
}"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    import time

    from playwright.sync_api import sync_playwright

    from qbo_link_cli.client import ApiClient
    from qbo_link_cli.demo import prepare_tenant
    from qbo_link_local.stack import LocalStack, LocalStackConfig
    from tests.browser.conftest import CHROMIUM_ARGS, WIDE, chromium_binary

    config = LocalStackConfig(port=0, sandbox_port=0, moto_port=0, log=lambda _line: None)
    with LocalStack(config) as stack, sync_playwright() as playwright:
        with ApiClient(stack.api_url) as api:
            prepare_tenant(stack, api, TENANT)
        stack.wait_idle(60)
        browser = playwright.chromium.launch(executable_path=chromium_binary(), args=list(CHROMIUM_ARGS))
        url = f"{stack.api_url}/console/?tenant={TENANT}"
        print(f"{args.runs} first visits per screen (empty cache), median; bytes decoded")
        heads = (
            ("first paint", 12),
            ("data on it", 12),
            ("script", 10),
            ("style", 9),
            ("html", 8),
            ("data", 9),
        )
        print(f"{'screen':<15}" + "".join(f"{name:>{width}}" for name, width in heads))
        for screen in SCREENS:
            paints, ready, weights = [], [], []
            for _ in range(args.runs):
                context = browser.new_context(viewport=WIDE)  # type: ignore[arg-type]
                page = context.new_page()
                started = time.perf_counter()
                page.goto(f"{url}#{screen}")
                page.wait_for_function(
                    "h => document.querySelector('main').dataset.rendered === h",
                    arg="#" + screen,
                    timeout=60_000,
                )
                ready.append((time.perf_counter() - started) * 1000)
                weight = page.evaluate(_WEIGHT)
                paints.append(weight["fcp"])
                weights.append(weight)
                context.close()
            kb = {key: value / 1024 for key, value in weights[-1].items() if key != "fcp"}
            print(
                f"{screen:<15}{statistics.median(paints):>9.0f} ms{statistics.median(ready):>9.0f} ms"
                f"{kb['script']:>7.1f} kB{kb['style']:>6.1f} kB{kb['document']:>5.1f} kB{kb['data']:>6.1f} kB"
            )
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
