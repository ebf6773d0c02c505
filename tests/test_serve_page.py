"""The web page in a real browser: headless Debian Chromium, driven by Playwright, against uvicorn on loopback.

Skipped only when /usr/bin/chromium is absent (no browser is ever downloaded).
"""

from __future__ import annotations

import pytest
from serve_screenshot import CHROMIUM, launch_chromium, serving_in_thread
from test_serve import clips, library, model  # noqa: F401  (fixtures: the model and the index the page searches)

from vljepa.serve.app import create_app
from vljepa.serve.server import Server
from vljepa.serve.settings import LiveStream, ServeSettings

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no browser: /usr/bin/chromium is not installed")


def test_the_page_captions_a_dropped_video_live_answers_and_searches(model, library, stream_video, tmp_path):  # noqa: F811
    from playwright.sync_api import sync_playwright

    # 1-s windows and a near-zero threshold: the 4.5-s stream closes a segment every 3 windows
    live = LiveStream(window_seconds=1.0, stride_seconds=0.5, threshold=1e-4)
    server = Server(model, ServeSettings(stream=live), library)
    problems: list[str] = []
    with serving_in_thread(create_app(server)) as url, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(url)
        page.wait_for_selector("#model-info .chip")
        assert "5 windows indexed" in page.inner_text("#model-info")

        with page.expect_response(lambda response: response.url.endswith("/streams")) as created:
            page.set_input_files("#file", str(stream_video))
        job_id = created.value.json()["id"]
        page.wait_for_function("document.querySelectorAll('#segments li').length >= 2", timeout=60_000)
        page.wait_for_selector("#status:not(.working)", timeout=60_000)
        timeline = server.jobs.get(job_id).timeline()
        rows = page.locator("#segments li")
        assert rows.count() == len(timeline["segments"]) >= 2
        assert [rows.nth(i).locator("span").inner_text() for i in range(rows.count())] == [
            s["text"] or "…" for s in timeline["segments"]
        ]
        assert page.locator("#track .block").count() == rows.count()
        page.wait_for_function("document.querySelector('#player').readyState >= 1")

        page.fill("#question", "which way does the square move?")
        page.fill("#options", "left, right")
        page.click("#ask-button")
        page.wait_for_selector("#answer:not([hidden])")
        assert page.inner_text("#answer .main") in ("left", "right")

        page.fill("#query", "a square moves right")
        page.press("#query", "Enter")
        page.wait_for_selector("#results li")
        assert page.locator("#results li").count() == 5
        page.wait_for_function(
            "[...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth > 0)"
        )
        first = library.search_text(model, ["a square moves right"], 1)[0][0]
        page.click("#results li >> nth=0")
        page.wait_for_function(
            f"Math.abs(document.querySelector('#player').currentTime - {first.start or 0.0}) < 0.3"
            " && document.querySelectorAll('#track .block').length === 1"
        )
        page.screenshot(path=str(tmp_path / "serve_page.png"), full_page=True)
        browser.close()
    assert (tmp_path / "serve_page.png").stat().st_size > 10_000
    assert problems == []
