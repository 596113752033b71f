"""One ASGI app per implementation, each serving the same scenario paths.

Start one with uvicorn, e.g.
``python -m uvicorn benchmarks.apps.raw:app --loop uvloop --http httptools --lifespan off``.
Each module imports only its own framework, so one server process never loads
another implementation (importing ``sse_starlette`` patches uvicorn's exit
handler, for one).
"""
