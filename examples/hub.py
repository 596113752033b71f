"""A chat room on the hub: a message posted on any page reaches every open
page, whichever worker or host serves it.

    REDIS_URL=redis://127.0.0.1:6379/0 uvicorn examples.hub:app --workers 4
    uvicorn examples.hub:app               # no REDIS_URL: in memory, one worker

Routes: ``GET /`` (the page), ``GET /rooms/<room>/events`` (the event stream:
resumes by ``Last-Event-ID``), ``POST /rooms/<room>/messages`` with
``{"text": "..."}`` (at most 500 characters), ``GET /worker`` (which process
answered). The page puts message text in with ``textContent``, never as HTML.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from streaming import (
    EventSourceResponse,
    HubUnavailable,
    InvalidTopicError,
    RequestBodyError,
    read_json,
)
from streaming.hub import Hub, MemoryBackend, RedisBackend

MAX_TEXT = 500
MAX_BODY = 4096


def make_hub() -> Hub:
    url = os.environ.get("REDIS_URL")
    return Hub(RedisBackend(url) if url else MemoryBackend(), history=500, history_ttl=3600)


hub = make_hub()


async def page(request: Request) -> Response:
    return HTMLResponse(PAGE)


async def events(request: Request) -> Response | EventSourceResponse:
    room = request.path_params["room"]
    try:
        subscriber = hub.subscriber(f"room:{room}")
    except InvalidTopicError:
        return JSONResponse({"error": "no such room"}, status_code=404)
    return EventSourceResponse(subscriber, ping=15)


async def post_message(request: Request) -> Response:
    try:
        body = await read_json(request, max_size=MAX_BODY)
    except RequestBodyError as error:  # 413, 408 or 400
        return JSONResponse({"error": error.detail}, error.status_code, error.headers)
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str) or not 0 < len(text) <= MAX_TEXT:
        return JSONResponse({"error": f'send {{"text": "..."}}, 1-{MAX_TEXT} characters'}, 400)
    try:
        event_id = await hub.publish(f"room:{request.path_params['room']}",
                                     {"text": text, "worker": os.getpid()}, event="message")
    except InvalidTopicError:
        return JSONResponse({"error": "no such room"}, status_code=404)
    except HubUnavailable as error:
        return JSONResponse({"error": error.detail}, 503, error.headers)
    return JSONResponse({"id": event_id, "worker": os.getpid()})


async def worker(request: Request) -> Response:
    return JSONResponse({"worker": os.getpid()})


app = Starlette(routes=[
    Route("/", page),
    Route("/rooms/{room}/events", events),
    Route("/rooms/{room}/messages", post_message, methods=["POST"]),
    Route("/worker", worker),
], lifespan=hub.lifespan)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hub chat</title>
<style>body{font:16px system-ui;max-width:40em;margin:2em auto}#log{min-height:10em}</style>
</head><body>
<h1>Room <span id="room"></span></h1>
<ul id="log"></ul>
<form id="send"><input id="text" maxlength="500" autocomplete="off" autofocus>
<button>Send</button></form>
<p id="state">connecting...</p>
<script>
const room = new URLSearchParams(location.search).get("room") || "lobby";
document.getElementById("room").textContent = room;
const log = document.getElementById("log"), state = document.getElementById("state");
const source = new EventSource(`/rooms/${encodeURIComponent(room)}/events`);
source.onopen = () => { state.textContent = "connected"; };
source.onerror = () => { state.textContent = "reconnecting..."; };
source.addEventListener("message", (event) => {
  const message = JSON.parse(event.data);
  const item = document.createElement("li");
  item.textContent = message.text;                  // text, never HTML
  item.title = `worker ${message.worker}, id ${event.lastEventId}`;
  log.appendChild(item);
});
source.addEventListener("reset", () => {            // history lost: start over
  log.replaceChildren();
});
document.getElementById("send").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  if (!input.value) return;
  await fetch(`/rooms/${encodeURIComponent(room)}/messages`, {
    method: "POST", headers: {"content-type": "application/json"},
    body: JSON.stringify({text: input.value}),
  });
  input.value = "";
});
</script>
</body></html>
"""
