"""The chat page: type a prompt, watch the answer arrive token by token, Stop.

It POSTs the prompt with ``fetch`` (``EventSource`` can only GET, and a prompt
belongs in a body, not a URL) and parses the Server-Sent Events from the
response body itself. Stop calls ``AbortController.abort()``: the browser closes
the connection, the relay's producer is cancelled, and the relay closes its
upstream connection, so the model stops generating.

For tests: ``<body data-state>`` is ``idle``, ``waiting`` (prompt sent, no token
yet), ``streaming``, ``done``, ``stopped``, ``error`` or ``cut`` (the body ended
without a ``done`` event); ``window.chatLog`` holds each delta with the
milliseconds since Send.
"""

from __future__ import annotations

from html import escape


def chat_page(stream_url: str) -> str:
    """The page, posting prompts to ``stream_url``."""
    return _PAGE.replace("{{STREAM_URL}}", escape(stream_url, quote=True))


# The SSE parser follows WHATWG 9.2.6 for what the relay sends: "event:" and
# "data:" fields, a blank line dispatches, lines starting with ":" (keep-alive
# pings) are ignored. TextDecoderStream decodes incrementally, so a character
# whose bytes arrive in two reads is decoded whole.
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>streaming: chat</title>
<style>
body { font-family: sans-serif; max-width: 46rem; margin: 2rem auto; }
#answer { white-space: pre-wrap; border: 1px solid #ccc; padding: .75rem; min-height: 6rem; }
#status { color: #555; font-size: .9rem; }
textarea { width: 100%; }
</style></head>
<body data-state="idle" data-stream-url="{{STREAM_URL}}">
<h1>Chat (card 7: tokens as they are generated)</h1>
<form id="form">
  <textarea id="prompt" rows="3" placeholder="Ask something">你好, streaming!</textarea>
  <button id="send" type="submit">Send</button>
  <button id="stop" type="button" disabled>Stop</button>
</form>
<p id="status">idle</p>
<div id="answer"></div>
<p><a href="chat/transcripts">Saved transcripts</a> (saved by a background task after a
completed answer, never after Stop: card 10).</p>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let controller = null;
let started = 0;
window.chatLog = [];

function setState(state, note) {
  document.body.dataset.state = state;
  $("status").textContent = note ? state + ": " + note : state;
  const busy = state === "waiting" || state === "streaming";
  $("send").disabled = busy;
  $("stop").disabled = !busy;
}

function onEvent(type, data) {
  const payload = JSON.parse(data);
  if (type === "delta") {
    $("answer").textContent += payload.content;
    window.chatLog.push({ms: performance.now() - started, text: payload.content});
    if (document.body.dataset.state === "waiting") {
      setState("streaming", "first token after " + Math.round(performance.now() - started) + " ms");
    }
  } else if (type === "usage") {
    $("status").dataset.usage = JSON.stringify(payload);
  } else if (type === "done") {
    setState("done", "finish_reason " + payload.finish_reason);
  } else if (type === "error") {
    setState("error", payload.status + " " + payload.message);
  }
}

function parseBlock(block) {
  let type = "message";
  const data = [];
  for (const line of block.split("\\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "event") type = value;
    else if (name === "data") data.push(value);
  }
  if (data.length) onEvent(type, data.join("\\n"));
}

async function readEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  while (true) {
    const {value, done} = await reader.read();
    if (done) break;
    buffer = (buffer + value).replace(/\\r\\n?/g, "\\n");
    let end;
    while ((end = buffer.indexOf("\\n\\n")) >= 0) {
      parseBlock(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
    }
  }
  if (["waiting", "streaming"].includes(document.body.dataset.state)) setState("cut");
}

async function send(prompt) {
  controller = new AbortController();
  window.chatLog = [];
  $("answer").textContent = "";
  started = performance.now();
  setState("waiting");
  try {
    const response = await fetch(document.body.dataset.streamUrl, {
      method: "POST",
      headers: {"content-type": "application/json"},
      body: JSON.stringify({prompt}),
      signal: controller.signal,
    });
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      setState("error", response.status + " " + (body?.error?.message ?? response.statusText));
      return;
    }
    await readEvents(response);
  } catch (error) {
    if (error.name === "AbortError") setState("stopped");
    else setState("error", String(error));
  }
}

$("form").addEventListener("submit", (event) => {
  event.preventDefault();
  send($("prompt").value);
});
$("stop").addEventListener("click", () => controller?.abort());
</script>
</body></html>
"""
