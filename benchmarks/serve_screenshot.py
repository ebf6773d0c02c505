"""The picture of the serve page in docs/serving.md (docs/serve_page.png), taken in headless Chromium.

    python benchmarks/serve_screenshot.py -m runs/demo/model/final --world runs/demo/world --out docs/serve_page.png

Indexes the world's held-out clips (a temporary index), serves the model on loopback, opens the page,
drops the world's first stream on it, waits for its captioned timeline, asks a question and searches
the library, then saves the page. Needs /usr/bin/chromium (Debian's; no browser is downloaded).
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch_chromium(playwright):
    """Debian's headless Chromium under Playwright, with the flags that keep it off the network."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@contextmanager
def serving_in_thread(app, host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Serve a FastAPI `app` on uvicorn in a background thread of this process (the browser test drives it too):
    yields the base URL once it accepts connections; shuts it down (lifespan included) on exit."""
    import uvicorn

    port = port or free_port(host)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-m", "--model", type=Path, required=True)
    parser.add_argument("--world", type=Path, required=True, help="A `vljepa world` folder (clips, streams).")
    parser.add_argument("--clips", type=int, default=200, help="Held-out clips to index.")
    parser.add_argument("--out", type=Path, default=Path("docs/serve_page.png"))
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from vljepa.model import VLJepa
    from vljepa.serve.app import create_app
    from vljepa.serve.server import Server
    from vljepa.serve.settings import ServeSettings
    from vljepa.tasks.index import VideoIndex

    model = VLJepa.from_pretrained(args.model)
    records = [json.loads(line) for line in (args.world / "test.jsonl").read_text().splitlines()]
    videos = list(dict.fromkeys(str(args.world / r["video"]) for r in records))[: args.clips]
    stream = args.world / json.loads((args.world / "streams.jsonl").read_text().splitlines()[0])["video"]
    with tempfile.TemporaryDirectory() as scratch:
        index = VideoIndex.build(model, videos, Path(scratch) / "index", progress=False)
        server = Server(model, ServeSettings(), index, args.model)
        with serving_in_thread(create_app(server)) as url, sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page(viewport={"width": 1360, "height": 1000}, device_scale_factor=1)
            page.goto(url)
            page.wait_for_selector("#model-info .chip")
            page.set_input_files("#file", str(stream))
            page.wait_for_selector("#status:not(.working)", timeout=600_000)
            page.evaluate("document.querySelector('#player').pause()")
            page.evaluate("document.querySelector('#player').currentTime = 21")
            page.fill("#question", "which way does the yellow cross move?")
            page.fill("#options", "left, right, up, down")
            page.click("#ask-button")
            page.wait_for_selector("#answer:not([hidden])")
            page.fill("#query", "a blue square moves left")
            page.press("#query", "Enter")
            page.wait_for_function(
                "document.querySelectorAll('#results img').length > 0 && "
                "[...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth > 0)"
            )
            page.wait_for_timeout(600)  # the entry animations
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out))
            browser.close()
    print(f"screenshot: {args.out}")


if __name__ == "__main__":
    main()
