"""Layer 4: the peers we compare against, layered beside our responses.

The tutorial teaches streaming with Starlette's (FastAPI's) ``StreamingResponse``
and hand-written SSE text; many projects use ``sse-starlette`` instead. These
modules serve the *same* producers through those peers, so a scenario can be
run on every layer and compared message by message (with
``streaming.testing.StreamingClient``, the tracing middleware, or a real server):

* ``streaming.compare.starlette_layer``: ``starlette.responses.StreamingResponse``,
  and the hand-formatting of events the tutorial's card 6 does for it;
* ``streaming.compare.sse_starlette_layer``: ``sse_starlette.EventSourceResponse``
  (importing it patches uvicorn; see that module's docstring).

They are the only modules of the library that import Starlette's
``StreamingResponse`` or sse-starlette (``streaming._compat`` borrows Starlette's
``Response`` base class, and nothing else, so FastAPI accepts our responses).
This package imports neither: import the submodule you need, so
``import streaming.compare`` has no side effect and needs only anyio.
"""

from __future__ import annotations

__all__: list[str] = []
