"""Make the README's screenshot of the inspector: ``python scripts/inspector_screenshot.py``.

Starts ``examples.production`` under uvicorn on 127.0.0.1, opens a few
streams against it (tickers, token streams, a capped download), ends some,
opens the inspector in headless Chromium, selects a stream and saves
``docs/inspector.png``.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import chromium  # noqa: E402
from tests.servers import uvicorn_process  # noqa: E402


def read(url: str, stop: threading.Event) -> None:
    try:
        with httpx.Client(timeout=30) as client, client.stream("GET", url) as response:
            for _ in response.iter_bytes():
                if stop.is_set():
                    return
    except httpx.HTTPError:
        pass


def main() -> int:
    stop = threading.Event()
    with uvicorn_process("examples.production:app") as (_, url):
        for _ in range(12):  # a spread of times to first byte
            httpx.get(url + "/tokens?n=5", timeout=10)
        readers = [threading.Thread(target=read, args=(url + path, stop), daemon=True)
                   for path in ("/ticks?pace=0.2", "/ticks?pace=1", "/tokens?n=5000",
                                "/tokens?n=5000", "/download?size=50000000")]
        for reader in readers:
            reader.start()
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(url + "/inspector/")
            page.locator("#open tbody tr").nth(4).wait_for()
            time.sleep(1)  # a few snapshots: rates and growing figures
            page.locator("#open tbody tr", has_text="/tokens").first.click()
            time.sleep(1.5)
            out = ROOT / "docs" / "inspector.png"
            page.screenshot(path=str(out), full_page=True)
            print(f"wrote {out}")
        stop.set()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
