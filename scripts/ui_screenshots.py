"""Screenshots of every web UI page into docs/ui/, taken in headless Chromium against a real server.

    PYTHONPATH=src .venv/bin/python scripts/ui_screenshots.py

Serves the test docs site on 127.0.0.1, starts `crawlrag serve --transport http` with a token, logs in, crawls the
site through the UI, leaves one crawl hanging (so the Jobs page shows a running job), searches, and shoots each page.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "ui")]

from playwright.sync_api import Page, sync_playwright  # noqa: E402
from sitegen import build_docs_site, serve_site  # noqa: E402
from ui_helpers import CHROMIUM, WAIT_MS, start_ui_server  # noqa: E402

OUT = ROOT / "docs" / "ui"
TOKEN = "screenshot-token"


def shoot(page: Page, name: str) -> None:
    path = OUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KiB")


def crawl(page: Page, url: str, depth: int, pages: int) -> str:
    page.goto("/crawl")
    page.get_by_label("Start URL").fill(url)
    page.get_by_label("Max depth").fill(str(depth))
    page.get_by_label("Max pages").fill(str(pages))
    page.get_by_role("button", name="Start crawl").click()
    page.wait_for_url(re.compile(r"/jobs\?started="))
    return "#job-" + page.url.rsplit("=", 1)[1]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        site_root = Path(work) / "site"
        build_docs_site(site_root)
        config_file = site_root / ".sitegen.json"
        config = json.loads(config_file.read_text())
        config["slow_seconds"] = 3600  # /slow/page-N.html hang: a crawl of /slow/ stays running
        config_file.write_text(json.dumps(config))
        server_dir = Path(work) / "server"
        server_dir.mkdir()
        with (
            serve_site(site_root) as site,
            start_ui_server(server_dir, MCP_AUTH_TOKEN=TOKEN) as server,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            context = browser.new_context(base_url=server.base, viewport={"width": 1200, "height": 760})
            context.set_default_timeout(WAIT_MS)
            page = context.new_page()
            page.goto("/")
            shoot(page, "login")
            page.get_by_label("Access token").fill(TOKEN)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(server.base + "/")
            server.wait_for_embedder()

            page.goto("/crawl")
            page.get_by_label("Start URL").fill(site + "/")
            page.get_by_label("Include").fill("*/guide/*\n*/api/*")
            shoot(page, "crawl")
            row = crawl(page, site + "/", depth=3, pages=50)
            page.locator(f"{row} [data-field=status]").filter(has_text="completed").wait_for()
            crawl(page, site + "/slow/", depth=1, pages=10)
            page.wait_for_timeout(2500)
            shoot(page, "jobs")

            page.goto("/")
            shoot(page, "sources")
            page.goto("/search")
            page.get_by_label("Query").fill("install the client with pip")
            page.get_by_label("Results").fill("4")
            page.get_by_role("button", name="Search").click()
            page.wait_for_url(re.compile(r"/search\?query="))
            shoot(page, "search")
            page.goto("/status")
            shoot(page, "health")
            browser.close()


if __name__ == "__main__":
    main()
