"""``sse_starlette.EventSourceResponse``: SSE only (its own default ``\\r\\n``
separator and 15 s keep-alive for throughput; ``ping=0`` disables keep-alives
on the idle connections). Importing it patches uvicorn's exit handler, which is
why each implementation runs in its own server process.
"""

from __future__ import annotations

from sse_starlette import EventSourceResponse

from benchmarks.apps.common import CleanupLog, bench_app, sse_handlers

log = CleanupLog()
app = bench_app("sse-starlette", sse_handlers(EventSourceResponse, log), log)
