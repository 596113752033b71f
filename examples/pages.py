"""The demo's HTML pages: an index of the endpoints, a page that reads a stream
with ``fetch`` and a ``ReadableStream`` reader, as the tutorial's frontend
section does, and a page that listens to named Server-Sent Events with
``EventSource``, as card 6's frontend does. Plain strings, no template engine."""

from __future__ import annotations

from html import escape

from examples.scenario1 import EXTRA_ENDPOINTS, LAYERS, TUTORIAL_ENDPOINTS
from examples.sse_events import LAYER_ENDPOINTS, SSE_LAYERS, TICKER_PATH


def index_html() -> str:
    """The endpoint list: tutorial paths (raw layer), then each layer's mount."""
    items = "\n".join(
        f'<li><a href="{escape(path)}">{escape(path)}</a> {escape(what)}'
        + "".join(f' | <a href="/{layer}{escape(path)}">{layer}</a>' for layer in LAYERS)
        + "</li>"
        for path, what in TUTORIAL_ENDPOINTS + EXTRA_ENDPOINTS
    )
    sse_items = "\n".join(
        f"<li>{escape(what)}: "
        + " | ".join(f'<a href="/sse/{layer}{path}">{layer}</a>' for layer in SSE_LAYERS)
        + f' | <a href="/page/events?src=/sse/ours{path}">page</a></li>'
        for path, what in LAYER_ENDPOINTS
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>streaming: scenario 1</title></head>
<body>
<h1>Scenario 1: basic streaming responses</h1>
<p>The tutorial's paths answer with <code>streaming.StreamingResponse</code>; the same
producers are mounted under <code>/raw/</code> and <code>/starlette/</code>.</p>
<ul>
{items}
</ul>
<p><a href="/page/stream">/page/stream</a>: read <code>/simple</code> with fetch and a
ReadableStream reader (<code>/page/stream?src=/starlette/simple</code> for another path).</p>
<h2>Server-Sent Events (card 6)</h2>
<p>The same producers through <code>streaming.EventSourceResponse</code>, Starlette's
<code>StreamingResponse</code> with hand-formatted events, and
<code>sse_starlette.EventSourceResponse</code>:</p>
<ul>
{sse_items}
</ul>
<p><a href="/page/events">/page/events</a>: <code>EventSource</code> on
<a href="{TICKER_PATH}">{TICKER_PATH}</a>, twenty ticks with ids. Restart the server
mid-way: the page reconnects with <code>Last-Event-ID</code>, and the new server, which has lost the
ticker, answers with a <code>reset</code> event.</p>
<h2>LLM token streaming (card 7)</h2>
<p><a href="/chat">/chat</a>: type a prompt, watch the answer arrive token by token, press
Stop. The relay reads from the local OpenAI-compatible model at <code>/v1</code> (no API key
needed) and closes that upstream connection the moment the reader leaves.</p>
</body></html>
"""


# Both pages take the path to read from ``?src=``, and must only ever read
# from their own origin, or a link could show another site's stream as ours.
# A prefix test ("starts with one slash") is not enough: the browser's URL
# parser (WHATWG URL) reads "/\\evil.example" and "/<TAB>/evil.example" as
# "//evil.example". So the page resolves ``src`` with that very parser and
# compares origins.
SAME_ORIGIN_JS = r"""function sameOriginPath(wanted, fallback) {
  if (!wanted) return fallback;
  let url;
  try { url = new URL(wanted, location.href); } catch (error) { return fallback; }
  return url.origin === location.origin ? url.pathname + url.search : fallback;
}"""


# The page reads ``src`` (a same-origin path) chunk by chunk. Unlike the
# tutorial's snippet it decodes with {stream: true}: a UTF-8 character split
# across two reads (each Chinese character is three bytes) would otherwise turn
# into two replacement characters. Each read is logged with its arrival time in
# window.streamLog, and <body data-state> says when the stream is done, so a
# browser test can wait on it.
STREAM_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fetch + ReadableStream</title>
<style>#output { white-space: pre-wrap; font-family: monospace; }</style></head>
<body data-state="loading">
<h1>Reading <code id="src"></code></h1>
<pre id="output"></pre>
<ol id="log"></ol>
<script>
"use strict";
__SAME_ORIGIN__
window.streamLog = [];
async function readStream() {
  const src = sameOriginPath(new URLSearchParams(location.search).get("src"), "/simple");
  document.getElementById("src").textContent = src;
  const output = document.getElementById("output");
  const started = performance.now();
  const response = await fetch(src);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  document.body.dataset.state = "streaming";
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    const text = decoder.decode(value, { stream: true });
    const ms = performance.now() - started;
    window.streamLog.push({ ms: ms, bytes: value.length, text: text });
    output.textContent += text;
    const entry = document.createElement("li");
    entry.textContent = ms.toFixed(1) + " ms, " + value.length + " B";
    document.getElementById("log").appendChild(entry);
  }
  output.textContent += decoder.decode();
  document.body.dataset.state = "done";
}
readStream().catch((error) => {
  document.body.dataset.state = "error";
  document.getElementById("output").textContent += "\\n[" + error + "]";
});
</script>
</body></html>
""".replace("__SAME_ORIGIN__", SAME_ORIGIN_JS)


# The page opens an EventSource on ``src`` (a same-origin path) and lists every
# named event it receives. Card 6's frontend listens with addEventListener, the
# only way to see named events (onmessage gets only unnamed ones). "error" is
# two things: the server's ``event: error`` (a MessageEvent with data) and the
# browser's own connection error (a plain Event). The page closes the source on
# ``complete`` and on the server's error, or the browser would reconnect (WHATWG
# HTML 9.2.3: a response that ends is a reason to reconnect) and run the job
# again. window.sseLog and <body data-state> are there for the browser test.
EVENTS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>EventSource</title>
<style>#events { font-family: monospace; }</style></head>
<body data-state="connecting">
<h1>Listening to <code id="src"></code></h1>
<p>State: <b id="state">connecting</b>, connections opened: <b id="opens">0</b></p>
<ol id="events"></ol>
<script>
"use strict";
__SAME_ORIGIN__
window.sseLog = [];
window.sseOpens = 0;
const TYPES = ["start", "progress", "complete", "error", "tick", "reset", "shutdown",
               "message"];
const src = sameOriginPath(new URLSearchParams(location.search).get("src"), "__TICKER__");
document.getElementById("src").textContent = src;
const source = new EventSource(src);

function setState(state) {
  document.body.dataset.state = state;
  document.getElementById("state").textContent = state;
}

function show(type, event) {
  window.sseLog.push({ type: type, id: event.lastEventId, data: event.data });
  const item = document.createElement("li");
  const id = event.lastEventId ? " #" + event.lastEventId : "";
  item.textContent = type + id + ": " + event.data;
  document.getElementById("events").appendChild(item);
}

source.addEventListener("open", () => {
  window.sseOpens += 1;
  document.getElementById("opens").textContent = window.sseOpens;
  setState("open");
});
for (const type of TYPES) {
  source.addEventListener(type, (event) => {
    if (!(event instanceof MessageEvent)) {  // the browser's connection error
      setState(source.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
      return;
    }
    show(type, event);
    if (type === "complete" || type === "error") {
      source.close();
      setState(type === "complete" ? "done" : "failed");
    }
  });
}
</script>
</body></html>
""".replace("__TICKER__", TICKER_PATH).replace("__SAME_ORIGIN__", SAME_ORIGIN_JS)
