"""Nothing the studio's page loads leaves this computer, and Gradio's own strings follow the studio's language.

Every tab is opened in headless Chromium with every request recorded; a request to any host other than
127.0.0.1/localhost fails the test. Switching the interface language re-labels Gradio's built-in texts (the
upload area's "Drop File Here") at once and after a reload.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest

from .conftest import open_studio

TAB_NAMES = ["Record & Upload", "Prepare", "Train", "Synthesize", "Voices", "Models & Settings"]
LOCAL = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _off_machine(urls: list[str]) -> list[str]:
    return [
        u for u in urls if urlparse(u).scheme in ("http", "https", "ws", "wss") and urlparse(u).hostname not in LOCAL
    ]


def test_gradio_page_template_is_served_without_its_cdn_script():
    """The rewrite removes exactly what Gradio's own template fetches from outside (so the browser test means something)."""
    import gradio

    from studio.ui.local_page import rewrite_page

    template = (Path(gradio.__file__).parent / "templates" / "frontend" / "index.html").read_text(encoding="utf-8")
    assert _off_machine([u for u in template.split('"') if u.startswith("https://cdn")])  # Gradio still ships one
    page = rewrite_page(template, "ja", "index-x.js")
    assert "cdnjs" not in page and "fonts.googleapis" not in page
    assert "./assets/index-" in page and "studioSetLocale" in page  # the app itself stays


@pytest.mark.slow
def test_no_request_leaves_the_machine_and_gradio_strings_follow_the_language(webui, page):
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    open_studio(page, webui.url)
    for name in TAB_NAMES:
        page.get_by_role("tab", name=name).click()
        page.wait_for_timeout(300)
    page.get_by_role("tab", name="Record & Upload").click()
    drop = page.get_by_text("Drop File Here").first
    drop.wait_for(timeout=10_000)

    page.get_by_role("tab", name="Models & Settings").click()
    page.locator("#ui-language").get_by_text("中文").click()
    page.get_by_role("tab", name="录音与上传").click()
    page.get_by_text("将文件拖放到此处").first.wait_for(timeout=15_000)  # Gradio's own text, without a reload
    assert page.get_by_text("Drop File Here").count() == 0
    page.reload()
    open_studio(page, webui.url)
    assert page.evaluate("navigator.language") == "zh-CN"
    page.get_by_role("tab", name="录音与上传").click()
    page.get_by_text("将文件拖放到此处").first.wait_for(timeout=15_000)
    page.get_by_role("tab", name="模型与设置").click()
    page.locator("#ui-language").get_by_text("English").click()
    page.get_by_role("tab", name="Voices").wait_for(timeout=30_000)

    assert len(requests) > 20, requests  # the page and its assets were recorded
    assert not _off_machine(requests), _off_machine(requests)
