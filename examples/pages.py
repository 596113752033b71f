"""The demo's two HTML pages: an index of the endpoints and a page that reads a
stream with ``fetch`` and a ``ReadableStream`` reader, as the tutorial's
frontend section does. Plain strings, no template engine."""

from __future__ import annotations

from html import escape

from examples.scenario1 import EXTRA_ENDPOINTS, LAYERS, TUTORIAL_ENDPOINTS


def index_html() -> str:
    """The endpoint list: tutorial paths (raw layer), then each layer's mount."""
    items = "\n".join(
        f'<li><a href="{escape(path)}">{escape(path)}</a> {escape(what)}'
        + "".join(f' | <a href="/{layer}{escape(path)}">{layer}</a>' for layer in LAYERS)
        + "</li>"
        for path, what in TUTORIAL_ENDPOINTS + EXTRA_ENDPOINTS
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
</body></html>
"""


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
window.streamLog = [];
async function readStream() {
  const wanted = new URLSearchParams(location.search).get("src") || "/simple";
  const src = wanted.startsWith("/") && !wanted.startsWith("//") ? wanted : "/simple";
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
"""
