"""Chromium plays and seeks a video served by FileResponse (it asks with Range
requests), and downloads a file, on a real uvicorn."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import pytest

from examples.files import create_app
from streaming._types import ASGIApp, Message, Receive, Scope, Send
from tests.browser import chromium
from tests.servers import UvicornThread

SECONDS = 6


def make_webm(path: Path) -> None:
    """A small VP8 WebM (with cues, so it is seekable), frames of changing colour."""
    with av.open(str(path), "w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.time_base = Fraction(1, 10)
        for i in range(SECONDS * 10):
            frame = av.VideoFrame(160, 120, "rgb24")
            frame.planes[0].update(bytes([i * 4 % 256, 80, 255 - i * 4 % 256]) * 160 * 120)
            frame.pts = i
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


class Recorded:
    """The app, recording each request's Range header and each response's status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[tuple[str, str | None, int]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", []))
        range_ = headers.get(b"range")

        async def recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.seen.append((scope["path"], range_.decode() if range_ else None,
                                  message["status"]))
            await send(message)
        await self.app(scope, receive, recording)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Recorded]]:
    root = tmp_path_factory.mktemp("video")
    make_webm(root / "clip.webm")
    app = Recorded(create_app(root))
    with UvicornThread(app) as server:
        yield server.url, root, app


def test_video_plays_and_seeks(served: tuple[str, Path, Recorded]) -> None:
    url, _, app = served
    with chromium() as browser:
        page = browser.new_page()
        page.goto(f"{url}/page/video/clip.webm")
        page.evaluate("() => { const v = document.getElementById('video'); v.muted = true; "
                      "return v.play(); }")
        page.wait_for_function("document.getElementById('video').currentTime > 0.3",
                               timeout=20_000)
        page.evaluate("""() => new Promise((resolve) => {
            const v = document.getElementById('video');
            v.addEventListener('seeked', resolve, {once: true});
            v.currentTime = 4.5;
        })""")
        state = page.evaluate("""() => { const v = document.getElementById('video');
            return [v.currentTime, v.duration, v.error && v.error.code]; }""")
    current, duration, error = state
    assert error is None
    assert abs(duration - SECONDS) < 0.5 and current >= 4.4
    media = [(r, s) for path, r, s in app.seen if path == "/files/clip.webm"]
    assert media and all(r is not None and r.startswith("bytes=") for r, _ in media)
    assert {s for _, s in media} <= {206}  # every media request was a range request


def test_download_in_chromium(served: tuple[str, Path, Recorded]) -> None:
    url, root, _ = served
    with chromium() as browser:
        page = browser.new_page(accept_downloads=True)
        page.goto(f"{url}/page/upload")  # same origin: the download attribute applies
        page.evaluate("""() => { const a = document.createElement('a'); a.id = 'get';
            a.href = '/files/clip.webm'; a.download = 'clip.webm'; a.textContent = 'get';
            document.body.append(a); }""")
        with page.expect_download() as pending:
            page.click("#get")
        saved = Path(pending.value.path()).read_bytes()  # gone once the browser closes
    data = (root / "clip.webm").read_bytes()
    assert hashlib.sha256(saved).digest() == hashlib.sha256(data).digest()
