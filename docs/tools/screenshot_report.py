"""Screenshots of a run's report.html for the docs, taken in headless Chromium.

    python docs/tools/screenshot_report.py runs/mnist1d docs/images

writes report-front.png (the top of the page: the best trade-offs, the run's facts and the
front) and report-layers.png (the table of Pareto trials and the per-layer views, the last one opened).
Needs Debian's chromium (or ORCHESTRATOR_CHROMIUM) and the dev extra (playwright).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
         "--disable-background-networking", "--disable-component-update", "--use-angle=swiftshader",
         "--enable-unsafe-swiftshader"]


def main(run_dir: str, out: str) -> None:
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("ORCHESTRATOR_CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        sys.exit("no chromium found (apt install chromium, or set ORCHESTRATOR_CHROMIUM)")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000}, device_scale_factor=1)
        page.goto((Path(run_dir) / "report.html").resolve().as_uri())
        page.wait_for_function("document.querySelectorAll('#pareto-scatter .point').length > 0")
        page.wait_for_timeout(1000)
        top = page.locator("#pareto-scatter").bounding_box()
        page.screenshot(path=str(out_dir / "report-front.png"), full_page=True,
                        clip={"x": 0, "y": 0, "width": 1280, "height": top["y"] + top["height"] + 10})
        # the most compressed Pareto trial (the front is sorted by accuracy, so the last) shows most
        page.evaluate("Array.from(document.querySelectorAll('details')).pop().open = true")
        table = page.locator("#pareto-table").bounding_box()
        details = page.locator("details").last.bounding_box()
        page.screenshot(path=str(out_dir / "report-layers.png"), full_page=True,
                        clip={"x": 0, "y": table["y"] - 40, "width": 1280,
                              "height": details["y"] + details["height"] - table["y"] + 50})
        browser.close()
    print(f"wrote {out_dir / 'report-front.png'} and {out_dir / 'report-layers.png'}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
