"""A web page on another localhost port tries to drive the studio and its API (``webui.py --api``) through
a real browser: images, a no-cors fetch, a form POST. Every such request must be refused (403) by the
servers' guard, both servers must live on, the API's default reference must stay unset, and the studio's
own page must keep working."""

from __future__ import annotations

import functools
import http.server
import threading
import time

import requests

from .conftest import _free_port, open_studio


def _attack_page(api: str, ui: str) -> str:
    change = f"{api}/set_refer_audio?refer_audio_path=refs/x.wav&prompt_text=hi&prompt_lang=en"
    join = '{"data": [], "fn_index": 0, "session_hash": "evil"}'
    return f"""<!doctype html><html><body>
<img src="{api}/control?command=exit"><img src="{change}" referrerpolicy="no-referrer">
<img src="{ui}/gradio_api/info">
<iframe name="sink"></iframe>
<form id="f" method="POST" action="{api}/control?command=exit" target="sink"><input name="a" value="b"></form>
<script>
fetch("{api}/control?command=exit", {{mode: "no-cors", method: "POST"}}).catch(() => {{}});
fetch("{api}/tts?text=hello&text_lang=en", {{mode: "no-cors"}}).catch(() => {{}});
fetch("{ui}/gradio_api/queue/join", {{mode: "no-cors", method: "POST", body: '{join}'}}).catch(() => {{}});
document.getElementById("f").submit();
</script></body></html>"""


def _serve_folder(folder) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _wait_for(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer")


def test_a_page_elsewhere_can_neither_change_nor_stop_either_server(start_webui, page, tmp_path):
    api_port = _free_port()
    studio = start_webui(extra_args=("--api", str(api_port)))
    api = f"http://127.0.0.1:{api_port}"
    _wait_for(api + "/")
    (tmp_path / "attack.html").write_text(_attack_page(api, studio.url), encoding="utf-8")
    attacker, origin = _serve_folder(tmp_path)
    answers: list[tuple[str, int]] = []
    sent: list[str] = []
    page.on("response", lambda r: answers.append((r.url, r.status)) if not r.url.startswith(origin) else None)
    page.on("request", lambda r: sent.append(r.url) if not r.url.startswith(origin) else None)
    try:
        page.goto(origin + "/attack.html")
        page.wait_for_timeout(3000)
    finally:
        attacker.shutdown()
    assert len(sent) >= 7, sent  # images, fetches and the form all went out …
    assert len(answers) >= 4 and {u for u, _ in answers} >= {api + "/control?command=exit"}, answers
    assert all(status == 403 for _, status in answers), answers  # … and every answer seen is the guard's refusal
    assert requests.get(api + "/", timeout=10).status_code == 200  # the API lives on
    unset = requests.get(api + "/tts", params={"text": "Hello.", "text_lang": "en"}, timeout=30)
    assert unset.json() == {"message": "ref_audio_path is required"}  # its default reference was not set
    assert studio.process.poll() is None
    open_studio(page, studio.url)  # the studio's own page still works
    assert page.locator("#studio-loaded").count() == 1
    assert "API key for /set_* and /control:" in studio.log_text()
