"""The one optional dependency the core touches, and why.

FastAPI passes a path operation's return value straight to the server only when
it is an instance of ``starlette.responses.Response``; anything else it tries to
serialise as JSON. So when Starlette is installed, our responses derive from its
``Response`` class (inheriting nothing we call: every method that matters is
ours). Without Starlette they derive from a plain class and ``import streaming``
needs only anyio. No server or framework is patched either way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Typed as Starlette's Response, so a handler annotated ``-> Response``
    # type-checks; without Starlette installed, mypy sees ``Any``.
    from starlette.responses import Response as ResponseBase
else:
    try:
        from starlette.responses import Response as ResponseBase
    except ImportError:  # Starlette is an optional extra

        class ResponseBase:
            pass


__all__ = ["ResponseBase"]
