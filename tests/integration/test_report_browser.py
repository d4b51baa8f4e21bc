"""The quickstart's report.html in a real browser (headless Chromium driven by Playwright).

Unit tests check the HTML string; only a browser shows whether the page works as a page:
the inlined figures decode, nothing errors in the console, the headline and the sweep
table are on screen, and a 1280-px wide window needs no horizontal scrolling. A
full-page screenshot goes to reports/browser/report.png for CI's artifacts.

Playwright drives the distribution's Chromium (the Debian package ``chromium``, which
.ci/run installs), never a browser build of its own; without one the test skips, or
fails in CI.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Error, sync_playwright

from pgbouncer_support import in_ci
from pgvbench.cli import main
from pgvbench.server.embedded import EmbeddedServer
from support import write_toml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "workloads" / "quickstart.toml"
SCREENSHOT = ROOT / "reports" / "browser" / "report.png"


def _quickstart_small(name: str) -> dict[str, Any]:
    """workloads/quickstart.toml with all its builds and sweeps, on a smaller dataset and
    shorter measurements, so the report has the same sections at a fraction of the time."""
    with QUICKSTART.open("rb") as f:
        spec = tomllib.load(f)
    spec["experiment"].update(name=name, schema=f"s_{name}")
    spec["dataset"].update(n=5000, queries=300)
    spec["query"].update(recall_queries=100, warmup_seconds=0.05, measure_seconds=0.25)
    # shared_buffers would restart the session's server and stay set for later tests
    spec.pop("server", None)
    return spec


@pytest.fixture
def quickstart_report(
    embedded_server: EmbeddedServer,
    unique_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    spec_path = write_toml(tmp_path / "quickstart.toml", _quickstart_small(unique_name))
    monkeypatch.setenv("PGVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "report"
    args = ["run", str(spec_path), "--out", str(out), "--quiet"]
    assert main([*args, "--data-dir", str(embedded_server.data_dir)]) == 0
    return out / "report.html"


@pytest.fixture
def chromium() -> str:
    """The distribution's Chromium, or skip (locally) / fail (CI, where .ci/run installs
    it). Requested first, so a skip costs no quickstart run."""
    path = shutil.which("chromium")
    if path is None:
        missing = (
            "no chromium executable on PATH: install the distribution's package "
            "(apt-get install chromium) to check report.html in a browser"
        )
        if in_ci():
            pytest.fail(f"{missing}. CI must run the browser check.", pytrace=False)
        pytest.skip(missing)
    return path


def test_quickstart_report_renders_in_chromium(chromium: str, quickstart_report: Path) -> None:
    console_errors: list[str] = []
    page_errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            console_errors.append(message.text)

    def on_page_error(error: Error) -> None:
        page_errors.append(str(error))

    with sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("console", on_console)
            page.on("pageerror", on_page_error)
            page.goto(quickstart_report.as_uri(), wait_until="load")
            page.wait_for_function("Array.from(document.images).every(i => i.complete)")

            images = page.eval_on_selector_all(
                "img", "imgs => imgs.map(i => [i.alt, i.naturalWidth])"
            )
            assert len(images) >= 3, images  # recall vs QPS, latency, build cost
            assert [alt for alt, width in images if width <= 0] == []

            headline = page.locator("p.recommendation")
            assert headline.count() == 1
            assert headline.is_visible()
            assert "the fastest configuration is" in headline.inner_text()

            sweep = page.locator(
                "xpath=//h2[normalize-space()='Sweep']"
                "/following-sibling::div[contains(@class, 'scroll')][1]/table"
            )
            assert sweep.is_visible()
            assert "Recall mean" in sweep.locator("thead").inner_text()
            assert sweep.locator("tbody tr").count() == 21  # 1 exact + 4 x 5 sweep points

            scroll_width, inner_width = page.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth]"
            )
            assert scroll_width <= inner_width, "the page scrolls sideways at 1280 px"

            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    assert console_errors == []
    assert page_errors == []
