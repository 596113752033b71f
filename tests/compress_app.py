"""``tests/matrix_app.py`` behind compression middleware, for
tests/test_compression.py: Starlette's ``GZipMiddleware`` under ``/gzip`` and
``starlette-compress``'s ``CompressMiddleware`` under ``/compress``.

``STREAMING_TYPES`` (comma-separated, from the environment) registers content
types with starlette-compress as streaming, which flushes each body message:
its registry is process-wide, so each setting gets its own server process.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import Mount
from starlette_compress import CompressMiddleware, add_compress_type

from tests.matrix_app import app as inner

for content_type in filter(None, os.environ.get("STREAMING_TYPES", "").split(",")):
    add_compress_type(content_type, streaming=True)

app = Starlette(routes=[
    Mount("/gzip", GZipMiddleware(inner)),
    Mount("/compress", CompressMiddleware(inner)),
])
