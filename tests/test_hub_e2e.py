"""The hub with real parts: uvicorn processes serving ``examples.hub`` on one
real redis-server, httpx as the client, headless Chromium for the page.

- a client on server A gets what is published through server B; A is killed;
  the client reconnects to B with its ``Last-Event-ID`` and gets exactly the
  events it missed, each once, in order (ids checked, not counted);
- redis-server killed and restarted with its data mid-stream: the client on
  A stays connected and gets every event published through B afterwards;
  restarted empty: ``RESET_EVENT``, then the new events;
- ``uvicorn examples.hub:app --workers 4``: a message posted from one
  Chromium page reaches both open pages.

Plain sync tests: the servers run their own loops; every read has a deadline
(httpx's read timeout).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import httpx
import pytest

from benchmarks.servers import is_running
from streaming import RESET_EVENT, ServerSentEvent, SSEParser
from tests.browser import chromium
from tests.redis_server import RedisServer
from tests.servers import ServerProcess, uvicorn_process

APP = "examples.hub:app"
EVENTS = "/rooms/e2e/events"


class Stream:
    """One SSE connection read with a deadline per read."""

    def __init__(self, client: httpx.Client, url: str, last_event_id: str | None = None) -> None:
        headers = {"last-event-id": last_event_id} if last_event_id else {}
        self._context = client.stream("GET", url + EVENTS, headers=headers)
        self.response = self._context.__enter__()
        assert self.response.status_code == 200
        self._chunks = self.response.iter_raw()
        self.parser = SSEParser()
        self.events: list[ServerSentEvent] = []

    def started(self) -> Stream:
        self._feed()
        return self

    def read(self, count: int) -> list[ServerSentEvent]:
        target = len(self.events) + count
        while len(self.events) < target:
            self._feed()
        return self.events[target - count:target]

    def _feed(self) -> None:
        self.events += self.parser.feed(next(self._chunks))

    def close(self) -> None:
        self._context.__exit__(None, None, None)


def post(client: httpx.Client, url: str, text: str) -> str:
    response = client.post(url + "/rooms/e2e/messages", json={"text": text})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def texts(events: list[ServerSentEvent]) -> list[str]:
    import json

    return [json.loads(event.data)["text"] for event in events]


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=httpx.Timeout(10.0)) as client:
        yield client


def test_a_client_moves_from_a_killed_server_to_another_and_misses_nothing(
        redis_server: RedisServer, client: httpx.Client) -> None:
    env = {"REDIS_URL": redis_server.url}
    with uvicorn_process(APP, env=env) as (a, url_a), uvicorn_process(APP, env=env) as (_, url_b):
        stream = Stream(client, url_a).started()
        sent = [post(client, url_b, f"m{n}") for n in range(3)]
        got = stream.read(3)
        assert [e.id for e in got] == sent and texts(got) == ["m0", "m1", "m2"]
        a.send_signal(signal.SIGKILL)
        a.wait(10)
        with pytest.raises(httpx.HTTPError):
            stream.read(1)                             # the connection is gone
        stream.close()
        missed = [post(client, url_b, f"m{n}") for n in range(3, 6)]
        again = Stream(client, url_b, stream.parser.last_event_id)
        replayed = again.read(3)
        live_id = post(client, url_b, "m6")
        live = again.read(1)
        again.close()
    assert [e.id for e in replayed] == missed and texts(replayed) == ["m3", "m4", "m5"]
    assert [e.id for e in live] == [live_id]
    assert all(e.event == "message" for e in replayed + live)


def test_redis_restarts_with_its_data_then_empty_under_two_servers(
        persistent_redis_server: RedisServer, client: httpx.Client) -> None:
    redis = persistent_redis_server
    env = {"REDIS_URL": redis.url}
    with uvicorn_process(APP, env=env) as (_, url_a), uvicorn_process(APP, env=env) as (_, url_b):
        stream = Stream(client, url_a).started()
        before = post(client, url_b, "before")
        assert [e.id for e in stream.read(1)] == [before]
        redis.kill()
        redis.start()                                   # with its data (append-only file)
        kept = [post(client, url_b, "after-1"), post(client, url_a, "after-2")]
        got = stream.read(2)
        assert [e.id for e in got] == kept and texts(got) == ["after-1", "after-2"]
        redis.kill()
        redis.start(empty=True)                          # the history is gone
        fresh = post(client, url_b, "fresh")
        reset, event = stream.read(2)
        stream.close()
    assert reset.event == RESET_EVENT and reset.data == "room:e2e"
    assert (event.id, texts([event])) == (fresh, ["fresh"])
    assert fresh.split("-")[0] != before.split("-")[0]   # a new epoch
    assert [e.id for e in stream.events].count(before) == 1   # nothing twice


def test_four_workers_and_two_browser_pages_share_one_room(redis_server: RedisServer,
                                                          client: httpx.Client) -> None:
    env = {"REDIS_URL": redis_server.url}
    with uvicorn_process(APP, "--workers", "4", env=env) as (server, url):
        workers = {httpx.get(url + "/worker", timeout=10).json()["worker"]  # a connection each
                   for _ in range(40)}
        processes = ServerProcess(server, url).descendants()  # they answered: all started
        assert len(workers) > 1                          # several processes answer
        with chromium() as browser:
            pages = [browser.new_context().new_page() for _ in range(2)]
            for page in pages:
                page.goto(f"{url}/?room=e2e", timeout=10_000)
                page.wait_for_function("document.querySelector('#state').textContent"
                                       " === 'connected'", timeout=10_000)
            for sender, text in ((pages[0], "hello from one"), (pages[1], "<b>two</b>")):
                sender.fill("#text", text)
                sender.click("#send button")
                for page in pages:
                    page.wait_for_function(
                        "text => [...document.querySelectorAll('#log li')]"
                        ".some(li => li.textContent === text)", arg=text, timeout=10_000)
            shown = [page.eval_on_selector_all("#log li", "items => items.map(i => i.textContent)")
                     for page in pages]
            bold = pages[0].query_selector_all("#log b")
    assert shown[0] == shown[1] == ["hello from one", "<b>two</b>"]
    assert bold == []                                    # text, never HTML
    assert len(processes) >= 4 and not [pid for pid in processes if is_running(pid)]



def test_sigterm_drains_subscribers_with_a_spread_retry(redis_server: RedisServer,
                                                       client: httpx.Client) -> None:
    """``lifespan=hub.lifespan`` watches SIGTERM: each subscriber gets the
    drain's final event with a ``retry`` inside ``retry_spread`` (1-10 s), and
    a clean end, before uvicorn finishes its shutdown."""
    with uvicorn_process(APP, env={"REDIS_URL": redis_server.url}) as (server, url):
        streams = [Stream(client, url).started() for _ in range(3)]
        server.send_signal(signal.SIGTERM)
        finals = [stream.read(1)[0] for stream in streams]
        for stream in streams:
            with pytest.raises(StopIteration):     # the body ended, cleanly
                stream._feed()
            stream.close()
        server.wait(10)   # uvicorn exits (re-raising the SIGTERM it caught)
    assert {final.event for final in finals} == {"shutdown"}
    assert all(1000 <= (final.retry or 0) <= 10000 for final in finals)


def test_the_fan_out_benchmark_still_runs() -> None:
    """``python -m benchmarks.hub`` end to end at a tiny size (no speed asserted)."""
    import subprocess
    import sys

    from tests.servers import ROOT

    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.hub", "--subscribers", "50", "--seconds", "0.5",
         "--repeat", "1", "--setups", "loop", "ours", "ours-inline"],
        cwd=ROOT, capture_output=True, text=True, timeout=90,
        env={**os.environ, "HUB_BENCH_WARMUP": "0.1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| 50 | ours |" in result.stdout and "| 50 | loop |" in result.stdout
    assert "| 50 | ours-inline |" in result.stdout
